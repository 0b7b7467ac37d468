//! Real dnf against a running Forklift: install, upgrade after a promotion, and
//! distro-sync back to the last good build after a demotion. Plus metadata
//! fidelity: `dnf repoquery` answers the same for our channel as for a
//! createrepo_c repository of the same files.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::dnf::{dnf_available, Dnf};
use common::*;

fn dnf_install_upgrade_and_roll_back(b: Backend) {
    if !dnf_available() {
        return;
    }
    let Some(srv) = TestServer::start(b) else {
        return;
    };
    for f in [DEMO10, LIB] {
        upload_and_promote(&srv, &fixture(f), &["staging", "prod"]);
    }
    let dnf = Dnf::new();
    let repo = get(&format!("{}/rpm/prod.repo", srv.url));
    assert_eq!(repo.status, 200);
    assert!(repo.text().contains("repo_gpgcheck=1"));
    assert!(repo
        .text()
        .contains(&format!("gpgkey={}/keys/forklift.asc", srv.url)));
    dnf.add_repo_file("forklift-prod", &repo.text());

    dnf.run(&["install", "forklift-demo"]);
    assert_eq!(dnf.installed("forklift-demo"), "forklift-demo-1.0-1.x86_64");

    // A newer build reaches prod: dnf upgrade installs it (and its new dependency).
    let newer = "forklift-demo-1.1-1.x86_64.rpm";
    assert_eq!(upload(&srv, &fixture(newer), Some("qa")).status, 201);
    // Still only in qa: prod hosts see nothing new.
    dnf.run(&["upgrade"]);
    assert_eq!(dnf.installed("forklift-demo"), "forklift-demo-1.0-1.x86_64");
    assert_eq!(promote(&srv, newer, "staging").status, 200);
    assert_eq!(promote(&srv, newer, "prod").status, 200);
    dnf.run(&["upgrade"]);
    assert_eq!(dnf.installed("forklift-demo"), "forklift-demo-1.1-1.x86_64");
    assert_eq!(dnf.installed("forklift-lib"), "forklift-lib-1.0-1.noarch");

    // Demote it: prod falls back to 1.0 and distro-sync takes the host back.
    let r = demote(&srv, newer, "prod", "crashes on start");
    assert_eq!(r.status, 200, "{}", r.text());
    dnf.run(&["distro-sync"]);
    assert_eq!(dnf.installed("forklift-demo"), "forklift-demo-1.0-1.x86_64");
}

both_backends!(dnf_install_upgrade_and_roll_back);

const QF: &str = "@@%{name}-%{epoch}:%{version}-%{release}.%{arch}\n\
[summary] %{summary}\n[url] %{url}\n[license] %{license}\n[sourcerpm] %{sourcerpm}\n\
[buildtime] %{buildtime}\n[size] %{size} %{installsize}\n[packager] %{packager}\n\
[requires]\n%{requires}\n[provides]\n%{provides}\n[obsoletes]\n%{obsoletes}\n\
[conflicts]\n%{conflicts}\n[recommends]\n%{recommends}\n[suggests]\n%{suggests}\n\
[supplements]\n%{supplements}\n[enhances]\n%{enhances}\n[files]\n%{files}\n";

/// Parses repoquery output into package → sorted lines, so ordering differences
/// inside multi-valued fields do not count.
fn blocks(out: &str, marker: &str) -> BTreeMap<String, Vec<String>> {
    let mut map = BTreeMap::new();
    for block in out.split(marker).filter(|b| !b.trim().is_empty()) {
        let mut lines = block.lines();
        let key = lines.next().unwrap_or_default().trim().to_string();
        let mut rest: Vec<String> = lines
            .map(|l| l.trim_end().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        rest.sort();
        map.insert(key, rest);
    }
    map
}

fn repoquery(repo_url: &str, extra: &[&str]) -> String {
    let cache = tempfile::tempdir().expect("cache");
    let empty = tempfile::tempdir().expect("reposdir");
    run(Command::new("dnf")
        .args(["-q", "--noplugins", "--releasever=12", "repoquery"])
        .arg(format!("--setopt=cachedir={}", cache.path().display()))
        .arg(format!("--setopt=reposdir={}", empty.path().display()))
        .arg(format!("--repofrompath=r,{repo_url}"))
        .arg("--repo=r")
        .args(extra))
}

fn compare_with_createrepo(srv: &TestServer, accepted: &[PathBuf]) {
    let dir = tempfile::tempdir().expect("createrepo dir");
    for f in accepted {
        std::fs::copy(f, dir.path().join(f.file_name().expect("name"))).expect("copy");
    }
    run(Command::new("createrepo_c").arg("--quiet").arg(dir.path()));
    let ours = format!("{}/rpm/qa/", srv.url);
    let theirs = format!("file://{}", dir.path().display());

    let a = blocks(&repoquery(&ours, &["--qf", QF]), "@@");
    let b = blocks(&repoquery(&theirs, &["--qf", QF]), "@@");
    assert_eq!(
        a.len(),
        accepted.len(),
        "dnf sees every accepted package: {:?}",
        a.keys()
    );
    for (k, v) in &b {
        assert_eq!(a.get(k), Some(v), "repoquery differs for {k}");
    }
    assert_eq!(a, b);

    let a = repoquery(&ours, &["--changelogs"]);
    let b = repoquery(&theirs, &["--changelogs"]);
    assert_eq!(a, b, "changelogs differ");
}

fn upload_all(srv: &TestServer, dir: &Path) -> (Vec<PathBuf>, Vec<(PathBuf, u16, String)>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "rpm"))
        .collect();
    files.sort();
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for f in files {
        let r = upload(srv, &f, Some("qa"));
        match r.status {
            201 => accepted.push(f),
            _ => refused.push((f, r.status, r.error_code())),
        }
    }
    (accepted, refused)
}

