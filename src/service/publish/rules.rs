//! The rules a commit applies inside its transaction: retention retires the
//! oldest builds beyond what a channel keeps; a demotion's verdict and a
//! discard are recorded with the change that carries them.

use std::collections::{BTreeMap, HashSet};

use diesel::prelude::*;

use super::Reject;
use crate::db::models::PackageSummary;
use crate::db::schema::*;
use crate::db::DbConnection;
use crate::formats::compare_versions;
use crate::service::catalog::queries::{load_policy, Versioned, ID_CHUNK};
use crate::service::{Actor, Ctx, ServiceError};

pub fn record_rejection(
    conn: &mut DbConnection,
    r: &Reject,
    actor: &Actor,
    at: i64,
) -> Result<(), diesel::result::Error> {
    let exists: Option<String> = rejections::table
        .find((&r.package_id, &r.channel))
        .select(rejections::channel)
        .first(conn)
        .optional()?;
    if exists.is_none() {
        diesel::insert_into(rejections::table)
            .values((
                rejections::package_id.eq(&r.package_id),
                rejections::channel.eq(&r.channel),
                rejections::at.eq(at),
                rejections::actor.eq(&actor.name),
                rejections::reason.eq(&r.reason),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn mark_discarded(
    conn: &mut DbConnection,
    id: &str,
    reason: &str,
    actor: &Actor,
    at: i64,
) -> Result<(), diesel::result::Error> {
    diesel::update(packages::table.filter(packages::id.eq(id)))
        .set((
            packages::discarded_at.eq(Some(at)),
            packages::discarded_by.eq(Some(&actor.name)),
            packages::discard_reason.eq(Some(reason)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Builds that leave `channel` because it would hold more than `retain` builds
/// of one name (newest by version kept; builds being added never leave).
pub fn retention_overflow(
    ctx: &Ctx,
    conn: &mut DbConnection,
    channel: &str,
    members: &HashSet<String>,
    adding: &[String],
    new_packages: &[crate::db::models::PackageRow],
) -> Result<Vec<String>, ServiceError> {
    let retain = load_policy(conn, &ctx.config.channels, channel)?.retain as usize;
    type Key = (String, String, String, String, i32, String, String);
    fn key(id: &str, v: &impl Versioned) -> Key {
        let (name, arch, kind, epoch, version, release) = v.order_key();
        (
            id.to_string(),
            kind.to_string(),
            name.to_string(),
            arch.to_string(),
            epoch,
            version.to_string(),
            release.to_string(),
        )
    }
    // An upload's row is inserted in the same transaction, so not yet visible.
    let fresh: Vec<Key> = new_packages.iter().map(|p| key(&p.id, p)).collect();
    // In chunks: a bulk promotion may add more builds than a statement takes
    // parameters (SQLite allows 32,766).
    let mut names: HashSet<String> = HashSet::new();
    for chunk in adding.chunks(ID_CHUNK) {
        names.extend(
            packages::table
                .filter(packages::id.eq_any(chunk))
                .select(packages::name)
                .load::<String>(conn)?,
        );
    }
    names.extend(fresh.iter().map(|k| k.2.clone()));
    let names: Vec<String> = names.into_iter().collect();
    let mut same_names: Vec<Key> = Vec::new();
    for chunk in names.chunks(ID_CHUNK) {
        same_names.extend(
            packages::table
                .filter(packages::name.eq_any(chunk))
                .select(PackageSummary::as_select())
                .load::<PackageSummary>(conn)?
                .iter()
                .map(|p| key(&p.id, p)),
        );
    }
    same_names.extend(fresh);
    let mut groups: BTreeMap<(String, String, String), Vec<Key>> = BTreeMap::new();
    for p in same_names.into_iter().filter(|p| members.contains(&p.0)) {
        groups
            .entry((p.1.clone(), p.2.clone(), p.3.clone()))
            .or_default()
            .push(p);
    }
    let mut out = Vec::new();
    for (_, mut builds) in groups {
        if builds.len() <= retain {
            continue;
        }
        // Newest first.
        // Groups are of one kind, so one ordering applies.
        builds.sort_by(|a, b| compare_versions(&a.1, (b.4, &b.5, &b.6), (a.4, &a.5, &a.6)));
        let mut kept = 0;
        for b in builds {
            if kept < retain || adding.contains(&b.0) {
                kept += 1;
            } else {
                out.push(b.0);
            }
        }
    }
    Ok(out)
}
