//! Kill -9 the real binary in the middle of work, restart it on the same data,
//! and check that nothing half-done is visible or left behind.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

fn spawn(data: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_forklift"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data)
        .env("FORKLIFT_LOG", "warn")
        .env("FORKLIFT_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn forklift")
}

fn files_in(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn crash_mid_upload_leaves_a_consistent_store() {
    let data = tempfile::tempdir().expect("data dir");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = spawn(data.path(), port);
    wait_healthy(&url);
    for f in [
        "forklift-demo-1.0-1.x86_64.rpm",
        "forklift-lib-1.0-1.noarch.rpm",
    ] {
        let bytes = std::fs::read(fixture(f)).expect("fixture");
        let r = ureq::put(&format!("{url}/api/v1/packages/{f}?channel=qa"))
            .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
            .send_bytes(&bytes);
        assert_eq!(r.expect("upload").status(), 201);
    }
    let before = ureq::get(&format!("{url}/rpm/qa/repodata/repomd.xml"))
        .call()
        .expect("repomd")
        .into_string()
        .expect("text");

    // Start an upload that announces 50 MB, send part of it, then kill the server.
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        s,
        "PUT /api/v1/packages/big-1-1.x86_64.rpm?channel=qa HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: 50000000\r\n\r\n"
    )
    .expect("headers");
    let mut sent = 0;
    let chunk = vec![0u8; 1 << 20];
    while sent < 8 {
        s.write_all(&chunk).expect("body");
        sent += 1;
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        files_in(&data.path().join("tmp")) > 0,
        "the upload should be spooling to a temp file"
    );
    server.kill().expect("kill -9");
    server.wait().expect("reaped");
    drop(s);

    let mut server = spawn(data.path(), port);
    wait_healthy(&url);
    assert_eq!(
        files_in(&data.path().join("tmp")),
        0,
        "temp upload left behind after restart"
    );
    let after = ureq::get(&format!("{url}/rpm/qa/repodata/repomd.xml"))
        .call()
        .expect("repomd")
        .into_string()
        .expect("text");
    assert_eq!(
        before, after,
        "the interrupted upload must not change the channel"
    );
    // Every file the published index names is servable, and every package too.
    for href in after.split("<location href=\"").skip(1) {
        let href = href.split('"').next().expect("href");
        let r = ureq::get(&format!("{url}/rpm/qa/{href}"))
            .call()
            .expect("data file");
        assert_eq!(r.status(), 200);
    }
    let list: serde_json::Value = ureq::get(&format!("{url}/api/v1/packages"))
        .call()
        .expect("list")
        .into_json()
        .expect("json");
    assert_eq!(list.as_array().expect("array").len(), 2);
    for p in list.as_array().expect("array") {
        let r = ureq::get(&format!(
            "{url}/rpm/qa/Packages/{}/{}",
            p["id"].as_str().expect("id"),
            p["filename"].as_str().expect("name")
        ))
        .call()
        .expect("package");
        assert_eq!(r.status(), 200);
    }
    server.kill().expect("kill");
    let _ = server.wait();
}