#[test]
fn fixtures_metadata_matches_createrepo_c() {
    if !dnf_available() {
        return;
    }
    let Some(srv) = TestServer::start(Backend::Sqlite) else {
        return;
    };
    let (accepted, refused) = upload_all(&srv, &fixtures_dir());
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(accepted.len(), 6);
    compare_with_createrepo(&srv, &accepted);
}

#[test]
fn corpus_is_accepted_refused_and_indexed_like_createrepo_c() {
    if !dnf_available() {
        return;
    }
    let Some(corpus) = corpus_dir() else { return };
    let Some(srv) = TestServer::start(Backend::Sqlite) else {
        return;
    };
    let (accepted, refused) = upload_all(&srv, &corpus);
    // Exactly one file is corrupt; every other refusal is a second file with an
    // identity (name-epoch-version-release-arch) already taken.
    let corrupt: Vec<_> = refused.iter().filter(|r| r.1 != 409).collect();
    assert_eq!(corrupt.len(), 1, "{refused:?}");
    assert!(corrupt[0]
        .0
        .to_string_lossy()
        .ends_with("rpm__hello-2.0-1.x86_64-corrupted.rpm"));
    assert_eq!(corrupt[0].1, 422);
    assert_eq!(corrupt[0].2, "digest_mismatch");
    for r in refused.iter().filter(|r| r.1 == 409) {
        assert_eq!(r.2, "package_exists");
    }
    assert_eq!(accepted.len() + refused.len(), 39);
    compare_with_createrepo(&srv, &accepted);
}

