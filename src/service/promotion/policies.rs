//! Channel policies: stored, read, changed by admins, applied from the
//! config file at every start.

use diesel::prelude::*;
use serde::Serialize;

use super::channel_event;
use crate::db::schema::*;
use crate::db::DbConnection;
use crate::policy::{Policy, PolicySpec};
use crate::service::catalog::queries::load_policy;
use crate::service::catalog::views::rfc3339;
use crate::service::{Actor, ChannelName, Ctx, ServiceError};

#[derive(Debug, Clone, Serialize)]
pub struct PolicyView {
    pub channel: String,
    pub source: Option<String>,
    /// The policy as configured (keys left out take their defaults).
    pub spec: PolicySpec,
    /// The automatic rule in words.
    pub rule: String,
    pub retain: u32,
    pub require_permission: bool,
    pub next_run_at: Option<String>,
    pub last_run_at: Option<String>,
}

/// `GET /channels/{name}/policy`: needs read access to the channel.
pub fn read_policy(
    ctx: &Ctx,
    channel: &ChannelName,
    actor: &Actor,
) -> Result<PolicyView, ServiceError> {
    ctx.require_read(actor, channel)?;
    policy_view(ctx, channel)
}

fn policy_view(ctx: &Ctx, channel: &ChannelName) -> Result<PolicyView, ServiceError> {
    let mut conn = ctx.conn()?;
    let p = load_policy(&mut conn, &ctx.config.channels, channel)?;
    let sched: Option<(i64, Option<i64>)> = schedules::table
        .find(channel)
        .select((schedules::next_run_at, schedules::last_run_at))
        .first(&mut conn)
        .optional()?;
    Ok(PolicyView {
        channel: channel.into(),
        source: p.source.clone(),
        rule: p.rule(),
        retain: p.retain,
        require_permission: p.require_permission,
        spec: p.spec,
        next_run_at: sched.map(|s| rfc3339(s.0)),
        last_run_at: sched.and_then(|s| s.1).map(rfc3339),
    })
}

fn store_policy(
    ctx: &Ctx,
    conn: &mut DbConnection,
    channel: &str,
    spec: &PolicySpec,
    by: &str,
) -> Result<(), ServiceError> {
    Policy::from_spec(channel, spec, &ctx.config.channels)
        .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
    let text = serde_json::to_string(spec).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
    let now = ctx.clock.now();
    crate::db::write_transaction(conn, |conn| {
        diesel::delete(policies::table.find(channel)).execute(conn)?;
        diesel::insert_into(policies::table)
            .values((
                policies::channel.eq(channel),
                policies::spec.eq(&text),
                policies::updated_at.eq(now),
                policies::updated_by.eq(by),
            ))
            .execute(conn)?;
        Ok::<_, diesel::result::Error>(())
    })?;
    Ok(())
}

/// `PUT /channels/{name}/policy` (admin).
pub fn set_policy(
    ctx: &Ctx,
    channel: &ChannelName,
    spec: &PolicySpec,
    actor: &Actor,
) -> Result<PolicyView, ServiceError> {
    actor.require_admin()?;
    let mut conn = ctx.conn()?;
    store_policy(ctx, &mut conn, channel, spec, &actor.name)?;
    crate::db::write_transaction(&mut conn, |conn| {
        channel_event(
            ctx,
            conn,
            "policy_changed",
            channel,
            actor,
            None,
            Some(serde_json::to_value(spec).unwrap_or_default()),
        )
    })?;
    drop(conn);
    crate::service::promotion::scheduler::sync(ctx)?;
    policy_view(ctx, channel)
}

/// The config file's policies are applied at every start.
pub fn apply_config_policies(ctx: &Ctx) -> Result<(), ServiceError> {
    let mut conn = ctx.conn()?;
    for (channel, spec) in &ctx.config.policies {
        store_policy(ctx, &mut conn, channel, spec, "config")?;
    }
    Ok(())
}
