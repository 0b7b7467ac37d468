//! Dependency closure as a promotion gate (`check_dependencies` in prod's
//! policy): refusal with what would help, promotion together with real dnf and
//! apt installs, an admin's recorded force, automatic runs that skip; and the
//! verdict against `dnf repoclosure` and `dose-distcheck` on the same sets.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::process::Command;

use common::apt::{apt_available, Apt};
use common::dnf::{dnf_available, Dnf};
use common::*;
use rpm::{BuildConfig, CompressionType, Dependency, FileOptions, PackageBuilder};

/// `name`, or `name op version`, as the rpm crate spells it.
fn dep(text: &str) -> Dependency {
    let p: Vec<&str> = text.split_whitespace().collect();
    match p.as_slice() {
        [n] => Dependency::any(*n),
        [n, ">=", v] => Dependency::greater_eq(*n, *v),
        [n, "=", v] => Dependency::eq(*n, *v),
        [n, "<=", v] => Dependency::less_eq(*n, *v),
        _ => panic!("dependency {text:?}"),
    }
}

/// A small x86_64 RPM with one program, requiring and providing what it says.
fn build_rpm(name: &str, version: &str, requires: &[&str], provides: &[&str]) -> Vec<u8> {
    let mut b = PackageBuilder::new(name, version, "MIT", "x86_64", "closure test");
    b.release("1")
        .using_config(BuildConfig::v4().compression(CompressionType::Gzip));
    b.with_file_contents(
        format!("#!/bin/true\n{name} {version}\n"),
        FileOptions::new(format!("/usr/bin/{name}")).permissions(0o755),
    )
    .expect("file");
    // Outside primary.xml's files: met from the full file list, as dnf does.
    b.with_file_contents(
        "data\n",
        FileOptions::new(format!("/usr/share/{name}/data")),
    )
    .expect("file");
    for r in requires {
        b.requires(dep(r));
    }
    for p in provides {
        b.provides(dep(p));
    }
    let mut out = Vec::new();
    b.build().expect("build").write(&mut out).expect("write");
    out
}

fn checked_prod(l: &mut forklift::config::Layer) {
    l.policies = Some(
        [(
            "prod".to_string(),
            forklift::policy::PolicySpec {
                check_dependencies: Some(true),
                ..Default::default()
            },
        )]
        .into(),
    );
}

/// Uploads `bytes` as `file` into qa and promotes it to staging; its id.
fn to_staging(srv: &TestServer, file: &str, bytes: &[u8]) -> String {
    let r = upload_bytes(srv, file, bytes);
    assert_eq!(r.status, 201, "{file}: {}", r.text());
    let id = r.json()["id"].as_str().expect("id").to_string();
    assert_eq!(promote(srv, &id, "staging").status, 200);
    id
}

fn bulk(srv: &TestServer, to: &str, ids: &[&str], force: bool) -> Resp {
    post_json(
        &srv.api(&format!("/channels/{to}/promote")),
        serde_json::json!({ "packages": ids, "force": force }),
    )
}

/// The gate's verdict on a whole channel: (file name, unmet requirement).
fn our_verdict(srv: &TestServer, channel: &str) -> BTreeSet<(String, String)> {
    let mut conn = srv.ctx.conn().expect("conn");
    let members: HashSet<String> =
        forklift::service::catalog::queries::open_members(&mut conn, channel)
            .expect("members")
            .into_iter()
            .collect();
    let all: Vec<String> = members.iter().cloned().collect();
    let input = forklift::service::publish::GateInput {
        channel,
        source: None,
        members: &members,
        added: &all,
        removed: &[],
    };
    forklift::service::promotion::closure::evaluate(&srv.ctx, &mut conn, &input)
        .expect("evaluate")
        .missing
        .into_iter()
        .map(|m| (m.required_by.filename, m.capability))
        .collect()
}

