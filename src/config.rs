//! Typed configuration: defaults < TOML file < `FORKLIFT_*` environment < flags.
//!
//! Resolution is a pure function of its three inputs so it is tested without
//! touching the process environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid value for {key}: {message}")]
    Invalid { key: String, message: String },
}

/// The resolved configuration, passed to the app in its state.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    /// Public URL without trailing slash, used in generated files.
    pub base_url: String,
    pub database_url: String,
    /// Promotion path, in order: the first channel receives uploads.
    pub channels: Vec<String>,
    pub max_upload_bytes: u64,
    /// How long files of a superseded revision stay servable.
    pub grace_period: Duration,
    /// Armored OpenPGP secret key; None = generate one under the data dir.
    pub signing_key: Option<PathBuf>,
    /// The key's passphrase (from FORKLIFT_SIGNING_KEY_PASSPHRASE or a file, never a flag).
    pub signing_key_passphrase: Option<String>,
    /// The next key of a rotation: published and signing beside the current one.
    pub signing_key_next: Option<PathBuf>,
    pub signing_key_next_passphrase: Option<String>,
    /// apt Release `Valid-Until` = Date + this; the suite is re-signed at half of it.
    pub apt_valid_for: Option<Duration>,
    /// apt Release `Origin` and `Label`: pick once, never change (apt refuses).
    pub apt_origin: String,
    pub apt_label: String,
    /// Architectures every apt suite lists, besides those its packages have.
    pub apt_architectures: Vec<String>,
    /// Whether callers without a token may read channels (default true).
    pub anonymous_read: bool,
    /// Channels only tokens with read rights may read, whatever `anonymous_read` says.
    pub private_channels: Vec<String>,
    /// The bootstrap admin token (FORKLIFT_ADMIN_TOKEN or admin_token_file).
    pub admin_token: Option<String>,
    /// Promotion policies by channel (`[policies.<channel>]`), applied at start.
    pub policies: std::collections::BTreeMap<String, PolicySpec>,
    /// How often the scheduler looks for due automatic promotions; zero
    /// disables the background loop (tests drive it by hand).
    pub scheduler_tick: Duration,
    /// Webhook subscriptions by name (`[webhooks.<name>]`), applied at start.
    pub webhooks: ConfigWebhooks,
    /// Allow webhook targets on loopback, private and link-local addresses.
    pub webhook_allow_internal: bool,
    pub webhook_timeout: Duration,
    /// First retry delay; doubles per attempt (with jitter), capped at 1 h.
    pub webhook_retry_base: Duration,
    /// An event is given up after this long of failed attempts.
    pub webhook_max_age: Duration,
    /// A subscription is disabled after this many consecutive failures.
    pub webhook_max_failures: u32,
    /// How often the delivery worker looks for work; zero disables it.
    pub webhook_tick: Duration,
    /// An upload whose body sends nothing for this long is dropped (408).
    pub upload_idle_timeout: Duration,
    /// How often leftovers are swept and superseded metadata pruned; zero
    /// leaves it to startup.
    pub sweep_interval: Duration,
    /// Published files of this many newest revisions of each channel are kept
    /// whatever their age; older revisions' files go once past the grace period.
    pub keep_revisions: u32,
}

