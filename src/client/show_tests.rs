use super::*;

fn package(name: &str, version: &str, arch: &str) -> Package {
    serde_json::from_value(serde_json::json!({
        "id": format!("{name}{version}").repeat(8),
        "name": name, "epoch": 0, "version": version, "release": "1", "arch": arch,
        "filename": format!("{name}-{version}-1.{arch}.rpm"),
        "channels": ["qa"], "held": null, "discarded": null,
    }))
    .expect("package")
}

fn channel(name: &str, rev: i32, packages: Vec<Package>, frozen: bool) -> ChannelDetail {
    let frozen = frozen.then(|| serde_json::json!({"by": "ann", "at": "t", "reason": "release"}));
    let channel = serde_json::from_value(serde_json::json!({
        "name": name, "position": 0, "source": null, "frozen": frozen,
        "revision": {"number": rev, "created_at": "2026-12-04T10:00:00Z", "package_count": packages.len()},
    }))
    .expect("channel");
    ChannelDetail { channel, packages }
}

#[test]
fn a_table_aligns_columns_and_trims_the_last() {
    let mut t = Table::new(&["A", "LONGER", "C"]);
    t.row(vec!["wide cell".into(), "x".into(), String::new()]);
    assert_eq!(t.render(), "A          LONGER  C\nwide cell  x\n");
}

#[test]
fn status_shows_what_each_channel_serves_side_by_side() {
    let qa = channel(
        "qa",
        5,
        vec![
            package("demo", "1.0", "x86_64"),
            package("demo", "2.0", "x86_64"),
        ],
        false,
    );
    let prod = channel("prod", 3, vec![package("demo", "1.0", "x86_64")], true);
    let text = render_status(&[qa, prod]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "CHANNEL  REVISION  PACKAGES  SINCE                 STATE"
    );
    assert_eq!(
        lines[1],
        "qa       5         2         2026-12-04T10:00:00Z"
    );
    assert!(lines[2].ends_with("frozen by ann: release"), "{}", lines[2]);
    assert_eq!(lines[4], "PACKAGE  ARCH    QA     PROD");
    assert_eq!(lines[5], "demo     x86_64  2.0-1  1.0-1");
}

#[test]
fn a_missing_build_shows_as_a_dash() {
    let qa = channel("qa", 2, vec![package("lib", "1.0", "noarch")], false);
    let prod = channel("prod", 1, vec![], false);
    let text = render_status(&[qa, prod]);
    assert!(text.contains("lib      noarch  1.0-1  -"), "{text}");
}

#[test]
fn diff_lists_removed_then_added() {
    let d = Diff {
        channel: "prod".into(),
        from: 4,
        to: 5,
        added: vec![package("demo", "2.0", "x86_64")],
        removed: vec![package("demo", "1.0", "x86_64")],
    };
    assert_eq!(
        render_diff(&d),
        "prod revision 4 → 5: 1 added, 1 removed\n- demo  1.0-1  x86_64\n+ demo  2.0-1  x86_64\n"
    );
}

#[test]
fn blockers_read_as_words() {
    let soak = serde_json::json!({"reason": "soaking", "until": "2026-12-05T00:00:00Z"});
    assert_eq!(blocker_words(&soak), "soaking until 2026-12-05T00:00:00Z");
    let held = serde_json::json!({"reason": "held", "by": "ann", "at": "t", "why": "bug 7"});
    assert_eq!(blocker_words(&held), "held by ann: bug 7");
    let failed = serde_json::json!({"reason": "failed_check", "check": "ui", "by": "ci",
        "at": "t", "url": "https://ci/7"});
    assert_eq!(blocker_words(&failed), "check ui failed https://ci/7");
    let running =
        serde_json::json!({"reason": "missing_check", "check": "ui", "status": "running"});
    assert_eq!(blocker_words(&running), "check ui running");
}

#[test]
fn an_epoch_shows_only_when_set() {
    let mut p = package("demo", "2.0", "x86_64");
    assert_eq!(p.evr(), "2.0-1");
    p.epoch = 3;
    assert_eq!(p.evr(), "3:2.0-1");
    p.release = String::new();
    assert_eq!(p.evr(), "3:2.0");
}

#[test]
fn a_demotion_says_what_each_channel_falls_back_to() {
    let c = Change {
        package: package("demo", "2.0", "x86_64"),
        changed: true,
        revisions: [("prod".to_string(), 7), ("staging".to_string(), 9)].into(),
        fell_back_to: [
            ("prod".to_string(), Some(package("demo", "1.0", "x86_64"))),
            ("staging".to_string(), None),
        ]
        .into(),
    };
    assert_eq!(
        render_change("demote", "staging", &c),
        "demo-2.0-1.x86_64.rpm out of prod (revision 7)\n\
         demo-2.0-1.x86_64.rpm out of staging (revision 9)\n\
         prod serves demo-1.0-1.x86_64.rpm again\n\
         staging serves no demo any more\n"
    );
}

#[test]
fn a_change_that_changed_nothing_says_so() {
    let c = Change {
        package: package("demo", "2.0", "x86_64"),
        changed: false,
        revisions: Default::default(),
        fell_back_to: Default::default(),
    };
    assert_eq!(
        render_change("promote", "staging", &c),
        "demo-2.0-1.x86_64.rpm already in staging: nothing changed\n"
    );
}
