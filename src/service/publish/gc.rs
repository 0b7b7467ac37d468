//! Leftovers and retention. What a crash or a failed request can leave behind is
//! only ever unreferenced — a temp upload, or a blob written before its
//! transaction committed — and a superseded revision's published files are
//! needed only while hosts may still be reading them. This module removes
//! both: at startup, and every `sweep_interval` while the server runs.
//!
//! Revision history itself (revisions, memberships, events) is never pruned, so
//! what a channel held at any time is still answered; only the published
//! metadata files of old revisions go.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::prelude::*;

use crate::db::schema::*;
use crate::db::DbConnection;
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
    let cutoff = instant(ctx.clock.now() - LEFTOVER_AGE.as_secs() as i64);
    let temp_files = ctx.store.sweep_temp(match temp {
        TempFiles::All => None,
        TempFiles::Stale => Some(cutoff),
    })?;
    // Listed before the references are read: a blob that a publication
    // commits meanwhile is then either referenced or freshly touched.
    let listed = ctx.store.list()?;
    let referenced = referenced_blobs(&mut *ctx.conn()?)?;
    let mut orphan_blobs = 0;
    for (digest, modified) in listed {
        if modified > cutoff || referenced.contains(&digest) {
            continue;
        }
        // Looked at again just before deleting: `put_bytes` touches a blob
        // it finds present, so one being reused right now is spared.
        if ctx.store.modified(&digest)?.is_some_and(|m| m <= cutoff) {
            ctx.store.delete(&digest)?;
            orphan_blobs += 1;
        }
    }
    Ok(Swept {
        temp_files,
        orphan_blobs,
        pruned_files,
    })
}

fn referenced_blobs(conn: &mut DbConnection) -> Result<HashSet<String>, ServiceError> {
    // A discarded build's file is deleted after its commit; a crash in between
    // leaves it for this sweep.
    let mut referenced: HashSet<String> = packages::table
        .filter(packages::discarded_at.is_null())
        .select(packages::id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    referenced.extend(
        revision_files::table
            .select(revision_files::blob)
            .distinct()
            .load::<String>(conn)?,
    );
    Ok(referenced)
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
