//! Several publications of a channel within one second: real apt and dnf see
//! each of them. Revisions may share a second (so a CI pushing builds one by
//! one is not held to one revision a second); then Last-Modified no longer
//! answers conditional requests, and apt's If-Modified-Since must not hide
//! the newer revision.

mod common;

use std::sync::Arc;

use common::apt::*;
use common::dnf::*;
use common::*;
use forklift::service::ManualClock;

/// A server whose clock never moves: every revision is dated the same second.
fn frozen_server() -> Option<TestServer> {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now().timestamp()));
    TestServer::start_full(Backend::Sqlite, clock, |_| {})
}

/// The creation times of a channel's revisions, newest first.
fn revision_times(srv: &TestServer, channel: &str) -> Vec<String> {
    get(&srv.api(&format!("/channels/{channel}/revisions")))
        .json()
        .as_array()
        .expect("revisions")
        .iter()
        .map(|r| r["created_at"].as_str().expect("time").to_string())
        .collect()
}

#[test]
fn apt_sees_every_revision_of_one_second() {
    if !apt_available() {
        return;
    }
    let Some(srv) = frozen_server() else {
        return;
    };
    let key = get(&format!("{}/keys/forklift.asc", srv.url));
    let apt = Apt::new();
    let key_path = apt.path("forklift.asc");
    std::fs::write(&key_path, &key.body).expect("key");
    apt.set_sources(&format!(
        "deb [signed-by={}] {}/deb qa main",
        key_path.display(),
        srv.url
    ));
    for (file, version) in [
        ("forklift-hello_1.0-1_amd64.deb", "1.0-1"),
        ("forklift-hello_1.1-1_amd64.deb", "1.1-1"),
        ("forklift-hello_2.0-1_amd64.deb", "2.0-1"),
    ] {
        assert_eq!(upload(&srv, &deb_fixture(file), Some("qa")).status, 201);
        let (ok, out) = apt.update();
        assert!(ok, "apt-get update failed:\n{out}");
        assert_eq!(apt.candidate("forklift-hello"), version, "{out}");
    }
    let times = revision_times(&srv, "qa");
    assert!(times.len() >= 4, "{times:?}");
    assert!(
        times.windows(2).all(|w| w[0] == w[1]),
        "every revision in one second: {times:?}"
    );
}

#[test]
fn dnf_sees_every_revision_of_one_second() {
    if !dnf_available() {
        return;
    }
    let Some(srv) = frozen_server() else {
        return;
    };
    let dnf = Dnf::new();
    dnf.add_repo_file(
        "forklift-qa",
        &get(&format!("{}/rpm/qa.repo", srv.url)).text(),
    );
    // 1.1 and 2.0 need forklift-lib.
    for f in [LIB, DEMO10] {
        assert_eq!(upload(&srv, &fixture(f), Some("qa")).status, 201);
    }
    dnf.run(&["install", "forklift-demo"]);
    assert_eq!(dnf.installed("forklift-demo"), "forklift-demo-1.0-1.x86_64");
    for (file, nevra) in [
        (DEMO11, "forklift-demo-1.1-1.x86_64"),
        (DEMO20, "forklift-demo-2.0-1.x86_64"),
    ] {
        assert_eq!(upload(&srv, &fixture(file), Some("qa")).status, 201);
        dnf.run(&["upgrade", "forklift-demo"]);
        assert_eq!(dnf.installed("forklift-demo"), nevra);
    }
    let times = revision_times(&srv, "qa");
    assert!(times.windows(2).all(|w| w[0] == w[1]), "{times:?}");
}
