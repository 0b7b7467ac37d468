//! The promotion board in a real browser (headless Chromium over WebDriver):
//! what curl uploads and promotes shows; promotion, demotion and holds
//! through the UI land in the API and in dnf's view; rights and CSRF hold for
//! forms; private channels stay invisible; the board updates by itself.
//! Screenshots go to a temp dir, or to docs/ui/ with FORKLIFT_UI_SCREENSHOTS=1
//! (`FORKLIFT_UI_SCREENSHOTS=1 cargo test --test ui`).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::browser::Browser;
use common::dnf::{dnf_available, Dnf};
use common::*;

const LIVE: Duration = Duration::from_secs(20);

fn shots_dir() -> PathBuf {
    if std::env::var("FORKLIFT_UI_SCREENSHOTS").is_ok_and(|v| v == "1") {
        let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/ui");
        std::fs::create_dir_all(&d).expect("docs/ui");
        d
    } else {
        let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-shots");
        std::fs::create_dir_all(&d).expect("shots");
        d
    }
}

fn shoot(b: &Browser, name: &str) {
    let png = b.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    std::fs::write(shots_dir().join(name), png).expect("screenshot");
}

/// Signs the browser in with `token` through the login form.
fn sign_in(b: &Browser, srv: &TestServer, token: &str) {
    b.goto(&format!("{}/ui/login", srv.url));
    b.fill("input[name=token]", token);
    b.click("button[type=submit].primary");
    assert!(
        b.wait_text("header .who", "Signed in as", LIVE),
        "not signed in: {}",
        b.text("main")
    );
}

/// The board's cell for `name` in column `col` (1 = first channel).
fn cell(b: &Browser, name: &str, col: usize) -> String {
    let rows = b.rt.block_on(
        b.client
            .find_all(fantoccini::Locator::Css("#board tbody tr")),
    );
    for r in rows.unwrap_or_default() {
        let text = b.rt.block_on(r.text()).unwrap_or_default();
        if text.starts_with(name) {
            let cells =
                b.rt.block_on(r.find_all(fantoccini::Locator::Css("td")))
                    .unwrap_or_default();
            return cells
                .get(col - 1)
                .map(|c| b.rt.block_on(c.text()).unwrap_or_default())
                .unwrap_or_default();
        }
    }
    String::new()
}

#[test]
fn the_board_shows_what_curl_did_and_updates_by_itself() {
    let Some(b) = Browser::start() else { return };
    let Some(srv) = TestServer::start(Backend::Sqlite) else {
        return;
    };
    let id = upload_and_promote(&srv, &fixture(DEMO10), &["staging"]);
    assert_eq!(upload(&srv, &fixture(LIB), Some("qa")).status, 201);
    b.goto(&format!("{}/", srv.url));
    assert!(b.url().ends_with("/ui/"), "{}", b.url());
    assert!(
        cell(&b, "forklift-demo", 1).contains("1.0-1"),
        "{}",
        b.text("#board")
    );
    assert!(cell(&b, "forklift-demo", 2).contains("1.0-1"));
    assert!(cell(&b, "forklift-demo", 3).contains("none"));
    assert!(cell(&b, "forklift-lib", 2).contains("none"));
    // A promotion by curl shows up without a reload.
    assert_eq!(promote(&srv, &id, "prod").status, 200);
    assert!(
        eventually(LIVE, || cell(&b, "forklift-demo", 3).contains("1.0-1")),
        "the board did not update: {}",
        b.text("#board")
    );
    // The filter keeps only names that differ between channels.
    b.goto(&format!("{}/ui/?differs=1", srv.url));
    assert!(
        cell(&b, "forklift-demo", 1).is_empty(),
        "{}",
        b.text("#board")
    );
    assert!(cell(&b, "forklift-lib", 1).contains("1.0-1"));
    b.goto(&format!("{}/ui/", srv.url));
    shoot(&b, "board.png");
    b.goto(&format!("{}/ui/builds/{id}", srv.url));
    let page = b.text("main");
    for want in ["uploaded", "promoted", "prod", &id, "Dependencies"] {
        assert!(page.contains(want), "build page lacks {want}: {page}");
    }
    shoot(&b, "build.png");
    b.goto(&format!("{}/ui/channels/staging", srv.url));
    assert!(b.text("main").contains("Policy:"), "{}", b.text("main"));
    shoot(&b, "channel.png");
}

