//! Gates set by people: a channel's freeze, a build's hold, and discarding a
//! build for good.

use diesel::prelude::*;
use serde::Serialize;

use super::{channel_event, need_reason, package_event};
use crate::db::schema::*;
use crate::service::catalog::packages::view;
use crate::service::catalog::queries::{current_channels, frozen, resolve, summary_of};
use crate::service::catalog::views::{Marker, PackageView};
use crate::service::publish::{commit, Change, ChannelOp, PendingEvent};
use crate::service::{Actor, ChannelName, Ctx, PackageRef, ServiceError};

#[derive(Debug, Clone, Serialize)]
pub struct FreezeView {
    pub channel: String,
    pub frozen: Option<Marker>,
}

/// Freezing and unfreezing take the right to change the channel.
pub fn set_frozen(
    ctx: &Ctx,
    channel: &ChannelName,
    reason: Option<&str>,
    actor: &Actor,
) -> Result<FreezeView, ServiceError> {
    actor.require_promote(channel)?;
    let mut conn = ctx.conn()?;
    // The change and its event in one transaction: the event log is the outbox.
    crate::db::write_transaction(&mut conn, |conn| -> Result<(), ServiceError> {
        match reason {
            Some(reason) => {
                let reason = need_reason(reason, "a freeze")?;
                let now = ctx.clock.now();
                let n = diesel::update(
                    channels::table
                        .filter(channels::name.eq(channel))
                        .filter(channels::frozen_at.is_null()),
                )
                .set((
                    channels::frozen_at.eq(Some(now)),
                    channels::frozen_by.eq(Some(&actor.name)),
                    channels::frozen_reason.eq(Some(&reason)),
                ))
                .execute(conn)?;
                if n == 1 {
                    channel_event(ctx, conn, "frozen", channel, actor, Some(reason), None)?;
                }
            }
            None => {
                let n = diesel::update(
                    channels::table
                        .filter(channels::name.eq(channel))
                        .filter(channels::frozen_at.is_not_null()),
                )
                .set((
                    channels::frozen_at.eq(None::<i64>),
                    channels::frozen_by.eq(None::<String>),
                    channels::frozen_reason.eq(None::<String>),
                ))
                .execute(conn)?;
                if n == 1 {
                    channel_event(ctx, conn, "unfrozen", channel, actor, None, None)?;
                }
            }
        }
        Ok(())
    })?;
    Ok(FreezeView {
        channel: channel.into(),
        frozen: frozen(&mut conn, channel)?.map(Marker::from),
    })
}

/// Holds a build unless it is held already, with its `held` event, inside
/// the caller's transaction; true when this call held it. The panic button
/// and a failed required check (`checks::report`) both press it.
pub(super) fn hold(
    ctx: &Ctx,
    conn: &mut crate::db::DbConnection,
    package_id: &str,
    reason: &str,
    actor: &Actor,
) -> Result<bool, ServiceError> {
    let n = diesel::update(
        packages::table
            .filter(packages::id.eq(package_id))
            .filter(packages::held_at.is_null()),
    )
    .set((
        packages::held_at.eq(Some(ctx.clock.now())),
        packages::held_by.eq(Some(&actor.name)),
        packages::held_reason.eq(Some(reason)),
    ))
    .execute(conn)?;
    if n == 1 {
        package_event(ctx, conn, "held", package_id, actor, Some(reason.into()))?;
    }
    Ok(n == 1)
}

/// The panic button: anyone who may change builds (upload, any promote, admin).
pub fn set_held(
    ctx: &Ctx,
    id: &PackageRef,
    reason: Option<&str>,
    actor: &Actor,
) -> Result<PackageView, ServiceError> {
    let g = &actor.grants;
    let may =
        g.is_admin() || g.may_upload() || ctx.config.channels.iter().any(|c| g.may_promote(c));
    if !may {
        return Err(actor.denied(
            "holding or releasing a build",
            "upload, promote or admin rights",
        ));
    }
    let mut conn = ctx.conn()?;
    let p = resolve(&mut conn, id)?;
    // The change and its event in one transaction: the event log is the outbox.
    crate::db::write_transaction(&mut conn, |conn| -> Result<(), ServiceError> {
        match reason {
            Some(reason) => {
                hold(ctx, conn, &p.id, &need_reason(reason, "a hold")?, actor)?;
            }
            None => {
                let n = diesel::update(
                    packages::table
                        .filter(packages::id.eq(&p.id))
                        .filter(packages::held_at.is_not_null()),
                )
                .set((
                    packages::held_at.eq(None::<i64>),
                    packages::held_by.eq(None::<String>),
                    packages::held_reason.eq(None::<String>),
                ))
                .execute(conn)?;
                if n == 1 {
                    package_event(ctx, conn, "released", &p.id, actor, None)?;
                }
            }
        }
        Ok(())
    })?;
    let p = summary_of(&mut conn, &p.id)?;
    view(&mut conn, ctx, p, actor)
}

/// `DELETE /packages/{id}` (admin): out of every channel in one change, the
/// file deleted, the row and its history kept as a tombstone.
pub fn discard(
    ctx: &Ctx,
    id: &PackageRef,
    reason: &str,
    actor: &Actor,
) -> Result<PackageView, ServiceError> {
    actor.require_admin()?;
    let reason = need_reason(reason, "a discard")?;
    let mut conn = ctx.conn()?;
    let p = resolve(&mut conn, id)?;
    if p.discarded_at.is_none() {
        let held_in = current_channels(&mut conn, &p.id)?;
        drop(conn);
        let change = Change {
            summary: format!("discard {}: {reason}", p.filename),
            ops: held_in
                .iter()
                .map(|c| ChannelOp::remove(c, vec![p.id.clone()]))
                .collect(),
            events: std::iter::once(PendingEvent {
                kind: "discarded",
                package_id: Some(p.id.clone()),
                channel: None,
                reason: Some(reason.clone()),
                detail: Some(serde_json::json!({ "removed_from": held_in })),
            })
            .chain(held_in.iter().map(|c| PendingEvent {
                kind: "removed",
                package_id: Some(p.id.clone()),
                channel: Some(c.clone()),
                reason: Some(reason.clone()),
                detail: None,
            }))
            .collect(),
            discard: Some((p.id.clone(), reason.clone())),
            ..Change::default()
        };
        commit(ctx, change, actor)?;
        ctx.pieces.forget(&p.id);
        // After the commit: a crash here leaves a file no row needs, which the
        // startup sweep removes.
        if let Err(e) = ctx.store.delete(&p.id) {
            tracing::warn!(error = %e, id = %p.id, "discarded build's file not deleted; the next sweep will");
        }
        conn = ctx.conn()?;
    }
    let p = summary_of(&mut conn, &p.id)?;
    view(&mut conn, ctx, p, actor)
}
