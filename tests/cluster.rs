//! Several real `forklift serve` processes on one PostgreSQL and one bucket of
//! a real S3-compatible server (moto): uploads and promotions through
//! different instances at once, one instance killed with SIGKILL while it
//! publishes, and then every channel identical and complete from every
//! instance, no acknowledged upload lost, and dnf and apt installing through
//! instance B what was promoted through instance A (B redirects package
//! downloads to presigned URLs, so the clients follow redirects too).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::apt::{apt_available, Apt};
use common::dnf::{dnf_available, Dnf};
use common::receiver::Receiver;
use common::s3::S3Server;
use common::*;

const BUCKET: &str = "forklift-cluster";
const STORAGE: &str = "s3://forklift-cluster/repo";
const CHANNELS: [&str; 3] = ["qa", "staging", "prod"];
const HELLO10: &str = "forklift-hello_1.0-1_amd64.deb";

struct Instance {
    url: String,
    port: u16,
    data: tempfile::TempDir,
    redirects: bool,
    process: Option<KillOnDrop>,
}

impl Instance {
    fn new(redirects: bool) -> Instance {
        let port = free_port();
        Instance {
            url: format!("http://127.0.0.1:{port}"),
            port,
            data: tempfile::tempdir().expect("data dir"),
            redirects,
            process: None,
        }
    }

    fn start(&mut self, database: &str, s3: &S3Server) {
        let log = std::fs::File::create(self.data.path().join("log")).expect("log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_forklift"));
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--data-dir")
            .arg(self.data.path().join("data"))
            .args(["--database-url", database])
            .env("FORKLIFT_LOG", "warn")
            .env("FORKLIFT_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("FORKLIFT_SIGNING_KEY", signing_key())
            .env("FORKLIFT_WEBHOOK_ALLOW_INTERNAL", "true")
            .env("FORKLIFT_WEBHOOK_TICK", "200ms")
            .envs(s3.env(STORAGE))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if self.redirects {
            cmd.env("FORKLIFT_S3_REDIRECT_DOWNLOADS", "5m");
        }
        self.process = Some(KillOnDrop(cmd.spawn().expect("spawn forklift")));
    }

    fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.0.kill().expect("kill -9");
            let _ = p.0.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("log")).unwrap_or_default()
    }

    fn get(&self, path: &str) -> Resp {
        get(&format!("{}{path}", self.url))
    }
}

fn upload_to(url: &str, name: &str, bytes: &[u8]) -> Option<String> {
    let r = ureq::put(&format!("{url}/api/v1/packages/{name}?channel=qa"))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .timeout(Duration::from_secs(120))
        .send_bytes(bytes);
    match r {
        Ok(r) if r.status() == 201 => {
            let v: serde_json::Value = r.into_json().expect("json");
            Some(v["id"].as_str().expect("id").to_string())
        }
        Ok(r) => panic!("upload {name}: {}", r.status()),
        // The instance died under it: not acknowledged.
        Err(ureq::Error::Transport(_)) => None,
        Err(ureq::Error::Status(code, r)) => {
            panic!(
                "upload {name}: {code} {}",
                r.into_string().unwrap_or_default()
            )
        }
    }
}

fn promote_via(inst: &Instance, id: &str, to: &str) {
    let r = json_as(
        "POST",
        &format!("{}/api/v1/packages/{id}/promote", inst.url),
        Some(ADMIN_TOKEN),
        serde_json::json!({ "to": to }),
    );
    assert!(
        r.status < 300,
        "promote {id} to {to}: {} {}",
        r.status,
        r.text()
    );
}

fn ids_in(inst: &Instance, channel: &str) -> BTreeSet<String> {
    let list = inst
        .get(&format!("/api/v1/packages?channel={channel}"))
        .json();
    list.as_array()
        .expect("list")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_string())
        .collect()
}

