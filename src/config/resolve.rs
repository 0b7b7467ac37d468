//! Resolution: the layers merged over the defaults, validated into a
//! [`Config`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

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
pub fn check_listen(listen: &str) -> Result<(), ConfigError> {
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
        let external_capabilities = l.external_capabilities.unwrap_or_default();
        for p in &external_capabilities {
            if let Err(e) = glob::Pattern::new(p) {
                return Err(ConfigError::Invalid {
                    key: "external_capabilities".into(),
                    message: format!("{p:?} is not a glob pattern: {e}"),
                });
            }
        }
        let base_repositories = l.base_repositories.unwrap_or_default();
        for u in &base_repositories {
            if !["http://", "https://", "file://"]
                .iter()
                .any(|s| u.starts_with(s))
            {
                return Err(ConfigError::Invalid {
                    key: "base_repositories".into(),
                    message: format!("{u:?}: use an http://, https:// or file:// URL"),
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
        let redirect_downloads = match &l.s3_redirect_downloads {
            Some(_) => Some(duration(
                "s3_redirect_downloads",
                &l.s3_redirect_downloads,
                Duration::ZERO,
            )?),
            None => None,
        };
        let storage = super::storage::resolve_storage(super::storage::StorageInput {
            storage: l.storage.as_deref(),
            endpoint: l.s3_endpoint,
            region: l.s3_region,
            redirect_downloads,
            database_url: &database_url,
            signing_key_set: l.signing_key.is_some(),
        })?;
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
            storage,
            external_capabilities,
            base_repositories,
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
