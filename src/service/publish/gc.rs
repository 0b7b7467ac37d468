//! Leftovers and retention. What a crash or a failed request can leave behind is
//! only ever unreferenced — a temp upload, or a blob written before its
//! transaction committed — and a superseded revision's published files are
//! needed only while hosts may still be reading them. This module removes
//! both: at startup, and every `sweep_interval` while the server runs.
//!
//! Revision history itself (revisions, memberships, events) is never pruned, so
//! what a channel held at any time is still answered; only the published
//! metadata files of old revisions go.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::prelude::*;

use crate::db::schema::*;
use crate::service::catalog::queries::referenced_blobs;
use crate::service::{Ctx, ServiceError};

/// Unreferenced blobs and temp files younger than this may still belong to a
/// request in flight (on any server sharing the store), so they are left.
pub const LEFTOVER_AGE: Duration = Duration::from_secs(3600);

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub temp_files: usize,
    pub orphan_blobs: usize,
    /// Published-file rows of superseded revisions removed by retention.
    pub pruned_files: usize,
}

impl Swept {
    pub fn is_empty(&self) -> bool {
        *self == Swept::default()
    }
}

/// Which temp files a sweep may remove.
#[derive(Debug, Clone, Copy)]
pub enum TempFiles {
    /// At startup every temp file is a leftover: they are this node's own.
    All,
    /// While serving, only those untouched for [`LEFTOVER_AGE`].
    Stale,
}

/// Prunes superseded metadata, then removes temp files and every blob that
/// no package or remaining revision file references and that is older than
/// [`LEFTOVER_AGE`]. Ages are measured on the injected clock.
pub fn sweep(ctx: &Ctx, temp: TempFiles) -> Result<Swept, ServiceError> {
    let pruned_files = prune_revision_files(ctx)?;
    let temp_files = ctx.store.sweep_temp(match temp {
        TempFiles::All => None,
        TempFiles::Stale => Some(cutoff(ctx)),
    })?;
    let mut orphan_blobs = 0;
    for digest in orphans(ctx)? {
        if remove_orphan(ctx, &digest)? {
            orphan_blobs += 1;
        }
    }
    Ok(Swept {
        temp_files,
        orphan_blobs,
        pruned_files,
    })
}

/// The blobs that no package or kept revision file references
/// ([`referenced_blobs`]) and that are older than [`LEFTOVER_AGE`] on the
/// injected clock: what the sweep removes, and what `forklift fsck` reports.
pub fn orphans(ctx: &Ctx) -> Result<Vec<String>, ServiceError> {
    let cutoff = cutoff(ctx);
    // Listed before the references are read: a blob that a publication
    // commits meanwhile is then either referenced or freshly touched.
    let listed = ctx.store.list()?;
    let referenced = referenced_blobs(&mut *ctx.conn()?)?;
    Ok(listed
        .into_iter()
        .filter(|(digest, modified)| *modified <= cutoff && !referenced.contains_key(digest))
        .map(|(digest, _)| digest)
        .collect())
}

/// Deletes an orphan found by [`orphans`], unless it was touched since:
/// `put_bytes` touches a blob it finds present, so one being reused right
/// now is spared. Returns whether it went.
pub fn remove_orphan(ctx: &Ctx, digest: &str) -> Result<bool, ServiceError> {
    if ctx
        .store
        .modified(digest)?
        .is_some_and(|m| m <= cutoff(ctx))
    {
        ctx.store.delete(digest)?;
        return Ok(true);
    }
    Ok(false)
}

/// Forgets the published files of every revision of `channel` but its head
/// that names a blob the store no longer has (a damaged file that
/// `forklift fsck --repair` removed and republishing did not render again):
/// such a revision can no longer be served whole, and its rows would make
/// every backup fail. Its history (revision, memberships) stays, as after
/// [`prune_revision_files`]. Returns the revisions whose files went.
pub fn forget_incomplete_revisions(ctx: &Ctx, channel: &str) -> Result<Vec<i32>, ServiceError> {
    let mut conn = ctx.conn()?;
    let head: i32 = channels::table
        .find(channel)
        .select(channels::head)
        .first(&mut conn)?;
    let rows: Vec<(i32, String)> = revision_files::table
        .filter(revision_files::channel.eq(channel))
        .filter(revision_files::number.ne(head))
        .select((revision_files::number, revision_files::blob))
        .load(&mut conn)?;
    drop(conn);
    let mut incomplete = std::collections::BTreeSet::new();
    let mut present = std::collections::HashMap::new();
    for (number, blob) in rows {
        let there = match present.get(&blob) {
            Some(t) => *t,
            None => {
                let t = ctx.store.exists(&blob)?;
                present.insert(blob, t);
                t
            }
        };
        if !there {
            incomplete.insert(number);
        }
    }
    let numbers: Vec<i32> = incomplete.into_iter().collect();
    if !numbers.is_empty() {
        diesel::delete(
            revision_files::table
                .filter(revision_files::channel.eq(channel))
                .filter(revision_files::number.eq_any(&numbers)),
        )
        .execute(&mut *ctx.conn()?)?;
    }
    Ok(numbers)
}

fn cutoff(ctx: &Ctx) -> SystemTime {
    instant(ctx.clock.now() - LEFTOVER_AGE.as_secs() as i64)
}

/// Forgets the published files of every revision that is neither among its
/// channel's newest `keep_revisions` nor superseded within the grace period
/// (a host mid-refresh may still fetch those). Returns the rows removed; the
/// blobs nothing else references go in the same sweep.
pub fn prune_revision_files(ctx: &Ctx) -> Result<usize, ServiceError> {
    let horizon = ctx.clock.now() - ctx.config.grace_period.as_secs() as i64;
    let keep = i32::try_from(ctx.config.keep_revisions).unwrap_or(i32::MAX);
    let mut conn = ctx.conn()?;
    let heads: Vec<(String, i32)> = channels::table
        .select((channels::name, channels::head))
        .load(&mut conn)?;
    let mut removed = 0;
    for (channel, head) in heads {
        let newest_pruned = head.saturating_sub(keep);
        if newest_pruned < 1 {
            continue;
        }
        let expired = revisions::table
            .filter(revisions::channel.eq(&channel))
            .filter(revisions::number.le(newest_pruned))
            .filter(revisions::superseded_at.le(horizon))
            .select(revisions::number);
        removed += diesel::delete(
            revision_files::table
                .filter(revision_files::channel.eq(&channel))
                .filter(revision_files::number.le(newest_pruned))
                .filter(revision_files::number.eq_any(expired)),
        )
        .execute(&mut conn)?;
    }
    Ok(removed)
}

fn instant(unix_secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(unix_secs).unwrap_or(0))
}
