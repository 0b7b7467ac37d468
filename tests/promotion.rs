//! Promotion policies on a simulated clock: schedules, soak, hold, freeze,
//! rejection, retention, discard, one runner per slot — and a day in the life
//! of a pipeline with a real dnf host on prod.

mod common;

use std::sync::Arc;

use common::dnf::{dnf_available, Dnf};
use common::*;
use forklift::policy::PolicySpec;
use forklift::service::promotion::scheduler;
use forklift::service::{Clock, ManualClock};

const MIN: i64 = 60;
const HOUR: i64 = 3600;

/// A server on a manual clock, its policies from TOML, the background
/// scheduler off: the test runs due slots itself, deterministically.
fn start(b: Backend, clock: &Arc<ManualClock>, policies: &str) -> Option<TestServer> {
    let specs: std::collections::BTreeMap<String, PolicySpec> =
        toml::from_str(policies).expect("policies toml");
    TestServer::start_full(b, clock.clone(), |l| {
        l.policies = Some(specs);
        l.scheduler_tick = Some("0s".into());
    })
}

/// A clock on a whole hour, an hour ahead of real time.
fn hour_clock() -> Arc<ManualClock> {
    let now = chrono::Utc::now().timestamp();
    Arc::new(ManualClock::new((now / HOUR + 1) * HOUR))
}

