//! Prometheus metrics (the `prometheus-client` crate): counters and
//! histograms updated where things happen, gauges set from a snapshot of the
//! database each time `/metrics` is scraped. One `Metrics` value lives in the
//! app state; nothing here knows about services or HTTP.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route's pattern (`/api/v1/packages/{id}`), never the raw path.
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    pub channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `stored`, `duplicate` or `refused`.
    pub outcome: String,
}

/// A route pattern as a label: `/packages/{id}` → `/packages/:id`, and
/// `{rest:.*}` → `:rest` (braces inside label values trip some parsers).
pub fn route_label(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let inner = &rest[open + 1..open + close];
        out.push(':');
        out.push_str(inner.split(':').next().unwrap_or(inner));
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// What a scrape reads from the database and the pool.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// (channel, builds it holds, head revision)
    pub channels: Vec<(String, i64, i64)>,
    pub packages: i64,
    pub package_bytes: i64,
    pub webhooks_disabled: i64,
    /// Events not yet delivered to an active subscription, and the age in
    /// seconds of the oldest of them.
    pub webhook_pending: i64,
    pub webhook_lag_seconds: i64,
    pub webhook_failures: i64,
    pub pool_connections: i64,
    pub pool_idle: i64,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Family<RouteLabels, Histogram>,
    pub uploads: Family<OutcomeLabels, Counter>,
    pub upload_bytes: Counter,
    pub publish_seconds: Family<ChannelLabels, Histogram>,
    pub revisions: Family<ChannelLabels, Counter>,
    pub scheduler_runs: Family<ChannelLabels, Counter>,
    channel_builds: Family<ChannelLabels, Gauge>,
    channel_head: Family<ChannelLabels, Gauge>,
    packages: Gauge,
    package_bytes: Gauge,
    webhooks_disabled: Gauge,
    webhook_pending: Gauge,
    webhook_lag: Gauge,
    webhook_failures: Gauge,
    pool_connections: Gauge,
    pool_idle: Gauge,
    /// Scrapes set the gauges and encode under this, so two never mix.
    scrape: Mutex<()>,
}

fn seconds_histogram() -> Histogram {
    // 1 ms … ~33 s
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("forklift");
        let m = Metrics {
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(seconds_histogram),
            uploads: Family::default(),
            upload_bytes: Counter::default(),
            publish_seconds: Family::new_with_constructor(seconds_histogram),
            revisions: Family::default(),
            scheduler_runs: Family::default(),
            channel_builds: Family::default(),
            channel_head: Family::default(),
            packages: Gauge::default(),
            package_bytes: Gauge::default(),
            webhooks_disabled: Gauge::default(),
            webhook_pending: Gauge::default(),
            webhook_lag: Gauge::default(),
            webhook_failures: Gauge::default(),
            pool_connections: Gauge::default(),
            pool_idle: Gauge::default(),
            scrape: Mutex::new(()),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "http_requests",
            "HTTP requests by route, method and status",
            m.requests.clone(),
        );
        r.register(
            "http_request_seconds",
            "HTTP request latency by route",
            m.request_seconds.clone(),
        );
        r.register("uploads", "Uploads by outcome", m.uploads.clone());
        r.register(
            "upload_bytes",
            "Bytes of stored uploads",
            m.upload_bytes.clone(),
        );
        r.register(
            "publication_seconds",
            "Time to publish a channel's new revision",
            m.publish_seconds.clone(),
        );
        r.register(
            "revisions",
            "Revisions published by this instance",
            m.revisions.clone(),
        );
        r.register(
            "scheduler_runs",
            "Automatic promotion runs taken by this instance",
            m.scheduler_runs.clone(),
        );
        r.register(
            "channel_builds",
            "Builds each channel holds",
            m.channel_builds.clone(),
        );
        r.register(
            "channel_head_revision",
            "Each channel's head revision",
            m.channel_head.clone(),
        );
        r.register(
            "packages",
            "Stored builds (not discarded)",
            m.packages.clone(),
        );
        r.register(
            "package_bytes",
            "Bytes of stored builds (not discarded)",
            m.package_bytes.clone(),
        );
        r.register(
            "webhooks_disabled",
            "Webhook subscriptions disabled after failures",
            m.webhooks_disabled.clone(),
        );
        r.register(
            "webhook_pending_events",
            "Events waiting for delivery to active subscriptions",
            m.webhook_pending.clone(),
        );
        r.register(
            "webhook_lag_seconds",
            "Age of the oldest undelivered event",
            m.webhook_lag.clone(),
        );
        r.register(
            "webhook_failed_attempts",
            "Failed delivery attempts on record",
            m.webhook_failures.clone(),
        );
        r.register(
            "db_pool_connections",
            "Database connections open in this instance's pool",
            m.pool_connections.clone(),
        );
        r.register(
            "db_pool_idle",
            "Idle database connections in this instance's pool",
            m.pool_idle.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The text exposition (OpenMetrics, which Prometheus reads), with the
    /// gauges taken from `s`.
    pub fn encode(&self, s: &Snapshot) -> Result<String, std::fmt::Error> {
        let _one = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        for (c, builds, head) in &s.channels {
            let l = ChannelLabels { channel: c.clone() };
            self.channel_builds.get_or_create(&l).set(*builds);
            self.channel_head.get_or_create(&l).set(*head);
        }
        self.packages.set(s.packages);
        self.package_bytes.set(s.package_bytes);
        self.webhooks_disabled.set(s.webhooks_disabled);
        self.webhook_pending.set(s.webhook_pending);
        self.webhook_lag.set(s.webhook_lag_seconds);
        self.webhook_failures.set(s.webhook_failures);
        self.pool_connections.set(s.pool_connections);
        self.pool_idle.set(s.pool_idle);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_patterns_become_plain_labels() {
        assert_eq!(
            route_label("/api/v1/packages/{id}/promote"),
            "/api/v1/packages/:id/promote"
        );
        assert_eq!(route_label("/deb/pool/{rest:.*}"), "/deb/pool/:rest");
        assert_eq!(route_label("/healthz"), "/healthz");
    }

    #[test]
    fn series_carry_their_labels_and_values() {
        let m = Metrics::new();
        m.requests
            .get_or_create(&RequestLabels {
                route: "/api/v1/packages/:id".into(),
                method: "PUT".into(),
                status: 201,
            })
            .inc();
        m.upload_bytes.inc_by(7264);
        let text = m
            .encode(&Snapshot {
                channels: vec![("qa".into(), 3, 5)],
                ..Snapshot::default()
            })
            .expect("encode");
        assert!(text.contains(
            "forklift_http_requests_total{route=\"/api/v1/packages/:id\",method=\"PUT\",status=\"201\"} 1"
        ), "{text}");
        assert!(text.contains("forklift_upload_bytes_total 7264"), "{text}");
        assert!(
            text.contains("forklift_channel_builds{channel=\"qa\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("forklift_channel_head_revision{channel=\"qa\"} 5"),
            "{text}"
        );
    }
}
