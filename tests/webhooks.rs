//! Package-material webhooks against a real HTTP receiver on loopback, and the
//! views for pollers (latest-only yum view, latest-build API with ETag).

mod common;

use std::time::{Duration, Instant};

use common::receiver::{Received, Receiver};
use common::*;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const SECRET: &str = "a-webhook-secret-of-some-length";

fn start(b: Backend) -> Option<TestServer> {
    TestServer::start_with(b, |l| {
        l.webhook_allow_internal = Some(true);
        l.webhook_tick = Some("100ms".into());
        l.webhook_retry_base = Some("200ms".into());
    })
}

fn subscribe(srv: &TestServer, name: &str, url: &str, filters: serde_json::Value) -> i64 {
    let mut body = serde_json::json!({"name": name, "url": url, "secret": SECRET});
    if let (Some(b), Some(f)) = (body.as_object_mut(), filters.as_object()) {
        b.extend(f.clone());
    }
    let r = post_json(&srv.api("/webhooks"), body);
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_i64().expect("id")
}

fn verify(r: &Received) {
    let ts = r.header("X-Forklift-Timestamp");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("hmac");
    mac.update(format!("{ts}.").as_bytes());
    mac.update(&r.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(r.header("X-Forklift-Signature"), expected, "signature");
    let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().expect("timestamp");
    assert!((0..60).contains(&age), "timestamp {ts} is {age}s old");
    assert_eq!(
        r.header("X-Forklift-Event"),
        r.json()["type"].as_str().expect("type")
    );
    assert_eq!(
        r.header("X-Forklift-Delivery"),
        r.json()["id"].as_str().expect("id")
    );
}

fn events_arrive_signed_ordered_and_filtered(b: Backend) {
    let Some(srv) = start(b) else { return };
    let all = Receiver::start(vec![]);
    let prod = Receiver::start(vec![]);
    subscribe(&srv, "everything", &all.url, serde_json::json!({}));
    // A name is taken once, like a token's.
    let r = post_json(
        &srv.api("/webhooks"),
        serde_json::json!({"name": "everything", "url": all.url, "secret": SECRET}),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.error_code(), "webhook_exists");
    subscribe(
        &srv,
        "prod-deploys",
        &prod.url,
        serde_json::json!({"channels": ["prod"], "events": ["package.promoted", "package.demoted"], "packages": ["forklift-d*"]}),
    );
    for f in [DEMO10, LIB, DEMO11] {
        upload_and_promote(&srv, &fixture(f), &["staging", "prod"]);
    }
    let r = demote(&srv, DEMO11, "prod", "crashes on start");
    assert_eq!(r.status, 200);

    // The filtered subscription: demo's promotions into prod and the demotion, nothing else.
    let got = prod.wait_for("3 prod events", |g| g.len() >= 3);
    std::thread::sleep(Duration::from_millis(500));
    let got_after = prod.got();
    assert_eq!(got_after.len(), 3, "{got:#?}");
    let types: Vec<String> = got_after
        .iter()
        .map(|r| r.json()["type"].as_str().expect("type").to_string())
        .collect();
    assert_eq!(
        types,
        vec!["package.promoted", "package.promoted", "package.demoted"]
    );
    for r in &got_after {
        verify(r);
        assert_eq!(r.json()["channel"], "prod");
        assert_eq!(r.json()["package"]["name"], "forklift-demo");
    }
    let first = got_after[0].json();
    assert_eq!(first["package"]["version"], "1.0");
    assert_eq!(first["actor"], "admin");
    let after = first["revision"]["after"].as_i64().expect("after");
    assert_eq!(first["revision"]["before"].as_i64(), Some(after - 1));
    let url = first["package"]["download_url"].as_str().expect("url");
    assert_eq!(
        get(url).body,
        std::fs::read(fixture(DEMO10)).expect("fixture")
    );
    let demoted = got_after[2].json();
    assert_eq!(demoted["reason"], "crashes on start");
    assert_eq!(demoted["package"]["version"], "1.1");
    assert_eq!(demoted["fell_back_to"]["version"], "1.0");

    // The unfiltered one: every change, in order, each id once.
    let got = all.wait_for("the demotion", |g| {
        g.iter().any(|r| r.json()["type"] == "package.demoted")
    });
    let ids: Vec<i64> = got.iter().map(Received::delivery).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "out of order: {ids:?}");
    for r in &got {
        verify(r);
    }
    let types: Vec<String> = got
        .iter()
        .map(|r| r.json()["type"].as_str().expect("type").to_string())
        .collect();
    assert_eq!(types[0], "package.uploaded");
    assert!(types.contains(&"channel.published".to_string()));
    // Per upload: uploaded, promoted into qa, published; per promotion: promoted, published.
    assert_eq!(types.iter().filter(|t| *t == "package.uploaded").count(), 3);
    assert_eq!(types.iter().filter(|t| *t == "package.promoted").count(), 9);
}