impl Config {
    /// The configuration as a TOML file that `--config` reads back to the same
    /// settings. Secrets are never printed: webhook secrets show as `***` and
    /// passphrases and the admin token only as a comment saying they are set.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        let d = |v: Duration| humantime::format_duration(v).to_string();
        let layer = Layer {
            listen: Some(self.listen.clone()),
            data_dir: Some(self.data_dir.clone()),
            base_url: Some(self.base_url.clone()),
            database_url: Some(redact_password(&self.database_url)),
            channels: Some(self.channels.clone()),
            max_upload_bytes: Some(self.max_upload_bytes),
            grace_period: Some(d(self.grace_period)),
            signing_key: self.signing_key.clone(),
            signing_key_next: self.signing_key_next.clone(),
            apt_valid_for: self.apt_valid_for.map(d),
            apt_origin: Some(self.apt_origin.clone()),
            apt_label: Some(self.apt_label.clone()),
            apt_architectures: Some(self.apt_architectures.clone()),
            anonymous_read: Some(self.anonymous_read),
            private_channels: Some(self.private_channels.clone()),
            policies: Some(self.policies.clone()),
            scheduler_tick: Some(d(self.scheduler_tick)),
            webhooks: Some(
                self.webhooks
                    .iter()
                    .map(|(k, w)| {
                        let mut w = w.clone();
                        w.secret = "***".into();
                        (k.clone(), w)
                    })
                    .collect(),
            ),
            webhook_allow_internal: Some(self.webhook_allow_internal),
            webhook_timeout: Some(d(self.webhook_timeout)),
            webhook_retry_base: Some(d(self.webhook_retry_base)),
            webhook_max_age: Some(d(self.webhook_max_age)),
            webhook_max_failures: Some(self.webhook_max_failures),
            webhook_tick: Some(d(self.webhook_tick)),
            upload_idle_timeout: Some(d(self.upload_idle_timeout)),
            sweep_interval: Some(d(self.sweep_interval)),
            keep_revisions: Some(self.keep_revisions),
            ..Layer::default()
        };
        let mut out = String::from("# forklift config: the resolved settings, valid as --config\n");
        for (set, what) in [
            (
                self.signing_key_passphrase.is_some(),
                "signing key passphrase",
            ),
            (
                self.signing_key_next_passphrase.is_some(),
                "next signing key passphrase",
            ),
            (self.admin_token.is_some(), "bootstrap admin token"),
        ] {
            if set {
                out.push_str(&format!(
                    "# {what}: *** (set through FORKLIFT_* or a file; not printed)\n"
                ));
            }
        }
        out.push_str(&toml::to_string(&layer)?);
        Ok(out)
    }
}

/// Settings as they may appear in the TOML file, the environment or flags;
/// every field optional so layers can be merged.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_upload_bytes: Option<u64>,
    /// Human duration such as "1h" or "90s".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key_passphrase_file: Option<PathBuf>,
    /// Only from the environment (FORKLIFT_SIGNING_KEY_PASSPHRASE).
    #[serde(skip)]
    pub signing_key_passphrase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key_next: Option<PathBuf>,
    /// Only from the environment (FORKLIFT_SIGNING_KEY_NEXT_PASSPHRASE).
    #[serde(skip)]
    pub signing_key_next_passphrase: Option<String>,
    /// Human duration, e.g. "7d".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apt_valid_for: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apt_origin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apt_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apt_architectures: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anonymous_read: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_channels: Option<Vec<String>>,
    /// Only from the environment (FORKLIFT_ADMIN_TOKEN): a secret never sits in a flag.
    #[serde(skip)]
    pub admin_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policies: Option<std::collections::BTreeMap<String, PolicySpec>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler_tick: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<ConfigWebhooks>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_allow_internal: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_retry_base: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_max_age: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_max_failures: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_tick: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_idle_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_revisions: Option<u32>,
}

