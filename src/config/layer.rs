//! One layer of settings (the TOML file, the `FORKLIFT_*` environment or the
//! flags): every key optional, merged over the ones below it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::*;

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
    /// "file" (default) or "s3://bucket/prefix".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_region: Option<String>,
    /// How long a presigned download URL is valid; unset: no redirects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_redirect_downloads: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_capabilities: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_repositories: Option<Vec<String>>,
}

impl Layer {
    pub(super) fn merge(self, over: Layer) -> Layer {
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
            storage: over.storage.or(self.storage),
            s3_endpoint: over.s3_endpoint.or(self.s3_endpoint),
            s3_region: over.s3_region.or(self.s3_region),
            s3_redirect_downloads: over.s3_redirect_downloads.or(self.s3_redirect_downloads),
            external_capabilities: over.external_capabilities.or(self.external_capabilities),
            base_repositories: over.base_repositories.or(self.base_repositories),
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
            storage: get("FORKLIFT_STORAGE"),
            s3_endpoint: get("FORKLIFT_S3_ENDPOINT"),
            s3_region: get("FORKLIFT_S3_REGION"),
            s3_redirect_downloads: get("FORKLIFT_S3_REDIRECT_DOWNLOADS"),
            external_capabilities: get("FORKLIFT_EXTERNAL_CAPABILITIES").map(|v| list(&v)),
            base_repositories: get("FORKLIFT_BASE_REPOSITORIES").map(|v| list(&v)),
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

/// A comma-separated list from the environment, blanks dropped.
fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}
