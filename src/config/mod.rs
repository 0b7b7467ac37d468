//! Typed configuration: defaults < TOML file < `FORKLIFT_*` environment < flags.
//!
//! Resolution is a pure function of its three inputs so it is tested without
//! touching the process environment.

use std::path::PathBuf;
use std::time::Duration;

mod layer;
mod resolve;
mod specs;
mod storage;

pub use layer::Layer;
pub use resolve::{check_listen, redact_password, valid_channel_name};
pub use specs::{acceptable_supplied_token, ConfigWebhooks, PolicySpec, WebhookSpec};
pub use storage::{S3Storage, Storage};

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
    /// Where blobs live (`storage`, `s3_*` settings).
    pub storage: Storage,
    /// Capabilities the hosts' base system has (glob patterns such as
    /// `libc.so.6*`), for the dependency closure gate.
    pub external_capabilities: Vec<String>,
    /// Base repositories whose metadata says what the base system provides:
    /// a yum repository's URL (its repodata/repomd.xml is read) or an apt
    /// Packages(.gz|.xz) file's URL.
    pub base_repositories: Vec<String>,
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
            external_capabilities: Some(self.external_capabilities.clone()),
            base_repositories: Some(self.base_repositories.clone()),
            storage: Some(self.storage.url()),
            s3_endpoint: match &self.storage {
                Storage::S3(s) => s.endpoint.clone(),
                Storage::File => None,
            },
            s3_region: match &self.storage {
                Storage::S3(s) => s.region.clone(),
                Storage::File => None,
            },
            s3_redirect_downloads: match &self.storage {
                Storage::S3(s) => s.redirect_downloads.map(d),
                Storage::File => None,
            },
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

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./forklift-data";
pub const DEFAULT_MAX_UPLOAD: u64 = 2 * 1024 * 1024 * 1024;
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

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
    fn base_system_settings() {
        let file: Layer = toml::from_str(
            "external_capabilities = [\"libc.so.6*\", \"/bin/sh\"]\nbase_repositories = [\"file:///srv/base\"]\n",
        )
        .expect("toml");
        let c = Config::resolve(file, Layer::default(), Layer::default()).expect("ok");
        assert_eq!(c.external_capabilities, vec!["libc.so.6*", "/bin/sh"]);
        let again: Layer = toml::from_str(&c.to_toml().expect("toml")).expect("reads back");
        let again = Config::resolve(again, Layer::default(), Layer::default()).expect("ok");
        assert_eq!(again.base_repositories, vec!["file:///srv/base"]);
        let mut env = HashMap::new();
        env.insert(
            "FORKLIFT_EXTERNAL_CAPABILITIES".to_string(),
            "glibc, python3*".to_string(),
        );
        let c = Config::resolve(
            Layer::default(),
            Layer::from_env(&env).expect("env"),
            Layer::default(),
        )
        .expect("ok");
        assert_eq!(c.external_capabilities, vec!["glibc", "python3*"]);
        let bad = |l: Layer| Config::resolve(Layer::default(), Layer::default(), l).is_err();
        assert!(bad(Layer {
            external_capabilities: Some(vec!["[".into()]),
            ..Layer::default()
        }));
        assert!(bad(Layer {
            base_repositories: Some(vec!["ftp://x".into()]),
            ..Layer::default()
        }));
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

    #[test]
    fn object_storage_from_the_environment_and_back_through_toml() {
        let mut env = HashMap::new();
        for (k, v) in [
            ("FORKLIFT_STORAGE", "s3://packages/forklift"),
            ("FORKLIFT_S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("FORKLIFT_S3_REGION", "eu-west-1"),
            ("FORKLIFT_S3_REDIRECT_DOWNLOADS", "5m"),
            ("FORKLIFT_DATABASE_URL", "postgres://forklift@db/forklift"),
            ("FORKLIFT_SIGNING_KEY", "/etc/forklift/key.asc"),
        ] {
            env.insert(k.to_string(), v.to_string());
        }
        let c = Config::resolve(
            Layer::default(),
            Layer::from_env(&env).expect("env"),
            Layer::default(),
        )
        .expect("ok");
        let Storage::S3(s3) = &c.storage else {
            panic!("not s3: {:?}", c.storage)
        };
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str()),
            ("packages", "forklift")
        );
        assert_eq!(s3.redirect_downloads, Some(Duration::from_secs(300)));
        let file: Layer = toml::from_str(&c.to_toml().expect("toml")).expect("reads back");
        let again = Config::resolve(file, Layer::default(), Layer::default()).expect("ok");
        assert_eq!(again.storage, c.storage);
        env.remove("FORKLIFT_DATABASE_URL");
        let e = Config::resolve(
            Layer::default(),
            Layer::from_env(&env).expect("env"),
            Layer::default(),
        )
        .expect_err("SQLite with object storage");
        assert!(e.to_string().contains("SQLite"), "{e}");
    }
}
