//! The operator commands end to end, through the real `forklift` binary:
//! `backup` of a server taking uploads, `restore` into its wiped data
//! directory, dnf and apt installing from the restored server with the
//! original key, every revision answering as before; `fsck` finding a
//! corrupted build, an old orphan and a damaged head, and `--repair`.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::apt::{apt_available, Apt};
use common::dnf::{dnf_available, Dnf};
use common::*;
use forklift::config::Layer;

const HELLO10: &str = "forklift-hello_1.0-1_amd64.deb";

/// What a run of the binary gave.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn forklift(args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_forklift"))
        .args(args)
        .env_remove("FORKLIFT_CONFIG")
        .env_remove("FORKLIFT_DATA_DIR")
        .env_remove("FORKLIFT_DATABASE_URL")
        .env_remove("FORKLIFT_SIGNING_KEY")
        .env("FORKLIFT_LOG", "warn")
        .output()
        .expect("run forklift");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The flags that name a test server's data to the operator commands.
fn target(srv: &TestServer) -> Vec<String> {
    let mut v = vec![
        "--data-dir".to_string(),
        srv.data_dir.path().display().to_string(),
    ];
    if srv.config.database_url.starts_with("postgres") {
        v.push("--database-url".into());
        v.push(srv.config.database_url.clone());
    }
    v
}

fn run_on(srv: &TestServer, args: &[&str]) -> Out {
    let t = target(srv);
    let mut all: Vec<&str> = args.to_vec();
    all.extend(t.iter().map(String::as_str));
    forklift(&all)
}

/// The server's signing key in its data directory, where a generated one
/// lives: a wipe takes it, and the restore must bring it back.
fn key_in_data_dir(l: &mut Layer) {
    let dir = l.data_dir.clone().expect("data dir");
    let to = forklift::signing::default_key_path(&dir);
    std::fs::create_dir_all(to.parent().expect("keys dir")).expect("keys dir");
    std::fs::copy(signing_key(), &to).expect("key");
    l.signing_key = None;
}

/// The number before `word` on the line starting with `prefix`.
fn count_before(text: &str, prefix: &str, word: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{text}"));
    let (head, _) = line
        .split_once(&format!(" {word}"))
        .unwrap_or_else(|| panic!("no {word:?} in {line:?}"));
    let n = head.rsplit([' ', ':']).next().expect("number");
    n.parse()
        .unwrap_or_else(|_| panic!("{n:?} in {line:?} is not a count"))
}

/// Every channel's revision list and every revision, as the API answers
/// them, with the server's own URL taken out (a restarted server has
/// another port).
fn answers(srv: &TestServer) -> Vec<(String, Vec<(i32, serde_json::Value)>)> {
    let channels = srv.config.channels.clone();
    channels
        .into_iter()
        .map(|c| {
            let list = get(&srv.api(&format!("/channels/{c}/revisions")));
            assert_eq!(list.status, 200, "{}", list.text());
            let mut revisions = Vec::new();
            for r in list.json().as_array().expect("list").iter() {
                let n = r["number"].as_i64().expect("number") as i32;
                let detail = get(&srv.api(&format!("/channels/{c}/revisions/{n}")));
                assert_eq!(detail.status, 200, "{}", detail.text());
                let text = detail.text().replace(&srv.url, "URL");
                let mut listed = r.clone();
                listed["detail"] = serde_json::from_str(&text).expect("json");
                revisions.push((n, listed));
            }
            (c, revisions)
        })
        .collect()
}

/// A revision without when it was superseded: the restored head was the
/// head of the snapshot, which later uploads superseded on the live server.
fn unsuperseded(mut v: serde_json::Value) -> serde_json::Value {
    for path in ["", "/detail", "/detail/revision"] {
        if let Some(m) = v.pointer_mut(path).and_then(|o| o.as_object_mut()) {
            m.remove("superseded_at");
        }
    }
    v
}