impl Layer {
    fn merge(self, over: Layer) -> Layer {
        Layer {
            listen: over.listen.or(self.listen),
            data_dir: over.data_dir.or(self.data_dir),
            base_url: over.base_url.or(self.base_url),
            database_url: over.database_url.or(self.database_url),
            channels: over.channels.or(self.channels),
            max_upload_bytes: over.max_upload_bytes.or(self.max_upload_bytes),
            grace_period: over.grace_period.or(self.grace_period),
            signing_key: over.signing_key.or(self.signing_key),
            signing_key_passphrase_file: over
                .signing_key_passphrase_file
                .or(self.signing_key_passphrase_file),
            signing_key_passphrase: over.signing_key_passphrase.or(self.signing_key_passphrase),
            signing_key_next: over.signing_key_next.or(self.signing_key_next),
            signing_key_next_passphrase: over
                .signing_key_next_passphrase
                .or(self.signing_key_next_passphrase),
            apt_valid_for: over.apt_valid_for.or(self.apt_valid_for),
            apt_origin: over.apt_origin.or(self.apt_origin),
            apt_label: over.apt_label.or(self.apt_label),
            apt_architectures: over.apt_architectures.or(self.apt_architectures),
            anonymous_read: over.anonymous_read.or(self.anonymous_read),
            private_channels: over.private_channels.or(self.private_channels),
            admin_token: over.admin_token.or(self.admin_token),
            admin_token_file: over.admin_token_file.or(self.admin_token_file),
            policies: over.policies.or(self.policies),
            scheduler_tick: over.scheduler_tick.or(self.scheduler_tick),
            webhooks: over.webhooks.or(self.webhooks),
            webhook_allow_internal: over.webhook_allow_internal.or(self.webhook_allow_internal),
            webhook_timeout: over.webhook_timeout.or(self.webhook_timeout),
            webhook_retry_base: over.webhook_retry_base.or(self.webhook_retry_base),
            webhook_max_age: over.webhook_max_age.or(self.webhook_max_age),
            webhook_max_failures: over.webhook_max_failures.or(self.webhook_max_failures),
            webhook_tick: over.webhook_tick.or(self.webhook_tick),
            upload_idle_timeout: over.upload_idle_timeout.or(self.upload_idle_timeout),
            sweep_interval: over.sweep_interval.or(self.sweep_interval),
            keep_revisions: over.keep_revisions.or(self.keep_revisions),
        }
    }

    /// Reads `FORKLIFT_*` variables from the given map (normally `std::env::vars()`).
    pub fn from_env(env: &HashMap<String, String>) -> Result<Layer, ConfigError> {
        let get = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
        let max_upload_bytes = match get("FORKLIFT_MAX_UPLOAD_BYTES") {
            Some(v) => Some(v.parse().map_err(|_| ConfigError::Invalid {
                key: "FORKLIFT_MAX_UPLOAD_BYTES".into(),
                message: format!("{v:?} is not a byte count"),
            })?),
            None => None,
        };
        let anonymous_read = match get("FORKLIFT_ANONYMOUS_READ").as_deref() {
            None => None,
            Some("true" | "1" | "yes") => Some(true),
            Some("false" | "0" | "no") => Some(false),
            Some(v) => {
                return Err(ConfigError::Invalid {
                    key: "FORKLIFT_ANONYMOUS_READ".into(),
                    message: format!("{v:?} is not true or false"),
                })
            }
        };
        Ok(Layer {
            listen: get("FORKLIFT_LISTEN"),
            data_dir: get("FORKLIFT_DATA_DIR").map(PathBuf::from),
            base_url: get("FORKLIFT_BASE_URL"),
            database_url: get("FORKLIFT_DATABASE_URL"),
            channels: get("FORKLIFT_CHANNELS")
                .map(|v| v.split(',').map(|s| s.trim().to_string()).collect()),
            max_upload_bytes,
            grace_period: get("FORKLIFT_GRACE_PERIOD"),
            signing_key: get("FORKLIFT_SIGNING_KEY").map(PathBuf::from),
            signing_key_passphrase_file: get("FORKLIFT_SIGNING_KEY_PASSPHRASE_FILE")
                .map(PathBuf::from),
            signing_key_passphrase: get("FORKLIFT_SIGNING_KEY_PASSPHRASE"),
            signing_key_next: get("FORKLIFT_SIGNING_KEY_NEXT").map(PathBuf::from),
            signing_key_next_passphrase: get("FORKLIFT_SIGNING_KEY_NEXT_PASSPHRASE"),
            apt_valid_for: get("FORKLIFT_APT_VALID_FOR"),
            apt_origin: get("FORKLIFT_APT_ORIGIN"),
            apt_label: get("FORKLIFT_APT_LABEL"),
            apt_architectures: get("FORKLIFT_APT_ARCHITECTURES")
                .map(|v| v.split(',').map(|s| s.trim().to_string()).collect()),
            anonymous_read,
            private_channels: get("FORKLIFT_PRIVATE_CHANNELS").map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            }),
            admin_token: get("FORKLIFT_ADMIN_TOKEN"),
            admin_token_file: get("FORKLIFT_ADMIN_TOKEN_FILE").map(PathBuf::from),
            policies: None,
            scheduler_tick: get("FORKLIFT_SCHEDULER_TICK"),
            webhooks: None,
            webhook_allow_internal: get("FORKLIFT_WEBHOOK_ALLOW_INTERNAL")
                .map(|v| matches!(v.as_str(), "true" | "1" | "yes")),
            webhook_timeout: get("FORKLIFT_WEBHOOK_TIMEOUT"),
            webhook_retry_base: get("FORKLIFT_WEBHOOK_RETRY_BASE"),
            webhook_max_age: get("FORKLIFT_WEBHOOK_MAX_AGE"),
            webhook_max_failures: match get("FORKLIFT_WEBHOOK_MAX_FAILURES") {
                Some(v) => Some(v.parse().map_err(|_| ConfigError::Invalid {
                    key: "FORKLIFT_WEBHOOK_MAX_FAILURES".into(),
                    message: format!("{v:?} is not a count"),
                })?),
                None => None,
            },
            webhook_tick: get("FORKLIFT_WEBHOOK_TICK"),
            upload_idle_timeout: get("FORKLIFT_UPLOAD_IDLE_TIMEOUT"),
            sweep_interval: get("FORKLIFT_SWEEP_INTERVAL"),
            keep_revisions: match get("FORKLIFT_KEEP_REVISIONS") {
                Some(v) => Some(v.parse().map_err(|_| ConfigError::Invalid {
                    key: "FORKLIFT_KEEP_REVISIONS".into(),
                    message: format!("{v:?} is not a count"),
                })?),
                None => None,
            },
        })
    }

    pub fn from_file(path: &Path) -> Result<Layer, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Settings types that the service layer reads: defined here, with the rest of