/// Files a channel publishes, from its signed indexes: (url path, sha256).
fn published_files(inst: &Instance, channel: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let repomd = inst.get(&format!("/rpm/{channel}/repodata/repomd.xml"));
    assert_eq!(repomd.status, 200);
    for href in repomd.text().split("<location href=\"").skip(1) {
        let href = href.split('"').next().expect("href");
        // Data files are named by their checksum.
        let name = href.rsplit('/').next().expect("name");
        let sha = name.split('-').next().expect("sha").to_string();
        out.push((format!("/rpm/{channel}/{href}"), sha));
    }
    let release = inst.get(&format!("/deb/dists/{channel}/Release"));
    assert_eq!(release.status, 200);
    let text = release.text();
    let sha_block = text.split("SHA256:\n").nth(1).expect("SHA256 block");
    for line in sha_block.lines().take_while(|l| l.starts_with(' ')) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        out.push((
            format!("/deb/dists/{channel}/{}", parts[2]),
            parts[0].to_string(),
        ));
    }
    out
}

/// Everything a host reads of every channel, byte for byte, from one instance.
fn snapshot(inst: &Instance) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for ch in CHANNELS {
        for path in [
            format!("/rpm/{ch}/repodata/repomd.xml"),
            format!("/rpm/{ch}/repodata/repomd.xml.asc"),
            format!("/deb/dists/{ch}/InRelease"),
            format!("/deb/dists/{ch}/Release"),
            format!("/deb/dists/{ch}/Release.gpg"),
        ] {
            let r = inst.get(&path);
            assert_eq!(r.status, 200, "{path} from {}", inst.url);
            out.push((path, r.body));
        }
    }
    out
}

/// Every file of every channel's indexes downloads from `inst` with the hash
/// the index gives, and every package with its id.
fn check_complete(inst: &Instance) {
    for ch in CHANNELS {
        for (path, sha) in published_files(inst, ch) {
            let r = inst.get(&path);
            assert_eq!(r.status, 200, "{path} from {}", inst.url);
            assert_eq!(sha256(&r.body), sha, "{path} from {}", inst.url);
        }
        let list = inst.get(&format!("/api/v1/packages?channel={ch}")).json();
        let mut rpms = 0;
        for p in list.as_array().expect("list") {
            let (id, file) = (
                p["id"].as_str().expect("id"),
                p["filename"].as_str().expect("f"),
            );
            if file.ends_with(".rpm") {
                let path = format!("/rpm/{ch}/Packages/{id}/{file}");
                let r = inst.get(&path);
                assert_eq!(r.status, 200, "{path} from {}: {}", inst.url, inst.log());
                assert_eq!(sha256(&r.body), id, "{path} from {}", inst.url);
                rpms += 1;
            }
        }
        // Every .deb an apt index names, with the hash it gives.
        let mut debs = BTreeSet::new();
        for (path, _) in published_files(inst, ch) {
            if !path.ends_with("/Packages") {
                continue;
            }
            let index = inst.get(&path).text();
            for stanza in index.split("\n\n").filter(|s| !s.trim().is_empty()) {
                let field = |name: &str| {
                    stanza
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .unwrap_or_else(|| panic!("no {name} in {stanza}"))
                        .to_string()
                };
                let r = inst.get(&format!("/deb/{}", field("Filename: ")));
                assert_eq!(r.status, 200, "{stanza}");
                assert_eq!(sha256(&r.body), field("SHA256: "), "{stanza}");
                debs.insert(field("Filename: "));
            }
        }
        assert_eq!(
            rpms + debs.len(),
            list.as_array().expect("list").len(),
            "{ch}"
        );
    }
}

fn no_redirects() -> ureq::Agent {
    ureq::AgentBuilder::new().redirects(0).build()
}

