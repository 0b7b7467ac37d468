//! The audit log: every recorded event, newest first, for admins.

use diesel::prelude::*;
use serde::Deserialize;

use crate::db::models::EventRow;
use crate::db::schema::events;
use crate::service::catalog::views::EventView;
use crate::service::{Actor, Ctx, ServiceError};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub kind: Option<String>,
    pub actor: Option<String>,
    /// Only events with a smaller id (paging backwards).
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

pub fn events(ctx: &Ctx, q: &AuditQuery, actor: &Actor) -> Result<Vec<EventView>, ServiceError> {
    actor.require_admin()?;
    let mut conn = ctx.conn()?;
    let mut query = events::table.select(EventRow::as_select()).into_boxed();
    if let Some(k) = &q.kind {
        query = query.filter(events::kind.eq(k.clone()));
    }
    if let Some(a) = &q.actor {
        query = query.filter(events::actor.eq(a.clone()));
    }
    if let Some(b) = q.before {
        query = query.filter(events::id.lt(b));
    }
    let rows = query
        .order(events::id.desc())
        .limit(q.limit.unwrap_or(100).clamp(1, 1000))
        .load(&mut conn)?;
    Ok(rows.into_iter().map(EventView::from).collect())
}
