//! Subscriptions: created by admins or from the config file, their views
//! and their delivery attempts.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::{check_target, Filters, WebhookSpec, EVENT_TYPES};
use crate::db::models::{AttemptRow, WebhookRow};
use crate::db::schema::*;
use crate::db::{is_unique_violation, DbConnection};
use crate::service::catalog::views::rfc3339;
use crate::service::error::WebhookError;
use crate::service::{Actor, Ctx, ServiceError};

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

pub(super) fn filters_of(row: &WebhookRow) -> Filters {
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

fn validate(ctx: &Ctx, spec: &WebhookSpec) -> Result<(), ServiceError> {
    check_target(&spec.url, ctx.config.webhook_allow_internal)?;
    if spec.secret.len() < 16 {
        return Err(ServiceError::BadRequest(
            "a webhook secret needs at least 16 characters".into(),
        ));
    }
    for c in &spec.channels {
        ctx.channel(c)?;
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
            spec_columns(spec),
            webhooks::active.eq(spec.active.unwrap_or(true)),
            webhooks::cursor.eq(cursor),
            webhooks::attempts.eq(0),
            webhooks::failures.eq(0),
            webhooks::created_at.eq(ctx.clock.now()),
            webhooks::created_by.eq(by),
        ))
        .execute(conn);
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(WebhookError::NameTaken(name.to_string()).into()),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn by_id(conn: &mut DbConnection, id: i64) -> Result<WebhookRow, ServiceError> {
    webhooks::table
        .find(id)
        .select(WebhookRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| WebhookError::NotFound(id).into())
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

/// A subscription's target and filters as columns, for insert and update alike.
#[diesel::dsl::auto_type]
fn spec_columns<'a>(spec: &'a WebhookSpec) -> _ {
    let url: &'a str = &spec.url;
    let secret: &'a str = &spec.secret;
    let channels: String = spec.channels.join(" ");
    let packages: String = spec.packages.join(" ");
    let events: String = spec.events.join(" ");
    let format: &'a str = spec.format.as_deref().unwrap_or("json");
    (
        webhooks::url.eq(url),
        webhooks::secret.eq(secret),
        webhooks::channels.eq(channels),
        webhooks::packages.eq(packages),
        webhooks::event_types.eq(events),
        webhooks::format.eq(format),
    )
}

/// Writes a subscription's target and filters (not its state).
fn store_spec(conn: &mut DbConnection, id: i64, spec: &WebhookSpec) -> Result<(), ServiceError> {
    diesel::update(webhooks::table.find(id))
        .set(spec_columns(spec))
        .execute(conn)?;
    Ok(())
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
                store_spec(&mut conn, id, spec)?;
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
    store_spec(&mut conn, id, &spec)?;
    diesel::update(webhooks::table.find(id))
        .set(webhooks::active.eq(u.active.unwrap_or(row.active)))
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
    crate::service::access::tokens::admin_event(
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
