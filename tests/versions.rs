//! .deb versions are ordered as dpkg orders them: several hundred real version
//! pairs from this machine's Debian package lists, compared by our function and
//! by `dpkg --compare-versions`.

mod common;

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::process::Command;

use common::*;
use forklift::formats::{compare_evr, debver};

/// Version strings from dpkg's status file and apt's package lists.
fn real_versions() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut files = vec![std::path::PathBuf::from("/var/lib/dpkg/status")];
    if let Ok(rd) = std::fs::read_dir("/var/lib/apt/lists") {
        files.extend(
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with("_Packages")),
        );
    }
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        out.extend(
            text.lines()
                .filter_map(|l| l.strip_prefix("Version: "))
                .map(|v| v.trim().to_string())
                .take(3000),
        );
    }
    out
}

fn dpkg_order(a: &str, b: &str) -> Ordering {
    let holds = |op: &str| {
        Command::new("dpkg")
            .args(["--compare-versions", a, op, b])
            .status()
            .expect("dpkg")
            .success()
    };
    if holds("lt") {
        Ordering::Less
    } else if holds("gt") {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

#[test]
fn deb_versions_sort_like_dpkg() {
    if !require_tool("dpkg") {
        return;
    }
    let versions: Vec<String> = real_versions()
        .into_iter()
        .filter(|v| forklift::formats::deb::is_valid_version(v))
        .collect();
    assert!(
        versions.len() >= 100,
        "only {} versions found",
        versions.len()
    );
    // Neighbours in byte order (near misses: 1.2-1 vs 1.2-1+b1, ~rc vs final),
    // pairs across the list, and the cases that motivated this.
    let mut pairs: Vec<(String, String)> = versions
        .windows(2)
        .step_by((versions.len() / 300).max(1))
        .map(|w| (w[0].clone(), w[1].clone()))
        .collect();
    let n = versions.len();
    pairs.extend((0..150).map(|i| {
        (
            versions[(i * 7919) % n].clone(),
            versions[(i * 104_729 + 13) % n].clone(),
        )
    }));
    for (a, b) in [
        ("1.0-1ubuntu1", "1.0-1+deb12u1"),
        ("2.0", "2.0+"),
        ("1.0~rc1-1", "1.0-1"),
        ("1:1.0-1", "2.0-1"),
        ("2.36.1-8+deb12u1", "2.36.1-8"),
        ("1.0a", "1.0+"),
    ] {
        pairs.push((a.into(), b.into()));
    }
    let (mut rpm_wrong, mut checked) = (0, 0);
    for (a, b) in &pairs {
        let want = dpkg_order(a, b);
        let got = debver::compare(debver::split(a), debver::split(b));
        assert_eq!(got, want, "{a} vs {b}: dpkg says {want:?}");
        let (ra, rb) = (debver::split(a), debver::split(b));
        if compare_evr(ra, rb) != want {
            rpm_wrong += 1;
        }
        checked += 1;
    }
    eprintln!(
        "{checked} version pairs agree with dpkg; rpmvercmp would have ordered {rpm_wrong} of them wrongly"
    );
    assert!(checked >= 300, "only {checked} pairs");
    assert!(
        rpm_wrong > 0,
        "the sample has no case where the orderings differ"
    );
}

/// What a host gets, and what a demotion falls back to, follow dpkg's order:
/// rpmvercmp would call `1.0-1ubuntu1` the newer of these two.
#[test]
fn the_newest_deb_is_chosen_by_dpkg_order() {
    let Some(srv) = TestServer::start(Backend::Sqlite) else {
        return;
    };
    let older = build_deb("forklift-order", "1.0-1ubuntu1");
    let newer = build_deb("forklift-order", "1.0-1+deb12u1");
    for bytes in [&newer, &older] {
        let r = put_bytes(&srv.api("/packages/x.deb?channel=qa"), bytes);
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let latest = get(&srv.api("/channels/qa/latest?name=forklift-order")).json();
    assert_eq!(latest["version"], "1.0", "{latest}");
    assert_eq!(latest["release"], "1+deb12u1", "{latest}");
    // Both in staging; demoting the newer falls back to the older.
    let r = post_json(
        &srv.api("/channels/staging/promote"),
        serde_json::json!({"packages": ["forklift-order_1.0-1ubuntu1_all.deb", "forklift-order_1.0-1+deb12u1_all.deb"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = demote(
        &srv,
        "forklift-order_1.0-1+deb12u1_all.deb",
        "staging",
        "bad",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["fell_back_to"]["staging"]["release"],
        "1ubuntu1",
        "{}",
        r.text()
    );
}
