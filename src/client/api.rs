//! HTTP calls to the server: JSON in and out, the server's
//! `{"error","message"}` turned into a [`Failure`] with the matching exit
//! code, and retries with backoff where a call may safely be repeated.

use std::collections::HashMap;
use std::io::Read;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::de::DeserializeOwned;

use super::remote::{self, Remote, RemoteArgs};
use super::{Exit, Failure, Output};

/// Everything but RFC 3986's unreserved characters is escaped in a segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One path segment, escaped.
pub fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// Why a call failed, before it becomes an exit code.
#[derive(Debug)]
pub enum CallError {
    /// The server answered with this status (and, usually, its JSON error).
    Status {
        status: u16,
        code: String,
        message: String,
    },
    /// No answer: refused, reset, timed out, bad TLS.
    Transport(String),
}

impl CallError {
    /// Worth another attempt: the server failed or was not reached. A 4xx
    /// answer will be the same next time.
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Status { status, .. } => *status >= 500 || *status == 429,
            CallError::Transport(_) => true,
        }
    }

    pub fn exit(&self) -> Exit {
        match self {
            CallError::Status { status, .. } => Exit::for_status(*status),
            CallError::Transport(_) => Exit::Unavailable,
        }
    }

    /// What to tell the user: the server's own words where it gave some.
    pub fn describe(&self) -> String {
        match self {
            CallError::Status {
                status,
                code,
                message,
            } => {
                if code.is_empty() {
                    format!("HTTP {status}: {message}")
                } else {
                    format!("{code} ({status}): {message}")
                }
            }
            CallError::Transport(e) => e.clone(),
        }
    }
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Failure {
        Failure::new(e.exit(), e.describe())
    }
}

/// The delay before attempt `n + 1` (n counts from 0): doubling from half a
/// second, at most 8 s, with up to a quarter added so that many clients
/// retrying together spread out.
pub fn backoff(n: u32, jitter: f64) -> Duration {
    let base = 0.5 * f64::from(2u32.saturating_pow(n.min(5)));
    Duration::from_secs_f64(base.min(8.0) * (1.0 + 0.25 * jitter.clamp(0.0, 1.0)))
}

