//! Re-signing: a channel republished with the same packages, before apt's
//! Valid-Until lapses or after the signing keys change.

use diesel::prelude::*;

use super::{commit, Change, ChannelOp};
use crate::db::schema::*;
use crate::db::DbConnection;
use crate::service::catalog::queries::head_revision;
use crate::service::{Actor, Ctx, ServiceError};

/// Re-signs every channel whose apt Release is past half its validity, so
/// Valid-Until never lapses on hosts. Returns how many channels were republished.
pub fn resign_expiring(ctx: &Ctx) -> Result<usize, ServiceError> {
    let Some(valid_for) = ctx.config.apt_valid_for else {
        return Ok(0);
    };
    let half = (valid_for.as_secs() / 2) as i64;
    let system = Actor {
        client: "valid-until".into(),
        ..Actor::system()
    };
    let mut done = 0;
    for name in &ctx.config.channels {
        let (_, created) = head_revision(&mut *ctx.conn()?, name)?;
        if created.is_some_and(|c| ctx.clock.now() - c < half) {
            continue;
        }
        republish(
            ctx,
            name,
            format!("re-sign {name} before Valid-Until"),
            &system,
        )?;
        done += 1;
    }
    Ok(done)
}

/// Republishes, with fresh signatures, every channel whose head was not signed
/// by exactly the current keys: after a rotation's next key is configured (or
/// the old one dropped), hosts that hold only the new key must be able to
/// verify channels that have not changed since. Run at startup; returns the
/// channels re-signed.
pub fn resign_for_keys(ctx: &Ctx) -> Result<Vec<String>, ServiceError> {
    let system = Actor {
        client: "key-rotation".into(),
        ..Actor::system()
    };
    let mut done = Vec::new();
    for name in &ctx.config.channels {
        let mut conn = ctx.conn()?;
        let (head, _) = head_revision(&mut conn, name)?;
        let blob = |conn: &mut DbConnection, path: &str| -> Result<Option<String>, ServiceError> {
            Ok(revision_files::table
                .filter(revision_files::channel.eq(name))
                .filter(revision_files::number.eq(head))
                .filter(revision_files::path.eq(path))
                .select(revision_files::blob)
                .first::<String>(conn)
                .optional()?)
        };
        let (Some(repomd), Some(asc)) = (
            blob(&mut conn, "repodata/repomd.xml")?,
            blob(&mut conn, "repodata/repomd.xml.asc")?,
        ) else {
            continue;
        };
        drop(conn);
        let repomd = ctx.store.get_bytes(&repomd)?;
        let asc = String::from_utf8(ctx.store.get_bytes(&asc)?).unwrap_or_default();
        if ctx.signer.signed_by_current_keys(&repomd, &asc) {
            continue;
        }
        republish(
            ctx,
            name,
            format!("re-sign {name} with the current signing keys"),
            &system,
        )?;
        done.push(name.clone());
    }
    Ok(done)
}

/// A new revision of `channel` with the same packages: fresh signatures and
/// dates, every file rendered again (what `forklift fsck --repair` uses on a
/// damaged head). A freeze does not stop it, since no package set changes.
pub fn republish(
    ctx: &Ctx,
    channel: &str,
    summary: String,
    actor: &Actor,
) -> Result<(), ServiceError> {
    let change = Change {
        summary,
        ops: vec![ChannelOp {
            channel: channel.to_string(),
            force: true,
            ..ChannelOp::default()
        }],
        ..Change::default()
    };
    commit(ctx, change, actor)?;
    Ok(())
}
