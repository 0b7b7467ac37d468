//! The server as an attacker and an unlucky operator meet it: hostile package
//! headers, private channels probed through every read path, silent clients,
//! a full disk, leftovers, and metadata that must not grow for ever.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use forklift::service::publish::gc::{self, TempFiles};
use forklift::service::ManualClock;

/// Sends raw bytes on a new connection and returns what the server answered
/// (until it closes or `wait` passes).
fn raw_exchange(srv: &TestServer, request: &[u8], wait: Duration) -> String {
    let addr = srv.url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(wait)).expect("timeout");
    s.write_all(request).expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_string()
}

/// The rpm crate reserved count × item size for a numeric entry and sliced the
/// store at unchecked offsets: one upload aborted the process (issue 12).
#[test]
fn hostile_rpm_headers_are_refused_and_the_server_survives() {
    let Some(srv) = TestServer::start(Backend::Sqlite) else {
        return;
    };
    let good = fixture_bytes(DEMO10);
    let mutate = |edits: &[(usize, u32)]| {
        let mut b = good.clone();
        for (at, v) in edits {
            b[*at..at + 4].copy_from_slice(&v.to_be_bytes());
        }
        b
    };
    let hostile = [
        ("int64-count", mutate(&[(116, 5), (124, u32::MAX)])),
        ("int32-count", mutate(&[(116, 4), (124, u32::MAX)])),
        ("offset-5000", mutate(&[(120, 5000)])),
        ("negative-offset", mutate(&[(120, 0xFFFF_FFF0)])),
        ("entries", mutate(&[(104, 0x00FF_FFFF)])),
        ("data-size", mutate(&[(108, 0x7FFF_FFFF)])),
    ];
    let blobs = srv.blob_count();
    for (what, bytes) in &hostile {
        let r = upload_bytes(&srv, DEMO10, bytes);
        assert_eq!(r.status, 422, "{what}: {}", r.text());
        assert_eq!(r.error_code(), "invalid_package", "{what}");
        assert_eq!(get(&format!("{}/healthz", srv.url)).status, 200, "{what}");
    }
    assert_eq!(srv.temp_count(), 0, "temp files left behind");
    assert_eq!(srv.blob_count(), blobs, "blobs left behind");
    assert_eq!(upload_bytes(&srv, DEMO10, &good).status, 201);
}