/// Backup of a live server under uploads; the data directory wiped; restore;
/// the same signed repositories, installed by dnf and apt with the key the
/// server had before; every revision the backup holds answering as the live
/// server did; a second backup copying nothing; a second restore refused.
#[test]
fn backup_under_uploads_restores_what_hosts_install() {
    let (dnf_ok, apt_ok) = (dnf_available(), apt_available());
    let Some(mut srv) = TestServer::start_with(Backend::Sqlite, key_in_data_dir) else {
        return;
    };
    for f in [DEMO10, LIB] {
        upload_and_promote(&srv, &fixture(f), &["staging", "prod"]);
    }
    upload_and_promote(&srv, &deb_fixture(HELLO10), &["staging", "prod"]);
    let key = get(&format!("{}/keys/forklift.asc", srv.url)).body;
    let dest = tempfile::tempdir().expect("dest");
    let dest_s = dest.path().display().to_string();

    // Uploads go on in another thread while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let uploaded = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, uploaded, api) = (stop.clone(), uploaded.clone(), srv.api(""));
        std::thread::spawn(move || {
            for i in 0..60 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let name = format!("load-{i}");
                let r = put_bytes(
                    &format!("{api}/packages/{name}_1.0-1_all.deb?channel=qa"),
                    &build_deb(&name, "1.0-1"),
                );
                assert_eq!(r.status, 201, "{}", r.text());
                uploaded.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    assert!(eventually(Duration::from_secs(60), || uploaded
        .load(Ordering::SeqCst)
        >= 2));
    let backup = run_on(&srv, &["backup", &dest_s]);
    let during = uploaded.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    writer.join().expect("writer");
    assert_eq!(backup.code, 0, "{backup:?}");
    println!("{}", backup.stdout);
    assert!(backup
        .stdout
        .contains("database: sqlite snapshot forklift.db"));
    let referenced = count_before(&backup.stdout, "blobs:", "referenced");
    assert_eq!(
        count_before(&backup.stdout, "blobs:", "copied"),
        referenced,
        "a first backup copies every blob"
    );
    for f in [
        "manifest.json",
        "forklift.db",
        "keys/signing-key.asc",
        "config.toml",
    ] {
        assert!(dest.path().join(f).is_file(), "{f} missing from the backup");
    }
    #[cfg(unix)]
    for secret in ["keys/signing-key.asc", "forklift.db"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dest.path().join(secret))
            .expect("secret")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{secret}");
    }
    let fsck = run_on(&srv, &["fsck"]);
    assert_eq!(fsck.code, 0, "a live server under no damage: {fsck:?}");
    let inside = srv.data_dir.path().join("backup");
    let refused = run_on(&srv, &["backup", &inside.display().to_string()]);
    assert_eq!(
        refused.code, 2,
        "a backup into the data directory: {refused:?}"
    );
    assert!(!inside.exists(), "nothing left behind");

    let before = answers(&srv);
    srv.stop();
    for e in std::fs::read_dir(srv.data_dir.path())
        .expect("data dir")
        .flatten()
    {
        let p = e.path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p).expect("wipe");
        } else {
            std::fs::remove_file(&p).expect("wipe");
        }
    }
    let restore = run_on(&srv, &["restore", &dest_s]);
    assert_eq!(restore.code, 0, "{restore:?}");
    println!("{}", restore.stdout);
    let fingerprint = forklift::signing::fingerprint_of(&signing_key()).expect("fingerprint");
    assert!(restore.stdout.contains(&fingerprint), "{restore:?}");
    assert_eq!(
        count_before(&restore.stdout, "blobs:", "restored"),
        referenced
    );
    let again = run_on(&srv, &["restore", &dest_s]);
    assert_eq!(again.code, 2, "a restore over a restored server: {again:?}");
    assert!(again.stderr.contains("--force"), "{again:?}");
    let forced = run_on(&srv, &["restore", "--force", &dest_s]);
    assert_eq!(forced.code, 0, "{forced:?}");
    assert_eq!(
        count_before(&forced.stdout, "blobs:", "already"),
        referenced
    );

    srv.restart(|_| {});
    let after = answers(&srv);
    let head = |a: &[(String, Vec<(i32, serde_json::Value)>)], c: &str| {
        a.iter()
            .find(|(n, _)| n == c)
            .map(|(_, r)| r[0].0)
            .expect("channel")
    };
    assert!(
        head(&after, "qa") >= head(&before, "qa") - (during as i32 + 1),
        "the snapshot holds what was there before the backup"
    );
    for ((channel, live), (_, restored)) in before.iter().zip(&after) {
        let top = restored[0].0;
        let live: Vec<_> = live.iter().filter(|(n, _)| *n <= top).collect();
        assert_eq!(live.len(), restored.len(), "{channel}: revisions differ");
        for ((n, a), (_, b)) in live.into_iter().zip(restored) {
            if *n == top {
                assert_eq!(
                    unsuperseded(a.clone()),
                    unsuperseded(b.clone()),
                    "{channel} {n}"
                );
            } else {
                assert_eq!(a, b, "{channel} revision {n} answers differently");
            }
        }
    }
    assert_eq!(get(&format!("{}/keys/forklift.asc", srv.url)).body, key);
    let fsck = run_on(&srv, &["fsck"]);
    assert_eq!(fsck.code, 0, "the restored server: {fsck:?}");

    if dnf_ok {
        let dnf = Dnf::new();
        let key_path = dnf.root.path().join("original.asc");
        std::fs::write(&key_path, &key).expect("key");
        let repo = get(&format!("{}/rpm/prod.repo", srv.url)).text().replace(
            &format!("{}/keys/forklift.asc", srv.url),
            &format!("file://{}", key_path.display()),
        );
        assert!(repo.contains("repo_gpgcheck=1") && repo.contains("file://"));
        dnf.add_repo_file("forklift-prod", &repo);
        dnf.run(&["install", "forklift-demo"]);
        assert_eq!(dnf.installed("forklift-demo"), "forklift-demo-1.0-1.x86_64");
    }
    if apt_ok {
        let apt = Apt::new();
        let key_path = apt.path("original.asc");
        std::fs::write(&key_path, &key).expect("key");
        apt.set_sources(&format!(
            "deb [signed-by={}] {}/deb prod main",
            key_path.display(),
            srv.url
        ));
        let (ok, out) = apt.update();
        assert!(ok, "apt-get update from the restored server:\n{out}");
        run(apt
            .cmd("apt-get")
            .args(["download", "-q", "forklift-hello"]));
        let got = std::fs::read(apt.path("download").join(HELLO10)).expect("downloaded");
        assert_eq!(got, std::fs::read(deb_fixture(HELLO10)).expect("fixture"));
    }

    // The restored server holds what the backup does: nothing to copy.
    let second = run_on(&srv, &["backup", &dest_s]);
    assert_eq!(second.code, 0, "{second:?}");
    println!("{}", second.stdout);
    assert_eq!(count_before(&second.stdout, "blobs:", "copied"), 0);
    assert_eq!(
        count_before(&second.stdout, "blobs:", "already"),
        referenced
    );
}

