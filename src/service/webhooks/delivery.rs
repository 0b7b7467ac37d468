//! Delivery: each subscription's cursor over the event log, claimed under a
//! lease, sent with retries and backoff, recorded attempt by attempt.

use std::time::{Duration, Instant};

use diesel::prelude::*;

use super::model::{by_id, filters_of, AttemptView};
use super::payload::{body_for, payload};
use super::{backoff, event_type, http_agent, signature};
use crate::db::models::{AttemptRow, EventRow, NewEvent, WebhookRow};
use crate::db::schema::*;
use crate::db::DbConnection;
use crate::service::catalog::views::rfc3339;
use crate::service::error::LookupError;
use crate::service::{Actor, Ctx, ServiceError};

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
    ts: i64,
) -> Outcome {
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
    ctx: &Ctx,
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
            at: ctx.clock.now_ms(),
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
        .ok_or_else(|| LookupError::NotFound(format!("no event {event_id}")))?;
    let ty = event_type(&e.kind).ok_or_else(|| {
        ServiceError::BadRequest(format!(
            "event {event_id} ({}) is not sent to webhooks",
            e.kind
        ))
    })?;
    let p = payload(ctx, &mut conn, &e, ty)?;
    let (body, content_type) = body_for(ctx, &hook.format, p, ty);
    drop(conn);
    let o = send(
        &http_agent(ctx),
        &hook,
        e.id,
        ty,
        &body,
        content_type,
        ctx.clock.now(),
    );
    let mut conn = ctx.conn()?;
    record_attempt(ctx, &mut conn, &hook, e.id, &o, true)?;
    crate::service::access::tokens::admin_event(
        &mut conn,
        ctx.clock.now(),
        "webhook_redelivered",
        actor,
        serde_json::json!({ "webhook": hook.name, "event": e.id, "status": o.status }),
    )?;
    Ok(AttemptView {
        event_id: e.id,
        at: rfc3339(ctx.clock.now()),
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
    let now = ctx.clock.now_ms();
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
    if hook.next_attempt_at.is_some_and(|t| t > ctx.clock.now_ms()) {
        return Ok(0);
    }
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
        let Some(ty) = wanted(conn, &hook, &e)? else {
            advance(conn, &mut hook, e.id)?;
            continue;
        };
        let p = payload(ctx, conn, &e, ty)?;
        let (body, content_type) = body_for(ctx, &hook.format, p, ty);
        let o = send(agent, &hook, e.id, ty, &body, content_type, ctx.clock.now());
        record_attempt(ctx, conn, &hook, e.id, &o, false)?;
        if o.ok() {
            advance(conn, &mut hook, e.id)?;
            delivered += 1;
            continue;
        }
        // Failed: retry this event later (order holds: nothing after it goes first).
        match failed(ctx, conn, &mut hook, &e, &o)? {
            AfterFailure::Next => continue,
            AfterFailure::Stop => return Ok(delivered),
        }
    }
    Ok(delivered)
}

/// The wire type of `e` when this subscription wants it.
fn wanted(
    conn: &mut DbConnection,
    hook: &WebhookRow,
    e: &EventRow,
) -> Result<Option<&'static str>, ServiceError> {
    let Some(ty) = event_type(&e.kind) else {
        return Ok(None);
    };
    let package_name = match &e.package_id {
        Some(pid) => packages::table
            .find(pid)
            .select(packages::name)
            .first::<String>(conn)
            .optional()?,
        None => None,
    };
    // A subscription is not told about its own disabling.
    let own_disabling = e.kind == "webhook_disabled"
        && e.detail
            .as_deref()
            .is_some_and(|d| d.contains(&format!("\"webhook\":\"{}\"", hook.name)));
    let matches = filters_of(hook).matches(ty, e.channel.as_deref(), package_name.as_deref());
    Ok((matches && !own_disabling).then_some(ty))
}

enum AfterFailure {
    /// The event was given up on; go on with the next one.
    Next,
    /// Retry later (or the subscription was disabled): stop this pass.
    Stop,
}

/// After a failed delivery of `e`: disable the subscription after too many
/// failures, give the event up after the maximum age, or schedule a retry.
fn failed(
    ctx: &Ctx,
    conn: &mut DbConnection,
    hook: &mut WebhookRow,
    e: &EventRow,
    o: &Outcome,
) -> Result<AfterFailure, ServiceError> {
    let now = ctx.clock.now_ms();
    let attempts = hook.attempts + 1;
    let failures = hook.failures + 1;
    let first = hook.first_attempt_at.unwrap_or(now);
    if failures >= ctx.config.webhook_max_failures as i32 {
        let reason = format!(
            "{failures} consecutive failed deliveries; last: {}",
            o.error.clone().unwrap_or_default()
        );
        disable(ctx, conn, hook, (attempts, failures, first), &reason)?;
        tracing::warn!(webhook = %hook.name, %reason, "webhook disabled");
        return Ok(AfterFailure::Stop);
    }
    if now - first >= ctx.config.webhook_max_age.as_millis() as i64 {
        // Given up on this event (its attempts stay recorded); the next one goes.
        tracing::warn!(webhook = %hook.name, event = e.id, "webhook event given up after the maximum age");
        hook.failures = failures;
        advance_keep_failures(conn, hook, e.id)?;
        return Ok(AfterFailure::Next);
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
    Ok(AfterFailure::Stop)
}

/// Turns a failing subscription off, with the event that says so.
fn disable(
    ctx: &Ctx,
    conn: &mut DbConnection,
    hook: &WebhookRow,
    (attempts, failures, first): (i32, i32, i64),
    reason: &str,
) -> Result<(), ServiceError> {
    crate::db::write_transaction(conn, |conn| {
        diesel::update(webhooks::table.find(hook.id))
            .set((
                webhooks::active.eq(false),
                webhooks::failures.eq(failures),
                webhooks::attempts.eq(attempts),
                webhooks::first_attempt_at.eq(Some(first)),
                webhooks::disabled_reason.eq(Some(reason)),
            ))
            .execute(conn)?;
        let server = Actor {
            client: "webhooks".into(),
            ..Actor::system()
        };
        let event = NewEvent {
            reason: Some(reason.to_string()),
            detail: Some(serde_json::json!({"webhook": hook.name}).to_string()),
            ..crate::service::events::by(&server, ctx.clock.now(), "webhook_disabled")
        };
        crate::service::events::append(conn, &[event])
    })
}

/// The event is handled: move the cursor, reset the head's retry state.
fn advance(
    conn: &mut DbConnection,
    hook: &mut WebhookRow,
    event_id: i64,
) -> Result<(), ServiceError> {
    hook.failures = 0;
    advance_keep_failures(conn, hook, event_id)
}

/// The same, keeping the count of consecutive failures (an event given up
/// on still counts towards disabling the subscription).
fn advance_keep_failures(
    conn: &mut DbConnection,
    hook: &mut WebhookRow,
    event_id: i64,
) -> Result<(), ServiceError> {
    diesel::update(webhooks::table.find(hook.id))
        .set((
            webhooks::cursor.eq(event_id),
            webhooks::attempts.eq(0),
            webhooks::failures.eq(hook.failures),
            webhooks::first_attempt_at.eq(None::<i64>),
            webhooks::next_attempt_at.eq(None::<i64>),
        ))
        .execute(conn)?;
    hook.cursor = event_id;
    hook.attempts = 0;
    Ok(())
}
