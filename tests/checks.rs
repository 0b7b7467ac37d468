//! Promotion on evidence: CI reports checks against a build in a channel, the
//! next channel's policy requires them, a failed one holds the build, and the
//! build's history keeps every report and note with its link.

mod common;

use std::sync::Arc;

use common::*;
use forklift::policy::PolicySpec;
use forklift::service::promotion::scheduler;
use forklift::service::ManualClock;

const MIN: i64 = 60;
const HOUR: i64 = 3600;
const POLICIES: &str = r#"
[staging]
every = "10m"
soak = "30m"
[prod]
every = "1h"
require_checks = ["integration"]
on_failed_check = "hold"
"#;

fn start(b: Backend, clock: &Arc<ManualClock>) -> Option<TestServer> {
    let specs: std::collections::BTreeMap<String, PolicySpec> =
        toml::from_str(POLICIES).expect("policies toml");
    TestServer::start_full(b, clock.clone(), |l| {
        l.policies = Some(specs);
        l.scheduler_tick = Some("0s".into());
    })
}

fn channels_of(srv: &TestServer, id: &str) -> Vec<String> {
    let d = get(&srv.api(&format!("/packages/{id}"))).json();
    d["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .map(|c| c.as_str().expect("name").to_string())
        .collect()
}

fn report(srv: &TestServer, token: &str, id: &str, body: serde_json::Value) -> Resp {
    json_as(
        "POST",
        &srv.api(&format!("/packages/{id}/checks")),
        Some(token),
        body,
    )
}

fn check(name: &str, channel: &str, status: &str, url: &str) -> serde_json::Value {
    serde_json::json!({"name": name, "channel": channel, "status": status, "url": url})
}

/// The blockers of `id` on its way into `channel`, as the candidates list says.
fn blockers(srv: &TestServer, channel: &str, id: &str) -> Vec<serde_json::Value> {
    let c = get(&srv.api(&format!("/channels/{channel}/candidates"))).json();
    for list in ["eligible", "blocked"] {
        for p in c[list].as_array().expect("list") {
            if p["id"] == id {
                return p["blockers"].as_array().cloned().unwrap_or_default();
            }
        }
    }
    panic!("{id} is not a candidate for {channel}: {c}");
}

fn run_due(srv: &TestServer) {
    scheduler::run_due(&srv.ctx).expect("run_due");
}

fn three_levels_on_evidence(b: Backend) {
    let now = chrono::Utc::now().timestamp();
    let clock = Arc::new(ManualClock::new((now / HOUR + 1) * HOUR));
    let Some(srv) = start(b, &clock) else {
        return;
    };
    let ci = create_token(
        &srv,
        serde_json::json!({"name": "ci", "roles": ["uploader"]}),
    );

    // CI uploads A to qa; after the soak it moves to staging by itself.
    let a = upload_and_promote(&srv, &fixture("forklift-demo-1.0-1.x86_64.rpm"), &[]);
    clock.advance(31 * MIN);
    run_due(&srv);
    assert_eq!(channels_of(&srv, &a), ["qa", "staging"]);
    let waiting = blockers(&srv, "prod", &a);
    assert_eq!(waiting[0]["reason"], "missing_check", "{waiting:?}");
    assert_eq!(waiting[0]["check"], "integration");
    let board = get(&format!("{}/ui/board", srv.url)).text();
    assert!(
        board.contains("Waiting for integration before prod"),
        "{board}"
    );

    // The tests run, then fail: CI's report holds the build.
    let r = report(
        &srv,
        &ci,
        &a,
        check(
            "integration",
            "staging",
            "running",
            "https://ci.example/run/1",
        ),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(blockers(&srv, "prod", &a)[0]["status"], "running");
    let r = report(
        &srv,
        &ci,
        &a,
        check(
            "integration",
            "staging",
            "failed",
            "https://ci.example/run/1",
        ),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["held"], true, "{}", r.text());
    let detail = get(&srv.api(&format!("/packages/{a}"))).json();
    assert_eq!(detail["held"]["by"], "ci");
    assert!(
        detail["held"]["reason"]
            .as_str()
            .expect("reason")
            .contains("https://ci.example/run/1"),
        "{detail}"
    );
    assert_eq!(detail["checks"][0]["status"], "failed");
    let reasons: Vec<String> = blockers(&srv, "prod", &a)
        .iter()
        .map(|b| b["reason"].as_str().expect("reason").to_string())
        .collect();
    assert_eq!(reasons, ["held", "failed_check"]);
    clock.advance(HOUR);
    run_due(&srv);
    assert_eq!(
        channels_of(&srv, &a),
        ["qa", "staging"],
        "a failed build never reaches prod"
    );

    // B's checks pass: the next scheduled run takes it to prod.
    let bid = upload_and_promote(&srv, &fixture("forklift-demo-2.0-1.x86_64.rpm"), &[]);
    clock.advance(31 * MIN);
    run_due(&srv);
    assert_eq!(channels_of(&srv, &bid), ["qa", "staging"]);
    let r = report(
        &srv,
        &ci,
        &bid,
        check(
            "integration",
            "staging",
            "passed",
            "https://ci.example/run/2",
        ),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["held"], false);
    assert!(blockers(&srv, "prod", &bid).is_empty());
    clock.advance(HOUR);
    run_due(&srv);
    assert_eq!(channels_of(&srv, &bid), ["qa", "staging", "prod"]);
    let promoted = history(&srv, &bid)
        .into_iter()
        .find(|e| e["kind"] == "promoted" && e["channel"] == "prod")
        .expect("promoted into prod");
    assert_eq!(promoted["actor"], "policy:prod");
    assert_eq!(promoted["detail"]["checks"][0]["name"], "integration");
    assert_eq!(promoted["detail"]["checks"][0]["status"], "passed");
    assert_eq!(
        promoted["detail"]["checks"][0]["url"],
        "https://ci.example/run/2"
    );

    // A's history has every check with its link, then the hold.
    let kinds: Vec<(String, String)> = history(&srv, &a)
        .iter()
        .filter(|e| e["kind"] == "check" || e["kind"] == "held")
        .map(|e| {
            (
                e["kind"].as_str().expect("kind").to_string(),
                e["detail"]["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("check".to_string(), "running".to_string()),
            ("check".to_string(), "failed".to_string()),
            ("held".to_string(), String::new()),
        ]
    );
    // The build page shows the results and every report with its link.
    let page = get(&format!("{}/ui/builds/{a}", srv.url)).text();
    assert!(page.contains("check integration failed"), "{page}");
    assert!(
        page.contains(r#"href="https://ci.example/run/1""#),
        "{page}"
    );
    for e in history(&srv, &a).iter().filter(|e| e["kind"] == "check") {
        assert_eq!(e["detail"]["url"], "https://ci.example/run/1");
        assert_eq!(e["actor"], "ci");
        assert_eq!(e["channel"], "staging");
    }
}

fn manual_promotion_needs_the_checks_or_force(b: Backend) {
    let now = chrono::Utc::now().timestamp();
    let clock = Arc::new(ManualClock::new((now / HOUR + 1) * HOUR));
    let Some(srv) = start(b, &clock) else {
        return;
    };
    let approver = create_token(
        &srv,
        serde_json::json!({"name": "approver", "roles": ["promoter:prod"]}),
    );
    let id = upload_and_promote(
        &srv,
        &fixture("forklift-lib-1.0-1.noarch.rpm"),
        &["staging"],
    );
    let r = promote_as(&srv, &id, "prod", Some(&approver));
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.error_code(), "checks_not_passed");
    assert!(
        r.text().contains("integration was not reported"),
        "{}",
        r.text()
    );
    // An admin may force it; the event says so, and what was missing.
    let forced = json_as(
        "POST",
        &srv.api(&format!("/packages/{id}/promote")),
        Some(ADMIN_TOKEN),
        serde_json::json!({"to": "prod", "force": true}),
    );
    assert_eq!(forced.status, 200, "{}", forced.text());
    let e = history(&srv, &id)
        .into_iter()
        .find(|e| e["kind"] == "promoted" && e["channel"] == "prod")
        .expect("promoted");
    assert_eq!(e["detail"]["forced"], true);
    assert_eq!(e["detail"]["checks"][0]["status"], "missing");

    // A bulk promotion obeys the same gate.
    let other = upload_and_promote(
        &srv,
        &fixture("forklift-weak-1.0-1.noarch.rpm"),
        &["staging"],
    );
    let bulk = json_as(
        "POST",
        &srv.api("/channels/prod/promote"),
        Some(&approver),
        serde_json::json!({"packages": [other]}),
    );
    assert_eq!(bulk.status, 422, "{}", bulk.text());
    assert_eq!(bulk.error_code(), "checks_not_passed");
}

fn who_may_report_and_what(b: Backend) {
    let now = chrono::Utc::now().timestamp();
    let clock = Arc::new(ManualClock::new((now / HOUR + 1) * HOUR));
    let Some(srv) = start(b, &clock) else {
        return;
    };
    let uat = create_token(
        &srv,
        serde_json::json!({"name": "uat", "roles": ["reporter:staging"]}),
    );
    let reader = create_token(
        &srv,
        serde_json::json!({"name": "reader", "roles": ["reader"]}),
    );
    let id = upload_and_promote(
        &srv,
        &fixture("forklift-demo-1.1-1.x86_64.rpm"),
        &["staging"],
    );
    let ok = report(
        &srv,
        &uat,
        &id,
        check("uat", "staging", "passed", "https://uat.example/7"),
    );
    assert_eq!(ok.status, 201, "{}", ok.text());
    let qa = report(
        &srv,
        &uat,
        &id,
        check("uat", "qa", "passed", "https://uat.example/7"),
    );
    assert_eq!(qa.status, 403, "{}", qa.text());
    let denied = report(
        &srv,
        &reader,
        &id,
        check("uat", "staging", "passed", "https://x/1"),
    );
    assert_eq!(denied.status, 403);
    let anon = json_as(
        "POST",
        &srv.api(&format!("/packages/{id}/checks")),
        None,
        check("uat", "staging", "passed", "https://x/1"),
    );
    assert_eq!(anon.status, 401);
    let absent = report(
        &srv,
        ADMIN_TOKEN,
        &id,
        check("perf", "prod", "passed", "https://x/1"),
    );
    assert_eq!(absent.status, 409, "{}", absent.text());
    assert_eq!(absent.error_code(), "not_in_channel");
    for bad in [
        check("perf", "staging", "green", "https://x/1"),
        check("has space", "staging", "passed", "https://x/1"),
        check("perf", "staging", "passed", "javascript:alert(1)"),
        serde_json::json!({"name": "perf", "channel": "staging", "status": "passed", "extra": 1}),
    ] {
        let r = report(&srv, ADMIN_TOKEN, &id, bad.clone());
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    // The latest report of a name replaces the previous one.
    let again = report(
        &srv,
        &uat,
        &id,
        check("uat", "staging", "failed", "https://uat.example/8"),
    );
    assert_eq!(again.status, 201);
    assert_eq!(again.json()["held"], false, "prod does not require uat");
    let d = get(&srv.api(&format!("/packages/{id}"))).json();
    let checks = d["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 1, "{d}");
    assert_eq!(checks[0]["status"], "failed");
    assert_eq!(checks[0]["url"], "https://uat.example/8");

    // Notes: the CI run that built it, the ticket.
    let note = json_as(
        "POST",
        &srv.api(&format!("/packages/{id}/notes")),
        Some(&uat),
        serde_json::json!({"text": "built by pipeline 412", "url": "https://ci.example/412"}),
    );
    assert_eq!(note.status, 201, "{}", note.text());
    let e = history(&srv, &id)
        .into_iter()
        .find(|e| e["kind"] == "note")
        .expect("note in history");
    assert_eq!(e["reason"], "built by pipeline 412");
    assert_eq!(e["detail"]["url"], "https://ci.example/412");
    assert_eq!(e["actor"], "uat");
    let empty = json_as(
        "POST",
        &srv.api(&format!("/packages/{id}/notes")),
        Some(&uat),
        serde_json::json!({"text": "  "}),
    );
    assert_eq!(empty.status, 400);
    let r = json_as(
        "POST",
        &srv.api(&format!("/packages/{id}/notes")),
        Some(&reader),
        serde_json::json!({"text": "hi"}),
    );
    assert_eq!(r.status, 403);
}

both_backends!(
    three_levels_on_evidence,
    manual_promotion_needs_the_checks_or_force,
    who_may_report_and_what,
);