fn in_channel(srv: &TestServer, channel: &str) -> Vec<String> {
    let mut v: Vec<String> = get(&srv.api(&format!("/channels/{channel}"))).json()["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| p["filename"].as_str().expect("filename").to_string())
        .collect();
    v.sort();
    v
}

fn names(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn run_due(srv: &TestServer) -> Vec<serde_json::Value> {
    scheduler::run_due(&srv.ctx)
        .expect("run_due")
        .into_iter()
        .map(|r| serde_json::to_value(r).expect("json"))
        .collect()
}

fn blockers(srv: &TestServer, channel: &str, file: &str) -> Vec<String> {
    let c = get(&srv.api(&format!("/channels/{channel}/candidates"))).json();
    for list in ["eligible", "blocked"] {
        for p in c[list].as_array().expect("list") {
            if p["filename"] == file {
                return p["blockers"]
                    .as_array()
                    .map(|b| {
                        b.iter()
                            .map(|x| x["reason"].as_str().expect("reason").to_string())
                            .collect()
                    })
                    .unwrap_or_default();
            }
        }
    }
    panic!("{file} is not a candidate for {channel}: {c}");
}

/// "Every hour, take the latest accepted build from staging to prod — but only
/// one that has sat in staging for at least an hour. Builds reach staging from
/// CI after a 30-minute delay. If anyone presses the panic button, that build
/// goes nowhere." Plus demotion to the last good build with a real dnf host,
/// and a freeze with downtime that catches up once.
fn a_day_in_the_life(b: Backend) {
    let use_dnf = dnf_available();
    let clock = hour_clock();
    let t0 = clock.now();
    let Some(srv) = start(
        b,
        &clock,
        r#"
        [staging]
        every = "1h"
        soak = "30m"
        [prod]
        every = "1h"
        soak = "1h"
        "#,
    ) else {
        return;
    };
    let at = |offset: i64| clock.set(t0 + offset);

    // 00:05 build 1 (demo 1.0 with its lib) reaches qa.
    at(5 * MIN);
    for f in [DEMO10, LIB] {
        assert_eq!(upload(&srv, &fixture(f), Some("qa")).status, 201);
    }
    assert_eq!(blockers(&srv, "staging", DEMO10), vec!["soaking"]);
    // 01:00 staging takes build 1 (55 min in qa); prod has nothing soaked yet.
    at(HOUR);
    run_due(&srv);
    assert_eq!(in_channel(&srv, "staging"), names(&[DEMO10, LIB]));
    assert!(in_channel(&srv, "prod").is_empty());
    // 01:10 build 2; 01:50 build 3, which someone holds at 01:55.
    at(HOUR + 10 * MIN);
    assert_eq!(upload(&srv, &fixture(DEMO11), Some("qa")).status, 201);
    at(HOUR + 50 * MIN);
    assert_eq!(upload(&srv, &fixture(DEMO20), Some("qa")).status, 201);
    at(HOUR + 55 * MIN);
    let r = post_json(
        &srv.api(&format!("/packages/{DEMO20}/hold")),
        serde_json::json!({"reason": "panic: leaks memory"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["held"]["reason"], "panic: leaks memory");

    // 02:00 build 2 → staging (50 min); build 1 → prod (1 h in staging).
    at(2 * HOUR);
    run_due(&srv);
    assert_eq!(in_channel(&srv, "staging"), names(&[DEMO10, DEMO11, LIB]));
    assert_eq!(in_channel(&srv, "prod"), names(&[DEMO10, LIB]));
    assert!(blockers(&srv, "staging", DEMO20).contains(&"held".to_string()));
    let dnf = use_dnf.then(|| {
        let dnf = Dnf::new();
        dnf.add_repo_file("prod", &get(&format!("{}/rpm/prod.repo", srv.url)).text());
        dnf.run(&["install", "forklift-demo"]);
        assert_eq!(dnf.installed("forklift-demo"), "forklift-demo-1.0-1.x86_64");
        dnf
    });

    // 03:00 build 2 → prod; build 3 stays held in qa.
    at(3 * HOUR);
    run_due(&srv);
    assert_eq!(in_channel(&srv, "prod"), names(&[DEMO10, DEMO11, LIB]));
    assert!(!in_channel(&srv, "staging").contains(&DEMO20.to_string()));
    if let Some(dnf) = &dnf {
        dnf.run(&["upgrade"]);
        assert_eq!(dnf.installed("forklift-demo"), "forklift-demo-1.1-1.x86_64");
    }
    // The automatic promotion is in the build's history, with its rule.
    let h = history(&srv, DEMO11);
    let auto = h
        .iter()
        .find(|e| e["kind"] == "promoted" && e["channel"] == "prod")
        .expect("promotion to prod");
    assert_eq!(auto["actor"], "policy:prod");
    assert!(auto["detail"]["rule"]
        .as_str()
        .expect("rule")
        .contains("every 1h"));

    // 03:10 build 2 is bad: demoted from prod, which falls back to build 1, and
    // the host goes back with distro-sync.
    at(3 * HOUR + 10 * MIN);
    let r = demote(&srv, DEMO11, "prod", "crashes on start");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(in_channel(&srv, "prod"), names(&[DEMO10, LIB]));
    if let Some(dnf) = &dnf {
        dnf.run(&["distro-sync"]);
        assert_eq!(dnf.installed("forklift-demo"), "forklift-demo-1.0-1.x86_64");
    }
    // 03:20 QA freeze staging; 03:30 build 3 is released.
    at(3 * HOUR + 20 * MIN);
    let r = post_json(
        &srv.api("/channels/staging/freeze"),
        serde_json::json!({"reason": "testing build 2"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    at(3 * HOUR + 30 * MIN);
    let r = post_json(
        &srv.api(&format!("/packages/{DEMO20}/release")),
        serde_json::json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(blockers(&srv, "staging", DEMO20), vec!["frozen"]);
    // Nobody moves a frozen channel, by hand either.
    let r = promote(&srv, DEMO20, "staging");
    assert_eq!(r.status, 423, "{}", r.text());
    assert_eq!(r.error_code(), "channel_frozen");

    // 04:00 nothing moves: staging is frozen; build 2 is rejected for prod.
    at(4 * HOUR);
    let before = get(&srv.api("/channels/staging")).json()["revision"]["number"].clone();
    run_due(&srv);
    assert_eq!(
        get(&srv.api("/channels/staging")).json()["revision"]["number"],
        before
    );
    assert_eq!(in_channel(&srv, "prod"), names(&[DEMO10, LIB]));
    assert!(blockers(&srv, "prod", DEMO11).contains(&"rejected".to_string()));

    // The server is down from 04:00 to 07:30: the 05:00, 06:00 and 07:00 slots
    // are missed. Unfrozen at 07:30, the next run catches up once.
    at(7 * HOUR + 30 * MIN);
    let r = post_json(
        &srv.api("/channels/staging/unfreeze"),
        serde_json::json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let runs = run_due(&srv);
    let staging_runs: Vec<&serde_json::Value> =
        runs.iter().filter(|r| r["channel"] == "staging").collect();
    assert_eq!(staging_runs.len(), 1, "{runs:?}");
    assert_eq!(staging_runs[0]["promoted"], serde_json::json!([DEMO20]));
    assert!(run_due(&srv).is_empty(), "a second run in the same slot");
    let policy = get(&srv.api("/channels/staging/policy")).json();
    let next = chrono::DateTime::parse_from_rfc3339(policy["next_run_at"].as_str().expect("next"))
        .expect("time")
        .timestamp();
    assert_eq!(next, t0 + 8 * HOUR, "back on the hourly cadence");
    let promoted_into_staging = history(&srv, DEMO20)
        .iter()
        .filter(|e| e["kind"] == "promoted" && e["channel"] == "staging")
        .count();
    assert_eq!(promoted_into_staging, 1);
    let kinds: Vec<String> = history(&srv, DEMO20)
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_string())
        .collect();
    assert_eq!(
        kinds,
        vec!["uploaded", "added", "held", "released", "promoted"]
    );
}

/// "QA want the last good build deployed to their test environment every
/// morning at 10:15 — but sometimes they are still testing yesterday's build
/// and nothing may replace it until they say so."
fn morning_deploys_and_qa_freeze(b: Backend) {
    // 2026-11-23 09:00 UTC = 10:00 in Madrid.
    let t0 = 1_795_424_400;
    let clock = Arc::new(ManualClock::new(t0));
    let Some(srv) = start(
        b,
        &clock,
        r#"
        [staging]
        cron = "15 10 * * *"
        timezone = "Europe/Madrid"
        "#,
    ) else {
        return;
    };
    let policy = get(&srv.api("/channels/staging/policy")).json();
    assert_eq!(policy["next_run_at"], "2026-11-23T09:15:00Z");
    assert_eq!(upload(&srv, &fixture(DEMO10), Some("qa")).status, 201);
    clock.set(t0 + 14 * MIN);
    assert!(run_due(&srv).is_empty(), "not 10:15 in Madrid yet");
    clock.set(t0 + 15 * MIN);
    run_due(&srv);
    assert_eq!(in_channel(&srv, "staging"), names(&[DEMO10]));
    // QA are still testing 1.0: they freeze their environment.
    let r = post_json(
        &srv.api("/channels/staging/freeze"),
        serde_json::json!({"reason": "still testing 1.0"}),
    );
    assert_eq!(r.status, 200);
    let ch = get(&srv.api("/channels/staging")).json();
    assert_eq!(ch["frozen"]["reason"], "still testing 1.0");
    assert_eq!(ch["frozen"]["by"], "admin");
    assert_eq!(upload(&srv, &fixture(DEMO11), Some("qa")).status, 201);
    assert_eq!(upload(&srv, &fixture(LIB), Some("qa")).status, 201);
    // Next morning: frozen, nothing replaces 1.0.
    clock.set(t0 + 24 * HOUR + 15 * MIN);
    let runs = run_due(&srv);
    assert_eq!(runs[0]["frozen"], true, "{runs:?}");
    assert_eq!(in_channel(&srv, "staging"), names(&[DEMO10]));
    // They say so; the morning after, the newest good build arrives.
    assert_eq!(
        post_json(
            &srv.api("/channels/staging/unfreeze"),
            serde_json::json!({})
        )
        .status,
        200
    );
    clock.set(t0 + 48 * HOUR + 15 * MIN);
    run_due(&srv);
    assert_eq!(in_channel(&srv, "staging"), names(&[DEMO10, DEMO11, LIB]));
    let policy = get(&srv.api("/channels/staging/policy")).json();
    assert_eq!(policy["next_run_at"], "2026-11-26T09:15:00Z");
}

/// "Each hurdle is a promotion level: some are activated automatically by the
/// success of the previous level, some only by approved promoters." Staging
/// is automatic (every 10 minutes, once a build has passed 30 minutes in qa)
/// and also an open manual hurdle; prod is only for its approvers; a held
/// build needs force.
fn hurdles_and_approvals(b: Backend) {
    let clock = hour_clock();
    let t0 = clock.now();
    let Some(srv) = start(
        b,
        &clock,
        r#"
        [staging]
        every = "10m"
        soak = "30m"
        require_permission = false
        [prod]
        require_permission = true
        "#,
    ) else {
        return;
    };
    let dev = create_token(
        &srv,
        serde_json::json!({"name": "dev", "roles": ["uploader"]}),
    );
    let approvers = create_token(
        &srv,
        serde_json::json!({"name": "approvers", "roles": ["promoter:prod"]}),
    );

    // The automatic hurdle: qa's success (30 minutes there, nobody held it)
    // activates staging on its next run, without anyone calling the API.
    clock.set(t0 + MIN);
    assert_eq!(upload(&srv, &fixture(DEMO10), Some("qa")).status, 201);
    clock.set(t0 + 10 * MIN);
    run_due(&srv);
    assert!(
        in_channel(&srv, "staging").is_empty(),
        "still soaking in qa"
    );
    clock.set(t0 + 40 * MIN);
    let runs = run_due(&srv);
    assert_eq!(in_channel(&srv, "staging"), names(&[DEMO10]), "{runs:?}");
    let last = history(&srv, DEMO10).last().cloned().expect("event");
    assert_eq!(last["kind"], "promoted");
    assert_eq!(last["actor"], "policy:staging");
    // Prod has no schedule: nothing reaches it by itself.
    clock.set(t0 + 5 * HOUR);
    run_due(&srv);
    assert!(in_channel(&srv, "prod").is_empty());

    // Staging is also open to any token by hand; anonymous callers still are not.
    assert_eq!(upload(&srv, &fixture(DEMO11), Some("qa")).status, 201);
    let anon = json_as(
        "POST",
        &srv.api(&format!("/packages/{DEMO11}/promote")),
        None,
        serde_json::json!({"to": "staging"}),
    );
    assert_eq!(anon.status, 401);
    let r = json_as(
        "POST",
        &srv.api(&format!("/packages/{DEMO11}/promote")),
        Some(&dev),
        serde_json::json!({"to": "staging"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Prod needs its approvers.
    let r = json_as(
        "POST",
        &srv.api(&format!("/packages/{DEMO11}/promote")),
        Some(&dev),
        serde_json::json!({"to": "prod"}),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = json_as(
        "POST",
        &srv.api(&format!("/packages/{DEMO11}/promote")),
        Some(&approvers),
        serde_json::json!({"to": "prod"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(in_channel(&srv, "prod"), names(&[DEMO11]));
    let last = history(&srv, DEMO11).last().cloned().expect("event");
    assert_eq!(last["actor"], "approvers");

    let r = json_as(
        "POST",
        &srv.api(&format!("/packages/{DEMO10}/promote")),
        Some(&dev),
        serde_json::json!({"to": "prod"}),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    // A held build: even the admin needs "force".
    let r = json_as(
        "POST",
        &srv.api(&format!("/packages/{DEMO10}/hold")),
        Some(&dev),
        serde_json::json!({"reason": "wait for the security review"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = promote(&srv, DEMO10, "prod");
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.error_code(), "package_held");
    let r = post_json(
        &srv.api(&format!("/packages/{DEMO10}/promote")),
        serde_json::json!({"to": "prod", "force": true}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let h = history(&srv, DEMO10);
    let last = h.last().expect("event");
    assert_eq!(last["kind"], "promoted");
    assert_eq!(last["detail"]["forced"], true);
    // Only admins change policies.
    let r = json_as(
        "PUT",
        &srv.api("/channels/prod/policy"),
        Some(&dev),
        serde_json::json!({"every": "1h"}),
    );
    assert_eq!(r.status, 403);
    let r = json_as(
        "PUT",
        &srv.api("/channels/prod/policy"),
        Some(ADMIN_TOKEN),
        serde_json::json!({"every": "1h", "soak": "2h", "retain": 5}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["retain"], 5);
    assert!(r.json()["next_run_at"].is_string());
    let r = json_as(
        "PUT",
        &srv.api("/channels/qa/policy"),
        Some(ADMIN_TOKEN),
        serde_json::json!({"every": "1h"}),
    );
    assert_eq!(r.status, 400, "the first channel has no source");
}

/// "A build that failed its tests is discarded completely — but its history
/// stays." And retention: older builds leave a channel, never the store.
fn retention_and_discard(b: Backend) {
    let clock = hour_clock();
    let Some(srv) = start(b, &clock, "[qa]\nretain = 2\n") else {
        return;
    };
    for f in [DEMO10, DEMO11, DEMO20] {
        clock.advance(MIN);
        assert_eq!(upload(&srv, &fixture(f), Some("qa")).status, 201);
    }
    // qa keeps the newest two; 1.0 left its metadata but not the store.
    assert_eq!(in_channel(&srv, "qa"), names(&[DEMO11, DEMO20]));
    let kinds: Vec<String> = history(&srv, DEMO10)
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_string())
        .collect();
    assert_eq!(kinds, vec!["uploaded", "added", "retired"]);
    let d = get(&srv.api(&format!("/packages/{DEMO10}")));
    assert_eq!(d.status, 200);

    // Discard 1.1: out of every channel, file gone, history kept.
    assert_eq!(promote(&srv, DEMO11, "staging").status, 200);
    let sha = get(&srv.api(&format!("/packages/{DEMO11}"))).json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert!(srv.ctx.store.exists(&sha).expect("store"));
    let url = get(&srv.api(&format!("/packages/{DEMO11}"))).json()["downloads"]["qa"]
        .as_str()
        .expect("url")
        .to_string();
    assert_eq!(get(&url).status, 200);
    let r = send(
        "DELETE",
        &srv.api(&format!(
            "/packages/{DEMO11}?reason=failed+integration+tests"
        )),
        &[],
        b"",
    );
    assert_eq!(r.status, 401);
    let r = json_as(
        "DELETE",
        &srv.api(&format!(
            "/packages/{DEMO11}?reason=failed+integration+tests"
        )),
        Some(ADMIN_TOKEN),
        serde_json::json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["discarded"]["reason"], "failed integration tests");
    assert_eq!(r.json()["channels"], serde_json::json!([]));
    assert_eq!(in_channel(&srv, "qa"), names(&[DEMO20]));
    assert!(in_channel(&srv, "staging").is_empty());
    assert!(
        !srv.ctx.store.exists(&sha).expect("store"),
        "file still stored"
    );
    assert_eq!(get(&url).status, 404);
    let kinds: Vec<String> = history(&srv, DEMO11)
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_string())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "uploaded",
            "added",
            "promoted",
            "discarded",
            "removed",
            "removed"
        ]
    );
    // The same bytes again: refused, never resurrected.
    let r = upload(&srv, &fixture(DEMO11), Some("qa"));
    assert_eq!(r.status, 410, "{}", r.text());
    assert_eq!(r.error_code(), "package_discarded");
    assert_eq!(promote(&srv, DEMO11, "staging").status, 410);
}

/// Two servers sharing one database and store: each due slot runs once.
fn one_runner_per_slot(b: Backend) {
    let clock = hour_clock();
    let Some(srv) = start(b, &clock, "[staging]\nevery = \"1h\"\n") else {
        return;
    };
    let other = forklift::app::init_with_clock(srv.config.clone(), clock.clone()).expect("second");
    assert_eq!(upload(&srv, &fixture(DEMO10), Some("qa")).status, 201);
    assert_eq!(upload(&srv, &fixture(LIB), Some("qa")).status, 201);
    clock.advance(HOUR);
    let (a, bb) = std::thread::scope(|s| {
        let a = s.spawn(|| scheduler::run_due(&srv.ctx).expect("a"));
        let bb = s.spawn(|| scheduler::run_due(&other).expect("b"));
        (a.join().expect("a"), bb.join().expect("b"))
    });
    assert_eq!(a.len() + bb.len(), 1, "exactly one runner: {a:?} {bb:?}");
    let revs = get(&srv.api("/channels/staging/revisions")).json();
    // Revision 1 is the empty initial one; the slot added exactly one more.
    assert_eq!(revs.as_array().expect("revs").len(), 2, "{revs}");
    assert_eq!(in_channel(&srv, "staging"), names(&[DEMO10, LIB]));
}

both_backends!(
    a_day_in_the_life,
    morning_deploys_and_qa_freeze,
    hurdles_and_approvals,
    retention_and_discard,
    one_runner_per_slot,
);