/// Calls `f` until it succeeds, fails for good, or `retries` more attempts
/// have failed; `note` hears of each retry.
pub fn with_retries<T>(
    retries: u32,
    mut note: impl FnMut(u32, &CallError),
    mut f: impl FnMut() -> Result<T, CallError>,
) -> Result<T, CallError> {
    let mut attempt = 0;
    loop {
        match f() {
            Err(e) if e.is_transient() && attempt < retries => {
                note(attempt + 1, &e);
                std::thread::sleep(backoff(attempt, rand::random::<f64>()));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A connection to one server, with its token.
pub struct Api {
    remote: Remote,
    agent: ureq::Agent,
    pub output: Output,
}

impl Api {
    /// Resolves server and token from flags, environment and profile file.
    pub fn connect(args: &RemoteArgs) -> Result<Api, Failure> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let file = match remote::config_path(&env) {
            Some(path) => remote::read_profiles(&path)?,
            None => None,
        };
        let remote = remote::resolve(args, &env, file.as_ref())?;
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            // Generous: a big upload's answer comes after the server hashed it.
            .timeout_read(Duration::from_secs(300))
            .timeout_write(Duration::from_secs(300))
            .user_agent(concat!("forklift-cli/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Api {
            remote,
            agent,
            output: args.output,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.remote.url)
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let req = self.agent.request(method, &self.url(path));
        match &self.remote.token {
            Some(t) => req.set("Authorization", &format!("Bearer {}", t.expose())),
            None => req,
        }
    }

    /// GET, retried twice on a transient failure.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        let value = with_retries(2, |_, _| {}, || self.get_once(path))?;
        decode(path, value)
    }

    /// One GET, failures left to the caller (`wait` retries on its own).
    pub fn get_once(&self, path: &str) -> Result<serde_json::Value, CallError> {
        answer(self.request("GET", path).call())
    }

    /// POST a JSON body; not retried, the caller decides what is safe.
    pub fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, Failure> {
        let req = self
            .request("POST", path)
            .set("Content-Type", "application/json");
        Ok(answer(req.send_string(&body.to_string()))?)
    }

    /// PUT a body of `len` bytes; the status (201 stored, 200 already
    /// present) comes back with the JSON.
    pub fn put(
        &self,
        path: &str,
        body: impl Read,
        len: u64,
    ) -> Result<(u16, serde_json::Value), CallError> {
        let req = self
            .request("PUT", path)
            .set("Content-Length", &len.to_string())
            .set("Content-Type", "application/octet-stream");
        match req.send(body) {
            Ok(resp) => {
                let status = resp.status();
                Ok((status, read_json(resp)?))
            }
            Err(e) => Err(call_error(e)),
        }
    }
}

fn answer(result: Result<ureq::Response, ureq::Error>) -> Result<serde_json::Value, CallError> {
    match result {
        Ok(resp) => read_json(resp),
        Err(e) => Err(call_error(e)),
    }
}

fn read_json(resp: ureq::Response) -> Result<serde_json::Value, CallError> {
    let status = resp.status();
    let text = resp
        .into_string()
        .map_err(|e| CallError::Transport(format!("reading the answer: {e}")))?;
    serde_json::from_str(&text).map_err(|_| CallError::Status {
        status,
        code: String::new(),
        message: "the answer is not JSON: is the URL a Forklift server?".into(),
    })
}

fn call_error(e: ureq::Error) -> CallError {
    match e {
        ureq::Error::Status(status, resp) => {
            let body: serde_json::Value = resp
                .into_string()
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            let text = |k: &str| body.get(k).and_then(|v| v.as_str()).map(str::to_string);
            CallError::Status {
                status,
                code: text("error").unwrap_or_default(),
                message: text("message").unwrap_or_else(|| "no explanation given".into()),
            }
        }
        ureq::Error::Transport(t) => CallError::Transport(match t.url() {
            Some(url) => format!("cannot reach {url}: {}", t.kind()),
            None => format!("cannot reach the server: {t}"),
        }),
    }
}

/// Reads a JSON answer into the shape the command needs.
pub fn decode<T: DeserializeOwned>(path: &str, value: serde_json::Value) -> Result<T, Failure> {
    serde_json::from_value(value).map_err(|e| {
        Failure::new(
            Exit::Unavailable,
            format!("unexpected answer from {path}: {e} (server and client versions differ?)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_failures_and_lost_connections_are_retried() {
        let status = |s| CallError::Status {
            status: s,
            code: String::new(),
            message: String::new(),
        };
        assert!(status(500).is_transient());
        assert!(status(503).is_transient());
        assert!(status(429).is_transient());
        assert!(!status(409).is_transient());
        assert!(!status(422).is_transient());
        assert!(!status(401).is_transient());
        assert!(CallError::Transport("reset".into()).is_transient());
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(0, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(1, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(3, 0.0), Duration::from_secs(4));
        assert_eq!(backoff(10, 0.0), Duration::from_secs(8));
        assert_eq!(backoff(10, 1.0), Duration::from_secs(10));
    }

    #[test]
    fn retries_stop_at_the_limit_and_at_a_refusal() {
        let mut calls = 0;
        let r: Result<(), _> = with_retries(
            0,
            |_, _| {},
            || {
                calls += 1;
                Err(CallError::Transport("down".into()))
            },
        );
        assert!(r.is_err());
        assert_eq!(calls, 1);
        let mut calls = 0;
        let r: Result<(), _> = with_retries(
            3,
            |_, _| {},
            || {
                calls += 1;
                Err(CallError::Status {
                    status: 422,
                    code: "bad_package".into(),
                    message: "no".into(),
                })
            },
        );
        assert_eq!(r.map_err(|e| e.exit()), Err(Exit::Refused));
        assert_eq!(calls, 1, "a 4xx is not retried");
    }

    #[test]
    fn segments_are_escaped() {
        assert_eq!(segment("a b/c.rpm"), "a%20b%2Fc.rpm");
        assert_eq!(
            segment("forklift-1.0-1.x86_64.rpm"),
            "forklift-1.0-1.x86_64.rpm"
        );
    }
}