/// dnf with repo_gpgcheck=1 refuses a repository whose repomd.xml.asc does not
/// match its repomd.xml, and accepts the genuine pair.
#[test]
fn dnf_rejects_tampered_repomd_signature() {
    if !dnf_available() {
        return;
    }
    let Some(srv) = TestServer::start(Backend::Sqlite) else {
        return;
    };
    assert_eq!(
        upload(&srv, &fixture("forklift-lib-1.0-1.noarch.rpm"), Some("qa")).status,
        201
    );
    let mirror = tempfile::tempdir().expect("mirror");
    let repodata = mirror.path().join("repodata");
    std::fs::create_dir_all(&repodata).expect("mkdir");
    let repomd = get(&format!("{}/rpm/qa/repodata/repomd.xml", srv.url)).text();
    for href in repomd.split("<location href=\"").skip(1) {
        let href = href.split('"').next().expect("href");
        let r = get(&format!("{}/rpm/qa/{href}", srv.url));
        std::fs::write(mirror.path().join(href), &r.body).expect("data file");
    }
    std::fs::write(repodata.join("repomd.xml"), &repomd).expect("repomd");
    let asc = get(&format!("{}/rpm/qa/repodata/repomd.xml.asc", srv.url));
    assert_eq!(asc.status, 200);
    std::fs::write(repodata.join("repomd.xml.asc"), &asc.body).expect("asc");
    let key = mirror.path().join("key.asc");
    std::fs::write(&key, get(&format!("{}/keys/forklift.asc", srv.url)).body).expect("key");

    // Served over HTTP: dnf does not check signatures of file:// repositories.
    let port = free_port();
    let mut static_server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
            "--directory",
        ])
        .arg(mirror.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 http.server");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "static server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let query = |_dir: &Path| {
        let dnf = Dnf::new();
        dnf.add_repo_file(
            "m",
            &format!(
                "[m]\nname=m\nbaseurl=http://127.0.0.1:{port}/\nrepo_gpgcheck=1\ngpgcheck=0\ngpgkey=file://{}\n",
                key.display()
            ),
        );
        dnf.cmd()
            .args(["-q", "repoquery", "forklift-lib"])
            .output()
            .expect("dnf")
    };
    // Tampered first: same repomd.xml with one byte changed, so the signature
    // no longer matches. (Checked before any successful run, which on this dnf
    // leaves state behind that later runs reuse.)
    std::fs::write(
        repodata.join("repomd.xml"),
        repomd.replacen("<revision>", "<revision>1", 1),
    )
    .expect("tamper");
    let bad = query(mirror.path());
    std::fs::write(repodata.join("repomd.xml"), &repomd).expect("restore");
    // The genuine repomd.xml with a damaged signature file: one character of
    // the armored body changed.
    let asc_text = String::from_utf8(asc.body.clone()).expect("armored");
    let body_line = asc_text
        .lines()
        .position(|l| l.len() > 40 && !l.contains(':'))
        .expect("armored body")
        + 2;
    let damaged: String = asc_text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let mut l = l.to_string();
            if i == body_line {
                let c = if l.as_bytes()[10] == b'A' { "B" } else { "A" };
                l.replace_range(10..11, c);
            }
            l + "\n"
        })
        .collect();
    std::fs::write(repodata.join("repomd.xml.asc"), damaged).expect("tamper");
    let bad_sig = query(mirror.path());
    std::fs::write(repodata.join("repomd.xml.asc"), &asc.body).expect("restore");
    let ok = query(mirror.path());
    let _ = static_server.kill();
    let _ = static_server.wait();
    assert!(
        ok.status.success(),
        "genuine signature refused: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("forklift-lib-0:1.0-1.noarch"));
    assert!(
        !bad.status.success(),
        "tampered repomd.xml accepted: {} {}",
        String::from_utf8_lossy(&bad.stdout),
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("GPG"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(
        !bad_sig.status.success(),
        "damaged repomd.xml.asc accepted: {} {}",
        String::from_utf8_lossy(&bad_sig.stdout),
        String::from_utf8_lossy(&bad_sig.stderr)
    );
}

/// A private channel: dnf fails without credentials and installs with a read
/// token in the served .repo's username/password lines (HTTP Basic).
#[test]
fn dnf_reads_a_private_channel_with_a_token() {
    if !dnf_available() {
        return;
    }
    let Some(srv) = TestServer::start_with(Backend::Sqlite, |l| {
        l.private_channels = Some(vec!["prod".into()]);
    }) else {
        return;
    };
    for f in [DEMO10, LIB] {
        upload_and_promote(&srv, &fixture(f), &["staging", "prod"]);
    }
    let token = create_token(
        &srv,
        serde_json::json!({"name": "prod-hosts", "permissions": ["read:prod"]}),
    );
    let repo = get_as(&format!("{}/rpm/prod.repo", srv.url), Some(&token)).text();
    assert!(repo.contains("password=TOKEN"), "{repo}");

    // As served (placeholder password): refused.
    let dnf = Dnf::new();
    dnf.add_repo_file("forklift-prod", &repo);
    let out = dnf
        .cmd()
        .args(["install", "forklift-demo"])
        .output()
        .expect("dnf");
    assert!(!out.status.success(), "dnf installed without credentials");
    assert_eq!(
        dnf.installed("forklift-demo"),
        "package forklift-demo is not installed"
    );
    // Without any credentials lines at all: refused too.
    let anonymous: String = repo
        .lines()
        .filter(|l| !l.starts_with("username=") && !l.starts_with("password="))
        .map(|l| format!("{l}\n"))
        .collect();
    dnf.add_repo_file("forklift-prod", &anonymous);
    let out = dnf
        .cmd()
        .args(["install", "forklift-demo"])
        .output()
        .expect("dnf");
    assert!(!out.status.success(), "dnf installed anonymously");

    // With the token: installs, repodata signature checked as usual.
    dnf.add_repo_file(
        "forklift-prod",
        &repo.replace("password=TOKEN", &format!("password={token}")),
    );
    dnf.run(&["install", "forklift-demo"]);
    assert_eq!(dnf.installed("forklift-demo"), "forklift-demo-1.0-1.x86_64");
}