#[test]
fn promoting_and_demoting_through_the_ui() {
    let Some(b) = Browser::start() else { return };
    let Some(srv) = TestServer::start(Backend::Sqlite) else {
        return;
    };
    let old = upload_and_promote(&srv, &fixture(DEMO10), &["staging"]);
    let new = upload_and_promote(&srv, &fixture(DEMO11), &[]);
    sign_in(&b, &srv, ADMIN_TOKEN);
    b.goto(&format!("{}/ui/builds/{new}", srv.url));
    b.click("form[action$='/promote'] button");
    assert!(
        eventually(LIVE, || get(&srv.api(&format!("/packages/{new}"))).json()
            ["channels"]
            .to_string()
            .contains("staging")),
        "the UI's promotion is not in the API"
    );
    let events = get(&srv.api(&format!("/packages/{new}"))).json()["history"].to_string();
    assert!(events.contains("\"actor\":\"admin\""), "{events}");
    if dnf_available() {
        let dnf = Dnf::new();
        dnf.add_repo_file(
            "staging",
            &get(&format!("{}/rpm/staging.repo", srv.url)).text(),
        );
        let out = dnf.run(&["list", "--available", "forklift-demo"]);
        assert!(
            out.contains("1.1-1"),
            "dnf does not see the promotion:\n{out}"
        );
    }
    // Demotion needs a reason: an empty one is not sent.
    b.goto(&format!("{}/ui/builds/{new}", srv.url));
    b.click("form[action$='/demote'] button");
    assert!(b.url().ends_with(&format!("/ui/builds/{new}")));
    assert!(
        get(&srv.api(&format!("/packages/{new}"))).json()["channels"]
            .to_string()
            .contains("staging")
    );
    b.fill(
        "form[action$='/demote'] input[name=reason]",
        "fails smoke tests",
    );
    b.click("form[action$='/demote'] button");
    assert!(
        eventually(LIVE, || !get(&srv.api(&format!("/packages/{new}"))).json()
            ["channels"]
            .to_string()
            .contains("staging")),
        "the UI's demotion is not in the API"
    );
    b.goto(&format!("{}/ui/", srv.url));
    assert!(
        eventually(LIVE, || cell(&b, "forklift-demo", 2).contains("1.0-1")),
        "staging should fall back to {old}: {}",
        b.text("#board")
    );
    // Holding asks for a reason and the board shows it.
    b.goto(&format!("{}/ui/builds/{old}", srv.url));
    b.fill(
        "form[action$='/hold'] input[name=reason]",
        "waiting for a CVE fix",
    );
    b.click("form[action$='/hold'] button");
    // The form's answer (the build page again) says so before we move on.
    assert!(
        b.wait_text("main", "Held by admin", LIVE),
        "{}",
        b.text("main")
    );
    b.goto(&format!("{}/ui/", srv.url));
    // Said where the held build stops: staging, which serves it again.
    let held = |b: &Browser| cell(b, "forklift-demo", 2);
    eventually(LIVE, || held(&b).contains("Held by admin"));
    let c = held(&b);
    assert!(
        c.contains("1.0-1") && c.contains("Held by admin: waiting for a CVE fix"),
        "{c}: {}",
        b.text("#board")
    );
}

#[test]
fn rights_and_csrf_hold_for_forms() {
    let Some(b) = Browser::start() else { return };
    let Some(srv) = TestServer::start(Backend::Sqlite) else {
        return;
    };
    let id = upload_and_promote(&srv, &fixture(DEMO10), &[]);
    let reader = create_token(
        &srv,
        serde_json::json!({"name": "wall", "roles": ["reader"]}),
    );
    sign_in(&b, &srv, &reader);
    b.goto(&format!("{}/ui/builds/{id}", srv.url));
    assert!(
        !b.exists("form[action$='/promote']"),
        "a reader sees a promote button"
    );
    // The reader's own session and CSRF token, on a forged promotion: 403.
    let forged = format!(
        "const done = arguments[arguments.length - 1];
         const csrf = document.querySelector('input[name=csrf]').value;
         fetch('/ui/builds/{id}/promote', {{method: 'POST', body: new URLSearchParams({{csrf, to: 'staging'}})}})
           .then(r => done(r.status));"
    );
    assert_eq!(b.run_js(&forged), serde_json::json!(403));
    // An admin's session without the CSRF token: 403, nothing changes.
    sign_in(&b, &srv, ADMIN_TOKEN);
    b.goto(&format!("{}/ui/builds/{id}", srv.url));
    let no_csrf = format!(
        "const done = arguments[arguments.length - 1];
         fetch('/ui/builds/{id}/promote', {{method: 'POST', body: new URLSearchParams({{to: 'staging'}})}})
           .then(r => done(r.status));"
    );
    assert_eq!(b.run_js(&no_csrf), serde_json::json!(403));
    assert!(
        !get(&srv.api(&format!("/packages/{id}"))).json()["channels"]
            .to_string()
            .contains("staging")
    );
    // Signing out ends the session on the server.
    b.click("header form[action='/ui/logout'] button");
    assert!(b.wait_text("header .who", "Sign in", LIVE));
    b.goto(&format!("{}/ui/builds/{id}", srv.url));
    assert!(!b.exists("form[action$='/promote']"));
}

#[test]
fn a_private_channel_is_absent_for_anonymous_readers() {
    let Some(b) = Browser::start() else { return };
    let Some(srv) = TestServer::start_with(Backend::Sqlite, |l| {
        l.private_channels = Some(vec!["prod".into()]);
    }) else {
        return;
    };
    upload_and_promote(&srv, &fixture(DEMO10), &["staging", "prod"]);
    b.goto(&format!("{}/ui/", srv.url));
    let head = b.text("#board thead");
    assert!(head.contains("staging") && !head.contains("prod"), "{head}");
    b.goto(&format!("{}/ui/channels/prod", srv.url));
    assert!(b.url().contains("/ui/login"), "{}", b.url());
    sign_in(&b, &srv, ADMIN_TOKEN);
    b.goto(&format!("{}/ui/", srv.url));
    assert!(b.text("#board thead").contains("prod"));
}
