//! Real apt against a running Forklift: signed suites (signed-by, never
//! trusted=yes), promotion and demotion with the served pin file, tampered
//! metadata rejected, and `apt-cache show` fidelity against apt-ftparchive.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::apt::*;
use common::*;

const HELLO10: &str = "forklift-hello_1.0-1_amd64.deb";
const HELLO11: &str = "forklift-hello_1.1-1_amd64.deb";
const COMMON: &str = "forklift-common_1.0-1_all.deb";
const EPOCH: &str = "forklift-epoch_0.5-1_all.deb";

fn key_file(srv: &TestServer, apt: &Apt) -> PathBuf {
    let key = get(&format!("{}/keys/forklift.asc", srv.url));
    assert_eq!(key.status, 200);
    assert!(key
        .text()
        .starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    let path = apt.path("forklift.asc");
    std::fs::write(&path, &key.body).expect("key");
    path
}

fn apt_follows_promotion_and_demotion(b: Backend) {
    if !apt_available() {
        return;
    }
    let Some(srv) = TestServer::start(b) else {
        return;
    };
    for f in [HELLO10, COMMON, EPOCH] {
        let r = upload(&srv, &deb_fixture(f), Some("qa"));
        assert_eq!(r.status, 201, "{f}: {}", r.text());
        assert_eq!(r.json()["kind"], "deb");
        for to in ["staging", "prod"] {
            assert_eq!(promote(&srv, f, to).status, 200, "{f} → {to}");
        }
    }
    let apt = Apt::new();
    let key = key_file(&srv, &apt);
    apt.set_sources(&format!(
        "deb [signed-by={}] {}/deb prod main",
        key.display(),
        srv.url
    ));
    let (ok, out) = apt.update();
    assert!(ok, "apt-get update failed:\n{out}");
    assert_eq!(apt.candidate("forklift-hello"), "1.0-1");
    assert_eq!(apt.candidate("forklift-epoch"), "2:0.5-1");

    // Download verifies size and hashes against the signed index.
    run(apt
        .cmd("apt-get")
        .args(["download", "-q", "forklift-hello"]));
    let got = std::fs::read(apt.path("download").join(HELLO10)).expect("downloaded deb");
    assert_eq!(got, std::fs::read(deb_fixture(HELLO10)).expect("fixture"));
    let sim = run(apt.cmd("apt-get").args(["install", "-s", "forklift-hello"]));
    assert!(
        sim.contains("Inst forklift-hello (1.0-1 Forklift:prod"),
        "{sim}"
    );

    // A newer build reaches prod: apt sees it after update.
    upload_and_promote(&srv, &deb_fixture(HELLO11), &["staging", "prod"]);
    let (ok, out) = apt.update();
    assert!(ok, "{out}");
    assert_eq!(apt.candidate("forklift-hello"), "1.1-1");
    // 1.1 depends on forklift-common, which prod also serves.
    let sim = run(apt.cmd("apt-get").args(["install", "-s", "forklift-hello"]));
    assert!(sim.contains("Inst forklift-common (1.0-1"), "{sim}");
    assert!(sim.contains("Inst forklift-hello (1.1-1"), "{sim}");

    // The host installs 1.1; then 1.1 is demoted. Without the pin apt keeps the
    // installed 1.1; with the served pin file the channel's 1.0 is the candidate.
    std::fs::write(
        apt.path("var/lib/dpkg/status"),
        "Package: forklift-hello\nStatus: install ok installed\nPriority: optional\n\
         Section: utils\nMaintainer: Test <t@example.com>\nArchitecture: amd64\n\
         Version: 1.1-1\nDescription: installed\n\n",
    )
    .expect("status");
    let r = demote(&srv, HELLO11, "prod", "regression");
    assert_eq!(r.status, 200);
    let (ok, out) = apt.update();
    assert!(ok, "{out}");
    assert_eq!(apt.candidate("forklift-hello"), "1.1-1");
    let pref = get(&format!("{}/deb/prod.pref", srv.url));
    assert_eq!(pref.status, 200);
    std::fs::write(
        apt.path("etc/apt/preferences.d/forklift-prod.pref"),
        &pref.body,
    )
    .expect("pref");
    assert_eq!(apt.candidate("forklift-hello"), "1.0-1");

    // The deb822 file is served and names the suite.
    let sources = get(&format!("{}/deb/prod.sources", srv.url)).text();
    assert!(
        sources.contains("Suites: prod") && sources.contains(&format!("URIs: {}/deb", srv.url))
    );
}

both_backends!(apt_follows_promotion_and_demotion);

/// Copies what a suite serves (dists and pool) into a directory for file:// use.
fn mirror_suite(srv: &TestServer, channel: &str, files: &[&str], into: &Path) {
    let base = format!("{}/deb/dists/{channel}", srv.url);
    let dists = into.join("dists").join(channel);
    std::fs::create_dir_all(dists.join("main/binary-amd64")).expect("mkdir");
    for name in ["InRelease", "Release", "Release.gpg"] {
        let r = get(&format!("{base}/{name}"));
        assert_eq!(r.status, 200, "{name}");
        std::fs::write(dists.join(name), &r.body).expect("write");
    }
    for name in ["Packages", "Packages.gz", "Release"] {
        let r = get(&format!("{base}/main/binary-amd64/{name}"));
        assert_eq!(r.status, 200, "{name}");
        std::fs::write(dists.join("main/binary-amd64").join(name), &r.body).expect("write");
    }
    let list = get(&srv.api(&format!("/packages?channel={channel}"))).json();
    assert_eq!(list.as_array().expect("list").len(), files.len());
}

#[test]
fn tampered_release_files_are_rejected() {
    if !apt_available() {
        return;
    }
    let Some(srv) = TestServer::start(Backend::Sqlite) else {
        return;
    };
    assert_eq!(upload(&srv, &deb_fixture(COMMON), Some("qa")).status, 201);
    let apt = Apt::new();
    let key = key_file(&srv, &apt);
    let mirror = tempfile::tempdir().expect("mirror");
    mirror_suite(&srv, "qa", &[COMMON], mirror.path());
    let line = format!(
        "deb [signed-by={}] file://{} qa main",
        key.display(),
        mirror.path().display()
    );
    apt.set_sources(&line);
    let (ok, out) = apt.update();
    assert!(ok, "the untouched copy must verify:\n{out}");

    let dists = mirror.path().join("dists/qa");
    let original = std::fs::read_to_string(dists.join("InRelease")).expect("inrelease");
    // Change the signed text (a hash line) without re-signing.
    let tampered = original.replacen("Label: Forklift", "Label: Forkl1ft", 1);
    assert_ne!(tampered, original);
    std::fs::write(dists.join("InRelease"), tampered).expect("tamper");
    let fresh = Apt::new();
    fresh.set_sources(&line);
    let (ok, out) = fresh.update();
    assert!(!ok, "a tampered InRelease was accepted:\n{out}");

    // Without InRelease apt falls back to Release + Release.gpg: tamper Release.
    std::fs::remove_file(dists.join("InRelease")).expect("rm");
    let release = std::fs::read_to_string(dists.join("Release")).expect("release");
    std::fs::write(
        dists.join("Release"),
        release.replacen("Suite: qa", "Suite: qa ", 1),
    )
    .expect("tamper");
    let fresh = Apt::new();
    fresh.set_sources(&line);
    let (ok, out) = fresh.update();
    assert!(
        !ok,
        "a Release not matching Release.gpg was accepted:\n{out}"
    );
    // The genuine Release with a damaged Release.gpg: one character of the
    // signature's body changed.
    std::fs::write(dists.join("Release"), &release).expect("restore");
    let gpg = std::fs::read_to_string(dists.join("Release.gpg")).expect("release.gpg");
    let body_line = gpg
        .lines()
        .position(|l| l.len() > 40 && !l.contains(':'))
        .expect("armored body");
    let damaged: Vec<String> = gpg
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == body_line + 2 {
                let mut c: Vec<char> = l.chars().collect();
                c[10] = if c[10] == 'A' { 'B' } else { 'A' };
                c.into_iter().collect()
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(dists.join("Release.gpg"), damaged.join("\n") + "\n").expect("tamper");
    let fresh = Apt::new();
    fresh.set_sources(&line);
    let (ok, out) = fresh.update();
    assert!(!ok, "a damaged Release.gpg was accepted:\n{out}");
    std::fs::write(dists.join("Release.gpg"), &gpg).expect("restore");
    // And the genuine pair verifies.
    let fresh = Apt::new();
    fresh.set_sources(&line);
    let (ok, out) = fresh.update();
    assert!(ok, "Release + Release.gpg must verify:\n{out}");
}

/// `apt-cache show` of every fixture: identical from Forklift's signed suite and
/// from an apt-ftparchive repository of the same files, except Filename (each
/// repository lays out its pool its own way).
#[test]
fn apt_cache_show_matches_apt_ftparchive() {
    if !apt_available() {
        return;
    }
    let Some(srv) = TestServer::start(Backend::Sqlite) else {
        return;
    };
    // Every fixture .deb; apt-cache show lists all three forklift-hello versions.
    let names = [
        HELLO10,
        HELLO11,
        "forklift-hello_2.0-1_amd64.deb",
        COMMON,
        EPOCH,
    ];
    for f in names {
        assert_eq!(upload(&srv, &deb_fixture(f), Some("qa")).status, 201);
    }
    let ours = Apt::new();
    let key = key_file(&srv, &ours);
    ours.set_sources(&format!(
        "deb [signed-by={}] {}/deb qa main",
        key.display(),
        srv.url
    ));
    let (ok, out) = ours.update();
    assert!(ok, "{out}");

    let refdir = tempfile::tempdir().expect("ref repo");
    for f in names {
        std::fs::copy(deb_fixture(f), refdir.path().join(f)).expect("copy");
    }
    let packages = run(Command::new("apt-ftparchive")
        .arg("packages")
        .arg(".")
        .current_dir(refdir.path()));
    std::fs::write(refdir.path().join("Packages"), packages).expect("Packages");
    let theirs = Apt::new();
    theirs.set_sources(&format!(
        "deb [trusted=yes] file://{} ./",
        refdir.path().display()
    ));
    let (ok, out) = theirs.update();
    assert!(ok, "{out}");

    let show = |apt: &Apt, pkg: &str| -> String {
        run(apt.cmd("apt-cache").args(["show", pkg]))
            .lines()
            .filter(|l| !l.starts_with("Filename:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for pkg in ["forklift-hello", "forklift-common", "forklift-epoch"] {
        let a = show(&ours, pkg);
        let b = show(&theirs, pkg);
        assert!(a.contains("SHA256:"), "{a}");
        if pkg == "forklift-hello" {
            assert_eq!(a.matches("Package: forklift-hello").count(), 3, "{a}");
        }
        assert_eq!(a, b, "apt-cache show {pkg} differs");
    }
}

/// Key rotation: with the next key configured, both public keys are published
/// and everything is signed by both, so a host that trusts only the old key and
/// one that trusts only the new key both verify (apt and dnf).
#[test]
fn key_rotation_verifies_with_either_key() {
    if !apt_available() || !require_tool("dnf") {
        return;
    }
    let next_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("forklift-test-key-next");
    let next_signer =
        forklift::signing::Signer::load_or_generate(None, None, &next_dir).expect("next key");
    let next_path = forklift::signing::default_key_path(&next_dir);
    // Channels published before the rotation starts...
    let Some(mut srv) = TestServer::start(Backend::Sqlite) else {
        return;
    };
    assert_eq!(upload(&srv, &deb_fixture(COMMON), Some("qa")).status, 201);
    assert_eq!(
        upload(&srv, &fixture("forklift-lib-1.0-1.noarch.rpm"), Some("qa")).status,
        201
    );
    {
        // ...are signed by the old key only: a host holding just the next key fails.
        let apt = Apt::new();
        let key = apt.path("next-only.asc");
        std::fs::write(&key, next_signer.public_key_armored()).expect("key");
        apt.set_sources(&format!(
            "deb [signed-by={}] {}/deb qa main",
            key.display(),
            srv.url
        ));
        let (ok, out) = apt.update();
        assert!(!ok, "apt accepted a suite signed by another key:\n{out}");
    }
    // The next key is configured: the restart re-signs the unchanged channels.
    let head_before = get(&srv.api("/channels/qa")).json()["revision"].clone();
    srv.restart(|c| c.signing_key_next = Some(next_path.clone()));
    let qa = get(&srv.api("/channels/qa")).json();
    assert_ne!(qa["revision"], head_before, "qa was not re-signed: {qa}");
    let old_signer = forklift::signing::Signer::load(&signing_key(), None).expect("old key");
    let served = get(&format!("{}/keys/forklift.asc", srv.url)).text();
    let listed = run(Command::new("gpg")
        .args(["--show-keys", "--with-colons"])
        .arg({
            let p = tempfile::NamedTempFile::new().expect("tmp");
            std::fs::write(p.path(), &served).expect("write");
            p.into_temp_path().keep().expect("keep")
        }));
    for fp in old_signer
        .fingerprints()
        .iter()
        .chain(next_signer.fingerprints())
    {
        assert!(
            listed.contains(fp.as_str()),
            "{fp} not published:\n{listed}"
        );
    }

    for only in [
        old_signer.public_key_armored(),
        next_signer.public_key_armored(),
    ] {
        let apt = Apt::new();
        let key = apt.path("one-key.asc");
        std::fs::write(&key, only).expect("key");
        apt.set_sources(&format!(
            "deb [signed-by={}] {}/deb qa main",
            key.display(),
            srv.url
        ));
        let (ok, out) = apt.update();
        assert!(ok, "apt with one of the two keys failed:\n{out}");
        assert_eq!(apt.candidate("forklift-common"), "1.0-1");

        let root = tempfile::tempdir().expect("dnf root");
        let repos = root.path().join("repos");
        std::fs::create_dir_all(&repos).expect("mkdir");
        std::fs::write(
            repos.join("f.repo"),
            format!(
                "[f]\nname=f\nbaseurl={}/rpm/qa/\nrepo_gpgcheck=1\ngpgcheck=0\ngpgkey=file://{}\n",
                srv.url,
                key.display()
            ),
        )
        .expect("repo");
        let out = run(Command::new("dnf")
            .args(["-y", "-q", "--noplugins", "--refresh", "--releasever=12"])
            .arg(format!("--installroot={}", root.path().display()))
            .arg(format!("--setopt=reposdir={}", repos.display()))
            .args([
                "--setopt=skip_if_unavailable=False",
                "repoquery",
                "forklift-lib",
            ]));
        assert!(out.contains("forklift-lib-0:1.0-1.noarch"), "{out}");
    }
}

/// With a validity configured, Release carries Valid-Until and the suite is
/// re-signed (a new revision, same packages) before it lapses.
#[test]
fn valid_until_is_renewed_before_it_lapses() {
    if !apt_available() {
        return;
    }
    let Some(srv) =
        TestServer::start_with(Backend::Sqlite, |l| l.apt_valid_for = Some("4s".into()))
    else {
        return;
    };
    assert_eq!(upload(&srv, &deb_fixture(COMMON), Some("qa")).status, 201);
    let release = |srv: &TestServer| get(&format!("{}/deb/dists/qa/Release", srv.url)).text();
    let field = |text: &str, name: &str| -> i64 {
        let v = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {text}"));
        chrono::DateTime::parse_from_rfc2822(&v.replace("UTC", "+0000"))
            .expect("date")
            .timestamp()
    };
    let first = release(&srv);
    assert_eq!(field(&first, "Valid-Until") - field(&first, "Date"), 4);
    let apt = Apt::new();
    let key = key_file(&srv, &apt);
    apt.set_sources(&format!(
        "deb [signed-by={}] {}/deb qa main",
        key.display(),
        srv.url
    ));
    let (ok, out) = apt.update();
    assert!(ok, "{out}");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let renewed = loop {
        let now = release(&srv);
        if field(&now, "Valid-Until") > field(&first, "Valid-Until") {
            break now;
        }
        assert!(std::time::Instant::now() < deadline, "never re-signed");
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    assert!(field(&renewed, "Date") > field(&first, "Date"));
    let revs = get(&srv.api("/channels/qa/revisions")).json();
    assert!(revs[0]["summary"]
        .as_str()
        .expect("summary")
        .starts_with("re-sign"));
    assert_eq!(revs[0]["package_count"], 1);
    let (ok, out) = apt.update();
    assert!(ok, "{out}");
}

/// A private suite: apt-get update fails without credentials and works with
/// the token in an auth.conf.d entry, as the served .sources file describes.
#[test]
fn apt_reads_a_private_suite_with_auth_conf() {
    if !apt_available() {
        return;
    }
    let Some(srv) = TestServer::start_with(Backend::Sqlite, |l| {
        l.private_channels = Some(vec!["prod".into()]);
    }) else {
        return;
    };
    for f in [HELLO10, COMMON] {
        upload_and_promote(&srv, &deb_fixture(f), &["staging", "prod"]);
    }
    let token = create_token(
        &srv,
        serde_json::json!({"name": "debian-hosts", "permissions": ["read:prod"]}),
    );
    let sources = get_as(&format!("{}/deb/prod.sources", srv.url), Some(&token)).text();
    // The served hint names the exact auth.conf line.
    let machine_line = sources
        .lines()
        .find_map(|l| l.trim_start_matches('#').trim().strip_prefix("machine "))
        .map(|rest| format!("machine {rest}"))
        .unwrap_or_else(|| panic!("no auth.conf hint in:\n{sources}"));

    let apt = Apt::new();
    let key = key_file(&srv, &apt);
    apt.set_sources(&format!(
        "deb [signed-by={}] {}/deb prod main",
        key.display(),
        srv.url
    ));
    let (ok, out) = apt.update();
    assert!(!ok, "apt-get update succeeded without credentials:\n{out}");
    assert!(out.contains("401"), "{out}");

    std::fs::create_dir_all(apt.path("etc/apt/auth.conf.d")).expect("auth.conf.d");
    let conf = apt.path("etc/apt/auth.conf.d/forklift.conf");
    std::fs::write(&conf, machine_line.replace("TOKEN", &token) + "\n").expect("auth.conf");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let (ok, out) = apt.update();
    assert!(ok, "apt-get update with auth.conf failed:\n{out}");
    assert_eq!(apt.candidate("forklift-hello"), "1.0-1");
    run(apt
        .cmd("apt-get")
        .args(["download", "-q", "forklift-hello"]));
    let got = std::fs::read(apt.path("download").join(HELLO10)).expect("downloaded deb");
    assert_eq!(got, std::fs::read(deb_fixture(HELLO10)).expect("fixture"));
}
