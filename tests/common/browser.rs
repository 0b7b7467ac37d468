//! A real Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, installed by .ci/test): one chromedriver per test
//! binary, one headless browser session per test.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

use super::{free_port, require_tool, KillOnDrop};

static DRIVER: OnceLock<Option<(String, std::sync::Mutex<KillOnDrop>)>> = OnceLock::new();

fn chromium() -> Option<&'static str> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
}

/// The chromedriver URL; None (after printing why) when the tools are
/// missing locally; a failure in CI.
fn driver() -> Option<String> {
    DRIVER
        .get_or_init(|| {
            if !require_tool("chromedriver") {
                return None;
            }
            if chromium().is_none() {
                assert!(!super::in_ci(), "chromium is required in CI");
                eprintln!("SKIPPED: chromium not installed");
                return None;
            }
            let port = free_port();
            let child = Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn chromedriver");
            let url = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(30);
            while ureq::get(&format!("{url}/status")).call().is_err() {
                assert!(Instant::now() < deadline, "chromedriver did not start");
                std::thread::sleep(Duration::from_millis(100));
            }
            Some((url, std::sync::Mutex::new(KillOnDrop(child))))
        })
        .as_ref()
        .map(|(u, _)| u.clone())
}

/// A headless browser session; the runtime that drives it comes along.
pub struct Browser {
    pub client: Client,
    pub rt: tokio::runtime::Runtime,
}

impl Browser {
    pub fn start() -> Option<Browser> {
        let url = driver()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900"]
            }),
        );
        let client = rt
            .block_on(
                ClientBuilder::new(HttpConnector::new())
                    .capabilities(caps)
                    .connect(&url),
            )
            .expect("browser session");
        Some(Browser { client, rt })
    }

    pub fn goto(&self, url: &str) {
        self.rt.block_on(self.client.goto(url)).expect("goto");
    }

    /// The page's visible text.
    pub fn text(&self, css: &str) -> String {
        self.rt
            .block_on(async { self.client.find(Locator::Css(css)).await?.text().await })
            .unwrap_or_default()
    }

    pub fn exists(&self, css: &str) -> bool {
        self.rt
            .block_on(self.client.find_all(Locator::Css(css)))
            .map(|v| !v.is_empty())
            .unwrap_or(false)
    }

    pub fn fill(&self, css: &str, value: &str) {
        self.rt
            .block_on(async {
                let e = self.client.find(Locator::Css(css)).await?;
                e.clear().await?;
                e.send_keys(value).await
            })
            .expect("fill");
    }

    pub fn click(&self, css: &str) {
        self.rt
            .block_on(async { self.client.find(Locator::Css(css)).await?.click().await })
            .expect("click");
    }

    pub fn url(&self) -> String {
        self.rt
            .block_on(self.client.current_url())
            .expect("url")
            .to_string()
    }

    /// Runs `script` (an async function body ending in `return …`) in the page.
    pub fn run_js(&self, script: &str) -> serde_json::Value {
        self.rt
            .block_on(self.client.execute_async(script, vec![]))
            .expect("script")
    }

    pub fn screenshot(&self) -> Vec<u8> {
        self.rt
            .block_on(self.client.screenshot())
            .expect("screenshot")
    }

    /// Waits (at most `limit`) until `css`'s text contains `want`.
    pub fn wait_text(&self, css: &str, want: &str, limit: Duration) -> bool {
        super::eventually(limit, || self.text(css).contains(want))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let c = self.client.clone();
        let _ = self.rt.block_on(c.close());
    }
}
