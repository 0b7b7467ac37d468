//! Test harness: builds the real app the way `main` does, on a loopback port, on
//! SQLite or on a throwaway PostgreSQL cluster; plus tool checks and HTTP helpers.
#![allow(dead_code)]

pub mod api;
pub mod apt;
pub mod browser;
pub mod dnf;
pub mod packages;
pub mod pg;
pub mod receiver;
pub mod s3;

// Re-exported for `use common::*`; a test binary that uses none of them would
// otherwise warn (like `dead_code` above, which covers the items themselves).
#[allow(unused_imports)]
pub use api::*;
#[allow(unused_imports)]
pub use packages::*;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use forklift::config::{Config, Layer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| !v.is_empty() && v != "0" && v != "false")
        .unwrap_or(false)
}

/// Returns false (after printing why) when a tool is missing locally; in CI a
/// missing tool is a failure, never a silent skip.
pub fn require_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if in_ci() {
            panic!("{tool} is required in CI but was not found (run .ci/test to install it)");
        }
        eprintln!("SKIPPED: {tool} not installed; run .ci/test to install test dependencies");
    }
    found
}

/// Client tests that write into an installroot or a dpkg root need root; in CI
/// that is a failure, locally a printed skip.
pub fn require_root(what: &str) -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !root {
        assert!(!in_ci(), "{what} tests need root in CI");
        eprintln!("SKIPPED: {what} tests need root");
    }
    root
}

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/rpms")
}

pub fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join(name)
}

/// `../shared/corpus/rpms` beside the checkout; required in CI.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/rpms");
    if dir.is_dir() {
        Some(dir)
    } else if in_ci() {
        panic!("the conformance corpus {} is missing", dir.display());
    } else {
        eprintln!("SKIPPED: corpus {} not found", dir.display());
        None
    }
}

/// A running Forklift on 127.0.0.1 with its own data dir and database.
pub struct TestServer {
    pub url: String,
    pub data_dir: tempfile::TempDir,
    pub config: Config,
    pub ctx: forklift::service::Ctx,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);
static KEY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// One RSA-4096 signing key for all test servers (generating one per server
/// would dominate the suite), made by the server's own code on first use.
pub fn signing_key() -> PathBuf {
    KEY.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("forklift-test-key");
        let path = forklift::signing::default_key_path(&dir);
        forklift::signing::Signer::load_or_generate(None, None, &dir).expect("test signing key");
        path
    })
    .clone()
}

impl TestServer {
    /// Starts a server; None when the backend is unavailable locally (skip).
    pub fn start(backend: Backend) -> Option<TestServer> {
        Self::start_with(backend, |_| {})
    }

    pub fn start_with(backend: Backend, tweak: impl FnOnce(&mut Layer)) -> Option<TestServer> {
        Self::start_full(
            backend,
            std::sync::Arc::new(forklift::service::SystemClock),
            tweak,
        )
    }

    /// A server whose promotion logic runs on `clock` (a `ManualClock` makes a
    /// day pass in a test); the test keeps `ctx` to drive the scheduler.
    pub fn start_full(
        backend: Backend,
        clock: std::sync::Arc<dyn forklift::service::Clock>,
        tweak: impl FnOnce(&mut Layer),
    ) -> Option<TestServer> {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(pg::fresh_database(&format!(
                "t{}_{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::SeqCst)
            ))?),
        };
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let url = format!("http://{addr}");
        let mut flags = Layer {
            listen: Some(addr.to_string()),
            data_dir: Some(data_dir.path().to_path_buf()),
            base_url: Some(url.clone()),
            database_url,
            signing_key: Some(signing_key()),
            admin_token: Some(ADMIN_TOKEN.to_string()),
            ..Layer::default()
        };
        tweak(&mut flags);
        let config = Config::resolve(Layer::default(), Layer::default(), flags).expect("config");
        let (ctx, handle, thread) = launch(config.clone(), clock, listener);
        Some(TestServer {
            url,
            data_dir,
            config,
            ctx,
            handle,
            thread: Some(thread),
        })
    }

    /// Stops the server and starts it again on the same database and files (a
    /// new port), as after a restart; `tweak` may change its configuration.
    pub fn restart(&mut self, tweak: impl FnOnce(&mut Config)) {
        self.stop();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        self.url = format!("http://{addr}");
        self.config.listen = addr.to_string();
        self.config.base_url = self.url.clone();
        tweak(&mut self.config);
        let (ctx, handle, thread) = launch(
            self.config.clone(),
            std::sync::Arc::new(forklift::service::SystemClock),
            listener,
        );
        self.ctx = ctx;
        self.handle = handle;
        self.thread = Some(thread);
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1{}", self.url, path)
    }

    /// Number of blobs in the store.
    pub fn blob_count(&self) -> usize {
        count_files(&self.data_dir.path().join("blobs"))
    }

    /// Files left in the upload temp dir (must be none after any request).
    pub fn temp_count(&self) -> usize {
        count_files(&self.data_dir.path().join("tmp"))
    }

    pub fn stop(&mut self) {
        let h = self.handle.clone();
        // stop() needs a runtime to drive its future.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(h.stop(true));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop();
        }
    }
}