/// the configuration, so that `config` depends on nothing above it.
/// A channel's policy as written in TOML (`[policies.<channel>]`) or sent to
/// `PUT /api/v1/channels/{name}/policy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// The channel builds come from; only the previous channel is allowed
    /// (levels are never skipped), so this is for readability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Automatic promotion at a fixed interval, e.g. "1h" or "90s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    /// Automatic promotion on a 5-field cron expression, e.g. "15 10 * * *".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// IANA time zone of `cron` (default UTC), e.g. "Europe/Madrid".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Minimum time a build spends in the source channel, e.g. "30m".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<String>,
    /// Whether manual promotion into the channel needs `promote:<channel>`
    /// (default true); false lets any token promote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_permission: Option<bool>,
    /// Keep at least this many builds of each package name (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain: Option<u32>,
}

/// A webhook subscription as written in `[webhooks.<name>]` (or sent to the API).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    pub url: String,
    pub secret: String,
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub packages: Vec<String>,
    #[serde(default)]
    pub events: Vec<String>,
    /// "json" (default) or "cloudevents" (CloudEvents 1.0 structured mode).
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
}

/// Webhook subscriptions by name (`[webhooks.<name>]`).
pub type ConfigWebhooks = std::collections::BTreeMap<String, WebhookSpec>;

