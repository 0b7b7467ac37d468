//! Who may do what: tokens, roles, private channels, actors on every change,
//! and the `forklift token` commands against a running server.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn assert_denied(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.error_code(), code, "{}", r.text());
    assert!(!r.json()["message"].as_str().unwrap_or_default().is_empty());
    if status == 401 {
        assert!(
            r.header("www-authenticate")
                .is_some_and(|h| h.starts_with("Basic ")),
            "401 must carry a Basic challenge"
        );
    }
}

fn roles_hold_at_every_boundary(b: Backend) {
    let Some(srv) = TestServer::start(b) else {
        return;
    };
    let ci = create_token(
        &srv,
        serde_json::json!({"name": "ci", "roles": ["uploader"]}),
    );
    let qa_lead = create_token(
        &srv,
        serde_json::json!({"name": "qa-lead", "permissions": ["promote:staging"]}),
    );
    let approver = create_token(
        &srv,
        serde_json::json!({"name": "approver", "roles": ["promoter:prod"]}),
    );

    // Anonymous and wrong credentials: 401, and the upload leaves nothing behind.
    let blobs = srv.blob_count();
    assert_denied(&upload_as(&srv, DEMO10, None, "qa"), 401, "unauthenticated");
    assert_denied(
        &upload_as(&srv, DEMO10, Some("fkl_not_a_real_token"), "qa"),
        401,
        "unauthenticated",
    );
    let r = send(
        "PUT",
        &srv.api(&format!("/packages/{DEMO10}")),
        &[("Authorization", "Basic !!!")],
        b"x",
    );
    assert_denied(&r, 401, "unauthenticated");
    assert_eq!(srv.blob_count(), blobs);
    assert_eq!(srv.temp_count(), 0);

    // CI uploads into qa, and can do nothing else.
    let r = upload_as(&srv, DEMO10, Some(&ci), "qa");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["uploaded_by"], "ci");
    assert_denied(
        &promote_as(&srv, DEMO10, "staging", Some(&ci)),
        403,
        "forbidden",
    );
    assert_denied(
        &promote_as(&srv, DEMO10, "prod", Some(&ci)),
        403,
        "forbidden",
    );
    assert_denied(
        &promote_as(&srv, DEMO10, "staging", None),
        401,
        "unauthenticated",
    );
    assert_denied(&demote_as(&srv, DEMO10, "qa", Some(&ci)), 403, "forbidden");
    assert_denied(&get_as(&srv.api("/tokens"), Some(&ci)), 403, "forbidden");
    // The promoter of staging: staging yes, prod no.
    assert_denied(
        &upload_as(&srv, LIB, Some(&qa_lead), "qa"),
        403,
        "forbidden",
    );
    let r = promote_as(&srv, DEMO10, "staging", Some(&qa_lead));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_denied(
        &promote_as(&srv, DEMO10, "prod", Some(&qa_lead)),
        403,
        "forbidden",
    );
    let r = promote_as(&srv, DEMO10, "prod", Some(&approver));
    assert_eq!(r.status, 200, "{}", r.text());
    // Demoting from staging also pulls the build from prod: that needs prod rights too.
    assert_denied(
        &demote_as(&srv, DEMO10, "staging", Some(&qa_lead)),
        403,
        "forbidden",
    );
    let prod = get(&srv.api("/channels/prod")).json();
    assert_eq!(prod["packages"].as_array().expect("pkgs").len(), 1);
    let r = demote_as(&srv, DEMO10, "prod", Some(&approver));
    assert_eq!(r.status, 200, "{}", r.text());

    // Bulk promotion follows the same rules.
    let bulk = serde_json::json!({"packages": [DEMO10]});
    assert_denied(
        &json_as(
            "POST",
            &srv.api("/channels/prod/promote"),
            Some(&qa_lead),
            bulk.clone(),
        ),
        403,
        "forbidden",
    );
    let r = json_as(
        "POST",
        &srv.api("/channels/prod/promote"),
        Some(&approver),
        bulk,
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // HTTP Basic with the token as password works like Bearer.
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("anyone:{ci}"))
    );
    let bytes = std::fs::read(fixture(LIB)).expect("fixture");
    let r = send(
        "PUT",
        &srv.api(&format!("/packages/{LIB}")),
        &[("Authorization", &basic)],
        &bytes,
    );
    assert_eq!(r.status, 201, "{}", r.text());

    // Every change names its actor and client, in history and in revisions.
    let d = get(&srv.api(&format!("/packages/{DEMO10}"))).json();
    let actors: Vec<(String, String)> = d["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| {
            assert_eq!(e["client"], "127.0.0.1");
            (
                e["kind"].as_str().expect("kind").to_string(),
                e["actor"].as_str().expect("actor").to_string(),
            )
        })
        .collect();
    let expect: Vec<(String, String)> = [
        ("uploaded", "ci"),
        ("added", "ci"),
        ("promoted", "qa-lead"),
        ("promoted", "approver"),
        ("demoted", "approver"),
        ("promoted", "approver"),
    ]
    .iter()
    .map(|(k, a)| (k.to_string(), a.to_string()))
    .collect();
    assert_eq!(actors, expect);
    let revs = get(&srv.api("/channels/staging/revisions")).json();
    assert!(
        revs.as_array()
            .expect("revs")
            .iter()
            .any(|r| r["actor"] == "qa-lead"),
        "{revs}"
    );

    // Token administration: list shows no secrets; revoke takes effect at once.
    let list = get(&srv.api("/tokens"));
    assert_eq!(list.status, 200);
    assert!(!list.text().contains(&ci) && !list.text().contains("fkl_"));
    let listed = list.json();
    let names: Vec<&str> = listed
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    for n in ["admin", "ci", "qa-lead", "approver"] {
        assert!(names.contains(&n), "{names:?}");
    }
    let ci_row = list
        .json()
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["name"] == "ci")
        .cloned()
        .expect("ci");
    assert!(ci_row["last_used_at"].is_string(), "{ci_row}");
    assert_eq!(ci_row["permissions"], serde_json::json!(["upload"]));
    // A second live token of the same name is refused.
    let r = post_json(
        &srv.api("/tokens"),
        serde_json::json!({"name": "ci", "roles": ["reader"]}),
    );
    assert_denied(&r, 409, "token_exists");
    let r = post_json(
        &srv.api("/tokens"),
        serde_json::json!({"name": "x", "permissions": ["promote:nowhere"]}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = json_as(
        "DELETE",
        &srv.api("/tokens/ci"),
        Some(&qa_lead),
        serde_json::json!({}),
    );
    assert_denied(&r, 403, "forbidden");
    let r = json_as(
        "DELETE",
        &srv.api("/tokens/ci"),
        Some(ADMIN_TOKEN),
        serde_json::json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = upload_as(&srv, "forklift-demo-1.1-1.x86_64.rpm", Some(&ci), "qa");
    assert_denied(&r, 401, "unauthenticated");
    assert!(r.text().contains("revoked"), "{}", r.text());
    // The audit log records who administered tokens.
    let audit = get(&srv.api("/events?kind=token_revoked")).json();
    assert_eq!(audit[0]["actor"], "admin");
    assert_eq!(audit[0]["detail"]["token"], "ci");
    assert_denied(
        &get_as(&srv.api("/events"), Some(&approver)),
        403,
        "forbidden",
    );

    // An expiring token works until it expires, then is refused.
    let short = create_token(
        &srv,
        serde_json::json!({"name": "short", "roles": ["uploader"], "expires_in": "1s"}),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = get_as(&srv.api("/packages"), Some(&short));
        if r.status == 401 {
            assert!(r.text().contains("expired"), "{}", r.text());
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(Instant::now() < deadline, "token never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn private_channels_need_read_rights(b: Backend) {
    let Some(srv) = TestServer::start_with(b, |l| {
        l.private_channels = Some(vec!["qa".into(), "prod".into()]);
    }) else {
        return;
    };
    const COMMON: &str = "forklift-common_1.0-1_all.deb";
    const HELLO: &str = "forklift-hello_1.0-1_amd64.deb";
    // COMMON everywhere, LIB up to staging, DEMO10 and HELLO only in (private) qa.
    upload_and_promote(&srv, &deb_fixture(COMMON), &["staging", "prod"]);
    assert_eq!(upload(&srv, &deb_fixture(HELLO), Some("qa")).status, 201);
    assert_eq!(upload(&srv, &fixture(DEMO10), Some("qa")).status, 201);
    upload_and_promote(&srv, &fixture(LIB), &["staging"]);
    let reader = create_token(
        &srv,
        serde_json::json!({"name": "prod-host", "permissions": ["read:prod", "read:qa"]}),
    );
    let staging_reader = create_token(
        &srv,
        serde_json::json!({"name": "staging-host", "permissions": ["read:staging"]}),
    );
    let url = |p: &str| format!("{}{p}", srv.url);

    // Public channels stay open; private ones answer 401 / 403 / 200.
    assert_eq!(
        get_as(&url("/rpm/staging/repodata/repomd.xml"), None).status,
        200
    );
    for path in [
        "/rpm/prod/repodata/repomd.xml",
        "/rpm/prod.repo",
        "/deb/dists/prod/InRelease",
        "/deb/prod.sources",
        "/deb/prod.pref",
        "/api/v1/channels/prod",
        "/api/v1/channels/prod/revisions",
    ] {
        assert_denied(&get_as(&url(path), None), 401, "unauthenticated");
        assert_denied(&get_as(&url(path), Some(&staging_reader)), 403, "forbidden");
        let r = get_as(&url(path), Some(&reader));
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    // The generated files tell hosts where credentials go, without any secret.
    let repo = get_as(&url("/rpm/prod.repo"), Some(&reader)).text();
    assert!(
        repo.contains("username=") && repo.contains("password="),
        "{repo}"
    );
    assert!(!repo.contains("fkl_"));
    let sources = get_as(&url("/deb/prod.sources"), Some(&reader)).text();
    assert!(sources.contains("auth.conf"), "{sources}");
    assert!(!get_as(&url("/rpm/staging.repo"), None)
        .text()
        .contains("password="));

    // The pool is shared: a file also in a public suite is public, one held
    // only by private suites is not.
    let pool = |id: &str, channel: &str| {
        get(&srv.api(&format!("/packages/{id}"))).json()["downloads"][channel]
            .as_str()
            .expect("pool url")
            .to_string()
    };
    assert_eq!(get_as(&pool(COMMON, "prod"), None).status, 200);
    let hello = pool(HELLO, "qa");
    assert_denied(&get_as(&hello, None), 401, "unauthenticated");
    assert_denied(&get_as(&hello, Some(&staging_reader)), 403, "forbidden");
    assert_eq!(get_as(&hello, Some(&reader)).status, 200);

    // A build only in private channels is invisible to anonymous callers and
    // to readers of other channels.
    let demo_url = pool(DEMO10, "qa");
    assert_denied(&get_as(&demo_url, None), 401, "unauthenticated");
    assert_eq!(get_as(&demo_url, Some(&reader)).status, 200);
    assert_denied(
        &get_as(&srv.api(&format!("/packages/{DEMO10}")), None),
        401,
        "unauthenticated",
    );
    assert_eq!(
        get_as(
            &srv.api(&format!("/packages/{DEMO10}")),
            Some(&staging_reader)
        )
        .status,
        404
    );
    let names = |token: Option<&str>| -> Vec<String> {
        get_as(&srv.api("/packages"), token)
            .json()
            .as_array()
            .expect("list")
            .iter()
            .map(|p| p["filename"].as_str().expect("f").to_string())
            .collect()
    };
    assert!(!names(None).contains(&DEMO10.to_string()));
    assert!(names(None).contains(&LIB.to_string()));
    assert!(names(Some(&reader)).contains(&DEMO10.to_string()));
    // COMMON is public through staging: visible, its private memberships are not.
    let d = get_as(&srv.api(&format!("/packages/{COMMON}")), None).json();
    assert_eq!(d["channels"], serde_json::json!(["staging"]));
    assert!(d["downloads"].get("prod").is_none());
    assert!(d["history"]
        .as_array()
        .expect("h")
        .iter()
        .all(|e| e["channel"] != "prod" && e["channel"] != "qa"));
    let channels: Vec<String> = get_as(&srv.api("/channels"), None)
        .json()
        .as_array()
        .expect("channels")
        .iter()
        .map(|c| c["name"].as_str().expect("n").to_string())
        .collect();
    assert_eq!(channels, vec!["staging"]);
    // A public channel's listing does not reveal the private channels its builds are in.
    let staging = get_as(&srv.api("/channels/staging"), None).json();
    for p in staging["packages"].as_array().expect("packages") {
        assert_eq!(p["channels"], serde_json::json!(["staging"]), "{p}");
    }
}

fn closed_server_refuses_anonymous_reads(b: Backend) {
    let Some(srv) = TestServer::start_with(b, |l| l.anonymous_read = Some(false)) else {
        return;
    };
    assert_eq!(upload(&srv, &fixture(LIB), Some("qa")).status, 201);
    for path in [
        "/rpm/qa/repodata/repomd.xml",
        "/api/v1/packages",
        "/api/v1/channels/qa",
    ] {
        let r = get_as(&format!("{}{path}", srv.url), None);
        if path == "/api/v1/packages" {
            // The catalogue is empty rather than an error: nothing is readable.
            assert_eq!(r.json(), serde_json::json!([]), "{path}");
        } else {
            assert_denied(&r, 401, "unauthenticated");
        }
    }
    // The public key stays public: hosts need it before they have anything else.
    assert_eq!(
        get_as(&format!("{}/keys/forklift.asc", srv.url), None).status,
        200
    );
    assert_eq!(get_as(&format!("{}/healthz", srv.url), None).status, 200);
}

both_backends!(
    roles_hold_at_every_boundary,
    private_channels_need_read_rights,
    closed_server_refuses_anonymous_reads,
    token_cli_and_logs,
);

/// The real binary: first start writes an admin token file (0600), the
/// `forklift token` commands work while it runs, and no secret ever reaches
/// its log, even at debug level.
fn token_cli_and_logs(b: Backend) {
    let data = tempfile::tempdir().expect("data dir");
    let database_url = match b {
        Backend::Sqlite => format!("sqlite://{}", data.path().join("forklift.db").display()),
        Backend::Postgres => {
            match common::pg::fresh_database(&format!("cli{}", std::process::id())) {
                Some(u) => u,
                None => return,
            }
        }
    };
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let log_path = data.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let mut server = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_forklift"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data.path())
            .args(["--database-url", &database_url])
            .env("FORKLIFT_LOG", "debug")
            .env_remove("FORKLIFT_ADMIN_TOKEN")
            .env("FORKLIFT_PRIVATE_CHANNELS", "prod")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn forklift"),
    );
    wait_healthy(&url);

    // The generated admin token: in a 0600 file, named in the log, not printed.
    let token_file = data.path().join("admin-token");
    let admin = std::fs::read_to_string(&token_file)
        .expect("admin token file")
        .trim()
        .to_string();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let cli = |args: &[&str]| -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_forklift"))
            .args(["token"])
            .args(args)
            .arg("--data-dir")
            .arg(data.path())
            .args(["--database-url", &database_url])
            .env("FORKLIFT_PRIVATE_CHANNELS", "prod")
            .stdin(Stdio::null())
            .output()
            .expect("forklift token");
        assert!(
            out.status.success(),
            "forklift token {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let out = cli(&["create", "--name", "ci", "--role", "uploader"]);
    let ci = out.lines().last().expect("token line").to_string();
    assert!(ci.starts_with("fkl_"), "{out}");
    let out = cli(&[
        "create",
        "--name",
        "host",
        "--permission",
        "read:prod",
        "--expires-in",
        "30d",
    ]);
    let host = out.lines().last().expect("token line").to_string();
    let listed = cli(&["list"]);
    assert!(
        listed.contains("ci\tupload") && listed.contains("host\tread:prod"),
        "{listed}"
    );
    assert!(!listed.contains("fkl_"));

    // The CLI's token works against the running server at once.
    let bytes = std::fs::read(fixture(LIB)).expect("fixture");
    let put = |token: &str| match ureq::put(&format!("{url}/api/v1/packages/{LIB}?channel=qa"))
        .set("Authorization", &format!("Bearer {token}"))
        .send_bytes(&bytes)
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(put(&ci), 201);
    for to in ["staging", "prod"] {
        let r = ureq::post(&format!("{url}/api/v1/packages/{LIB}/promote"))
            .set("Authorization", &format!("Bearer {admin}"))
            .send_json(serde_json::json!({ "to": to }));
        assert_eq!(r.map(|r| r.status()).unwrap_or(0), 200);
    }
    // A host reads the private channel with HTTP Basic, as dnf and apt do.
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("forklift:{host}"));
    let r = ureq::get(&format!("{url}/rpm/prod/repodata/repomd.xml"))
        .set("Authorization", &format!("Basic {basic}"))
        .call();
    assert_eq!(r.map(|r| r.status()).unwrap_or(0), 200);
    cli(&["revoke", "ci"]);
    assert_eq!(put(&ci), 401);
    assert!(!cli(&["list"]).contains("ci\t"));

    let _ = server.0.kill();
    let _ = server.0.wait();
    let text = std::fs::read_to_string(&log_path).expect("log");
    assert!(
        text.contains(&token_file.display().to_string()),
        "the log should say where the admin token is:\n{text}"
    );
    assert!(
        text.contains("/api/v1/packages/"),
        "request log missing:\n{text}"
    );
    for secret in [&admin, &ci, &host, &basic] {
        assert!(
            !text.contains(secret.as_str()),
            "a secret reached the log:\n{text}"
        );
    }
}
