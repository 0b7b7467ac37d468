//! What `/metrics` reads when scraped: each channel's size and head, the
//! stored builds, the webhook backlog, this instance's database pool. The
//! counters and histograms are kept where things happen (`ctx.metrics`).
//! Reading it takes the right to read every channel: the figures cover them
//! all, private ones included.

use diesel::prelude::*;

use crate::db::schema::*;
use crate::metrics::Snapshot;
use crate::service::catalog::queries::open_memberships;
use crate::service::{Actor, Ctx, ServiceError};

pub fn snapshot(ctx: &Ctx) -> Result<Snapshot, ServiceError> {
    let mut conn = ctx.conn()?;
    let mut s = Snapshot::default();
    for c in &ctx.config.channels {
        let builds: i64 = open_memberships()
            .filter(memberships::channel.eq(c))
            .count()
            .get_result(&mut conn)?;
        let head: i32 = channels::table
            .find(c)
            .select(channels::head)
            .first(&mut conn)?;
        s.channels.push((c.clone(), builds, head.into()));
    }
    let (count, bytes): (i64, Option<i64>) = packages::table
        .filter(packages::discarded_at.is_null())
        // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back, on both.
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>(
                "CAST(SUM(size) AS BIGINT)",
            ),
        ))
        .first(&mut conn)?;
    s.packages = count;
    s.package_bytes = bytes.unwrap_or(0);
    s.webhooks_disabled = webhooks::table
        .filter(webhooks::active.eq(false))
        .count()
        .get_result(&mut conn)?;
    let cursors: Vec<i64> = webhooks::table
        .filter(webhooks::active.eq(true))
        .select(webhooks::cursor)
        .load(&mut conn)?;
    let now = ctx.clock.now();
    for cursor in cursors {
        let (n, oldest): (i64, Option<i64>) = events::table
            .filter(events::id.gt(cursor))
            .select((diesel::dsl::count_star(), diesel::dsl::min(events::at)))
            .first(&mut conn)?;
        s.webhook_pending += n;
        if let Some(t) = oldest {
            s.webhook_lag_seconds = s.webhook_lag_seconds.max(now - t);
        }
    }
    s.webhook_failures = webhook_attempts::table
        .filter(webhook_attempts::success.eq(false))
        .count()
        .get_result(&mut conn)?;
    drop(conn);
    let state = ctx.pool.state();
    s.pool_connections = state.connections.into();
    s.pool_idle = state.idle_connections.into();
    Ok(s)
}

/// `GET /metrics`: the exposition text.
pub fn render(ctx: &Ctx, actor: &Actor) -> Result<String, ServiceError> {
    for c in &ctx.config.channels {
        ctx.require_read(actor, &ctx.channel(c)?)?;
    }
    let s = snapshot(ctx)?;
    ctx.metrics
        .encode(&s)
        .map_err(|e| ServiceError::Internal(format!("encoding metrics: {e}")))
}
