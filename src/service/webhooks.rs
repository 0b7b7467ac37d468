//! Package-material webhooks. The events table is the outbox: every change
//! writes its events in its own transaction, and each subscription reads them
//! in id order from a cursor that moves only once an event is delivered (or
//! given up on), so nothing is lost and a restart re-sends at most the one
//! event in flight — receivers deduplicate by `X-Forklift-Delivery`.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::views::rfc3339;
use super::{Actor, Ctx, ServiceError};
use crate::db::models::{AttemptRow, EventRow, NewEvent, PackageSummary, WebhookRow};
use crate::db::schema::*;
use crate::db::{is_unique_violation, DbConnection};

// ---- pure core ----------------------------------------------------------------

/// Every event type a subscription can ask for.
pub const EVENT_TYPES: &[&str] = &[
    "package.uploaded",
    "package.promoted",
    "package.demoted",
    "package.held",
    "package.released",
    "package.discarded",
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

/// Loopback, private, link-local, unspecified, multicast and other
/// non-public ranges: a webhook must not reach into the server's own network.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // CGNAT
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || v6.to_ipv4_mapped().is_some_and(|v4| is_internal(IpAddr::V4(v4)))
                // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address.
                || (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
                    && is_internal(IpAddr::V4(std::net::Ipv4Addr::new(
                        (s[6] >> 8) as u8,
                        s[6] as u8,
                        (s[7] >> 8) as u8,
                        s[7] as u8,
                    ))))
                || (s[0] == 0x2002
                    && is_internal(IpAddr::V4(std::net::Ipv4Addr::new(
                        (s[1] >> 8) as u8,
                        s[1] as u8,
                        (s[2] >> 8) as u8,
                        s[2] as u8,
                    ))))
        }
    }
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

// ---- subscriptions ------------------------------------------------------------

pub use crate::config::{ConfigWebhooks, WebhookSpec};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    pub name: String,
    #[serde(flatten)]
    pub spec: WebhookSpec,
}

/// Changes to a subscription; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    pub url: Option<String>,
    pub secret: Option<String>,
    pub channels: Option<Vec<String>>,
    pub packages: Option<Vec<String>>,
    pub events: Option<Vec<String>>,
    pub format: Option<String>,
    /// true re-enables a disabled subscription (and clears its failure count).
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WebhookView {
    pub id: i64,
    pub name: String,
    pub url: String,
    #[serde(flatten)]
    pub filters: Filters,
    pub format: String,
    pub active: bool,
    pub disabled_reason: Option<String>,
    /// The last event id handled; later events are pending.
    pub cursor: i64,
    pub pending: i64,
    pub consecutive_failures: i32,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub created_by: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptView {
    pub event_id: i64,
    pub at: String,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub success: bool,
    pub manual: bool,
}

fn filters_of(row: &WebhookRow) -> Filters {
    let list = |s: &str| s.split_whitespace().map(str::to_string).collect();
    Filters {
        channels: list(&row.channels),
        packages: list(&row.packages),
        events: list(&row.event_types),
    }
}

fn view(conn: &mut DbConnection, row: &WebhookRow) -> Result<WebhookView, ServiceError> {
    let pending: i64 = events::table
        .filter(events::id.gt(row.cursor))
        .count()
        .get_result(conn)?;
    Ok(WebhookView {
        id: row.id,
        name: row.name.clone(),
        url: row.url.clone(),
        filters: filters_of(row),
        format: row.format.clone(),
        active: row.active,
        disabled_reason: row.disabled_reason.clone(),
        cursor: row.cursor,
        pending,
        consecutive_failures: row.failures,
        next_attempt_at: row.next_attempt_at.map(|ms| rfc3339(ms / 1000)),
        created_at: rfc3339(row.created_at),
        created_by: row.created_by.clone(),
    })
}

/// Checks a target URL: http(s), a host, and — unless the configuration allows
/// internal targets — no address in a loopback, private or link-local range.
pub fn check_target(url: &str, allow_internal: bool) -> Result<(), ServiceError> {
    let bad = |m: String| ServiceError::BadRequest(format!("webhook url {url:?}: {m}"));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("not an absolute URL".into()))?;
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return Err(bad("only http and https".into())),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(bad("needs a host and no credentials in the URL".into()));
    }
    let with_port = if authority.starts_with('[') {
        if authority.contains("]:") {
            authority.to_string()
        } else {
            format!("{authority}:{default_port}")
        }
    } else if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:{default_port}")
    };
    if allow_internal {
        return Ok(());
    }
    let addrs: Vec<SocketAddr> = with_port
        .to_socket_addrs()
        .map_err(|e| bad(format!("cannot resolve: {e}")))?
        .collect();
    if addrs.is_empty() || addrs.iter().any(|a| is_internal(a.ip())) {
        return Err(bad(
            "resolves to a loopback, private or link-local address (set webhook_allow_internal to allow)".into(),
        ));
    }
    Ok(())
}

