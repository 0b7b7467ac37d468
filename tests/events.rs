//! The event log is the webhook outbox, read in id order: concurrent writers
//! must never commit an event behind one a reader has already passed.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use diesel::prelude::*;
use forklift::db::schema::events;

fn ids_after(srv: &TestServer, cursor: i64) -> Vec<i64> {
    let mut conn = srv.ctx.conn().expect("conn");
    events::table
        .filter(events::id.gt(cursor))
        .order(events::id.asc())
        .select(events::id)
        .load(&mut *conn)
        .expect("events")
}

/// Writers of every kind (admin audit records outside any caller's
/// transaction, holds, releases, tokens) race a reader that, like a
/// subscription cursor, only ever moves forward.
fn concurrent_writers_never_let_a_cursor_skip(b: Backend) {
    let Some(srv) = TestServer::start_with(b, |l| {
        l.webhook_allow_internal = Some(true);
        l.webhook_tick = Some("0s".into());
    }) else {
        return;
    };
    assert_eq!(upload(&srv, &fixture(DEMO10), Some("qa")).status, 201);
    let r = post_json(
        &srv.api("/webhooks"),
        serde_json::json!({"name": "h", "url": "http://127.0.0.1:9/x", "secret": "s".repeat(32)}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let hook = r.json()["id"].as_i64().expect("id");
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        let ctx = srv.ctx.clone();
        std::thread::spawn(move || {
            let mut seen = BTreeSet::new();
            let mut cursor = 0i64;
            let deadline = Instant::now() + Duration::from_secs(120);
            while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                let mut conn = ctx.conn().expect("conn");
                let ids: Vec<i64> = events::table
                    .filter(events::id.gt(cursor))
                    .order(events::id.asc())
                    .select(events::id)
                    .load(&mut *conn)
                    .expect("events");
                if let Some(last) = ids.last() {
                    cursor = *last;
                }
                seen.extend(ids);
            }
            (seen, cursor)
        })
    };
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let api = srv.api("");
            std::thread::spawn(move || {
                for i in 0..40 {
                    let r = match i % 3 {
                        0 => json_as(
                            "PATCH",
                            &format!("{api}/webhooks/{hook}"),
                            Some(ADMIN_TOKEN),
                            serde_json::json!({"active": true}),
                        ),
                        1 => json_as(
                            "POST",
                            &format!("{api}/packages/{DEMO10}/{}", ["hold", "release"][w % 2]),
                            Some(ADMIN_TOKEN),
                            serde_json::json!({"reason": "race"}),
                        ),
                        _ => json_as(
                            "POST",
                            &format!("{api}/tokens"),
                            Some(ADMIN_TOKEN),
                            serde_json::json!({"name": format!("t{w}-{i}"), "roles": ["reader"]}),
                        ),
                    };
                    assert!(r.status < 300, "{}", r.text());
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    done.store(true, Ordering::SeqCst);
    let (seen, cursor) = reader.join().expect("reader");
    let all: Vec<i64> = ids_after(&srv, 0);
    let skipped: Vec<i64> = all
        .iter()
        .filter(|id| **id <= cursor && !seen.contains(id))
        .copied()
        .collect();
    assert!(all.len() >= 120, "only {} events written", all.len());
    assert!(skipped.is_empty(), "the cursor passed over {skipped:?}");
}

both_backends!(concurrent_writers_never_let_a_cursor_skip);