/// `#` and `?` made a Filename that is no URL path: apt got 404 for a
/// published build. Debian policy's version syntax is enforced at upload.
#[test]
fn debian_versions_outside_policy_are_refused() {
    let Some(srv) = TestServer::start(Backend::Sqlite) else {
        return;
    };
    for bad in ["1.0#2", "1.0?x=1", "beta1", "1.0-", "1:1.0%2F"] {
        let r = upload_bytes(&srv, "odd.deb", &build_deb("forklift-odd", bad));
        assert_eq!(r.status, 422, "{bad}: {}", r.text());
        assert_eq!(r.error_code(), "invalid_package", "{bad}");
        assert!(r.text().contains("version"), "{bad}: {}", r.text());
    }
    let r = upload_bytes(
        &srv,
        "odd.deb",
        &build_deb("forklift-odd", "1:2.0+dfsg~rc1-1ubuntu1"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let pool = r.json()["filename"].as_str().expect("filename").to_string();
    assert!(pool.contains("2.0+dfsg~rc1-1ubuntu1"), "{pool}");
    assert_eq!(srv.temp_count(), 0);
}

/// Every read path, anonymously and with a token for another channel, finds
/// nothing of a private channel: no listing, no probe, no file.
#[test]
fn private_channel_reveals_nothing_through_any_read_path() {
    let Some(srv) = TestServer::start_with(Backend::Sqlite, |l| {
        l.private_channels = Some(vec!["prod".into()]);
    }) else {
        return;
    };
    let demo_id = upload_and_promote(&srv, &fixture(DEMO10), &["staging", "prod"]);
    assert_eq!(demo_id, sha256(&fixture_bytes(DEMO10)));
    assert_eq!(upload_bytes(&srv, LIB, &fixture_bytes(LIB)).status, 201);
    let qa_reader = create_token(
        &srv,
        serde_json::json!({"name": "qa-reader", "permissions": ["read:qa"]}),
    );
    let file = format!("Packages/{demo_id}/{DEMO10}");
    let denied_paths = [
        "/api/v1/packages?channel=prod".to_string(),
        "/api/v1/packages?channel=prod&name=forklift-demo".to_string(),
        "/api/v1/channels/prod".to_string(),
        "/api/v1/channels/prod/revisions".to_string(),
        "/api/v1/channels/prod/revisions/2".to_string(),
        "/api/v1/channels/prod/diff?from=1&to=2".to_string(),
        "/api/v1/channels/prod/policy".to_string(),
        "/api/v1/channels/prod/candidates".to_string(),
        "/api/v1/channels/prod/latest?name=forklift-demo".to_string(),
        "/rpm/prod.repo".to_string(),
        "/rpm/prod/repodata/repomd.xml".to_string(),
        "/rpm/prod/latest/repodata/repomd.xml".to_string(),
        format!("/rpm/prod/{file}"),
        format!("/rpm/prod/latest/{file}"),
        "/deb/prod.sources".to_string(),
        "/deb/prod.pref".to_string(),
        "/deb/dists/prod/InRelease".to_string(),
        "/deb/dists/prod/main/binary-amd64/Packages".to_string(),
    ];
    for path in &denied_paths {
        let url = format!("{}{path}", srv.url);
        let anon = get_as(&url, None);
        assert_eq!(anon.status, 401, "anonymous {path}: {}", anon.text());
        assert_eq!(anon.error_code(), "unauthenticated", "{path}");
        let other = get_as(&url, Some(&qa_reader));
        assert_eq!(other.status, 403, "read:qa {path}: {}", other.text());
        assert!(!other.text().contains(&demo_id), "{path} leaks the build");
    }
    // The same paths for qa answer (the walk is not vacuous).
    for path in [
        "/api/v1/packages?channel=qa",
        "/api/v1/channels/qa/revisions",
    ] {
        assert_eq!(
            get_as(&format!("{}{path}", srv.url), None).status,
            200,
            "{path}"
        );
    }
    // What is visible shows no trace of prod.
    let never_prod = |what: &str, r: &Resp| {
        assert_eq!(r.status, 200, "{what}: {}", r.text());
        assert!(
            !r.text().contains("\"prod\""),
            "{what} mentions prod: {}",
            r.text()
        );
    };
    let listing = get_as(&srv.api("/packages"), None);
    never_prod("package list", &listing);
    assert!(listing.text().contains(&demo_id), "the qa build is listed");
    never_prod(
        "by name",
        &get_as(&srv.api("/packages?name=forklift-demo"), None),
    );
    never_prod("channels", &get_as(&srv.api("/channels"), None));
    let detail = get_as(&srv.api(&format!("/packages/{demo_id}")), None);
    never_prod("detail", &detail);
    assert!(!detail.text().contains("/rpm/prod/"), "{}", detail.text());
    for admin_only in ["/api/v1/events", "/api/v1/webhooks", "/api/v1/tokens"] {
        let r = get_as(&format!("{}{admin_only}", srv.url), None);
        assert_eq!(r.status, 401, "{admin_only}");
    }
}

/// A credential that is not ASCII is a wrong credential, never anonymous.
#[test]
fn non_ascii_credentials_are_refused() {
    let Some(srv) = TestServer::start(Backend::Sqlite) else {
        return;
    };
    let mut req = b"GET /api/v1/channels HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer caf".to_vec();
    req.extend_from_slice(&[0xE9, 0xFF]);
    req.extend_from_slice(b"\r\n\r\n");
    let answer = raw_exchange(&srv, &req, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("\"unauthenticated\""), "{answer}");
}

/// A client that stops sending is dropped, with its temp file.
#[test]
fn silent_uploads_time_out_and_leave_nothing() {
    let Some(srv) = TestServer::start_with(Backend::Sqlite, |l| {
        l.upload_idle_timeout = Some("1s".into());
    }) else {
        return;
    };
    let mut req = format!(
        "PUT /api/v1/packages/slow.rpm?channel=qa HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: 100000\r\n\r\n"
    )
    .into_bytes();
    req.extend_from_slice(&fixture_bytes(DEMO10)[..4000]);
    let answer = raw_exchange(&srv, &req, Duration::from_secs(20));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"upload_timeout\""), "{answer}");
    assert!(
        eventually(Duration::from_secs(5), || srv.temp_count() == 0),
        "the temp file stayed"
    );
    assert_eq!(
        upload_bytes(&srv, DEMO10, &fixture_bytes(DEMO10)).status,
        201
    );
}

