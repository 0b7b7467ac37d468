//! Settings that describe domain objects (a channel's policy, a webhook
//! subscription) as plain data; the services give them meaning.

use serde::{Deserialize, Serialize};

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
    /// Refuse a promotion into this channel that would leave a dependency
    /// unmet (default false; docs/promotion.md, Dependency closure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_dependencies: Option<bool>,
    /// Checks a build must have passed in the source channel before it may
    /// enter, e.g. ["integration", "ui"].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_checks: Option<Vec<String>>,
    /// "hold": a required check reported failed holds the build, as if CI
    /// pressed the panic button.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failed_check: Option<String>,
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