/// Writes `bytes` over the start of a blob file, keeping its size.
fn damage(path: &Path, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open blob");
    f.seek(SeekFrom::Start(16)).expect("seek");
    f.write_all(bytes).expect("damage");
}

fn blob_file(srv: &TestServer, digest: &str) -> std::path::PathBuf {
    srv.data_dir
        .path()
        .join("blobs/sha256")
        .join(&digest[..2])
        .join(digest)
}

/// fsck: clean; then a corrupted build, an old orphan and a damaged
/// repomd.xml found (exit 1); `--repair` removes the orphan and republishes
/// the head but cannot repair the build (exit 1); with the build's bytes
/// back, clean again and the republished repomd.xml verifies.
#[test]
fn fsck_finds_damage_and_repairs_what_it_can() {
    let Some(srv) = TestServer::start_with(Backend::Sqlite, key_in_data_dir) else {
        return;
    };
    let id = upload_and_promote(&srv, &fixture(DEMO10), &[]);
    upload_and_promote(&srv, &deb_fixture(HELLO10), &[]);
    let clean = run_on(&srv, &["fsck"]);
    assert_eq!(clean.code, 0, "{clean:?}");
    assert!(clean.stdout.trim_end().ends_with("clean"), "{clean:?}");

    let rpm = blob_file(&srv, &id);
    damage(&rpm, b"not the build's bytes");
    let orphan_bytes = b"an upload nobody committed".to_vec();
    let orphan = sha256(&orphan_bytes);
    let orphan_path = blob_file(&srv, &orphan);
    std::fs::create_dir_all(orphan_path.parent().expect("dir")).expect("dir");
    std::fs::write(&orphan_path, &orphan_bytes).expect("orphan");
    let old = SystemTime::now() - forklift::service::publish::gc::LEFTOVER_AGE * 2;
    std::fs::File::options()
        .append(true)
        .open(&orphan_path)
        .and_then(|f| f.set_modified(old))
        .expect("age the orphan");
    // A fresh unreferenced blob may be an upload in flight: never flagged.
    let young_bytes = b"an upload in flight".to_vec();
    let young = blob_file(&srv, &sha256(&young_bytes));
    std::fs::create_dir_all(young.parent().expect("dir")).expect("dir");
    std::fs::write(&young, &young_bytes).expect("young");
    let repomd = get(&format!("{}/rpm/qa/repodata/repomd.xml", srv.url)).body;
    let repomd_blob = blob_file(&srv, &sha256(&repomd));
    damage(&repomd_blob, b"<broken/>");

    let found = run_on(&srv, &["fsck"]);
    println!("{}", found.stdout);
    assert_eq!(found.code, 1, "{found:?}");
    assert!(
        found.stdout.contains(&format!("DAMAGED package {DEMO10}")),
        "{found:?}"
    );
    assert!(
        found.stdout.contains(&format!("orphan blob {orphan}")),
        "{found:?}"
    );
    assert!(!found.stdout.contains(&sha256(&young_bytes)), "{found:?}");
    assert!(
        found.stdout.contains("repodata/repomd.xml: blob"),
        "{found:?}"
    );

    let repaired = run_on(&srv, &["fsck", "--repair"]);
    println!("{}", repaired.stdout);
    assert_eq!(repaired.code, 1, "the build stays damaged: {repaired:?}");
    assert!(repaired
        .stdout
        .contains(&format!("repaired: removed orphan blob {orphan}")));
    assert!(
        repaired
            .stdout
            .contains("repaired: republished qa as revision"),
        "{repaired:?}"
    );
    assert!(repaired
        .stdout
        .contains(&format!("not repaired: package {DEMO10}")));
    assert!(!orphan_path.exists(), "the orphan is gone");
    assert!(young.exists(), "the young blob stays");

    std::fs::write(&rpm, fixture_bytes(DEMO10)).expect("the build's bytes back");
    let after = run_on(&srv, &["fsck"]);
    assert_eq!(after.code, 0, "{after:?}");
    let repomd = get(&format!("{}/rpm/qa/repodata/repomd.xml", srv.url));
    let asc = get(&format!("{}/rpm/qa/repodata/repomd.xml.asc", srv.url));
    assert_eq!((repomd.status, asc.status), (200, 200));
    assert!(srv
        .ctx
        .signer
        .signed_by_current_keys(&repomd.body, &asc.text()));
}

