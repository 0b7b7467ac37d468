//! Promotion: moving builds between channels by hand or by policy, and the
//! gates that stop them (freeze, hold, rejection, soak, schedules). The rules
//! themselves are the pure functions of `crate::policy`.

pub mod candidates;
pub mod gates;
pub mod policies;
pub mod scheduler;
pub mod transitions;

use crate::db::models::NewEvent;
use crate::db::DbConnection;
use crate::service::{Actor, Ctx, ServiceError};

fn channel_event(
    ctx: &Ctx,
    conn: &mut DbConnection,
    kind: &str,
    channel: &str,
    actor: &Actor,
    reason: Option<String>,
    detail: Option<serde_json::Value>,
) -> Result<(), ServiceError> {
    crate::service::events::append(
        conn,
        &[NewEvent {
            at: ctx.clock.now(),
            kind: kind.into(),
            package_id: None,
            channel: Some(channel.into()),
            revision: None,
            actor: actor.name.clone(),
            client: actor.client.clone(),
            reason,
            detail: detail.map(|d| d.to_string()),
        }],
    )
}

fn package_event(
    ctx: &Ctx,
    conn: &mut DbConnection,
    kind: &str,
    package_id: &str,
    actor: &Actor,
    reason: Option<String>,
) -> Result<(), ServiceError> {
    crate::service::events::append(
        conn,
        &[NewEvent {
            at: ctx.clock.now(),
            kind: kind.into(),
            package_id: Some(package_id.into()),
            channel: None,
            revision: None,
            actor: actor.name.clone(),
            client: actor.client.clone(),
            reason,
            detail: None,
        }],
    )
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
