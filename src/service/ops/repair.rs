//! `forklift fsck --repair`: the orphans removed as the sweep removes them,
//! each damaged head republished (its damaged blobs deleted first, so that
//! the new revision writes them again) and checked once more.

use std::collections::{HashMap, HashSet};

use super::fsck::{check_blob, check_head, read_head, Damage, FsckReport, Head};
use super::{human_bytes, OpsError, Progress};
use crate::service::publish::{gc, resign};
use crate::service::{Actor, Ctx};

/// Removes the orphans and republishes each damaged head, then checks it
/// again; `report.remaining` gets what is still wrong.
pub(super) fn repair(
    ctx: &Ctx,
    report: &mut FsckReport,
    damaged_heads: Vec<(Head, Vec<Damage>)>,
    progress: &dyn Progress,
) -> Result<(), OpsError> {
    for (digest, size) in &report.orphans {
        if gc::remove_orphan(ctx, digest)? {
            report.repaired.push(format!(
                "removed orphan blob {digest} ({})",
                human_bytes(*size)
            ));
        }
    }
    let actor = Actor {
        client: "fsck".into(),
        ..Actor::system()
    };
    let published: HashSet<&str> = ctx.config.channels.iter().map(String::as_str).collect();
    for (head, damage) in damaged_heads {
        if !published.contains(head.channel.as_str()) {
            continue;
        }
        // A damaged blob is deleted first: put_bytes only touches a blob it
        // finds present, so the new revision would keep the bad bytes.
        let blobs: HashSet<&str> = head.files.iter().map(|f| f.1.as_str()).collect();
        for blob in blobs {
            if check_blob(ctx, blob, size_of(&head, blob), &super::NoProgress)?.is_some() {
                ctx.store.delete(blob)?;
            }
        }
        resign::republish(
            ctx,
            &head.channel,
            format!(
                "repair {}: republished by forklift fsck --repair",
                head.channel
            ),
            &actor,
        )?;
        let forgotten = gc::forget_incomplete_revisions(ctx, &head.channel)?;
        let now = read_head(ctx, &head.channel)?;
        let mut verified = HashMap::new();
        let mut scratch = FsckReport::default();
        let left = check_head(ctx, &now, &mut verified, progress, &mut scratch)?;
        if left.is_empty() {
            report.repaired.push(format!(
                "republished {} as revision {} ({} damaged in revision {})",
                head.channel,
                now.number,
                damage.len(),
                head.number
            ));
        }
        if !forgotten.is_empty() {
            report.repaired.push(format!(
                "forgot the published files of {} revisions {:?}: they named damaged blobs",
                head.channel, forgotten
            ));
        }
        report.remaining.extend(left.iter().map(|d| d.to_string()));
    }
    report
        .remaining
        .extend(report.damage.iter().filter_map(|d| match d {
            Damage::Head { .. } => None,
            Damage::Package { .. } => Some(format!(
                "{d} (a build's bytes cannot be rebuilt: restore its file from a backup)"
            )),
            Damage::Membership { .. } => Some(d.to_string()),
        }));
    Ok(())
}

fn size_of(head: &Head, blob: &str) -> i64 {
    head.files
        .iter()
        .find(|f| f.1 == blob)
        .map(|f| f.2)
        .unwrap_or(0)
}
