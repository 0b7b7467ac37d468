//! Startup sweep: what a crash can leave behind is only ever unreferenced — a
//! temp upload, or a blob written before its transaction committed. Both are
//! removed once they are old enough that no live request can still own them.

use std::collections::HashSet;
use std::time::Duration;

use diesel::prelude::*;

use super::{Ctx, ServiceError};
use crate::db::schema::*;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub temp_files: usize,
    pub orphan_blobs: usize,
}

/// `temp_age`: temp files are this node's own (local disk even when blobs live
/// elsewhere), so at startup any of them is a leftover. `blob_age`: blobs may be
/// shared by several servers, so only old unreferenced ones are removed.
pub fn sweep(ctx: &Ctx, temp_age: Duration, blob_age: Duration) -> Result<Swept, ServiceError> {
    let temp_files = ctx.store.sweep_temp(temp_age)?;
    let mut conn = ctx.conn()?;
    // A discarded build's file is deleted after its commit; a crash in between
    // leaves it for this sweep.
    let mut referenced: HashSet<String> = packages::table
        .filter(packages::discarded_at.is_null())
        .select(packages::id)
        .load::<String>(&mut conn)?
        .into_iter()
        .collect();
    referenced.extend(
        revision_files::table
            .select(revision_files::blob)
            .distinct()
            .load::<String>(&mut conn)?,
    );
    drop(conn);
    let mut orphan_blobs = 0;
    for (digest, modified) in ctx.store.list()? {
        let old = modified.elapsed().map(|e| e >= blob_age).unwrap_or(false);
        if old && !referenced.contains(&digest) {
            ctx.store.delete(&digest)?;
            orphan_blobs += 1;
        }
    }
    Ok(Swept {
        temp_files,
        orphan_blobs,
    })
}
