//! Promotion: moving builds between channels by hand or by policy, and the
//! gates that stop them (freeze, hold, rejection, soak, schedules). The rules
//! themselves are the pure functions of `crate::policy`.

pub mod candidates;
pub mod checks;
pub mod closure;
pub mod external;
pub mod gates;
pub mod policies;
pub mod scheduler;
pub mod transitions;

use crate::db::models::NewEvent;
use crate::db::DbConnection;
use crate::service::{events, Actor, Ctx, ServiceError};

fn channel_event(
    ctx: &Ctx,
    conn: &mut DbConnection,
    kind: &str,
    channel: &str,
    actor: &Actor,
    reason: Option<String>,
    detail: Option<serde_json::Value>,
) -> Result<(), ServiceError> {
    let event = NewEvent {
        channel: Some(channel.into()),
        reason,
        detail: detail.map(|d| d.to_string()),
        ..events::by(actor, ctx.clock.now(), kind)
    };
    events::append(conn, &[event])
}

fn package_event(
    ctx: &Ctx,
    conn: &mut DbConnection,
    kind: &str,
    package_id: &str,
    actor: &Actor,
    reason: Option<String>,
) -> Result<(), ServiceError> {
    let event = NewEvent {
        package_id: Some(package_id.into()),
        reason,
        ..events::by(actor, ctx.clock.now(), kind)
    };
    events::append(conn, &[event])
}

fn need_reason(reason: &str, what: &str) -> Result<String, ServiceError> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(ServiceError::BadRequest(format!(
            "{what} needs a reason (\"reason\": \"...\")"
        )));
    }
    Ok(r.to_string())
}