fn validate(ctx: &Ctx, spec: &WebhookSpec) -> Result<(), ServiceError> {
    check_target(&spec.url, ctx.config.webhook_allow_internal)?;
    if spec.secret.len() < 16 {
        return Err(ServiceError::BadRequest(
            "a webhook secret needs at least 16 characters".into(),
        ));
    }
    for c in &spec.channels {
        ctx.channel_index(c)?;
    }
    for e in &spec.events {
        if !EVENT_TYPES.contains(&e.as_str()) {
            return Err(ServiceError::BadRequest(format!(
                "unknown event type {e:?}; one of {}",
                EVENT_TYPES.join(", ")
            )));
        }
    }
    for g in &spec.packages {
        glob::Pattern::new(g)
            .map_err(|e| ServiceError::BadRequest(format!("package glob {g:?}: {e}")))?;
    }
    match spec.format.as_deref() {
        None | Some("json") | Some("cloudevents") => Ok(()),
        Some(f) => Err(ServiceError::BadRequest(format!(
            "format {f:?}: use json or cloudevents"
        ))),
    }
}

fn max_event_id(conn: &mut DbConnection) -> Result<i64, ServiceError> {
    let max: Option<i64> = events::table
        .select(diesel::dsl::max(events::id))
        .first(conn)?;
    Ok(max.unwrap_or(0))
}

fn insert(
    ctx: &Ctx,
    conn: &mut DbConnection,
    name: &str,
    spec: &WebhookSpec,
    by: &str,
) -> Result<(), ServiceError> {
    validate(ctx, spec)?;
    // A new subscription starts with what happens from now on.
    let cursor = max_event_id(conn)?;
    let r = diesel::insert_into(webhooks::table)
        .values((
            webhooks::name.eq(name),
            webhooks::url.eq(&spec.url),
            webhooks::secret.eq(&spec.secret),
            webhooks::channels.eq(spec.channels.join(" ")),
            webhooks::packages.eq(spec.packages.join(" ")),
            webhooks::event_types.eq(spec.events.join(" ")),
            webhooks::format.eq(spec.format.as_deref().unwrap_or("json")),
            webhooks::active.eq(spec.active.unwrap_or(true)),
            webhooks::cursor.eq(cursor),
            webhooks::attempts.eq(0),
            webhooks::failures.eq(0),
            webhooks::created_at.eq(super::now()),
            webhooks::created_by.eq(by),
        ))
        .execute(conn);
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(ServiceError::BadRequest(format!(
            "a webhook named {name:?} exists already"
        ))),
        Err(e) => Err(e.into()),
    }
}

fn by_id(conn: &mut DbConnection, id: i64) -> Result<WebhookRow, ServiceError> {
    webhooks::table
        .find(id)
        .select(WebhookRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ServiceError::NotFound(format!("no webhook {id}")))
}

pub fn create(ctx: &Ctx, req: &CreateWebhook, actor: &Actor) -> Result<WebhookView, ServiceError> {
    actor.require_admin()?;
    if !crate::config::valid_channel_name(&req.name) {
        return Err(ServiceError::BadRequest(format!(
            "webhook name {:?}: lowercase letters, digits, '-' and '_'",
            req.name
        )));
    }
    let mut conn = ctx.conn()?;
    crate::db::write_transaction(&mut conn, |conn| {
        insert(ctx, conn, &req.name, &req.spec, &actor.name)?;
        audit(
            ctx,
            conn,
            "webhook_created",
            actor,
            &req.name,
            &req.spec.url,
        )
    })?;
    let row: WebhookRow = webhooks::table
        .filter(webhooks::name.eq(&req.name))
        .select(WebhookRow::as_select())
        .first(&mut conn)?;
    view(&mut conn, &row)
}

