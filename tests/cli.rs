//! The client subcommands end to end: the real `forklift` binary against a
//! running server, as a pipeline or a person would run it.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// `forklift ARGS` against `srv` with `token`, nothing taken from the
/// environment or a profile file of the machine running the tests.
fn cli(srv: &TestServer, token: Option<&str>, args: &[&str]) -> Output {
    command(srv, token, args).output().expect("run forklift")
}

fn command(srv: &TestServer, token: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_forklift"));
    cmd.args(args)
        .env("FORKLIFT_URL", &srv.url)
        .env(
            "XDG_CONFIG_HOME",
            srv.data_dir.path().join("no-client-config"),
        )
        .env_remove("FORKLIFT_PROFILE")
        .env_remove("FORKLIFT_TOKEN");
    if let Some(t) = token {
        cmd.env("FORKLIFT_TOKEN", t);
    }
    cmd
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

fn copy_fixture(dir: &Path, name: &str) {
    std::fs::copy(fixture(name), dir.join(name)).expect("copy fixture");
}

#[test]
fn push_reports_each_file_and_exits_by_the_worst() {
    let Some(srv) = TestServer::start(Backend::Sqlite) else {
        return;
    };
    let ci = create_token(
        &srv,
        serde_json::json!({"name": "ci", "roles": ["uploader"]}),
    );
    let dir = tempfile::tempdir().expect("dir");
    for f in [
        "forklift-demo-1.0-1.x86_64.rpm",
        "forklift-lib-1.0-1.noarch.rpm",
        "forklift-epoch-0.9-2.noarch.rpm",
    ] {
        copy_fixture(dir.path(), f);
    }
    let deb =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/debs/forklift-hello_1.0-1_amd64.deb");
    std::fs::copy(&deb, dir.path().join("forklift-hello_1.0-1_amd64.deb")).expect("copy deb");
    // An RPM cut short: its lead and part of its header, no payload.
    let whole = std::fs::read(fixture("forklift-demo-2.0-1.x86_64.rpm")).expect("fixture");
    std::fs::write(dir.path().join("broken-1.0-1.x86_64.rpm"), &whole[..600]).expect("bad");
    std::fs::write(dir.path().join("README.txt"), b"not pushed").expect("txt");
    let d = dir.path().to_str().expect("utf-8 path");

    let first = cli(
        &srv,
        Some(&ci),
        &["push", d, "--channel", "qa", "--jobs", "3"],
    );
    assert_eq!(
        code(&first),
        1,
        "one bad file: exit 1\n{}{}",
        stdout(&first),
        stderr(&first)
    );
    let out = stdout(&first);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("stored ")).count(),
        4,
        "{out}"
    );
    let bad = out
        .lines()
        .find(|l| l.contains("broken-1.0-1.x86_64.rpm"))
        .expect("the bad file is reported");
    assert!(bad.starts_with("refused "), "{bad}");
    assert!(
        bad.contains("broken-1.0-1.x86_64.rpm: invalid_package: "),
        "the server's code: {bad}"
    );
    assert!(
        !out.contains("README.txt"),
        "only .rpm and .deb are pushed from a directory"
    );
    assert!(
        stderr(&first).contains("pushed 5 files") && stderr(&first).contains("4 stored"),
        "{}",
        stderr(&first)
    );
    let qa = get(&srv.api("/channels/qa")).json();
    assert_eq!(qa["packages"].as_array().expect("packages").len(), 4);

    // Again, as a script reads it: the same bytes are already there.
    let again = cli(
        &srv,
        Some(&ci),
        &["push", d, "--channel", "qa", "--output", "json"],
    );
    assert_eq!(code(&again), 1);
    let results: serde_json::Value = serde_json::from_slice(&again.stdout).expect("JSON");
    let results = results.as_array().expect("array");
    assert_eq!(results.len(), 5);
    let outcomes: Vec<&str> = results
        .iter()
        .map(|r| r["outcome"].as_str().expect("outcome"))
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "present").count(),
        4,
        "{outcomes:?}"
    );
    let refused = results
        .iter()
        .find(|r| r["outcome"] == "refused")
        .expect("refused");
    assert_eq!(refused["status"], 422, "{refused}");
    assert_eq!(refused["error"], "invalid_package", "{refused}");
    assert!(!refused["message"].as_str().expect("message").is_empty());

    // No token, or a wrong one: exit 3, and the token is never echoed.
    let anon = cli(&srv, None, &["push", d]);
    assert_eq!(code(&anon), 3, "{}", stderr(&anon));
    let wrong = "fkl_wrong_0123456789abcdef0123456789ab";
    let denied = cli(&srv, Some(wrong), &["push", d]);
    assert_eq!(code(&denied), 3);
    assert!(!stdout(&denied).contains(wrong) && !stderr(&denied).contains(wrong));

    // Nothing there to push, or nothing listening: usage (2), unavailable (5).
    let missing = cli(&srv, Some(&ci), &["push", "/nonexistent/x.rpm"]);
    assert_eq!(code(&missing), 2, "{}", stderr(&missing));
    let lone = dir.path().join("forklift-lib-1.0-1.noarch.rpm");
    let down = Command::new(env!("CARGO_BIN_EXE_forklift"))
        .args([
            "push",
            "--retries",
            "1",
            "--url",
            &format!("http://127.0.0.1:{}", free_port()),
        ])
        .arg(&lone)
        .env("XDG_CONFIG_HOME", dir.path())
        .output()
        .expect("run");
    assert_eq!(code(&down), 5, "{}", stderr(&down));
    assert!(stderr(&down).contains("retrying"), "{}", stderr(&down));
}