fn rpm_gate_refuses_offers_and_takes_along(b: Backend) {
    let Some(srv) = TestServer::start_with(b, checked_prod) else {
        return;
    };
    let lib1 = to_staging(
        &srv,
        "libfoo-1.0-1.x86_64.rpm",
        &build_rpm("libfoo", "1.0", &[], &[]),
    );
    let app1 = to_staging(
        &srv,
        "app-1.0-1.x86_64.rpm",
        &build_rpm(
            "app",
            "1.0",
            &["libfoo >= 1", "/usr/share/libfoo/data"],
            &[],
        ),
    );
    let r = bulk(&srv, "prod", &[&lib1, &app1], false);
    assert_eq!(r.status, 200, "{}", r.text());
    let lib2 = to_staging(
        &srv,
        "libfoo-2.0-1.x86_64.rpm",
        &build_rpm("libfoo", "2.0", &[], &[]),
    );
    let app2 = to_staging(
        &srv,
        "app-2.0-1.x86_64.rpm",
        &build_rpm("app", "2.0", &["libfoo >= 2"], &[]),
    );

    // Alone, app 2.0 would break prod: refused, naming what would do.
    for r in [
        promote(&srv, &app2, "prod"),
        bulk(&srv, "prod", &[&app2], false),
    ] {
        assert_eq!(r.status, 422, "{}", r.text());
        assert_eq!(r.error_code(), "dependencies_unsatisfied");
        let m = &r.json()["details"]["missing"][0];
        assert_eq!(m["capability"], "libfoo >= 2", "{}", r.text());
        assert_eq!(m["required_by"]["id"].as_str(), Some(app2.as_str()));
        assert_eq!(m["offered"][0]["id"].as_str(), Some(lib2.as_str()));
        assert_eq!(m["offered"][0]["filename"], "libfoo-2.0-1.x86_64.rpm");
        assert!(r.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("libfoo >= 2"));
    }
    // Taken along, it goes.
    let r = bulk(&srv, "prod", &[&app2, &lib2], false);
    assert_eq!(r.status, 200, "{}", r.text());

    // A build needing what nothing provides: automatic runs skip it and the
    // candidates list says why.
    let app3 = to_staging(
        &srv,
        "app-3.0-1.x86_64.rpm",
        &build_rpm("app", "3.0", &["libbar"], &[]),
    );
    let c = get(&srv.api("/channels/prod/candidates")).json();
    let blocked = c["blocked"].as_array().expect("blocked");
    let app3_entry = blocked
        .iter()
        .find(|x| x["id"] == app3.as_str())
        .expect("app3 blocked");
    let why = app3_entry["blockers"]
        .as_array()
        .expect("blockers")
        .iter()
        .find(|b| b["reason"] == "unsatisfied_dependencies")
        .expect("unsatisfied_dependencies");
    assert_eq!(why["missing"][0], "libbar");
    let policy = {
        let mut conn = srv.ctx.conn().expect("conn");
        forklift::service::catalog::queries::load_policy(&mut conn, &srv.config.channels, "prod")
            .expect("policy")
    };
    let run = forklift::service::promotion::candidates::auto_promote(&srv.ctx, &policy)
        .expect("auto run");
    assert!(run.promoted.is_empty(), "{run:?}");

    // An admin's force lets it through, and the event says what was let through.
    let r = post_json(
        &srv.api(&format!("/packages/{app3}/promote")),
        serde_json::json!({ "to": "prod", "force": true }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let promoted = history(&srv, &app3)
        .into_iter()
        .find(|e| e["kind"] == "promoted" && e["channel"] == "prod")
        .expect("promoted event");
    assert_eq!(
        promoted["detail"]["forced_dependencies"][0]["capability"], "libbar",
        "{promoted}"
    );
    // Demotions are never refused: the emergency exit.
    let r = demote(&srv, &app3, "prod", "needs libbar");
    assert_eq!(r.status, 200, "{}", r.text());

    // A real dnf installs app with the library it needs.
    if dnf_available() {
        let dnf = Dnf::new();
        dnf.add_repo_file("prod", &get(&format!("{}/rpm/prod.repo", srv.url)).text());
        dnf.run(&["install", "app"]);
        assert_eq!(dnf.installed("app"), "app-2.0-1.x86_64");
        assert_eq!(dnf.installed("libfoo"), "libfoo-2.0-1.x86_64");
    }
    // The gate agrees with dnf repoclosure on staging (app 3.0 lacks libbar).
    if let Some(theirs) = repoclosure(&format!("{}/rpm/staging/", srv.url)) {
        let ours = our_verdict(&srv, "staging");
        assert_eq!(ours, theirs);
        assert!(ours.contains(&("app-3.0-1.x86_64.rpm".into(), "libbar".into())));
    }
    // Demoting what app 2.0 needs is not refused either; the event says so.
    let r = demote(&srv, &lib2, "prod", "corrupts data");
    assert_eq!(r.status, 200, "{}", r.text());
    let demoted = history(&srv, &lib2)
        .into_iter()
        .find(|e| e["kind"] == "demoted" && e["channel"] == "prod")
        .expect("demoted event");
    let left = &demoted["detail"]["leaves_unsatisfied"][0];
    assert_eq!(left["capability"], "libfoo >= 2", "{demoted}");
    assert_eq!(left["required_by"].as_str(), Some(app2.as_str()));
}

both_backends!(rpm_gate_refuses_offers_and_takes_along);

/// `dnf repoclosure` over one repository: (file name, unresolved requirement).
/// None when the plugin is missing locally (a failure in CI).
fn repoclosure(url: &str) -> Option<BTreeSet<(String, String)>> {
    let plugin = require_tool("dnf")
        && Command::new("dnf")
            .args(["repoclosure", "--help"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !plugin {
        assert!(
            !in_ci(),
            "dnf repoclosure (dnf-plugins-core) is required in CI"
        );
        eprintln!("SKIPPED: dnf repoclosure not installed");
        return None;
    }
    let cache = tempfile::tempdir().expect("cache");
    let empty = tempfile::tempdir().expect("reposdir");
    let out = Command::new("dnf")
        .args([
            "-q",
            "--releasever=12",
            "--disableplugin=*",
            "--enableplugin=repoclosure",
        ])
        .arg(format!("--setopt=cachedir={}", cache.path().display()))
        .arg(format!("--setopt=reposdir={}", empty.path().display()))
        .arg(format!("--repofrompath=r,{url}"))
        .args(["--repo=r", "repoclosure"])
        .output()
        .expect("dnf repoclosure");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut set = BTreeSet::new();
    let mut package = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("package: ") {
            let nevra = rest.rsplit_once(" from ").map_or(rest, |(n, _)| n);
            // name-E:V-R.arch → name-V-R.arch.rpm, as Forklift names files.
            package = match nevra.split_once(':') {
                Some((head, tail)) => format!(
                    "{}{tail}.rpm",
                    head.trim_end_matches(|c: char| c.is_ascii_digit())
                ),
                None => format!("{nevra}.rpm"),
            };
        } else if line.starts_with("    ") && !package.is_empty() {
            set.insert((package.clone(), line.trim().to_string()));
        }
    }
    Some(set)
}

/// The 39 real RPMs of the shared corpus in one channel: the gate's unmet
/// requirements are repoclosure's, with no base system configured.
#[test]
fn corpus_verdict_matches_repoclosure() {
    let Some(dir) = corpus_dir() else {
        return;
    };
    let Some(srv) = TestServer::start(Backend::Sqlite) else {
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "rpm"))
        .collect();
    files.sort();
    let mut accepted = 0;
    for f in &files {
        if upload(&srv, f, Some("qa")).status == 201 {
            accepted += 1;
        }
    }
    assert!(accepted > 20, "{accepted}");
    let Some(theirs) = repoclosure(&format!("{}/rpm/qa/", srv.url)) else {
        return;
    };
    let ours = our_verdict(&srv, "qa");
    let only_ours: Vec<_> = ours.difference(&theirs).collect();
    // The one known difference (docs/promotion.md): libsolv reads `(A if B)`
    // as needing A whatever B; the gate, as met while nothing provides B.
    let only_theirs: Vec<_> = theirs
        .difference(&ours)
        .filter(|(_, cap)| !cap.contains(" if "))
        .collect();
    assert!(theirs.iter().any(|(_, cap)| cap.contains(" if ")));
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "only the gate: {only_ours:#?}\nonly repoclosure: {only_theirs:#?}"
    );
    assert!(ours.len() > 10, "{}", ours.len());
}

fn deb(package: &str, version: &str, arch: &str, extra: &str) -> Vec<u8> {
    mini_deb(&format!(
        "Package: {package}\nVersion: {version}\nArchitecture: {arch}\n\
         Maintainer: Test <t@example.com>\n{extra}Description: closure test\n"
    ))
}

/// The same for .debs: alternatives, versions and a virtual package; apt
/// installs from the channel; dose-distcheck agrees on a broken set.
#[test]
fn deb_gate_with_apt_and_dose() {
    let Some(mut srv) = TestServer::start_with(Backend::Sqlite, checked_prod) else {
        return;
    };
    let lib = to_staging(
        &srv,
        "libfoo2_2.0-1_amd64.deb",
        &deb("libfoo2", "2.0-1", "amd64", "Provides: libfoo-abi (= 2)\n"),
    );
    let app = to_staging(
        &srv,
        "app_1.0-1_amd64.deb",
        &deb(
            "app",
            "1.0-1",
            "amd64",
            "Depends: libfoo2 (>= 2.0) | libfoo-compat, libfoo-abi (>= 2)\n",
        ),
    );
    let r = promote(&srv, &app, "prod");
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.error_code(), "dependencies_unsatisfied");
    let missing = r.json()["details"]["missing"].clone();
    let caps: BTreeSet<&str> = missing
        .as_array()
        .expect("missing")
        .iter()
        .filter_map(|m| m["capability"].as_str())
        .collect();
    assert_eq!(
        caps,
        BTreeSet::from(["libfoo2 (>= 2.0) | libfoo-compat", "libfoo-abi (>= 2)"])
    );
    for m in missing.as_array().expect("missing") {
        assert_eq!(m["offered"][0]["id"].as_str(), Some(lib.as_str()), "{m}");
    }
    let r = bulk(&srv, "prod", &[&app, &lib], false);
    assert_eq!(r.status, 200, "{}", r.text());

    // A broken set in staging: dose-distcheck and the gate name the same.
    to_staging(
        &srv,
        "orphan_1.0-1_all.deb",
        &deb(
            "orphan",
            "1.0-1",
            "all",
            "Depends: nothere (>= 1) | alsonot, app (>= 2)\n",
        ),
    );
    let ours = our_verdict(&srv, "staging");
    assert_eq!(
        ours,
        BTreeSet::from([
            (
                "orphan_1.0-1_all.deb".into(),
                "nothere (>= 1) | alsonot".into()
            ),
            ("orphan_1.0-1_all.deb".into(), "app (>= 2)".into()),
        ])
    );
    if let Some(theirs) = dose_broken(&srv, "staging") {
        let ours_pkgs: BTreeSet<String> = ours.iter().map(|(f, _)| f.clone()).collect();
        assert_eq!(
            theirs,
            BTreeSet::from(["orphan".to_string()]),
            "{ours_pkgs:?}"
        );
    }
    // Builds stored before the table existed: read at the next start.
    let facts = |srv: &TestServer| -> i64 {
        use diesel::{QueryDsl, RunQueryDsl};
        let mut conn = srv.ctx.conn().expect("conn");
        forklift::db::schema::package_deps::table
            .count()
            .get_result(&mut *conn)
            .expect("count")
    };
    let before = facts(&srv);
    {
        use diesel::RunQueryDsl;
        let mut conn = srv.ctx.conn().expect("conn");
        diesel::sql_query("DELETE FROM package_deps")
            .execute(&mut *conn)
            .expect("forget");
    }
    srv.restart(|_| {});
    assert_eq!(facts(&srv), before);
    assert_eq!(our_verdict(&srv, "staging"), ours);

    if !apt_available() {
        return;
    }
    let apt = Apt::new();
    let key = apt.path("forklift.asc");
    std::fs::write(&key, get(&format!("{}/keys/forklift.asc", srv.url)).body).expect("key");
    apt.set_sources(&format!(
        "deb [signed-by={}] {}/deb prod main",
        key.display(),
        srv.url
    ));
    let (ok, out) = apt.update();
    assert!(ok, "apt-get update failed:\n{out}");
    let sim = run(apt.cmd("apt-get").args(["install", "-s", "app"]));
    assert!(sim.contains("Inst libfoo2 (2.0-1"), "{sim}");
    assert!(sim.contains("Inst app (1.0-1"), "{sim}");
    // And for real, into the private dpkg root.
    std::fs::create_dir_all(apt.path("var/log/apt")).expect("log dir");
    let r = apt.path("");
    let root = format!("-oDPkg::Options::=--root={}", r.display());
    let log = format!("-oDPkg::Options::=--log={}", apt.path("dpkg.log").display());
    run(apt.cmd("apt-get").args([
        "install",
        "-y",
        "-q",
        &root,
        &log,
        "-oDPkg::Options::=--force-not-root",
        "-oDPkg::Options::=--force-script-chrootless",
        "app",
    ]));
    let status = std::fs::read_to_string(apt.path("var/lib/dpkg/status")).expect("status");
    assert!(
        status.contains("Package: app\nStatus: install ok installed"),
        "{status}"
    );
    assert!(
        status.contains("Package: libfoo2\nStatus: install ok installed"),
        "{status}"
    );
}

/// Binary packages dose-distcheck finds not installable in a suite.
fn dose_broken(srv: &TestServer, suite: &str) -> Option<BTreeSet<String>> {
    if !require_tool("dose-distcheck") {
        return None;
    }
    let packages = get(&format!(
        "{}/deb/dists/{suite}/main/binary-amd64/Packages",
        srv.url
    ));
    assert_eq!(packages.status, 200);
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("Packages");
    std::fs::write(&file, &packages.body).expect("Packages");
    let out = Command::new("dose-distcheck")
        .args(["-f", "-e", "--deb-native-arch=amd64"])
        .arg(format!("deb://{}", file.display()))
        .output()
        .expect("dose-distcheck");
    let text = String::from_utf8_lossy(&out.stdout);
    // Each report's own "  package: NAME"; a reason's are indented deeper.
    Some(
        text.lines()
            .filter_map(|l| l.strip_prefix("  package: "))
            .map(|s| s.trim().to_string())
            .collect(),
    )
}