/// Subscriptions in the config file (`[webhooks.<name>]`) are created or
/// updated at every start; their delivery position is kept.
pub fn apply_config(ctx: &Ctx) -> Result<(), ServiceError> {
    let mut conn = ctx.conn()?;
    for (name, spec) in &ctx.config.webhooks {
        let existing: Option<i64> = webhooks::table
            .filter(webhooks::name.eq(name))
            .select(webhooks::id)
            .first(&mut conn)
            .optional()?;
        match existing {
            None => insert(ctx, &mut conn, name, spec, "config")?,
            Some(id) => {
                validate(ctx, spec)?;
                diesel::update(webhooks::table.find(id))
                    .set((
                        webhooks::url.eq(&spec.url),
                        webhooks::secret.eq(&spec.secret),
                        webhooks::channels.eq(spec.channels.join(" ")),
                        webhooks::packages.eq(spec.packages.join(" ")),
                        webhooks::event_types.eq(spec.events.join(" ")),
                        webhooks::format.eq(spec.format.as_deref().unwrap_or("json")),
                    ))
                    .execute(&mut conn)?;
            }
        }
    }
    Ok(())
}

pub fn list(ctx: &Ctx, actor: &Actor) -> Result<Vec<WebhookView>, ServiceError> {
    actor.require_admin()?;
    let mut conn = ctx.conn()?;
    let rows: Vec<WebhookRow> = webhooks::table
        .order(webhooks::id.asc())
        .select(WebhookRow::as_select())
        .load(&mut conn)?;
    rows.iter().map(|r| view(&mut conn, r)).collect()
}

pub fn get(ctx: &Ctx, id: i64, actor: &Actor) -> Result<WebhookView, ServiceError> {
    actor.require_admin()?;
    let mut conn = ctx.conn()?;
    let row = by_id(&mut conn, id)?;
    view(&mut conn, &row)
}

pub fn update(
    ctx: &Ctx,
    id: i64,
    u: &UpdateWebhook,
    actor: &Actor,
) -> Result<WebhookView, ServiceError> {
    actor.require_admin()?;
    let mut conn = ctx.conn()?;
    let row = by_id(&mut conn, id)?;
    let f = filters_of(&row);
    let spec = WebhookSpec {
        url: u.url.clone().unwrap_or(row.url.clone()),
        secret: u.secret.clone().unwrap_or(row.secret.clone()),
        channels: u.channels.clone().unwrap_or(f.channels),
        packages: u.packages.clone().unwrap_or(f.packages),
        events: u.events.clone().unwrap_or(f.events),
        format: Some(u.format.clone().unwrap_or(row.format.clone())),
        active: u.active,
    };
    validate(ctx, &spec)?;
    let reactivate = u.active == Some(true) && !row.active;
    diesel::update(webhooks::table.find(id))
        .set((
            webhooks::url.eq(&spec.url),
            webhooks::secret.eq(&spec.secret),
            webhooks::channels.eq(spec.channels.join(" ")),
            webhooks::packages.eq(spec.packages.join(" ")),
            webhooks::event_types.eq(spec.events.join(" ")),
            webhooks::format.eq(spec.format.as_deref().unwrap_or("json")),
            webhooks::active.eq(u.active.unwrap_or(row.active)),
        ))
        .execute(&mut conn)?;
    if reactivate {
        diesel::update(webhooks::table.find(id))
            .set((
                webhooks::failures.eq(0),
                webhooks::attempts.eq(0),
                webhooks::next_attempt_at.eq(None::<i64>),
                webhooks::first_attempt_at.eq(None::<i64>),
                webhooks::disabled_reason.eq(None::<String>),
            ))
            .execute(&mut conn)?;
    }
    audit(
        ctx,
        &mut conn,
        "webhook_updated",
        actor,
        &row.name,
        &spec.url,
    )?;
    let row = by_id(&mut conn, id)?;
    view(&mut conn, &row)
}

