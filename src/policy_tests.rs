use super::*;

fn chans() -> Vec<String> {
    vec!["qa".into(), "staging".into(), "prod".into()]
}

fn spec(toml_text: &str) -> PolicySpec {
    toml::from_str(toml_text).expect("toml")
}

#[test]
fn policies_parse_and_validate() {
    let p =
        Policy::from_spec("prod", &spec("every = \"1h\"\nsoak = \"1h\""), &chans()).expect("ok");
    assert_eq!(p.source.as_deref(), Some("staging"));
    assert_eq!(p.schedule, Some(Schedule::Every(Duration::from_secs(3600))));
    assert_eq!(p.soak, Duration::from_secs(3600));
    assert_eq!(p.retain, 3);
    assert!(p.require_permission);
    let bad = |c: &str, t: &str| Policy::from_spec(c, &spec(t), &chans()).is_err();
    assert!(
        bad("qa", "every = \"1h\""),
        "first channel cannot be automatic"
    );
    assert!(bad("prod", "source = \"qa\""), "no skipping");
    assert!(bad("prod", "every = \"1h\"\ncron = \"* * * * *\""));
    assert!(bad("prod", "cron = \"61 * * * *\""));
    assert!(bad(
        "prod",
        "cron = \"0 * * * *\"\ntimezone = \"Mars/Olympus\""
    ));
    assert!(bad("prod", "retain = 0"));
    assert!(bad("prod", "every = \"soon\""));
    assert!(bad("nope", "every = \"1h\""));
    assert!(toml::from_str::<PolicySpec>("evry = \"1h\"").is_err());
}

#[test]
fn interval_schedules_run_a_missed_slot_once() {
    let s = Schedule::Every(Duration::from_secs(3600));
    assert_eq!(s.next_after(1000, None), 4600);
    assert_eq!(s.next_after(4600, Some(4600)), 8200);
    // Down for five hours: one run now, then back on the cadence.
    assert_eq!(
        s.next_after(4600 + 5 * 3600 + 10, Some(4600)),
        4600 + 6 * 3600
    );
}

#[test]
fn cron_follows_the_time_zone() {
    let p = Policy::from_spec(
        "staging",
        &spec("cron = \"15 10 * * *\"\ntimezone = \"Europe/Madrid\""),
        &chans(),
    )
    .expect("ok");
    let s = p.schedule.expect("schedule");
    // 2026-11-22 00:00:00 UTC; Madrid is UTC+1 in November → 09:15 UTC.
    let midnight = 1_795_305_600;
    assert_eq!(s.next_after(midnight, None), midnight + 9 * 3600 + 15 * 60);
    // In July (UTC+2) the same rule fires at 08:15 UTC. 2026-07-01 00:00 UTC:
    let july = 1_782_864_000;
    assert_eq!(s.next_after(july, None), july + 8 * 3600 + 15 * 60);
    // Strictly after: at the firing second, the next is a day later.
    let fire = midnight + 9 * 3600 + 15 * 60;
    assert_eq!(s.next_after(fire, Some(fire)), fire + 86_400);
}

#[test]
fn eligibility_rule() {
    let note = |r: &str| Note {
        by: "alice".into(),
        at: 5,
        reason: r.into(),
    };
    let fresh = BuildFacts {
        entered_source_at: 1000,
        held: None,
        rejected: None,
        present: false,
        checks: Default::default(),
    };
    let mut policy = Policy::default_for("prod", &chans());
    policy.soak = Duration::from_secs(1800);
    assert_eq!(
        blockers(&fresh, &policy, None, 2000),
        vec![Blocker::Soaking { until: 2800 }]
    );
    assert!(blockers(&fresh, &policy, None, 2800).is_empty());
    let held = BuildFacts {
        held: Some(note("panic")),
        ..fresh.clone()
    };
    assert!(matches!(
        blockers(&held, &policy, None, 9999)[..],
        [Blocker::Held { .. }]
    ));
    let rejected = BuildFacts {
        rejected: Some(note("bad")),
        ..fresh.clone()
    };
    assert!(matches!(
        blockers(&rejected, &policy, None, 9999)[..],
        [Blocker::Rejected { .. }]
    ));
    assert!(matches!(
        blockers(&fresh, &policy, Some(&note("release")), 9999)[..],
        [Blocker::Frozen { .. }]
    ));
}

fn fact(status: CheckStatus) -> CheckFact {
    CheckFact {
        status,
        by: "ci".into(),
        at: 7,
        url: Some("https://ci.example/run/12".into()),
    }
}

#[test]
fn required_checks_must_have_passed() {
    let p = Policy::from_spec(
        "prod",
        &spec("require_checks = [\"integration\", \"ui\"]\non_failed_check = \"hold\""),
        &chans(),
    )
    .expect("ok");
    assert_eq!(p.require_checks, ["integration", "ui"]);
    assert!(p.hold_on_failed_check);
    assert!(
        p.rule().ends_with(", with integration and ui passed there"),
        "{}",
        p.rule()
    );
    let mut facts = BuildFacts {
        entered_source_at: 0,
        held: None,
        rejected: None,
        present: false,
        checks: Default::default(),
    };
    facts
        .checks
        .insert("integration".into(), fact(CheckStatus::Failed));
    facts.checks.insert("ui".into(), fact(CheckStatus::Running));
    facts
        .checks
        .insert("perf".into(), fact(CheckStatus::Failed));
    let b = blockers(&facts, &p, None, 100);
    assert_eq!(
        b,
        vec![
            Blocker::FailedCheck {
                check: "integration".into(),
                by: "ci".into(),
                at: 7,
                url: Some("https://ci.example/run/12".into()),
            },
            Blocker::MissingCheck {
                check: "ui".into(),
                status: Some(CheckStatus::Running),
            },
        ],
        "a check nobody requires blocks nothing"
    );
    facts
        .checks
        .insert("integration".into(), fact(CheckStatus::Passed));
    facts.checks.insert("ui".into(), fact(CheckStatus::Passed));
    assert!(blockers(&facts, &p, None, 100).is_empty());
    facts.checks.clear();
    assert_eq!(
        check_blockers(&p.require_checks, &facts.checks),
        vec![
            Blocker::MissingCheck {
                check: "integration".into(),
                status: None
            },
            Blocker::MissingCheck {
                check: "ui".into(),
                status: None
            },
        ]
    );
    let json = serde_json::to_value(&b[0]).expect("json");
    assert_eq!(json["reason"], "failed_check");
    assert_eq!(json["url"], "https://ci.example/run/12");
}

#[test]
fn check_settings_are_validated() {
    let bad = |c: &str, t: &str| Policy::from_spec(c, &spec(t), &chans()).is_err();
    assert!(
        bad("qa", "require_checks = [\"integration\"]"),
        "qa has no source"
    );
    assert!(bad("prod", "require_checks = [\"has space\"]"));
    assert!(bad("prod", "require_checks = [\"\"]"));
    assert!(bad("prod", "on_failed_check = \"hold\""), "nothing to fail");
    assert!(bad(
        "prod",
        "require_checks = [\"a\"]\non_failed_check = \"page\""
    ));
    assert_eq!(CheckStatus::parse("passed"), Ok(CheckStatus::Passed));
    assert!(CheckStatus::parse("PASSED").is_err());
    assert!(check_name("ui-tests.v2_x").is_ok());
    assert!(check_name(&"x".repeat(65)).is_err());
}