/// Builds the app the way `main` does and serves it on `listener` in a thread.
fn launch(
    config: Config,
    clock: std::sync::Arc<dyn forklift::service::Clock>,
    listener: TcpListener,
) -> (
    forklift::service::Ctx,
    actix_web::dev::ServerHandle,
    std::thread::JoinHandle<()>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let ctx = forklift::app::init_with_clock(config, clock).expect("init");
    let server_ctx = ctx.clone();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = forklift::app::server(server_ctx, listener).expect("server");
            tx.send(server.handle()).expect("send handle");
            let _ = server.await;
        });
    });
    let handle = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("server started");
    (ctx, handle, thread)
}

fn count_files(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// A response reduced to what tests look at.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
    /// Asserts the JSON error shape and returns the code.
    pub fn error_code(&self) -> String {
        let j = self.json();
        assert!(j["message"].is_string(), "error without message: {j}");
        j["error"].as_str().expect("error code").to_string()
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(120))
        .build()
}

fn finish(r: Result<ureq::Response, ureq::Error>) -> Resp {
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .map(|n| {
            let v = resp.header(&n).unwrap_or_default().to_string();
            (n, v)
        })
        .collect();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).expect("read body");
    Resp {
        status,
        headers,
        body,
    }
}

/// The bootstrap admin token every test server starts with (FORKLIFT_ADMIN_TOKEN);
/// the plain helpers below act as this admin.
pub const ADMIN_TOKEN: &str = "fkl_test_admin_0123456789abcdef0123456789";

fn admin(req: ureq::Request) -> ureq::Request {
    req.set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
}

pub fn get(url: &str) -> Resp {
    finish(admin(agent().get(url)).call())
}

pub fn get_with(url: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = admin(agent().get(url));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    finish(req.call())
}

/// Any request with headers and a raw body.
pub fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut req = agent().request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    finish(req.send_bytes(body))
}

pub fn put_bytes(url: &str, body: &[u8]) -> Resp {
    finish(admin(agent().put(url)).send_bytes(body))
}

pub fn post_json(url: &str, body: serde_json::Value) -> Resp {
    finish(admin(agent().post(url)).send_json(body))
}

/// A JSON request with the given token (None: anonymous).
pub fn json_as(method: &str, url: &str, token: Option<&str>, body: serde_json::Value) -> Resp {
    let mut req = agent().request(method, url);
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    finish(req.send_json(body))
}

/// A GET with the given token (None: anonymous).
pub fn get_as(url: &str, token: Option<&str>) -> Resp {
    let mut req = agent().get(url);
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    finish(req.call())
}

pub fn post_multipart(url: &str, field: &str, filename: &str, content: &[u8]) -> Resp {
    let boundary = "forkliftTestBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    finish(
        admin(agent().post(url))
            .set(
                "Content-Type",
                &format!("multipart/form-data; boundary={boundary}"),
            )
            .send_bytes(&body),
    )
}

/// Uploads a file with PUT (like `curl -T`), optionally into a channel.
pub fn upload(srv: &TestServer, path: &Path, channel: Option<&str>) -> Resp {
    let name = path
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    let bytes = std::fs::read(path).expect("read fixture");
    let q = channel.map(|c| format!("?channel={c}")).unwrap_or_default();
    put_bytes(&srv.api(&format!("/packages/{name}{q}")), &bytes)
}

pub fn promote(srv: &TestServer, id: &str, to: &str) -> Resp {
    post_json(
        &srv.api(&format!("/packages/{id}/promote")),
        serde_json::json!({ "to": to }),
    )
}

pub fn demote(srv: &TestServer, id: &str, from: &str, reason: &str) -> Resp {
    post_json(
        &srv.api(&format!("/packages/{id}/demote")),
        serde_json::json!({ "from": from, "reason": reason }),
    )
}

/// Runs a command, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stdout
}

/// Generates one test per backend from a function taking the backend.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name($crate::common::Backend::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name($crate::common::Backend::Postgres) } )*
        }
    };
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits (at most 60 s) until the server at `url` answers /healthz.
pub fn wait_healthy(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while ureq::get(&format!("{url}/healthz")).call().is_err() {
        assert!(
            Instant::now() < deadline,
            "the server at {url} did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `cond` every 50 ms for at most `limit`.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// A child process (a real `forklift serve`) that is killed even when the
/// test panics.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