pub fn delete(ctx: &Ctx, id: i64, actor: &Actor) -> Result<(), ServiceError> {
    actor.require_admin()?;
    let mut conn = ctx.conn()?;
    let row = by_id(&mut conn, id)?;
    crate::db::write_transaction(&mut conn, |conn| {
        diesel::delete(webhook_attempts::table.filter(webhook_attempts::webhook_id.eq(id)))
            .execute(conn)?;
        diesel::delete(webhooks::table.find(id)).execute(conn)?;
        audit(ctx, conn, "webhook_deleted", actor, &row.name, &row.url)
    })
}

/// Who changed a subscription, in the audit log (never its secret).
fn audit(
    ctx: &Ctx,
    conn: &mut DbConnection,
    kind: &str,
    actor: &Actor,
    name: &str,
    url: &str,
) -> Result<(), ServiceError> {
    super::tokens::admin_event(
        conn,
        ctx.clock.now(),
        kind,
        actor,
        serde_json::json!({ "webhook": name, "url": url }),
    )
}

pub fn attempts(
    ctx: &Ctx,
    id: i64,
    limit: Option<i64>,
    actor: &Actor,
) -> Result<Vec<AttemptView>, ServiceError> {
    actor.require_admin()?;
    let mut conn = ctx.conn()?;
    by_id(&mut conn, id)?;
    let rows: Vec<AttemptRow> = webhook_attempts::table
        .filter(webhook_attempts::webhook_id.eq(id))
        .order(webhook_attempts::id.desc())
        .limit(limit.unwrap_or(100).clamp(1, 1000))
        .select(AttemptRow::as_select())
        .load(&mut conn)?;
    Ok(rows
        .into_iter()
        .map(|a| AttemptView {
            event_id: a.event_id,
            at: rfc3339(a.at / 1000),
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            error: a.error,
            success: a.success,
            manual: a.manual,
        })
        .collect())
}

// ---- payloads -------------------------------------------------------------------

fn package_json(
    ctx: &Ctx,
    p: &PackageSummary,
    channel: Option<&str>,
    pool: Option<&str>,
) -> serde_json::Value {
    let base = &ctx.config.base_url;
    let download_url = channel.map(|c| match pool {
        Some(path) => format!("{base}/deb/{path}"),
        None => format!(
            "{base}/rpm/{c}/{}",
            super::packages::rpm_location(&p.id, &p.filename)
        ),
    });
    serde_json::json!({
        "id": p.id,
        "sha256": p.id,
        "kind": p.kind,
        "name": p.name,
        "epoch": p.epoch,
        "version": p.version,
        "release": p.release,
        "arch": p.arch,
        "filename": p.filename,
        "download_url": download_url,
    })
}

fn load_package(
    conn: &mut DbConnection,
    id: &str,
) -> Result<Option<(PackageSummary, Option<String>)>, ServiceError> {
    Ok(packages::table
        .find(id)
        .select((PackageSummary::as_select(), packages::pool_path))
        .first(conn)
        .optional()?)
}

/// The JSON body of one event (before any CloudEvents envelope).
pub fn payload(
    ctx: &Ctx,
    conn: &mut DbConnection,
    e: &EventRow,
    ty: &str,
) -> Result<serde_json::Value, ServiceError> {
    let detail: Option<serde_json::Value> = e
        .detail
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok());
    let package = match &e.package_id {
        Some(id) => load_package(conn, id)?
            .map(|(p, pool)| package_json(ctx, &p, e.channel.as_deref(), pool.as_deref())),
        None => None,
    };
    let fell_back_to = match detail
        .as_ref()
        .and_then(|d| d.get("fell_back_to"))
        .and_then(|v| v.as_str())
    {
        Some(id) => load_package(conn, id)?
            .map(|(p, pool)| package_json(ctx, &p, e.channel.as_deref(), pool.as_deref())),
        None => None,
    };
    // Every change moves a channel's head by exactly one revision.
    let revision = e
        .revision
        .map(|after| serde_json::json!({ "before": after - 1, "after": after }));
    Ok(serde_json::json!({
        "id": e.id.to_string(),
        "type": ty,
        "time": rfc3339(e.at),
        "actor": e.actor,
        "channel": e.channel,
        "revision": revision,
        "package": package,
        "fell_back_to": fell_back_to,
        "reason": e.reason,
        "detail": detail,
    }))
}