fn failing_receiver_gets_the_event_once_after_three_attempts(b: Backend) {
    let Some(srv) = start(b) else { return };
    let rx = Receiver::start(vec![500, 503]);
    let id = subscribe(
        &srv,
        "flaky",
        &rx.url,
        serde_json::json!({"events": ["package.uploaded"], "format": "cloudevents"}),
    );
    assert_eq!(upload(&srv, &fixture(LIB), None).status, 201);
    rx.wait_for("three attempts", |g| g.len() >= 3);
    std::thread::sleep(Duration::from_millis(1500));
    let got = rx.got();
    assert_eq!(got.len(), 3, "{got:#?}");
    let ids: Vec<i64> = got.iter().map(Received::delivery).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    // CloudEvents structured mode, still signed over the raw body.
    let ce = got[2].json();
    assert_eq!(ce["specversion"], "1.0");
    assert_eq!(ce["type"], "io.forklift.package.uploaded");
    assert_eq!(ce["data"]["package"]["name"], "forklift-lib");
    assert_eq!(
        got[2].header("Content-Type"),
        "application/cloudevents+json"
    );
    let ts = got[2].header("X-Forklift-Timestamp");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("hmac");
    mac.update(format!("{ts}.").as_bytes());
    mac.update(&got[2].body);
    assert_eq!(
        got[2].header("X-Forklift-Signature"),
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
    // Every attempt is on record.
    let attempts = get(&srv.api(&format!("/webhooks/{id}/attempts"))).json();
    let codes: Vec<i64> = attempts
        .as_array()
        .expect("attempts")
        .iter()
        .rev()
        .map(|a| a["status_code"].as_i64().expect("code"))
        .collect();
    assert_eq!(codes, vec![500, 503, 200]);
    let hook = get(&srv.api(&format!("/webhooks/{id}"))).json();
    assert_eq!(hook["pending"], 0, "{hook}");
    assert_eq!(hook["consecutive_failures"], 0);
    // Manual redelivery sends it again, recorded as manual.
    let r = post_json(
        &srv.api(&format!("/webhooks/{id}/redeliver")),
        serde_json::json!({"event_id": ids[0]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["success"], true);
    assert_eq!(rx.got().len(), 4);
    assert_eq!(rx.got()[3].delivery(), ids[0]);
    // Every admin action on the subscription is in the audit log, by actor.
    let ev = get(&srv.api("/events?kind=webhook_redelivered")).json();
    assert_eq!(ev[0]["actor"], "admin", "{ev}");
    assert_eq!(ev[0]["detail"]["event"], ids[0]);
    let r = send(
        "DELETE",
        &srv.api(&format!("/webhooks/{id}")),
        &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        b"",
    );
    assert!(r.status == 200 || r.status == 204, "{}", r.text());
    for kind in ["webhook_created", "webhook_deleted"] {
        let ev = get(&srv.api(&format!("/events?kind={kind}"))).json();
        assert_eq!(ev[0]["actor"], "admin", "{kind}: {ev}");
        assert!(ev[0]["detail"]["url"].is_string(), "{kind}: {ev}");
        assert!(!ev.to_string().contains(SECRET), "{kind} leaks the secret");
    }
}

fn pending_events_are_delivered_after_a_restart(b: Backend) {
    // The worker is off: events pile up in the outbox.
    let Some(mut srv) = TestServer::start_with(b, |l| {
        l.webhook_allow_internal = Some(true);
        l.webhook_tick = Some("0s".into());
    }) else {
        return;
    };
    let rx = Receiver::start(vec![]);
    subscribe(
        &srv,
        "ci",
        &rx.url,
        serde_json::json!({"events": ["package.uploaded", "package.promoted"]}),
    );
    for f in [DEMO10, LIB] {
        assert_eq!(upload(&srv, &fixture(f), Some("qa")).status, 201);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(rx.got().is_empty());
    // Restart with the worker on: everything pending arrives, once, in order.
    srv.restart(|c| c.webhook_tick = Duration::from_millis(100));
    let got = rx.wait_for("four events", |g| g.len() >= 4);
    std::thread::sleep(Duration::from_millis(500));
    let got_after = rx.got();
    assert_eq!(got_after.len(), 4, "{got:#?}");
    let ids: Vec<i64> = got_after.iter().map(Received::delivery).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let names: Vec<String> = got_after
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.json()["type"].as_str().unwrap_or(""),
                r.json()["package"]["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            "package.uploaded forklift-demo",
            "package.promoted forklift-demo",
            "package.uploaded forklift-lib",
            "package.promoted forklift-lib"
        ]
    );
}

fn a_dead_receiver_disables_the_subscription(b: Backend) {
    let Some(srv) = TestServer::start_with(b, |l| {
        l.webhook_allow_internal = Some(true);
        l.webhook_tick = Some("50ms".into());
        l.webhook_retry_base = Some("50ms".into());
        l.webhook_max_failures = Some(3);
    }) else {
        return;
    };
    let rx = Receiver::start(vec![500; 100]);
    let id = subscribe(&srv, "dead", &rx.url, serde_json::json!({}));
    assert_eq!(upload(&srv, &fixture(LIB), None).status, 201);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let hook = get(&srv.api(&format!("/webhooks/{id}"))).json();
        if hook["active"] == false {
            assert!(hook["disabled_reason"]
                .as_str()
                .expect("reason")
                .contains("3 consecutive"));
            break;
        }
        assert!(Instant::now() < deadline, "never disabled: {hook}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(rx.got().len(), 3);
    let ev = get(&srv.api("/events?kind=webhook_disabled")).json();
    assert_eq!(ev[0]["detail"]["webhook"], "dead");
    // Re-enabled, it resumes where it stopped (the receiver now answers 200
    // after its scripted failures are used up).
    let r = send(
        "PATCH",
        &srv.api(&format!("/webhooks/{id}")),
        &[
            ("Authorization", &format!("Bearer {ADMIN_TOKEN}")),
            ("Content-Type", "application/json"),
        ],
        br#"{"active": true}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["active"], true);
    assert_eq!(r.json()["consecutive_failures"], 0);
    let ev = get(&srv.api("/events?kind=webhook_updated")).json();
    assert_eq!(ev[0]["actor"], "admin", "{ev}");
    assert_eq!(ev[0]["detail"]["webhook"], "dead");
}

fn latest_views_for_pollers(b: Backend) {
    let Some(srv) = TestServer::start(b) else {
        return;
    };
    // Internal targets are refused by default.
    let r = post_json(
        &srv.api("/webhooks"),
        serde_json::json!({"name": "x", "url": "http://127.0.0.1:9/", "secret": SECRET}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("loopback"), "{}", r.text());

    for f in [LIB, DEMO10, DEMO11, DEMO20] {
        assert_eq!(upload(&srv, &fixture(f), Some("qa")).status, 201);
    }
    // The latest-only yum view: one line per name for dnf, while the channel
    // itself keeps three builds of forklift-demo for rollback.
    if common::dnf::dnf_available() {
        let repoquery = |path: &str| -> Vec<String> {
            let cache = tempfile::tempdir().expect("cache");
            let empty = tempfile::tempdir().expect("reposdir");
            let out = run(std::process::Command::new("dnf")
                .args(["-q", "--noplugins", "--releasever=12", "repoquery"])
                .arg(format!("--setopt=cachedir={}", cache.path().display()))
                .arg(format!("--setopt=reposdir={}", empty.path().display()))
                .arg(format!("--repofrompath=r,{}{path}", srv.url))
                .args([
                    "--repo=r",
                    "--qf",
                    "%{name}-%{version}-%{release}",
                    "forklift-demo",
                ]));
            let mut v: Vec<String> = out
                .lines()
                .map(str::to_string)
                .filter(|l| !l.is_empty())
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            repoquery("/rpm/qa/"),
            vec![
                "forklift-demo-1.0-1",
                "forklift-demo-1.1-1",
                "forklift-demo-2.0-1"
            ]
        );
        assert_eq!(repoquery("/rpm/qa/latest/"), vec!["forklift-demo-2.0-1"]);
        // The view's packages download like the channel's.
        let primary = get(&format!("{}/rpm/qa/latest/repodata/repomd.xml", srv.url));
        assert_eq!(primary.status, 200);
        let sig = get(&format!(
            "{}/rpm/qa/latest/repodata/repomd.xml.asc",
            srv.url
        ));
        assert_eq!(sig.status, 200);
    }

    let latest = |etag: Option<&str>| {
        let mut h = vec![];
        if let Some(e) = etag {
            h.push(("If-None-Match", e));
        }
        get_with(&srv.api("/channels/qa/latest?name=forklift-demo"), &h)
    };
    let r = latest(None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["version"], "2.0");
    assert!(r.json()["download_url"]
        .as_str()
        .expect("url")
        .ends_with(DEMO20));
    let etag = r.header("etag").expect("etag");
    assert_eq!(latest(Some(&etag)).status, 304);
    assert_eq!(demote(&srv, DEMO20, "qa", "bad").status, 200);
    let r = latest(Some(&etag));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["version"], "1.1");
    assert_ne!(r.header("etag").expect("etag"), etag);
    assert_eq!(
        get(&srv.api("/channels/qa/latest?name=nothing")).status,
        404
    );
}

both_backends!(
    events_arrive_signed_ordered_and_filtered,
    failing_receiver_gets_the_event_once_after_three_attempts,
    pending_events_are_delivered_after_a_restart,
    a_dead_receiver_disables_the_subscription,
    latest_views_for_pollers,
);