/// Leftovers go while the server runs, once old enough on the server's clock.
#[test]
fn orphans_are_swept_while_serving() {
    let clock = Arc::new(ManualClock::new(forklift::service::now()));
    let Some(srv) = TestServer::start_full(Backend::Sqlite, clock.clone(), |l| {
        l.sweep_interval = Some("1s".into());
    }) else {
        return;
    };
    let demo = fixture_bytes(DEMO10);
    assert_eq!(upload_bytes(&srv, DEMO10, &demo).status, 201);
    let orphan = b"written by an upload whose commit never happened".to_vec();
    srv.ctx
        .store
        .put_bytes(&sha256(&orphan), &orphan)
        .expect("orphan");
    let stale_temp = srv.data_dir.path().join("tmp/upload-leftover");
    std::fs::write(&stale_temp, b"cut off").expect("temp");
    // Young leftovers may belong to requests in flight: kept.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(srv.ctx.store.exists(&sha256(&orphan)).expect("exists"));
    assert!(stale_temp.exists());
    clock.advance(2 * 3600);
    assert!(
        eventually(Duration::from_secs(10), || {
            !srv.ctx.store.exists(&sha256(&orphan)).unwrap_or(true) && !stale_temp.exists()
        }),
        "the periodic sweep did not remove the leftovers"
    );
    // What is referenced stays, and is served.
    let r = get_as(
        &format!("{}/rpm/qa/Packages/{}/{DEMO10}", srv.url, sha256(&demo)),
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, demo);
}