/// The body to send and its content type.
fn body_for(
    ctx: &Ctx,
    format: &str,
    payload: serde_json::Value,
    ty: &str,
) -> (Vec<u8>, &'static str) {
    if format == "cloudevents" {
        let subject = payload["package"]["filename"]
            .as_str()
            .map(str::to_string)
            .or_else(|| payload["channel"].as_str().map(str::to_string));
        let envelope = serde_json::json!({
            "specversion": "1.0",
            "id": payload["id"],
            "source": ctx.config.base_url,
            "type": format!("io.forklift.{ty}"),
            "time": payload["time"],
            "subject": subject,
            "datacontenttype": "application/json",
            "data": payload,
        });
        (
            envelope.to_string().into_bytes(),
            "application/cloudevents+json",
        )
    } else {
        (payload.to_string().into_bytes(), "application/json")
    }
}

// ---- delivery ---------------------------------------------------------------------

/// Resolves like the OS, then drops internal addresses unless allowed: checked
/// at connect time, so a DNS answer that changes after validation cannot
/// point a webhook into the server's network.
struct SafeResolver {
    allow_internal: bool,
}

impl ureq::Resolver for SafeResolver {
    fn resolve(&self, netloc: &str) -> std::io::Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = netloc.to_socket_addrs()?.collect();
        if self.allow_internal {
            return Ok(addrs);
        }
        let public: Vec<SocketAddr> = addrs.into_iter().filter(|a| !is_internal(a.ip())).collect();
        if public.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "webhook target resolves only to internal addresses",
            ));
        }
        Ok(public)
    }
}

/// The HTTP client for deliveries: timeouts, no redirects, safe resolution.
pub fn http_agent(ctx: &Ctx) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(ctx.config.webhook_timeout)
        .redirects(0)
        .resolver(SafeResolver {
            allow_internal: ctx.config.webhook_allow_internal,
        })
        .user_agent(concat!("forklift/", env!("CARGO_PKG_VERSION")))
        .build()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

struct Outcome {
    status: Option<i32>,
    latency_ms: i32,
    error: Option<String>,
}