/// PostgreSQL: pg_dump of an exported snapshot, pg_restore into a fresh
/// database; the restored server answers every revision as before and
/// checks clean; a restore into the original database is refused.
#[test]
fn postgres_backup_and_restore() {
    let Some(mut srv) = TestServer::start_with(Backend::Postgres, key_in_data_dir) else {
        return;
    };
    if !require_tool("pg_dump") || !require_tool("pg_restore") {
        return;
    }
    upload_and_promote(&srv, &fixture(DEMO10), &["staging"]);
    upload_and_promote(&srv, &deb_fixture(HELLO10), &["staging", "prod"]);
    let dest = tempfile::tempdir().expect("dest");
    let dest_s = dest.path().display().to_string();
    let backup = run_on(&srv, &["backup", &dest_s]);
    assert_eq!(backup.code, 0, "{backup:?}");
    println!("{}", backup.stdout);
    assert!(
        backup
            .stdout
            .contains("postgresql snapshot forklift.pgdump"),
        "{backup:?}"
    );
    let refused = run_on(&srv, &["restore", &dest_s]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("not empty"), "{refused:?}");

    let before = answers(&srv);
    srv.stop();
    let fresh = common::pg::fresh_database(&format!("restored_{}", std::process::id()))
        .expect("a second database");
    for e in std::fs::read_dir(srv.data_dir.path())
        .expect("data dir")
        .flatten()
    {
        let p = e.path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p).expect("wipe");
        } else {
            std::fs::remove_file(&p).expect("wipe");
        }
    }
    srv.config.database_url = fresh.clone();
    let restore = run_on(&srv, &["restore", &dest_s]);
    assert_eq!(restore.code, 0, "{restore:?}");
    println!("{}", restore.stdout);
    srv.restart(|_| {});
    assert_eq!(answers(&srv), before);
    let fsck = run_on(&srv, &["fsck"]);
    assert_eq!(fsck.code, 0, "{fsck:?}");
}
