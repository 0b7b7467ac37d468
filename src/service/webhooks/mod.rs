//! Package-material webhooks. The events table is the outbox: every change
//! writes its events in its own transaction, and each subscription reads them
//! in id order from a cursor that moves only once an event is delivered (or
//! given up on), so nothing is lost and a restart re-sends at most the one
//! event in flight — receivers deduplicate by `X-Forklift-Delivery`.

mod delivery;
mod model;
mod payload;
mod targets;

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub use crate::config::{ConfigWebhooks, WebhookSpec};
pub use delivery::{deliver_due, redeliver};
pub use model::{
    apply_config, attempts, create, delete, get, list, update, AttemptView, CreateWebhook,
    UpdateWebhook, WebhookView,
};
pub use payload::payload;
pub use targets::{check_target, http_agent, is_internal};

/// Every event type a subscription can ask for.
pub const EVENT_TYPES: &[&str] = &[
    "package.uploaded",
    "package.promoted",
    "package.demoted",
    "package.held",
    "package.released",
    "package.discarded",
    "package.noted",
    "check.reported",
    "channel.frozen",
    "channel.unfrozen",
    "channel.published",
    "subscription.disabled",
];

/// The wire type of a recorded event; None for events that are not sent
/// (token administration, retention bookkeeping).
pub fn event_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "uploaded" => "package.uploaded",
        // Entering the first channel is the first promotion of a build.
        "added" | "promoted" => "package.promoted",
        "demoted" => "package.demoted",
        "held" => "package.held",
        "released" => "package.released",
        "discarded" => "package.discarded",
        "note" => "package.noted",
        "check" => "check.reported",
        "frozen" => "channel.frozen",
        "unfrozen" => "channel.unfrozen",
        "published" => "channel.published",
        "webhook_disabled" => "subscription.disabled",
        _ => return None,
    })
}

/// `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Exponential backoff with jitter: base·2^(n-1), capped at an hour, then a
/// random point in its upper half so receivers coming back are not stampeded.
pub fn backoff(attempt: u32, base: Duration, jitter: f64) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = exp.min(Duration::from_secs(3600));
    capped.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// A subscription's filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filters {
    /// Channels; empty = all. Events without a channel pass only when empty.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Package-name globs such as "app-*"; empty = all. Events without a
    /// package pass only when empty.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Event types; empty = all.
    #[serde(default)]
    pub events: Vec<String>,
}

impl Filters {
    pub fn matches(&self, ty: &str, channel: Option<&str>, package: Option<&str>) -> bool {
        let type_ok = self.events.is_empty() || self.events.iter().any(|e| e == ty);
        let channel_ok = self.channels.is_empty()
            || channel.is_some_and(|c| self.channels.iter().any(|x| x == c));
        let package_ok = self.packages.is_empty()
            || package.is_some_and(|p| {
                self.packages
                    .iter()
                    .any(|g| glob::Pattern::new(g).is_ok_and(|pat| pat.matches(p)))
            });
        type_ok && channel_ok && package_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_over_timestamp_and_body() {
        // Reference value from Python: hmac.new(b"secret", b'1700000000.{"a":1}', sha256)
        let s = signature("secret", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            s,
            "sha256=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
        assert_ne!(s, signature("secret", 1_700_000_001, br#"{"a":1}"#));
        assert_ne!(s, signature("other", 1_700_000_000, br#"{"a":1}"#));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_secs(2);
        assert_eq!(backoff(1, base, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(1, base, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(4, base, 1.0), Duration::from_secs(16));
        assert_eq!(backoff(40, base, 1.0), Duration::from_secs(3600));
    }

    #[test]
    fn internal_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_internal(ip.parse().expect(ip)), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_internal(ip.parse().expect(ip)), "{ip}");
        }
        assert!(check_target("http://127.0.0.1:9/hook", false).is_err());
        assert!(check_target("http://127.0.0.1:9/hook", true).is_ok());
        assert!(check_target("ftp://example.com/", true).is_err());
        assert!(check_target("http://user:pw@example.com/", true).is_err());
    }

    #[test]
    fn filters() {
        let f = Filters {
            channels: vec!["prod".into()],
            packages: vec!["app-*".into()],
            events: vec!["package.promoted".into()],
        };
        assert!(f.matches("package.promoted", Some("prod"), Some("app-web")));
        assert!(!f.matches("package.promoted", Some("staging"), Some("app-web")));
        assert!(!f.matches("package.promoted", Some("prod"), Some("lib")));
        assert!(!f.matches("package.demoted", Some("prod"), Some("app-web")));
        assert!(!f.matches("package.promoted", None, Some("app-web")));
        assert!(Filters::default().matches("channel.published", Some("qa"), None));
        assert_eq!(event_type("added"), Some("package.promoted"));
        assert_eq!(event_type("token_created"), None);
    }
}