#[test]
fn promote_demote_and_the_read_commands() {
    let Some(srv) = TestServer::start(Backend::Sqlite) else {
        return;
    };
    let approver = create_token(
        &srv,
        serde_json::json!({"name": "approver", "roles": ["promoter:staging", "promoter:prod"]}),
    );
    let demo = fixture("forklift-demo-1.0-1.x86_64.rpm");
    let demo = demo.to_str().expect("utf-8");
    let pushed = cli(&srv, Some(ADMIN_TOKEN), &["push", demo, "--channel", "qa"]);
    assert_eq!(code(&pushed), 0, "{}", stderr(&pushed));

    // A local file stands for its sha256; levels are not skipped.
    let skip = cli(&srv, Some(&approver), &["promote", demo, "--to", "prod"]);
    assert_eq!(code(&skip), 1, "{}", stderr(&skip));
    assert!(stderr(&skip).starts_with("forklift: "), "{}", stderr(&skip));
    let up = cli(&srv, Some(&approver), &["promote", demo, "--to", "staging"]);
    assert_eq!(code(&up), 0, "{}", stderr(&up));
    assert!(
        stdout(&up).starts_with("forklift-demo-1.0-1.x86_64.rpm into staging (revision "),
        "{}",
        stdout(&up)
    );

    let status = cli(&srv, None, &["status"]);
    assert_eq!(code(&status), 0, "{}", stderr(&status));
    let text = stdout(&status);
    assert!(text.lines().any(|l| l.starts_with("staging ")), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("forklift-demo "))
        .expect("a row for the build");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        ["forklift-demo", "x86_64", "1.0-1", "1.0-1", "-"],
        "{text}"
    );
    let json = cli(&srv, None, &["status", "--output", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("status JSON");
    assert_eq!(doc["channels"].as_array().expect("channels").len(), 3);
    let one = cli(&srv, None, &["status", "staging"]);
    assert!(
        stdout(&one).contains("forklift-demo-1.0-1.x86_64.rpm"),
        "{}",
        stdout(&one)
    );

    let history = cli(&srv, None, &["history", "forklift-demo-1.0-1.x86_64.rpm"]);
    let text = stdout(&history);
    assert!(text.contains("in: qa, staging"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains(" promoted ") && l.contains("staging") && l.contains("approver")),
        "{text}"
    );

    let revisions = get(&srv.api("/channels/staging/revisions")).json();
    let head = revisions[0]["number"].as_i64().expect("head");
    let (from, to) = ((head - 1).to_string(), head.to_string());
    let diff = cli(&srv, None, &["diff", "staging", &from, &to]);
    assert_eq!(code(&diff), 0, "{}", stderr(&diff));
    assert!(
        stdout(&diff).contains("1 added, 0 removed"),
        "{}",
        stdout(&diff)
    );
    assert!(
        stdout(&diff)
            .lines()
            .any(|l| l.starts_with("+ forklift-demo")),
        "{}",
        stdout(&diff)
    );

    // Eligible or still waiting (a zero soak counts from the revision's
    // whole second), the build is listed.
    let cand = cli(&srv, None, &["candidates", "prod"]);
    let text = stdout(&cand);
    assert!(text.starts_with("prod ← staging: manual"), "{text}");
    let row = |l: &str| {
        l.split_whitespace().take(3).collect::<Vec<_>>() == ["forklift-demo", "1.0-1", "x86_64"]
    };
    assert!(text.lines().any(row), "{text}");
    let cand = cli(&srv, None, &["candidates", "prod", "--output", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&cand.stdout).expect("candidates JSON");
    let listed = [&doc["eligible"], &doc["blocked"]]
        .iter()
        .flat_map(|l| l.as_array().expect("list").iter())
        .any(|c| c["filename"] == "forklift-demo-1.0-1.x86_64.rpm");
    assert!(listed, "{doc}");

    // A frozen channel refuses; a held build is listed as waiting.
    let freeze = cli(
        &srv,
        Some(&approver),
        &["freeze", "prod", "--reason", "release week"],
    );
    assert_eq!(code(&freeze), 0, "{}", stderr(&freeze));
    assert!(stdout(&freeze).contains("prod frozen by approver: release week"));
    let frozen = cli(&srv, Some(&approver), &["promote", demo, "--to", "prod"]);
    assert_eq!(code(&frozen), 1, "{}", stderr(&frozen));
    assert_eq!(code(&cli(&srv, Some(&approver), &["unfreeze", "prod"])), 0);
    let hold = cli(&srv, Some(&approver), &["hold", demo, "--reason", "bug 7"]);
    assert!(
        stdout(&hold).contains("held by approver: bug 7"),
        "{}",
        stdout(&hold)
    );
    let cand = cli(&srv, None, &["candidates", "prod"]);
    assert!(
        stdout(&cand).contains("held by approver: bug 7"),
        "{}",
        stdout(&cand)
    );
    assert_eq!(code(&cli(&srv, Some(&approver), &["release", demo])), 0);

    let down = cli(
        &srv,
        Some(&approver),
        &["demote", demo, "--from", "staging", "--reason", "crashes"],
    );
    assert_eq!(code(&down), 0, "{}", stderr(&down));
    assert!(
        stdout(&down).contains("out of staging"),
        "{}",
        stdout(&down)
    );
    assert!(
        stdout(&down).contains("staging serves no forklift-demo any more"),
        "{}",
        stdout(&down)
    );
    // CI's evidence and notes, from the command line.
    let checked = cli(
        &srv,
        Some(ADMIN_TOKEN),
        &[
            "check",
            demo,
            "--channel",
            "qa",
            "--name",
            "unit",
            "--status",
            "passed",
            "--link",
            "https://ci.example/run/5",
            "--summary",
            "120 tests",
        ],
    );
    assert_eq!(code(&checked), 0, "{}", stderr(&checked));
    assert_eq!(
        stdout(&checked).trim(),
        format!("unit passed for {demo} in qa")
    );
    let noted = cli(
        &srv,
        Some(ADMIN_TOKEN),
        &[
            "note",
            demo,
            "--text",
            "built by pipeline 9",
            "--link",
            "https://ci.example/9",
        ],
    );
    assert_eq!(code(&noted), 0, "{}", stderr(&noted));
    let text = stdout(&cli(&srv, None, &["history", demo]));
    assert!(
        text.lines()
            .any(|l| l.contains("check unit passed")
                && l.contains("120 tests https://ci.example/run/5")),
        "{text}"
    );
    assert!(text.lines().any(|l| l.contains(" note ") && l.contains("built by pipeline 9 https://ci.example/9")), "{text}");
    let elsewhere = cli(
        &srv,
        Some(ADMIN_TOKEN),
        &[
            "check",
            demo,
            "--channel",
            "prod",
            "--name",
            "unit",
            "--status",
            "passed",
        ],
    );
    assert_eq!(code(&elsewhere), 1, "not in prod: {}", stderr(&elsewhere));
    let unknown = cli(
        &srv,
        None,
        &[
            "history",
            "0000000000000000000000000000000000000000000000000000000000000000",
        ],
    );
    assert_eq!(code(&unknown), 4, "{}", stderr(&unknown));
}

#[test]
fn wait_arrives_times_out_and_sees_a_demotion() {
    let Some(srv) = TestServer::start(Backend::Sqlite) else {
        return;
    };
    let id = upload_and_promote(&srv, &fixture("forklift-demo-2.0-1.x86_64.rpm"), &[]);
    let quick = ["--interval", "100ms"];
    let here = cli(
        &srv,
        None,
        &[&["wait", &id, "--in", "qa"], &quick[..]].concat(),
    );
    assert_eq!(code(&here), 0, "{}", stderr(&here));
    assert!(stdout(&here).contains("is in qa"), "{}", stdout(&here));

    let late = cli(
        &srv,
        None,
        &[
            &["wait", &id, "--in", "staging", "--timeout", "1s"],
            &quick[..],
        ]
        .concat(),
    );
    assert_eq!(code(&late), 6, "{}", stderr(&late));
    assert!(
        stderr(&late).contains("timed out after 1s"),
        "{}",
        stderr(&late)
    );

    // Promoted while it waits.
    let mut waiting = command(
        &srv,
        None,
        &[
            &[
                "wait",
                &id,
                "--in",
                "staging",
                "--timeout",
                "2m",
                "--output",
                "json",
            ],
            &quick[..],
        ]
        .concat(),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn wait");
    // Its first look finds the build still in qa only.
    let mut progress = std::io::BufReader::new(waiting.stderr.take().expect("stderr"));
    let mut first = String::new();
    std::io::BufRead::read_line(&mut progress, &mut first).expect("first line");
    assert!(
        first.starts_with("waiting for forklift-demo-2.0-1.x86_64.rpm in staging: in qa"),
        "{first}"
    );
    assert_eq!(promote(&srv, &id, "staging").status, 200);
    let limit = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = waiting.try_wait().expect("wait status") {
            break s;
        }
        assert!(Instant::now() < limit, "wait did not see the promotion");
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = waiting.wait_with_output().expect("output");
    assert_eq!(status.code(), Some(0), "{}", stdout(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("wait JSON");
    assert_eq!(doc["result"], "arrived");
    assert_eq!(doc["build"]["id"], id.as_str());

    // Demoted from staging: it cannot reach prod, the wait ends at once.
    assert_eq!(
        demote_as(&srv, &id, "staging", Some(ADMIN_TOKEN)).status,
        200
    );
    let gone = cli(
        &srv,
        None,
        &[&["wait", &id, "--in", "prod"], &quick[..]].concat(),
    );
    assert_eq!(code(&gone), 7, "{}", stderr(&gone));
    assert!(
        stderr(&gone).contains("demoted from staging"),
        "{}",
        stderr(&gone)
    );
    let nowhere = cli(&srv, None, &["wait", &id, "--in", "nowhere"]);
    assert_eq!(code(&nowhere), 4, "{}", stderr(&nowhere));
}

#[test]
fn profiles_completions_and_json_logs() {
    let Some(srv) = TestServer::start(Backend::Sqlite) else {
        return;
    };
    let home = tempfile::tempdir().expect("home");
    let dir = home.path().join("forklift");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join("config.toml");
    std::fs::write(
        &file,
        format!(
            "default = \"here\"\n[profiles.here]\nurl = \"{}\"\ntoken = \"{ADMIN_TOKEN}\"\n",
            srv.url
        ),
    )
    .expect("write profile");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_forklift"))
            .args(args)
            .env("XDG_CONFIG_HOME", home.path())
            .env_remove("FORKLIFT_URL")
            .env_remove("FORKLIFT_TOKEN")
            .env_remove("FORKLIFT_PROFILE")
            .output()
            .expect("run")
    };
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let open = run(&["status"]);
    assert_eq!(code(&open), 2, "{}", stderr(&open));
    assert!(stderr(&open).contains("chmod 600"), "{}", stderr(&open));
    assert!(!stderr(&open).contains(ADMIN_TOKEN));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    // The profile's token is used: freezing needs one.
    let frozen = run(&["freeze", "qa", "--reason", "from a profile"]);
    assert_eq!(code(&frozen), 0, "{}", stderr(&frozen));
    assert!(
        stdout(&frozen).contains("qa frozen by admin"),
        "{}",
        stdout(&frozen)
    );
    let other = run(&["status", "--profile", "elsewhere"]);
    assert_eq!(code(&other), 2, "{}", stderr(&other));

    let bash = run(&["completions", "bash"]);
    assert_eq!(code(&bash), 0);
    for word in ["push", "promote", "wait", "candidates"] {
        assert!(stdout(&bash).contains(word), "completion lacks {word}");
    }

    // A server logging JSON: every line an object, the token in none.
    let data = tempfile::tempdir().expect("data");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = Command::new(env!("CARGO_BIN_EXE_forklift"))
        .args([
            "serve",
            "--log-format",
            "json",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--data-dir")
        .arg(data.path())
        .arg("--signing-key")
        .arg(signing_key())
        .env("FORKLIFT_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("FORKLIFT_CONFIG")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("serve");
    wait_healthy(&url);
    let events = ureq::get(&format!("{url}/api/v1/events"))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .call()
        .expect("events");
    assert_eq!(events.status(), 200);
    let _ = ureq::get(&format!("{url}/api/v1/nothing-here")).call();
    server.kill().expect("kill");
    let out = server.wait_with_output().expect("logs");
    let logs = stderr(&out);
    let lines: Vec<&str> = logs.lines().collect();
    assert!(lines.len() >= 3, "{logs}");
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
    }
    assert!(
        logs.contains("/api/v1/events") && logs.contains("/api/v1/nothing-here"),
        "{logs}"
    );
    assert!(!logs.contains(ADMIN_TOKEN), "the token was logged: {logs}");
}
