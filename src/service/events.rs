//! The event log: every event (a build's history, audit records, the webhook
//! outbox) is written through [`append`], and only there.
//!
//! Events are read in id order by webhook subscriptions. On PostgreSQL an id is
//! taken at insert but becomes visible at commit, so two writers could commit
//! out of id order and a cursor could pass over an event for good. `append`
//! takes the event-log lock inside a transaction of its own (a savepoint when
//! the caller already has one), so the lock is held until the caller's
//! transaction ends, whoever the caller is.

use diesel::prelude::*;

use super::{Actor, ServiceError};
use crate::db::models::NewEvent;
use crate::db::schema::events;
use crate::db::DbConnection;

/// Writes `rows` in order, holding the event-log lock until the enclosing
/// transaction (or this call's own) commits.
pub fn append(conn: &mut DbConnection, rows: &[NewEvent]) -> Result<(), ServiceError> {
    if rows.is_empty() {
        return Ok(());
    }
    crate::db::write_transaction(conn, |conn| {
        crate::db::lock_event_log(conn)?;
        for row in rows {
            diesel::insert_into(events::table)
                .values(row)
                .execute(conn)?;
        }
        Ok::<_, diesel::result::Error>(())
    })?;
    Ok(())
}

/// An event `actor` caused at `at`, about nothing yet: set what it concerns
/// (`package_id`, `channel`, `reason`, `detail`) with struct update syntax.
pub fn by(actor: &Actor, at: i64, kind: &str) -> NewEvent {
    NewEvent {
        at,
        kind: kind.to_string(),
        package_id: None,
        channel: None,
        revision: None,
        actor: actor.name.clone(),
        client: actor.client.clone(),
        reason: None,
        detail: None,
    }
}