/// How many builds revision `number` of `channel` held.
fn held_at(srv: &TestServer, channel: &str, number: i64) -> usize {
    let r = get_as(
        &srv.api(&format!("/channels/{channel}/revisions/{number}")),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["packages"].as_array().map_or(0, Vec::len)
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Superseded revisions' metadata is removed past the grace period, except the
/// newest `keep_revisions`; history stays. Prints the disk per revision.
#[test]
fn superseded_metadata_is_pruned_and_history_kept() {
    let clock = Arc::new(ManualClock::new(forklift::service::now()));
    let Some(srv) = TestServer::start_full(Backend::Sqlite, clock.clone(), |l| {
        l.keep_revisions = Some(3);
        l.grace_period = Some("10m".into());
        l.sweep_interval = Some("0s".into());
    }) else {
        return;
    };
    let demo = fixture_bytes(DEMO10);
    let id = sha256(&demo);
    assert_eq!(upload_bytes(&srv, DEMO10, &demo).status, 201);
    assert_eq!(upload_bytes(&srv, LIB, &fixture_bytes(LIB)).status, 201);
    let repomd = |srv: &TestServer| {
        get_as(
            &format!("{}/rpm/staging/repodata/repomd.xml", srv.url),
            None,
        )
    };
    // 30 more revisions of staging: the build goes in and out, a second
    // apart. repomd.xml differs in every revision (its <revision> is the
    // revision's time), so each has own blobs.
    let mut old_repomd = Vec::new();
    for i in 0..15 {
        clock.advance(1);
        assert_eq!(promote(&srv, &id, "staging").status, 200, "round {i}");
        // Revision 4: revision 2 shares its bytes with qa's revision 2.
        if i == 1 {
            old_repomd = repomd(&srv).body;
        }
        clock.advance(1);
        assert_eq!(
            demote(&srv, &id, "staging", "churn").status,
            200,
            "round {i}"
        );
    }
    assert!(srv.ctx.store.exists(&sha256(&old_repomd)).expect("exists"));
    let blobs = srv.data_dir.path().join("blobs");
    let before = (srv.blob_count(), dir_bytes(&blobs));
    assert_eq!(promote(&srv, &id, "staging").status, 200);
    // Within the grace period nothing goes.
    assert_eq!(
        gc::sweep(&srv.ctx, TempFiles::Stale)
            .expect("sweep")
            .pruned_files,
        0
    );
    clock.advance(2 * 3600);
    let swept = gc::sweep(&srv.ctx, TempFiles::Stale).expect("sweep");
    assert!(
        swept.pruned_files > 0 && swept.orphan_blobs > 0,
        "{swept:?}"
    );
    let after = (srv.blob_count(), dir_bytes(&blobs));
    eprintln!(
        "metadata retention: {} blobs / {} bytes after 32 revisions of staging, \
         {} / {} after pruning to the newest 3",
        before.0, before.1, after.0, after.1
    );
    assert!(after.0 < before.0 && after.1 < before.1);
    assert!(
        !srv.ctx.store.exists(&sha256(&old_repomd)).expect("exists"),
        "revision 4's repomd.xml is still stored"
    );
    // A second sweep finds nothing more: what is left is what is needed.
    assert!(gc::sweep(&srv.ctx, TempFiles::Stale)
        .expect("sweep")
        .is_empty());
    // The head is served whole, for yum and apt; history stays.
    let head = repomd(&srv);
    assert_eq!(head.status, 200);
    let text = head.text();
    let mut rest = text.as_str();
    let mut served = 0;
    while let Some(p) = rest.find("href=\"repodata/") {
        let start = p + "href=\"".len();
        let end = start + rest[start..].find('"').expect("end");
        let href = &rest[start..end];
        let r = get_as(&format!("{}/rpm/staging/{href}", srv.url), None);
        assert_eq!(r.status, 200, "{href}");
        served += 1;
        rest = &rest[end..];
    }
    assert!(served >= 3, "{text}");
    let release = get_as(&format!("{}/deb/dists/staging/InRelease", srv.url), None);
    assert_eq!(release.status, 200);
    let revisions = get_as(&srv.api("/channels/staging/revisions"), None).json();
    assert_eq!(revisions.as_array().map(Vec::len), Some(32));
    assert_eq!(held_at(&srv, "staging", 2), 1, "what revision 2 held");
    assert_eq!(held_at(&srv, "staging", 3), 0);
    let file = format!("{}/rpm/qa/Packages/{id}/{DEMO10}", srv.url);
    assert_eq!(
        get_as(&file, None).body,
        demo,
        "package files are never pruned"
    );
}

/// A tmpfs that the test fills: uploads get 507 with a message that says so,
/// nothing is left behind, reads go on, and space freed means uploads resume.
#[test]
fn a_full_disk_is_reported_and_loses_nothing() {
    if !require_root("disk-full") || !require_tool("mount") {
        return;
    }
    let mnt = tempfile::tempdir().expect("mount point");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=12m", "tmpfs"])
        .arg(mnt.path())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        assert!(!in_ci(), "mounting a tmpfs failed in CI");
        eprintln!("SKIPPED: cannot mount a tmpfs here");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(mnt.path().to_path_buf());
    let data = mnt.path().join("data");
    let Some(mut srv) = TestServer::start_with(Backend::Sqlite, |l| {
        l.data_dir = Some(data.clone());
    }) else {
        return;
    };
    let demo = fixture_bytes(DEMO10);
    assert_eq!(upload_bytes(&srv, DEMO10, &demo).status, 201);
    // Fill every byte that is left.
    let filler = mnt.path().join("filler");
    {
        let mut f = std::fs::File::create(&filler).expect("filler");
        let block = vec![0xA5u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let mut rest = [0u8; 512];
        while f.write_all(&rest).is_ok() {
            rest[0] ^= 1;
        }
        while f.write_all(&[1]).is_ok() {}
        let _ = f.sync_all();
    }
    let lib = fixture_bytes(LIB);
    let r = upload_bytes(&srv, LIB, &lib);
    assert_eq!(r.status, 507, "{}", r.text());
    assert_eq!(r.error_code(), "insufficient_storage");
    assert!(r.json()["message"].as_str().unwrap_or("").contains("full"));
    let temp_left = std::fs::read_dir(data.join("tmp")).map_or(0, |d| d.count());
    assert_eq!(temp_left, 0, "temp files left on the full disk");
    // Reads keep working, and what was acknowledged is there.
    let listed = get_as(&srv.api("/packages?channel=qa"), None);
    assert_eq!(listed.status, 200);
    assert!(listed.text().contains(&sha256(&demo)));
    let file = get_as(
        &format!("{}/rpm/qa/Packages/{}/{DEMO10}", srv.url, sha256(&demo)),
        None,
    );
    assert_eq!(file.body, demo);
    assert_eq!(
        get_as(&format!("{}/rpm/qa/repodata/repomd.xml", srv.url), None).status,
        200
    );
    std::fs::remove_file(&filler).expect("free space");
    let r = upload_bytes(&srv, LIB, &lib);
    assert_eq!(r.status, 201, "{}", r.text());
    srv.stop();
}

/// A panic in a request's blocking work is answered as a 500
/// `internal_error` without its text, and releases its slot: more calls
/// than there are slots still run afterwards.
#[test]
fn a_panic_in_blocking_work_is_a_500_and_frees_its_slot() {
    let Some(srv) = TestServer::start(Backend::Sqlite) else {
        return;
    };
    let ctx = actix_web::web::Data::new(srv.ctx.clone());
    let slots = srv.ctx.blocking_slots.available_permits();
    assert!(slots > 0, "no blocking slots");
    let sys = actix_web::rt::System::new();
    let failed = sys
        .block_on(forklift::http::blocking(&ctx, |_| -> Result<(), _> {
            panic!("boom in a service")
        }))
        .expect_err("a panic is an error");
    assert_eq!(failed.status.as_u16(), 500);
    assert_eq!(failed.code, "internal_error");
    assert!(!failed.message.contains("boom"), "{}", failed.message);
    assert_eq!(srv.ctx.blocking_slots.available_permits(), slots);
    for i in 0..slots + 2 {
        let got = sys
            .block_on(forklift::http::blocking(&ctx, move |_| Ok(i)))
            .expect("a call after the panic");
        assert_eq!(got, i);
    }
    assert_eq!(get(&format!("{}/healthz", srv.url)).status, 200);
}
