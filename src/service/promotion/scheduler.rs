//! The scheduler: state in the database, one runner per due slot.
//!
//! Each automatic policy has a row with its next due time. A runner claims a
//! due run by moving `next_run_at` forward with a compare-and-set; only one
//! runner — in this process or in any other server sharing the database — can
//! win that update, so a slot runs once. The new due time is the first slot
//! after *now*, so after downtime a missed run happens once, not N times.
//! A crash between the claim and the promotion skips that slot (at most once).

use diesel::prelude::*;
use serde::Serialize;

use super::candidates::{auto_promote, AutoRun};
use crate::db::schema::schedules;
use crate::service::catalog::queries::load_policy;
use crate::service::{Ctx, ServiceError};

/// Brings the schedule rows in line with the policies: new or changed rules
/// start afresh, removed ones are dropped.
pub fn sync(ctx: &Ctx) -> Result<(), ServiceError> {
    let mut conn = ctx.conn()?;
    let now = ctx.clock.now();
    for channel in &ctx.config.channels {
        let policy = load_policy(&mut conn, &ctx.config.channels, channel)?;
        let row: Option<String> = schedules::table
            .find(channel)
            .select(schedules::rule)
            .first(&mut conn)
            .optional()?;
        match (&policy.schedule, row) {
            (None, Some(_)) => {
                diesel::delete(schedules::table.find(channel)).execute(&mut conn)?;
            }
            (Some(s), existing) if existing.as_deref() != Some(s.key().as_str()) => {
                diesel::delete(schedules::table.find(channel)).execute(&mut conn)?;
                diesel::insert_into(schedules::table)
                    .values((
                        schedules::channel.eq(channel),
                        schedules::rule.eq(s.key()),
                        schedules::next_run_at.eq(s.next_after(now, None)),
                        schedules::last_run_at.eq(None::<i64>),
                    ))
                    .execute(&mut conn)?;
            }
            _ => {}
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    #[serde(flatten)]
    pub run: AutoRun,
    pub error: Option<String>,
}

/// Runs every due schedule once, in promotion order. A build promoted in this
/// pass starts soaking in its new channel now, so with any soak on the next
/// level it moves one level per pass (with `soak = "0s"` it may move two).
/// `POST /api/v1/scheduler/run`: an admin runs every due schedule now.
pub fn run_now(ctx: &Ctx, actor: &crate::service::Actor) -> Result<Vec<RunReport>, ServiceError> {
    actor.require_admin()?;
    run_due(ctx)
}

pub fn run_due(ctx: &Ctx) -> Result<Vec<RunReport>, ServiceError> {
    let mut reports = Vec::new();
    for channel in &ctx.config.channels {
        let now = ctx.clock.now();
        let mut conn = ctx.conn()?;
        let row: Option<(String, i64)> = schedules::table
            .find(channel)
            .select((schedules::rule, schedules::next_run_at))
            .first(&mut conn)
            .optional()?;
        let Some((rule, due)) = row else { continue };
        if due > now {
            continue;
        }
        let policy = load_policy(&mut conn, &ctx.config.channels, channel)?;
        let Some(schedule) = &policy.schedule else {
            continue;
        };
        if schedule.key() != rule {
            continue;
        }
        let next = schedule.next_after(now, Some(due));
        let claimed = diesel::update(
            schedules::table
                .filter(schedules::channel.eq(channel))
                .filter(schedules::next_run_at.eq(due))
                .filter(schedules::rule.eq(&rule)),
        )
        .set((
            schedules::next_run_at.eq(next),
            schedules::last_run_at.eq(Some(now)),
        ))
        .execute(&mut conn)?;
        drop(conn);
        if claimed != 1 {
            continue; // another runner has this slot
        }
        ctx.metrics
            .scheduler_runs
            .get_or_create(&crate::metrics::ChannelLabels {
                channel: channel.clone(),
            })
            .inc();
        let report = match auto_promote(ctx, &policy) {
            Ok(run) => RunReport { run, error: None },
            Err(e) => RunReport {
                run: AutoRun {
                    channel: channel.clone(),
                    ..AutoRun::default()
                },
                error: Some(e.to_string()),
            },
        };
        reports.push(report);
    }
    Ok(reports)
}
