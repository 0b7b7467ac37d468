//! The first hour with Forklift: messages a person can read, a token CLI and a
//! `serve` that refuse to create what nobody asked for, and a `forklift config`
//! that prints a file `--config` reads back.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn forklift(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_forklift"))
        .args(args)
        .current_dir(cwd)
        .env_remove("FORKLIFT_CONFIG")
        .env_remove("FORKLIFT_DATA_DIR")
        .env_remove("FORKLIFT_DATABASE_URL")
        .env("FORKLIFT_LOG", "warn")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run forklift")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn message(r: &Resp) -> String {
    r.json()["message"].as_str().unwrap_or_default().to_string()
}

#[test]
fn messages_read_as_sentences() {
    let Some(srv) = TestServer::start_with(Backend::Sqlite, |l| {
        l.policies = Some(
            [(
                "staging".to_string(),
                forklift::policy::PolicySpec {
                    soak: Some("30m".into()),
                    ..Default::default()
                },
            )]
            .into(),
        );
    }) else {
        return;
    };
    let bytes = std::fs::read(fixture(DEMO10)).expect("fixture");
    let url = srv.api(&format!("/packages/{DEMO10}?channel=qa"));
    let anon = send("PUT", &url, &[], &bytes);
    assert_eq!(anon.status, 401);
    assert_eq!(
        message(&anon),
        "uploading needs a token with the upload permission"
    );
    let ci = create_token(
        &srv,
        serde_json::json!({"name": "ci", "roles": ["uploader"]}),
    );
    let events = get_as(&srv.api("/events"), Some(&ci));
    assert_eq!(events.status, 403);
    assert_eq!(
        message(&events),
        "this request needs a token with the admin permission; token \"ci\" has not got it"
    );
    let up = put_bytes(&url, &bytes);
    assert_eq!(up.status, 201);
    assert!(up.body.ends_with(b"}\n"), "JSON answers end with a newline");
    let id = up.json()["id"].as_str().expect("id").to_string();
    // A promotion without a body, or with a field of the wrong type.
    let promote_url = srv.api(&format!("/packages/{id}/promote"));
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let empty = send("POST", &promote_url, &[("Authorization", &auth)], b"");
    assert_eq!(empty.status, 400);
    assert_eq!(empty.error_code(), "invalid_json");
    assert!(
        message(&empty).starts_with("this request needs a JSON body"),
        "{}",
        message(&empty)
    );
    let wrong = send(
        "POST",
        &promote_url,
        &[("Authorization", &auth)],
        br#"{"to": 5}"#,
    );
    assert_eq!(wrong.status, 400);
    assert!(
        !message(&wrong).contains("Json deserialize") && message(&wrong).contains("invalid type"),
        "{}",
        message(&wrong)
    );
    assert!(
        empty.body.ends_with(b"}\n"),
        "errors end with a newline too"
    );
    // Times are RFC 3339 everywhere, blockers included.
    let c = get(&srv.api("/channels/staging/candidates")).json();
    let until = c["blocked"][0]["blockers"][0]["until"]
        .as_str()
        .unwrap_or_else(|| panic!("soaking until is not a string: {c}"));
    assert!(
        chrono::DateTime::parse_from_rfc3339(until).is_ok(),
        "{until}"
    );
    // Generated summaries count in words.
    let bulk = post_json(
        &srv.api("/channels/staging/promote"),
        serde_json::json!({"packages": [id], "force": true}),
    );
    assert_eq!(bulk.status, 200, "{}", bulk.text());
    let revs = get(&srv.api("/channels/staging/revisions")).json();
    let summary = revs[0]["summary"].as_str().expect("summary");
    assert!(summary.ends_with("1 build into staging"), "{summary}");
    // `/` says where to go.
    let index = get_as(&format!("{}/", srv.url), None);
    assert_eq!(index.status, 200);
    assert_eq!(
        index.json()["channels"],
        format!("{}/api/v1/channels", srv.url)
    );
}

#[test]
fn token_cli_refuses_a_database_it_was_not_told_about() {
    let dir = tempfile::tempdir().expect("dir");
    for args in [
        vec!["token", "list"],
        vec!["token", "create", "--name", "ci", "--role", "uploader"],
    ] {
        let o = forklift(&args, dir.path());
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = stderr(&o);
        assert!(err.contains("no Forklift database at"), "{err}");
        assert!(err.contains("--data-dir"), "{err}");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
    assert!(left.is_empty(), "the token CLI created {left:?}");
    let help =
        String::from_utf8_lossy(&forklift(&["token", "--help"], dir.path()).stdout).to_string();
    assert!(help.contains("--data-dir") && help.contains("--database-url"));
    for server_only in ["--listen", "--signing-key", "--base-url", "--grace-period"] {
        assert!(
            !help.contains(server_only),
            "token --help lists {server_only}"
        );
    }
}

#[test]
fn serve_checks_its_settings_before_touching_disk() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let data_arg = data.to_string_lossy().to_string();
    let o = forklift(
        &[
            "serve",
            "--listen",
            "localhost:99999",
            "--data-dir",
            &data_arg,
        ],
        dir.path(),
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("port"), "{}", stderr(&o));
    assert!(!data.exists(), "a bad port left a data directory behind");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let o = forklift(
        &["serve", "--listen", &addr, "--data-dir", &data_arg],
        dir.path(),
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!("cannot listen on {addr}")),
        "{}",
        stderr(&o)
    );
    assert!(!data.exists(), "a port in use left a data directory behind");
}

#[test]
fn config_prints_toml_that_reads_back() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("in.toml");
    std::fs::write(
        &file,
        "channels = [\"dev\", \"live\"]\ngrace_period = \"5m\"\napt_valid_for = \"7d\"\n\
         private_channels = [\"live\"]\n[policies.live]\ncron = \"15 10 * * 1-5\"\n\
         timezone = \"Europe/Madrid\"\nsoak = \"1d\"\n",
    )
    .expect("config");
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_forklift"))
            .args(args)
            .current_dir(dir.path())
            .env("FORKLIFT_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("FORKLIFT_SIGNING_KEY_PASSPHRASE", "hunter2-passphrase")
            .output()
            .expect("config");
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let first = run(&[
        "config",
        "--config",
        "in.toml",
        "--max-upload-bytes",
        "1048576",
    ]);
    assert!(
        !first.contains(ADMIN_TOKEN) && !first.contains("hunter2"),
        "{first}"
    );
    assert!(first.contains("bootstrap admin token: ***"), "{first}");
    let parsed: toml::Table = toml::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert_eq!(parsed["max_upload_bytes"].as_integer(), Some(1_048_576));
    assert_eq!(parsed["policies"]["live"]["soak"].as_str(), Some("1d"));
    std::fs::write(dir.path().join("out.toml"), &first).expect("write");
    let second = run(&["config", "--config", "out.toml"]);
    assert_eq!(
        first, second,
        "forklift config does not read back its own output"
    );
}

/// Policies are checked by the promotion rules when the server starts: an
/// invalid one stops the start with a message naming it.
#[test]
fn an_invalid_policy_stops_the_start() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("bad.toml"),
        "[policies.qa]\nevery = \"1h\"\n",
    )
    .expect("config");
    let port = format!("127.0.0.1:{}", free_port());
    let o = forklift(
        &[
            "serve",
            "--config",
            "bad.toml",
            "--listen",
            &port,
            "--data-dir",
            "d",
        ],
        dir.path(),
    );
    assert!(
        !o.status.success(),
        "an invalid policy did not stop the start"
    );
    assert!(stderr(&o).contains("qa"), "{}", stderr(&o));
}
