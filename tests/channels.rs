//! Channels over the HTTP API, on SQLite and on PostgreSQL: promotion by hand
//! (single and bulk), demotion with fallback, revisions and diffs, concurrent
//! writers, and uploads waiting to be published together. Promotion policies
//! (automatic promotion on a clock) are in tests/promotion.rs.

mod common;

use common::*;

fn demotion_falls_back_to_last_good_build(b: Backend) {
    let Some(srv) = TestServer::start(b) else {
        return;
    };
    for f in [DEMO10, DEMO11, LIB] {
        upload_and_promote(&srv, &fixture(f), &["staging", "prod"]);
    }
    let r = demote(&srv, DEMO11, "staging", "fails smoke tests");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    // Removed from staging and every later channel, kept in qa.
    assert_eq!(j["package"]["channels"], serde_json::json!(["qa"]));
    assert_eq!(j["fell_back_to"]["staging"]["filename"], DEMO10);
    assert_eq!(j["fell_back_to"]["prod"]["filename"], DEMO10);
    let prod = get(&srv.api("/channels/prod")).json();
    let names: Vec<&str> = prod["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| p["filename"].as_str().expect("filename"))
        .collect();
    assert_eq!(names, vec![DEMO10, LIB]);

    // Demotion needs a reason and a channel that holds the build.
    let r = demote(&srv, DEMO10, "prod", "  ");
    assert_eq!(r.status, 400);
    let r = demote(&srv, DEMO11, "prod", "again");
    assert_eq!(r.status, 422);

    // History shows who and why, per channel, with the fallback.
    let d = get(&srv.api(&format!("/packages/{DEMO11}"))).json();
    let demotions: Vec<&serde_json::Value> = d["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|e| e["kind"] == "demoted")
        .collect();
    assert_eq!(demotions.len(), 2);
    for e in &demotions {
        assert_eq!(e["reason"], "fails smoke tests");
        assert_eq!(e["detail"]["fell_back_to"], sha256_of(&fixture(DEMO10)));
    }
}

fn revisions_and_diff(b: Backend) {
    let Some(srv) = TestServer::start(b) else {
        return;
    };
    let revs = get(&srv.api("/channels/qa/revisions")).json();
    assert_eq!(
        revs.as_array().expect("revs").len(),
        1,
        "a new channel has one empty revision"
    );
    assert_eq!(upload(&srv, &fixture(DEMO10), Some("qa")).status, 201);
    assert_eq!(upload(&srv, &fixture(DEMO11), Some("qa")).status, 201);
    let r = demote(&srv, DEMO10, "qa", "superseded");
    assert_eq!(r.status, 200);
    let revs = get(&srv.api("/channels/qa/revisions")).json();
    let numbers: Vec<i64> = revs
        .as_array()
        .expect("revs")
        .iter()
        .map(|r| r["number"].as_i64().expect("n"))
        .collect();
    assert_eq!(numbers, vec![4, 3, 2, 1]);
    assert_eq!(revs[0]["package_count"], 1);
    assert_eq!(revs[1]["package_count"], 2);

    // Each revision keeps its own package set: history is never rewritten.
    let r3 = get(&srv.api("/channels/qa/revisions/3")).json();
    assert_eq!(r3["packages"].as_array().expect("pkgs").len(), 2);
    let r2 = get(&srv.api("/channels/qa/revisions/2")).json();
    assert_eq!(r2["packages"][0]["filename"], DEMO10);
    assert_eq!(get(&srv.api("/channels/qa/revisions/99")).status, 404);

    let d = get(&srv.api("/channels/qa/diff?from=2&to=4")).json();
    assert_eq!(d["added"][0]["filename"], DEMO11);
    assert_eq!(d["removed"][0]["filename"], DEMO10);
    assert_eq!(get(&srv.api("/channels/qa/diff?from=1&to=77")).status, 404);
    assert_eq!(
        get(&srv.api("/channels/qa/diff?from=x&to=2")).error_code(),
        "invalid_query"
    );

    // "What was in qa at time T": the revision in force at a time.
    let at = get(&srv.api("/channels/qa/revisions?at=2000-01-01T00:00:00Z")).json();
    assert_eq!(at.as_array().expect("list").len(), 0);
    let now = chrono::Utc::now() + chrono::Duration::seconds(30);
    let at = get(&srv.api(&format!(
        "/channels/qa/revisions?at={}",
        now.format("%Y-%m-%dT%H:%M:%SZ")
    )))
    .json();
    assert_eq!(at[0]["number"], 4);

    let chans = get(&srv.api("/channels")).json();
    let names: Vec<&str> = chans
        .as_array()
        .expect("chans")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, vec!["qa", "staging", "prod"]);
    assert_eq!(chans[1]["source"], "qa");
    assert_eq!(get(&srv.api("/channels/nope")).status, 404);
}

fn concurrent_uploads_and_promotions_stay_consistent(b: Backend) {
    let Some(srv) = TestServer::start(b) else {
        return;
    };
    let files = [
        DEMO10,
        DEMO11,
        DEMO20,
        LIB,
        "forklift-epoch-0.9-2.noarch.rpm",
        "forklift-weak-1.0-1.noarch.rpm",
    ];
    let srv_ref = &srv;
    std::thread::scope(|s| {
        for f in files {
            let srv = srv_ref;
            s.spawn(move || {
                // Two identical uploads racing each other.
                let a = upload(srv, &fixture(f), Some("qa"));
                assert!(a.status == 201 || a.status == 200, "{}", a.text());
                assert_eq!(promote(srv, f, "staging").status, 200);
            });
            s.spawn(move || {
                let a = upload(srv, &fixture(f), Some("qa"));
                assert!(a.status == 201 || a.status == 200, "{}", a.text());
            });
        }
    });
    let staging = get(&srv.api("/channels/staging")).json();
    assert_eq!(
        staging["packages"].as_array().expect("pkgs").len(),
        files.len()
    );
    assert_eq!(staging["revision"]["package_count"], files.len());
    let qa = get(&srv.api("/channels/qa")).json();
    assert_eq!(qa["packages"].as_array().expect("pkgs").len(), files.len());
    // Each package stored once; revision numbers are dense.
    assert_eq!(
        get(&srv.api("/packages"))
            .json()
            .as_array()
            .expect("list")
            .len(),
        files.len()
    );
    // Concurrent promotions may be published together (group commit): at
    // most one revision each, numbered without gaps.
    let revs = get(&srv.api("/channels/staging/revisions")).json();
    let mut numbers: Vec<i64> = revs
        .as_array()
        .expect("revs")
        .iter()
        .map(|r| r["number"].as_i64().expect("number"))
        .collect();
    numbers.sort();
    assert!(
        numbers.len() >= 2 && numbers.len() <= files.len() + 1,
        "{numbers:?}"
    );
    assert_eq!(numbers, (1..=numbers.len() as i64).collect::<Vec<_>>());
}

fn bulk_promotion_is_one_revision(b: Backend) {
    let Some(srv) = TestServer::start(b) else {
        return;
    };
    for f in [DEMO10, LIB, "forklift-epoch-0.9-2.noarch.rpm"] {
        assert_eq!(upload(&srv, &fixture(f), None).status, 201);
    }
    let all = serde_json::json!({"packages": [DEMO10, LIB, "forklift-epoch-0.9-2.noarch.rpm"]});
    // Skipping a level is refused for the whole set, and nothing changes.
    let r = post_json(&srv.api("/channels/staging/promote"), all.clone());
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(
        get(&srv.api("/channels/staging/revisions"))
            .json()
            .as_array()
            .expect("revs")
            .len(),
        1
    );
    let r = post_json(&srv.api("/channels/qa/promote"), all.clone());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["revision"], 2);
    assert_eq!(r.json()["added"].as_array().expect("added").len(), 3);
    let r = post_json(&srv.api("/channels/staging/promote"), all.clone());
    assert_eq!(r.json()["revision"], 2);
    let again = post_json(&srv.api("/channels/staging/promote"), all);
    assert_eq!(again.json()["revision"], serde_json::Value::Null);
    assert_eq!(
        again.json()["already_present"]
            .as_array()
            .expect("present")
            .len(),
        3
    );
    let staging = get(&srv.api("/channels/staging")).json();
    assert_eq!(staging["packages"].as_array().expect("pkgs").len(), 3);
    assert_eq!(
        history_kinds(&srv, LIB),
        vec!["uploaded", "added", "promoted"]
    );
    assert_eq!(
        post_json(
            &srv.api("/channels/qa/promote"),
            serde_json::json!({"packages": []})
        )
        .status,
        400
    );
    assert_eq!(
        post_json(
            &srv.api("/channels/qa/promote"),
            serde_json::json!({"packages": ["nope.rpm"]})
        )
        .status,
        404
    );
    // A bulk body naming 20,000 builds (1.4 MB) is read, not refused for size;
    // the unknown names are what it reports.
    let many: Vec<String> = (0..20_000).map(|i| format!("{i:064x}")).collect();
    let r = post_json(
        &srv.api("/channels/qa/promote"),
        serde_json::json!({ "packages": many }),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    // Past the limits: 413 with the JSON error shape.
    let huge = "x".repeat(9 * 1024 * 1024);
    let r = post_json(
        &srv.api("/channels/qa/promote"),
        serde_json::json!({ "packages": [huge] }),
    );
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.error_code(), "body_too_large");
    let r = post_json(
        &srv.api(&format!("/packages/{LIB}/promote")),
        serde_json::json!({ "to": "prod", "pad": "x".repeat(100 * 1024) }),
    );
    assert_eq!(r.status, 413, "{}", r.text());
    // `curl -d` without a JSON content type still works.
    let r = send(
        "POST",
        &srv.api(&format!("/packages/{LIB}/promote")),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Authorization", &format!("Bearer {ADMIN_TOKEN}")),
        ],
        br#"{"to":"prod"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Uploads that arrive while a channel is publishing are published together
/// in one revision, each with its own answer and its own events.
fn waiting_uploads_are_published_together(b: Backend) {
    let Some(srv) = TestServer::start(b) else {
        return;
    };
    assert_eq!(upload(&srv, &fixture(LIB), Some("qa")).status, 201);
    let revisions = || {
        get(&srv.api("/channels/qa/revisions"))
            .json()
            .as_array()
            .expect("revs")
            .len()
    };
    let before = revisions();
    let tokens: Vec<String> = (0..5)
        .map(|i| {
            create_token(
                &srv,
                serde_json::json!({"name": format!("ci-{i}"), "roles": ["uploader"]}),
            )
        })
        .collect();
    let files = [
        DEMO10,
        DEMO11,
        DEMO20,
        "forklift-epoch-0.9-2.noarch.rpm",
        "forklift-weak-1.0-1.noarch.rpm",
    ];
    // qa is busy publishing (this test holds its lock) while all five
    // arrive; whoever takes the lock next publishes them together.
    let lock = srv.ctx.locks.get("qa");
    let busy = lock.lock().expect("qa's lock");
    std::thread::scope(|s| {
        for (f, token) in files.iter().zip(&tokens) {
            let srv = &srv;
            s.spawn(move || {
                let body = std::fs::read(fixture(f)).expect("fixture");
                let r = send(
                    "PUT",
                    &srv.api(&format!("/packages/{f}?channel=qa")),
                    &[("Authorization", &format!("Bearer {token}"))],
                    &body,
                );
                assert_eq!(r.status, 201, "{}", r.text());
                assert_eq!(r.json()["channels"], serde_json::json!(["qa"]));
            });
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while srv.ctx.locks.queued("qa") < files.len() {
            assert!(
                std::time::Instant::now() < deadline,
                "the uploads never queued"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        drop(busy);
    });
    let added = revisions() - before;
    assert_eq!(
        added,
        1,
        "{added} revisions for {} waiting uploads",
        files.len()
    );
    let qa = get(&srv.api("/channels/qa")).json();
    assert_eq!(qa["packages"].as_array().expect("pkgs").len(), 6);
    // Each upload keeps its own caller in its history.
    for (i, f) in files.iter().enumerate() {
        let h = get(&srv.api(&format!("/packages/{f}"))).json()["history"].clone();
        let actors: Vec<&str> = h
            .as_array()
            .expect("history")
            .iter()
            .filter(|e| e["kind"] == "uploaded" || e["kind"] == "added")
            .map(|e| e["actor"].as_str().expect("actor"))
            .collect();
        assert_eq!(actors, vec![format!("ci-{i}"); 2], "{f}: {h}");
    }
    // The joint revision names its callers.
    let last = get(&srv.api("/channels/qa/revisions")).json();
    let newest = last
        .as_array()
        .expect("revs")
        .iter()
        .max_by_key(|r| r["number"].as_i64())
        .expect("rev")
        .clone();
    assert!(
        newest["actor"].as_str().expect("actor").contains(", "),
        "{newest}"
    );
}

both_backends!(
    demotion_falls_back_to_last_good_build,
    revisions_and_diff,
    concurrent_uploads_and_promotions_stay_consistent,
    bulk_promotion_is_one_revision,
    waiting_uploads_are_published_together,
);