#[test]
fn instances_share_one_database_and_one_bucket() {
    if !(dnf_available() && apt_available()) {
        return;
    }
    let Some(s3) = S3Server::start() else {
        return;
    };
    let Some(database) = pg::fresh_database("cluster") else {
        return;
    };
    s3.bucket(BUCKET);
    // A and C stream package files; B redirects them to the bucket.
    let mut a = Instance::new(false);
    let mut b = Instance::new(true);
    let mut c = Instance::new(false);
    // Started together: they take turns preparing the shared state.
    for inst in [&mut a, &mut b, &mut c] {
        inst.start(&database, &s3);
    }
    for inst in [&a, &b, &c] {
        wait_healthy(&inst.url);
    }
    // Every instance runs a delivery worker against one outbox.
    let rx = Receiver::start(vec![]);
    let r = json_as(
        "POST",
        &format!("{}/api/v1/webhooks", a.url),
        Some(ADMIN_TOKEN),
        serde_json::json!({"name": "ci", "url": rx.url, "secret": "a-webhook-secret-of-some-length",
                           "events": ["package.uploaded"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());

    // C takes a stream of uploads from two clients and is killed while they
    // publish; B takes another stream; A and B carry the builds that hosts
    // install, promoted through A.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let (a, b) = (Arc::new(a), Arc::new(b));
    let c = Arc::new(Mutex::new(c));
    let c_url = c.lock().expect("c").url.clone();
    let flood = |url: String, tag: &'static str, n: usize, acked: Arc<Mutex<Vec<String>>>| {
        std::thread::spawn(move || {
            for i in 0..n {
                // Distinct names: the channel's retention keeps every one.
                let name = format!("cluster-{tag}-{i}");
                let bytes = build_deb(&name, "1.0-1");
                match upload_to(&url, &format!("{name}_1.0-1_all.deb"), &bytes) {
                    Some(id) => acked.lock().expect("acked").push(id),
                    None => return,
                }
            }
        })
    };
    let floods = vec![
        flood(c_url.clone(), "c1", 40, acked.clone()),
        flood(c_url.clone(), "c2", 40, acked.clone()),
        flood(b.url.clone(), "b1", 12, acked.clone()),
    ];
    let builds = {
        let (a, b) = (a.clone(), b.clone());
        std::thread::spawn(move || {
            let demo = upload_to(&b.url, DEMO10, &fixture_bytes(DEMO10)).expect("demo via B");
            let hello_bytes = std::fs::read(deb_fixture(HELLO10)).expect("hello");
            let hello = upload_to(&a.url, HELLO10, &hello_bytes).expect("hello via A");
            for to in ["staging", "prod"] {
                promote_via(&a, &demo, to);
                promote_via(&a, &hello, to);
            }
            (demo, hello)
        })
    };
    assert!(
        eventually(Duration::from_secs(120), || acked
            .lock()
            .expect("acked")
            .len()
            >= 8),
        "uploads did not get going"
    );
    c.lock().expect("c").kill();
    for f in floods {
        f.join().expect("upload thread");
    }
    let (demo, hello) = builds.join().expect("builds thread");
    let acked: Vec<String> = acked.lock().expect("acked").clone();

    // No acknowledged upload is lost; A and B agree on everything.
    let qa = ids_in(&a, "qa");
    for id in &acked {
        assert!(
            qa.contains(id),
            "acknowledged upload {id} lost: {} {}",
            a.get(&format!("/api/v1/packages/{id}")).text(),
            a.get(&format!("/api/v1/packages/{id}/history")).text()
        );
    }
    assert!(ids_in(&a, "prod").contains(&demo) && ids_in(&a, "prod").contains(&hello));
    for ch in CHANNELS {
        assert_eq!(
            ids_in(&a, ch),
            ids_in(&b, ch),
            "{ch} differs between A and B"
        );
    }
    assert_eq!(
        snapshot(&a),
        snapshot(&b),
        "A and B serve different indexes"
    );
    check_complete(&a);

    // The killed instance comes back on the same state and agrees too.
    let mut c = Arc::try_unwrap(c).ok().expect("c").into_inner().expect("c");
    c.start(&database, &s3);
    wait_healthy(&c.url);
    assert_eq!(
        snapshot(&a),
        snapshot(&c),
        "C serves different indexes after restart"
    );
    check_complete(&c);

    // B answers package downloads with a redirect into the bucket; A streams.
    let file = format!("/rpm/prod/Packages/{demo}/{DEMO10}");
    let r = no_redirects()
        .get(&format!("{}{file}", b.url))
        .call()
        .expect("B");
    assert_eq!(r.status(), 307, "{}", b.log());
    let location = r.header("location").expect("location").to_string();
    assert!(location.starts_with(&s3.endpoint), "{location}");
    let r = no_redirects()
        .get(&format!("{}{file}", a.url))
        .call()
        .expect("A");
    assert_eq!(r.status(), 200);
    assert!(
        s3.keys(BUCKET, &format!("repo/blobs/sha256/{}/{demo}", &demo[..2]))
            .contains(&format!("repo/blobs/sha256/{}/{demo}", &demo[..2])),
        "the package lives in the bucket"
    );
    assert!(
        !a.data.path().join("data/blobs").exists(),
        "object storage writes no local blobs"
    );

    install_through(&b, &demo, &hello);
    deliveries_are_taken_once(&[&a, &b, &c], &rx, &acked);
    drop(c);
}

/// With every instance's worker competing for the outbox, each event is
/// delivered, and (nobody being killed now) exactly once.
fn deliveries_are_taken_once(instances: &[&Instance], rx: &Receiver, acked: &[String]) {
    let uploaded = |g: &[common::receiver::Received], id: &str| {
        g.iter().filter(|r| r.json()["package"]["id"] == id).count()
    };
    rx.wait_for("a delivery for every acknowledged upload", |g| {
        acked.iter().all(|id| uploaded(g, id) >= 1)
    });
    let mut fresh = Vec::new();
    for (i, inst) in instances.iter().cycle().take(6).enumerate() {
        let name = format!("cluster-late-{i}");
        let id = upload_to(
            &inst.url,
            &format!("{name}_1.0-1_all.deb"),
            &build_deb(&name, "1.0-1"),
        )
        .expect("upload");
        fresh.push(id);
    }
    rx.wait_for("deliveries of the late uploads", |g| {
        fresh.iter().all(|id| uploaded(g, id) >= 1)
    });
    // Several ticks of every worker: a second taker would have sent by now.
    std::thread::sleep(Duration::from_secs(2));
    let got = rx.got();
    for id in &fresh {
        assert_eq!(uploaded(&got, id), 1, "{id} delivered more than once");
    }
}

/// Real dnf and apt through `b`, following its redirects.
fn install_through(b: &Instance, demo: &str, hello: &str) {
    let dnf = Dnf::new();
    let repo = b.get("/rpm/prod.repo");
    assert_eq!(repo.status, 200);
    dnf.add_repo_file("forklift-prod", &repo.text());
    dnf.run(&["install", "forklift-demo"]);
    assert!(
        dnf.installed("forklift-demo")
            .starts_with("forklift-demo-1.0-1"),
        "{}",
        dnf.installed("forklift-demo")
    );
    let _ = demo;

    let apt = Apt::new();
    let key = b.get("/keys/forklift.asc");
    assert_eq!(key.status, 200);
    let key_path: PathBuf = apt.path("forklift.asc");
    std::fs::write(&key_path, &key.body).expect("key");
    apt.set_sources(&format!(
        "deb [signed-by={}] {}/deb prod main",
        key_path.display(),
        b.url
    ));
    let (ok, out) = apt.update();
    assert!(ok, "apt-get update through B:\n{out}");
    run(apt.cmd("apt-get").args(["download", "forklift-hello"]));
    let fetched = std::fs::read_dir(apt.path("download"))
        .expect("download dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("apt-get download wrote a .deb");
    assert_eq!(sha256(&std::fs::read(&fetched).expect("deb")), hello);
    assert!(Path::new(&fetched).exists());
}
