//! A real S3-compatible server for the tests: `moto_server` (PyPI
//! `moto[server]`, installed by .ci/test) on a loopback port, killed when
//! dropped. Absent locally: a printed skip; absent in CI: a failure.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, require_tool, KillOnDrop};

/// Credentials moto accepts; instances get them the standard AWS way.
pub const ACCESS_KEY: &str = "forklift-test";
pub const SECRET_KEY: &str = "forklift-test-secret";
pub const REGION: &str = "us-east-1";

pub struct S3Server {
    pub endpoint: String,
    _process: KillOnDrop,
}

impl S3Server {
    pub fn start() -> Option<S3Server> {
        if !require_tool("moto_server") {
            return None;
        }
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn moto_server");
        let server = S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            _process: KillOnDrop(child),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while ureq::get(&server.endpoint).call().is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(server)
    }

    /// Creates a bucket (moto needs no signature for it).
    pub fn bucket(&self, name: &str) {
        let r = ureq::put(&format!("{}/{name}", self.endpoint)).call();
        assert!(r.is_ok(), "create bucket {name}: {r:?}");
    }

    /// Keys under `prefix` in `bucket` (ListObjectsV2, first 1000).
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let xml = ureq::get(&format!(
            "{}/{bucket}?list-type=2&prefix={prefix}",
            self.endpoint
        ))
        .call()
        .expect("list objects")
        .into_string()
        .expect("xml");
        xml.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }

    /// The environment an instance reads its credentials and endpoint from.
    pub fn env(&self, bucket_url: &str) -> Vec<(&'static str, String)> {
        vec![
            ("FORKLIFT_STORAGE", bucket_url.to_string()),
            ("FORKLIFT_S3_ENDPOINT", self.endpoint.clone()),
            ("FORKLIFT_S3_REGION", REGION.to_string()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
        ]
    }
}