/// A token supplied by the operator (FORKLIFT_ADMIN_TOKEN) must not be guessable.
pub fn acceptable_supplied_token(token: &str) -> bool {
    token.len() >= 24 && token.bytes().all(|b| b.is_ascii_graphic())
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./forklift-data";
pub const DEFAULT_MAX_UPLOAD: u64 = 2 * 1024 * 1024 * 1024;
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].find(':') {
            Some(c) => format!("{}:***{}", &url[..s + 3 + c], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

/// `host:port` or `[v6]:port` with a port from 1 to 65535, checked before
/// anything is created on disk (a typo must not leave a data directory behind).
fn check_listen(listen: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| ConfigError::Invalid {
        key: "listen".into(),
        message: format!("{listen:?}: {why}; use host:port, e.g. 127.0.0.1:8080"),
    };
    let (host, port) = listen.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    if host.is_empty() {
        return Err(bad("no host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(bad("the port must be a number from 1 to 65535")),
    }
}

/// A channel name must be usable in URLs and file paths as is.
pub fn valid_channel_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && !name.starts_with('-')
}

/// A secret given directly (environment) wins over one read from a file; the
/// file's trailing newline is not part of it.
fn secret_from(
    direct: Option<String>,
    file: Option<PathBuf>,
) -> Result<Option<String>, ConfigError> {
    match (direct, file) {
        (Some(s), _) => Ok(Some(s)),
        (None, Some(f)) => std::fs::read_to_string(&f)
            .map(|t| Some(t.trim_end_matches(['\n', '\r']).to_string()))
            .map_err(|source| ConfigError::Read { path: f, source }),
        (None, None) => Ok(None),
    }
}

impl Config {
    /// Merges the layers over the built-in defaults and validates the result.
    pub fn resolve(file: Layer, env: Layer, flags: Layer) -> Result<Config, ConfigError> {
        let l = file.merge(env).merge(flags);
        let listen = l.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        check_listen(&listen)?;
        let data_dir = l
            .data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let base_url = l
            .base_url
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_string();
        let database_url = l
            .database_url
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("forklift.db").display()));
        let channels = l
            .channels
            .unwrap_or_else(|| vec!["qa".into(), "staging".into(), "prod".into()]);
        if channels.is_empty() {
            return Err(ConfigError::Invalid {
                key: "channels".into(),
                message: "at least one channel is needed".into(),
            });
        }
        for (i, c) in channels.iter().enumerate() {
            if !valid_channel_name(c) {
                return Err(ConfigError::Invalid {
                    key: "channels".into(),
                    message: format!("{c:?}: use lowercase letters, digits, '-' and '_'"),
                });
            }
            if channels[..i].contains(c) {
                return Err(ConfigError::Invalid {
                    key: "channels".into(),
                    message: format!("{c:?} appears twice"),
                });
            }
        }
        let grace_period = match l.grace_period {
            Some(g) => humantime::parse_duration(&g).map_err(|e| ConfigError::Invalid {
                key: "grace_period".into(),
                message: format!("{g:?}: {e}"),
            })?,
            None => DEFAULT_GRACE,
        };
        if !(database_url.starts_with("sqlite://")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid {
                key: "database_url".into(),
                message: "must start with sqlite://, postgres:// or postgresql://".into(),
            });
        }
        let signing_key_passphrase =
            secret_from(l.signing_key_passphrase, l.signing_key_passphrase_file)?;
        let apt_architectures = l.apt_architectures.unwrap_or_else(|| vec!["amd64".into()]);
        for a in &apt_architectures {
            if !crate::formats::deb::is_valid_architecture(a) || a == "all" {
                return Err(ConfigError::Invalid {
                    key: "apt_architectures".into(),
                    message: format!("{a:?} is not a Debian architecture"),
                });
            }
        }
        let apt_valid_for = match &l.apt_valid_for {
            Some(v) => {
                let d = humantime::parse_duration(v).map_err(|e| ConfigError::Invalid {
                    key: "apt_valid_for".into(),
                    message: format!("{v:?}: {e}"),
                })?;
                if d < Duration::from_secs(2) {
                    return Err(ConfigError::Invalid {
                        key: "apt_valid_for".into(),
                        message: "at least 2s".into(),
                    });
                }
                Some(d)
            }
            None => None,
        };
        let apt_origin = l.apt_origin.unwrap_or_else(|| "Forklift".into());
        let apt_label = l.apt_label.unwrap_or_else(|| "Forklift".into());
        for (k, v) in [("apt_origin", &apt_origin), ("apt_label", &apt_label)] {
            if v.is_empty() || v.contains('\n') || v.trim() != v {
                return Err(ConfigError::Invalid {
                    key: k.into(),
                    message: "one line, no surrounding spaces".into(),
                });
            }
        }
        let private_channels = l.private_channels.unwrap_or_default();
        for c in &private_channels {
            if !channels.contains(c) {
                return Err(ConfigError::Invalid {
                    key: "private_channels".into(),
                    message: format!("{c:?} is not one of the channels"),
                });
            }
        }
        let admin_token = secret_from(l.admin_token, l.admin_token_file)?;
        if let Some(t) = &admin_token {
            if !acceptable_supplied_token(t) {
                return Err(ConfigError::Invalid {
                    key: "admin_token".into(),
                    message: "at least 24 printable characters without spaces".into(),
                });
            }
        }
        // Checked against the channels when the server starts
        // (`gates::apply_config_policies`), where the promotion rules live.
        let policies = l.policies.unwrap_or_default();
        for channel in policies.keys() {
            if !channels.contains(channel) {
                return Err(ConfigError::Invalid {
                    key: format!("policies.{channel}"),
                    message: format!("{channel:?} is not one of the channels"),
                });
            }
        }
        let duration = |key: &str, v: &Option<String>, default: Duration| match v {
            Some(v) => humantime::parse_duration(v).map_err(|e| ConfigError::Invalid {
                key: key.into(),
                message: format!("{v:?}: {e}"),
            }),
            None => Ok(default),
        };
        let scheduler_tick = duration("scheduler_tick", &l.scheduler_tick, Duration::from_secs(1))?;
        let webhook_timeout = duration(
            "webhook_timeout",
            &l.webhook_timeout,
            Duration::from_secs(10),
        )?;
        let webhook_retry_base = duration(
            "webhook_retry_base",
            &l.webhook_retry_base,
            Duration::from_secs(5),
        )?;
        let webhook_max_age = duration(
            "webhook_max_age",
            &l.webhook_max_age,
            Duration::from_secs(24 * 3600),
        )?;
        let webhook_tick = duration("webhook_tick", &l.webhook_tick, Duration::from_secs(1))?;
        let webhook_max_failures = l.webhook_max_failures.unwrap_or(50).max(1);
        let upload_idle_timeout = duration(
            "upload_idle_timeout",
            &l.upload_idle_timeout,
            Duration::from_secs(60),
        )?;
        if upload_idle_timeout.is_zero() {
            return Err(ConfigError::Invalid {
                key: "upload_idle_timeout".into(),
                message: "must be more than 0s".into(),
            });
        }
        let sweep_interval = duration(
            "sweep_interval",
            &l.sweep_interval,
            Duration::from_secs(600),
        )?;
        let keep_revisions = l.keep_revisions.unwrap_or(10).max(1);
        Ok(Config {
            listen,
            data_dir,
            base_url,
            database_url,
            channels,
            max_upload_bytes: l.max_upload_bytes.unwrap_or(DEFAULT_MAX_UPLOAD),
            grace_period,
            signing_key: l.signing_key,
            signing_key_passphrase,
            signing_key_next: l.signing_key_next,
            signing_key_next_passphrase: l.signing_key_next_passphrase,
            apt_valid_for,
            apt_origin,
            apt_label,
            apt_architectures,
            anonymous_read: l.anonymous_read.unwrap_or(true),
            private_channels,
            admin_token,
            policies,
            scheduler_tick,
            webhooks: l.webhooks.unwrap_or_default(),
            webhook_allow_internal: l.webhook_allow_internal.unwrap_or(false),
            webhook_timeout,
            webhook_retry_base,
            webhook_max_age,
            webhook_max_failures,
            webhook_tick,
            upload_idle_timeout,
            sweep_interval,
            keep_revisions,
        })
    }

    /// Defaults only, rooted at `data_dir` (handy for tests and benchmarks).
    pub fn for_data_dir(data_dir: &Path) -> Config {
        Config::resolve(
            Layer::default(),
            Layer::default(),
            Layer {
                data_dir: Some(data_dir.to_path_buf()),
                ..Layer::default()
            },
        )
        .unwrap_or_else(|_| unreachable!("defaults are valid"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_nothing_is_set() {
        let c = Config::resolve(Layer::default(), Layer::default(), Layer::default()).expect("ok");
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.channels, vec!["qa", "staging", "prod"]);
        assert_eq!(c.base_url, "http://127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://./forklift-data/forklift.db");
        assert_eq!(c.max_upload_bytes, 2 * 1024 * 1024 * 1024);
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let file: Layer = toml::from_str(
            "listen = \"0.0.0.0:1\"\nchannels = [\"dev\", \"live\"]\ngrace_period = \"5m\"\nbase_url = \"http://file/\"",
        )
        .expect("toml");
        let mut env = HashMap::new();
        env.insert("FORKLIFT_LISTEN".to_string(), "0.0.0.0:2".to_string());
        env.insert("FORKLIFT_BASE_URL".to_string(), "http://env".to_string());
        let env = Layer::from_env(&env).expect("env");
        let flags = Layer {
            listen: Some("0.0.0.0:3".into()),
            ..Layer::default()
        };
        let c = Config::resolve(file, env, flags).expect("ok");
        assert_eq!(c.listen, "0.0.0.0:3");
        assert_eq!(c.base_url, "http://env");
        assert_eq!(c.channels, vec!["dev", "live"]);
        assert_eq!(c.grace_period, Duration::from_secs(300));
    }

    #[test]
    fn bad_values_are_refused() {
        let bad = |l: Layer| Config::resolve(Layer::default(), Layer::default(), l).is_err();
        assert!(bad(Layer {
            channels: Some(vec!["QA".into()]),
            ..Layer::default()
        }));
        assert!(bad(Layer {
            channels: Some(vec!["a".into(), "a".into()]),
            ..Layer::default()
        }));
        assert!(bad(Layer {
            channels: Some(vec![]),
            ..Layer::default()
        }));
        assert!(bad(Layer {
            grace_period: Some("soon".into()),
            ..Layer::default()
        }));
        assert!(bad(Layer {
            database_url: Some("mysql://x".into()),
            ..Layer::default()
        }));
        assert!(toml::from_str::<Layer>("unknown_key = 1").is_err());
        assert!(bad(Layer {
            private_channels: Some(vec!["nope".into()]),
            ..Layer::default()
        }));
        assert!(bad(Layer {
            admin_token: Some("short".into()),
            ..Layer::default()
        }));
        assert!(toml::from_str::<Layer>("admin_token = \"x\"").is_err());
    }

    #[test]
    fn policies_from_toml() {
        let file: Layer = toml::from_str(
            "[policies.prod]\nevery = \"1h\"\nsoak = \"1h\"\n[policies.staging]\ncron = \"15 10 * * *\"\ntimezone = \"Europe/Madrid\"\n",
        )
        .expect("toml");
        let c = Config::resolve(file, Layer::default(), Layer::default()).expect("ok");
        assert_eq!(c.policies.len(), 2);
        assert_eq!(c.policies["prod"].soak.as_deref(), Some("1h"));
        let bad: Layer = toml::from_str("[policies.nope]\nevery = \"1h\"\n").expect("toml");
        assert!(Config::resolve(bad, Layer::default(), Layer::default()).is_err());
    }

    #[test]
    fn access_settings() {
        let c = Config::resolve(Layer::default(), Layer::default(), Layer::default()).expect("ok");
        assert!(c.anonymous_read && c.private_channels.is_empty());
        let file: Layer = toml::from_str("private_channels = [\"prod\"]").expect("toml");
        let mut env = HashMap::new();
        env.insert("FORKLIFT_ANONYMOUS_READ".to_string(), "false".to_string());
        let c = Config::resolve(file, Layer::from_env(&env).expect("env"), Layer::default())
            .expect("ok");
        assert!(!c.anonymous_read);
        assert_eq!(c.private_channels, vec!["prod"]);
    }
}