impl Outcome {
    fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

fn send(
    agent: &ureq::Agent,
    hook: &WebhookRow,
    event_id: i64,
    ty: &str,
    body: &[u8],
    content_type: &str,
) -> Outcome {
    let ts = super::now();
    let started = Instant::now();
    let r = agent
        .post(&hook.url)
        .set("Content-Type", content_type)
        .set("X-Forklift-Event", ty)
        .set("X-Forklift-Delivery", &event_id.to_string())
        .set("X-Forklift-Timestamp", &ts.to_string())
        .set("X-Forklift-Signature", &signature(&hook.secret, ts, body))
        .send_bytes(body);
    let latency_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
    match r {
        Ok(resp) => Outcome {
            status: Some(resp.status() as i32),
            latency_ms,
            error: None,
        },
        Err(ureq::Error::Status(code, _)) => Outcome {
            status: Some(code as i32),
            latency_ms,
            error: Some(format!("HTTP {code}")),
        },
        Err(e) => Outcome {
            status: None,
            latency_ms,
            error: Some(e.to_string()),
        },
    }
}

fn record_attempt(
    conn: &mut DbConnection,
    hook: &WebhookRow,
    event_id: i64,
    o: &Outcome,
    manual: bool,
) -> Result<(), ServiceError> {
    diesel::insert_into(webhook_attempts::table)
        .values(AttemptRow {
            id: 0,
            webhook_id: hook.id,
            event_id,
            at: now_ms(),
            status_code: o.status,
            latency_ms: o.latency_ms,
            error: o.error.clone(),
            success: o.ok(),
            manual,
        })
        .execute(conn)?;
    Ok(())
}

/// `POST /webhooks/{id}/redeliver {"event_id"}`: one attempt now, recorded.
pub fn redeliver(
    ctx: &Ctx,
    id: i64,
    event_id: i64,
    actor: &Actor,
) -> Result<AttemptView, ServiceError> {
    actor.require_admin()?;
    let mut conn = ctx.conn()?;
    let hook = by_id(&mut conn, id)?;
    let e: EventRow = events::table
        .find(event_id)
        .select(EventRow::as_select())
        .first(&mut conn)
        .optional()?
        .ok_or_else(|| ServiceError::NotFound(format!("no event {event_id}")))?;
    let ty = event_type(&e.kind).ok_or_else(|| {
        ServiceError::BadRequest(format!(
            "event {event_id} ({}) is not sent to webhooks",
            e.kind
        ))
    })?;
    let p = payload(ctx, &mut conn, &e, ty)?;
    let (body, content_type) = body_for(ctx, &hook.format, p, ty);
    drop(conn);
    let o = send(&http_agent(ctx), &hook, e.id, ty, &body, content_type);
    let mut conn = ctx.conn()?;
    record_attempt(&mut conn, &hook, e.id, &o, true)?;
    super::tokens::admin_event(
        &mut conn,
        ctx.clock.now(),
        "webhook_redelivered",
        actor,
        serde_json::json!({ "webhook": hook.name, "event": e.id, "status": o.status }),
    )?;
    Ok(AttemptView {
        event_id: e.id,
        at: rfc3339(super::now()),
        status_code: o.status,
        latency_ms: o.latency_ms,
        success: o.ok(),
        error: o.error,
        manual: true,
    })
}

/// How long one runner may hold a subscription before another may take over.
const LEASE_MS: i64 = 120_000;
/// Events examined per subscription per pass.
const BATCH: i64 = 200;

/// One pass over every active subscription: delivers what is due, in order.
/// Returns how many events were delivered.
pub fn deliver_due(ctx: &Ctx, agent: &ureq::Agent) -> Result<usize, ServiceError> {
    let mut conn = ctx.conn()?;
    let ids: Vec<i64> = webhooks::table
        .filter(webhooks::active.eq(true))
        .select(webhooks::id)
        .load(&mut conn)?;
    drop(conn);
    let mut delivered = 0;
    for id in ids {
        delivered += deliver_one(ctx, agent, id)?;
    }
    Ok(delivered)
}

fn deliver_one(ctx: &Ctx, agent: &ureq::Agent, id: i64) -> Result<usize, ServiceError> {
    let mut conn = ctx.conn()?;
    let now = now_ms();
    // Claim the subscription: one runner at a time keeps its order.
    let claimed = diesel::update(
        webhooks::table
            .filter(webhooks::id.eq(id))
            .filter(webhooks::active.eq(true))
            .filter(
                webhooks::lease_until
                    .is_null()
                    .or(webhooks::lease_until.lt(now)),
            ),
    )
    .set(webhooks::lease_until.eq(Some(now + LEASE_MS)))
    .execute(&mut conn)?;
    if claimed != 1 {
        return Ok(0);
    }
    let result = deliver_claimed(ctx, agent, &mut conn, id);
    diesel::update(webhooks::table.find(id))
        .set(webhooks::lease_until.eq(None::<i64>))
        .execute(&mut conn)?;
    result
}

fn deliver_claimed(
    ctx: &Ctx,
    agent: &ureq::Agent,
    conn: &mut DbConnection,
    id: i64,
) -> Result<usize, ServiceError> {
    let mut hook = by_id(conn, id)?;
    if hook.next_attempt_at.is_some_and(|t| t > now_ms()) {
        return Ok(0);
    }
    let filters = filters_of(&hook);
    let batch: Vec<EventRow> = events::table
        .filter(events::id.gt(hook.cursor))
        .order(events::id.asc())
        .limit(BATCH)
        .select(EventRow::as_select())
        .load(conn)?;
    let mut delivered = 0;
    let started = Instant::now();
    for e in batch {
        // Stay well inside the lease, so no other runner takes over mid-pass.
        if started.elapsed() > Duration::from_millis(LEASE_MS as u64 / 2) {
            break;
        }
        let ty = event_type(&e.kind);
        let package_name = match &e.package_id {
            Some(pid) => packages::table
                .find(pid)
                .select(packages::name)
                .first::<String>(conn)
                .optional()?,
            None => None,
        };
        let wanted = ty.is_some_and(|t| filters.matches(t, e.channel.as_deref(), package_name.as_deref()))
            // A subscription is not told about its own disabling.
            && !(e.kind == "webhook_disabled"
                && e.detail.as_deref().is_some_and(|d| d.contains(&format!("\"webhook\":\"{}\"", hook.name))));
        if !wanted {
            advance(conn, &mut hook, e.id)?;
            continue;
        }
        let ty = ty.unwrap_or_default();
        let p = payload(ctx, conn, &e, ty)?;
        let (body, content_type) = body_for(ctx, &hook.format, p, ty);
        let o = send(agent, &hook, e.id, ty, &body, content_type);
        record_attempt(conn, &hook, e.id, &o, false)?;
        if o.ok() {
            advance(conn, &mut hook, e.id)?;
            delivered += 1;
            continue;
        }
        // Failed: retry this event later (order holds: nothing after it goes first).
        let now = now_ms();
        let attempts = hook.attempts + 1;
        let failures = hook.failures + 1;
        let first = hook.first_attempt_at.unwrap_or(now);
        if failures >= ctx.config.webhook_max_failures as i32 {
            let reason = format!(
                "{failures} consecutive failed deliveries; last: {}",
                o.error.clone().unwrap_or_default()
            );
            crate::db::write_transaction(conn, |conn| {
                diesel::update(webhooks::table.find(hook.id))
                    .set((
                        webhooks::active.eq(false),
                        webhooks::failures.eq(failures),
                        webhooks::attempts.eq(attempts),
                        webhooks::first_attempt_at.eq(Some(first)),
                        webhooks::disabled_reason.eq(Some(&reason)),
                    ))
                    .execute(conn)?;
                super::events::append(
                    conn,
                    &[NewEvent {
                        at: super::now(),
                        kind: "webhook_disabled".into(),
                        package_id: None,
                        channel: None,
                        revision: None,
                        actor: "forklift".into(),
                        client: "webhooks".into(),
                        reason: Some(reason.clone()),
                        detail: Some(serde_json::json!({"webhook": hook.name}).to_string()),
                    }],
                )?;
                Ok::<_, ServiceError>(())
            })?;
            tracing::warn!(webhook = %hook.name, %reason, "webhook disabled");
            return Ok(delivered);
        }
        let max_age_ms = ctx.config.webhook_max_age.as_millis() as i64;
        if now - first >= max_age_ms {
            // Given up on this event (its attempts stay recorded); the next one goes.
            tracing::warn!(webhook = %hook.name, event = e.id, "webhook event given up after the maximum age");
            diesel::update(webhooks::table.find(hook.id))
                .set(webhooks::failures.eq(failures))
                .execute(conn)?;
            hook.failures = failures;
            advance_keep_failures(conn, &mut hook, e.id)?;
            continue;
        }
        let wait = backoff(
            attempts as u32,
            ctx.config.webhook_retry_base,
            rand::random::<f64>(),
        );
        diesel::update(webhooks::table.find(hook.id))
            .set((
                webhooks::attempts.eq(attempts),
                webhooks::failures.eq(failures),
                webhooks::first_attempt_at.eq(Some(first)),
                webhooks::next_attempt_at.eq(Some(now + wait.as_millis() as i64)),
            ))
            .execute(conn)?;
        return Ok(delivered);
    }
    Ok(delivered)
}

/// The event is handled: move the cursor, reset the head's retry state.
fn advance(
    conn: &mut DbConnection,
    hook: &mut WebhookRow,
    event_id: i64,
) -> Result<(), ServiceError> {
    diesel::update(webhooks::table.find(hook.id))
        .set((
            webhooks::cursor.eq(event_id),
            webhooks::attempts.eq(0),
            webhooks::failures.eq(0),
            webhooks::first_attempt_at.eq(None::<i64>),
            webhooks::next_attempt_at.eq(None::<i64>),
        ))
        .execute(conn)?;
    hook.cursor = event_id;
    hook.attempts = 0;
    hook.failures = 0;
    Ok(())
}

fn advance_keep_failures(
    conn: &mut DbConnection,
    hook: &mut WebhookRow,
    event_id: i64,
) -> Result<(), ServiceError> {
    diesel::update(webhooks::table.find(hook.id))
        .set((
            webhooks::cursor.eq(event_id),
            webhooks::attempts.eq(0),
            webhooks::first_attempt_at.eq(None::<i64>),
            webhooks::next_attempt_at.eq(None::<i64>),
        ))
        .execute(conn)?;
    hook.cursor = event_id;
    hook.attempts = 0;
    Ok(())
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
