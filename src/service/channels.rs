//! Channels: the configured promotion path, promotion and demotion, revisions
//! and their diffs.

use std::collections::{BTreeMap, HashSet};

use diesel::prelude::*;

use super::packages::{resolve, view, views};
use super::publish::{commit, Change, ChannelOp, PendingEvent, Reject};
use super::views::*;
use super::{Actor, Ctx, ServiceError};
use crate::db::models::*;
use crate::db::schema::*;
use crate::db::DbConnection;

/// Makes the database agree with the configured channel list and gives every
/// channel a first (empty) revision, so its repository is servable at once.
pub fn sync_channels(ctx: &Ctx) -> Result<(), ServiceError> {
    let mut conn = ctx.conn()?;
    for (i, name) in ctx.config.channels.iter().enumerate() {
        let exists: Option<ChannelRow> = channels::table
            .find(name)
            .select(ChannelRow::as_select())
            .first(&mut conn)
            .optional()?;
        match exists {
            None => {
                let r = diesel::insert_into(channels::table)
                    .values(ChannelRow {
                        name: name.clone(),
                        position: i as i32,
                        head: 0,
                    })
                    .execute(&mut conn);
                match r {
                    Ok(_) => {}
                    // Another instance created it first.
                    Err(e) if crate::db::is_unique_violation(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Some(c) if c.position != i as i32 => {
                diesel::update(channels::table.find(name))
                    .set(channels::position.eq(i as i32))
                    .execute(&mut conn)?;
            }
            Some(_) => {}
        }
    }
    drop(conn);
    let system = Actor {
        client: "startup".into(),
        ..Actor::system()
    };
    for name in &ctx.config.channels {
        let mut conn = ctx.conn()?;
        let head: i32 = channels::table
            .find(name)
            .select(channels::head)
            .first(&mut conn)?;
        drop(conn);
        if head == 0 {
            let change = Change {
                summary: format!("create channel {name}"),
                ops: vec![ChannelOp {
                    channel: name.clone(),
                    ..ChannelOp::default()
                }],
                ..Change::default()
            };
            let _ = commit(ctx, change, &system)?;
        }
    }
    Ok(())
}

fn channel_view(
    ctx: &Ctx,
    conn: &mut DbConnection,
    name: &str,
) -> Result<ChannelView, ServiceError> {
    let idx = ctx.channel_index(name)?;
    let head: Option<i32> = channels::table
        .find(name)
        .select(channels::head)
        .first(conn)
        .optional()?;
    let revision = match head {
        Some(h) if h > 0 => revisions::table
            .filter(revisions::channel.eq(name))
            .filter(revisions::number.eq(h))
            .select(RevisionRow::as_select())
            .first(conn)
            .optional()?
            .map(RevisionView::from),
        _ => None,
    };
    Ok(ChannelView {
        name: name.to_string(),
        position: idx,
        source: idx.checked_sub(1).map(|i| ctx.config.channels[i].clone()),
        revision,
        repo_url: format!("{}/rpm/{name}/", ctx.config.base_url),
        repo_file: format!("{}/rpm/{name}.repo", ctx.config.base_url),
        apt_sources: format!("{}/deb/{name}.sources", ctx.config.base_url),
        frozen: super::gates::frozen(conn, name)?.map(|n| Marker {
            by: n.by,
            at: rfc3339(n.at),
            reason: n.reason,
        }),
    })
}

/// The channels the caller may read, in promotion order.
pub fn list_channels(ctx: &Ctx, actor: &Actor) -> Result<Vec<ChannelView>, ServiceError> {
    let mut conn = ctx.conn()?;
    ctx.config
        .channels
        .iter()
        .filter(|c| ctx.may_read(actor, c))
        .map(|c| channel_view(ctx, &mut conn, c))
        .collect()
}

/// Package ids in a channel at a revision: added at or before it, not yet removed.
fn members_at(
    conn: &mut DbConnection,
    channel: &str,
    rev: i32,
) -> Result<HashSet<String>, ServiceError> {
    Ok(memberships::table
        .filter(memberships::channel.eq(channel))
        .filter(memberships::added_in.le(rev))
        .filter(
            memberships::removed_in
                .is_null()
                .or(memberships::removed_in.gt(rev)),
        )
        .select(memberships::package_id)
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

/// Views of the builds, each listing only the channels `actor` may read.
fn package_views(
    ctx: &Ctx,
    conn: &mut DbConnection,
    ids: impl IntoIterator<Item = String>,
    actor: &Actor,
) -> Result<Vec<PackageView>, ServiceError> {
    let ids: Vec<String> = ids.into_iter().collect();
    let mut list = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        list.extend(
            packages::table
                .filter(packages::id.eq_any(chunk))
                .select(PackageSummary::as_select())
                .load(conn)?,
        );
    }
    list.sort_by(super::packages::by_version);
    let mut out = views(conn, ctx, list)?;
    for v in &mut out {
        v.channels.retain(|c| ctx.may_read(actor, c));
    }
    Ok(out)
}

pub fn channel_detail(ctx: &Ctx, name: &str, actor: &Actor) -> Result<ChannelDetail, ServiceError> {
    ctx.require_read(actor, name)?;
    let mut conn = ctx.conn()?;
    let channel = channel_view(ctx, &mut conn, name)?;
    let head = channel.revision.as_ref().map(|r| r.number).unwrap_or(0);
    let ids = members_at(&mut conn, name, head)?;
    let packages = package_views(ctx, &mut conn, ids, actor)?;
    Ok(ChannelDetail { channel, packages })
}

#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct RevisionQuery {
    /// Only the revision in force at this time (RFC 3339).
    pub at: Option<String>,
}

pub fn revisions(
    ctx: &Ctx,
    name: &str,
    q: &RevisionQuery,
    actor: &Actor,
) -> Result<Vec<RevisionView>, ServiceError> {
    ctx.require_read(actor, name)?;
    let mut conn = ctx.conn()?;
    let mut query = revisions::table
        .filter(revisions::channel.eq(name))
        .select(RevisionRow::as_select())
        .into_boxed();
    if let Some(at) = &q.at {
        let t = chrono::DateTime::parse_from_rfc3339(at)
            .map_err(|e| ServiceError::BadRequest(format!("at={at:?}: {e}")))?
            .timestamp();
        query = query
            .filter(revisions::created_at.le(t))
            .order(revisions::number.desc())
            .limit(1);
    } else {
        query = query.order(revisions::number.desc());
    }
    Ok(query
        .load(&mut conn)?
        .into_iter()
        .map(RevisionView::from)
        .collect())
}

pub fn revision_detail(
    ctx: &Ctx,
    name: &str,
    number: i32,
    actor: &Actor,
) -> Result<RevisionDetail, ServiceError> {
    ctx.require_read(actor, name)?;
    let mut conn = ctx.conn()?;
    let rev: RevisionRow = revisions::table
        .filter(revisions::channel.eq(name))
        .filter(revisions::number.eq(number))
        .select(RevisionRow::as_select())
        .first(&mut conn)
        .optional()?
        .ok_or_else(|| ServiceError::RevisionNotFound(name.to_string(), number))?;
    let ids = members_at(&mut conn, name, number)?;
    let packages = package_views(ctx, &mut conn, ids, actor)?;
    Ok(RevisionDetail {
        revision: rev.into(),
        packages,
    })
}

pub fn diff(
    ctx: &Ctx,
    name: &str,
    from: i32,
    to: i32,
    actor: &Actor,
) -> Result<DiffView, ServiceError> {
    ctx.require_read(actor, name)?;
    let mut conn = ctx.conn()?;
    for n in [from, to] {
        let exists = revisions::table
            .filter(revisions::channel.eq(name))
            .filter(revisions::number.eq(n))
            .select(revisions::number)
            .first::<i32>(&mut conn)
            .optional()?;
        if exists.is_none() {
            return Err(ServiceError::RevisionNotFound(name.to_string(), n));
        }
    }
    let a = members_at(&mut conn, name, from)?;
    let b = members_at(&mut conn, name, to)?;
    let added = package_views(ctx, &mut conn, b.difference(&a).cloned(), actor)?;
    let removed = package_views(ctx, &mut conn, a.difference(&b).cloned(), actor)?;
    Ok(DiffView {
        channel: name.to_string(),
        from,
        to,
        added,
        removed,
    })
}

/// The manual gate into `to`: the channel's policy decides who may promote;
/// a held build needs `force` and admin rights; a discarded one goes nowhere.
fn manual_gate(
    ctx: &Ctx,
    conn: &mut DbConnection,
    p: &PackageSummary,
    to: &str,
    actor: &Actor,
    force: bool,
) -> Result<(), ServiceError> {
    if p.discarded_at.is_some() {
        return Err(ServiceError::Discarded(format!(
            "{} was discarded; it cannot be promoted",
            p.filename
        )));
    }
    let policy = super::gates::load_policy(conn, &ctx.config.channels, to)?;
    let entry_upload = ctx.channel_index(to)? == 0 && actor.grants.may_upload();
    if policy.require_permission && !entry_upload {
        actor.require_promote(to)?;
    } else if !actor.authenticated {
        return Err(actor.denied(&format!("promoting into {to:?}"), "any permission"));
    }
    if let Some(h) = super::gates::held(p) {
        if !(force && actor.grants.is_admin()) {
            return Err(ServiceError::Held(format!(
                "{} is held by {} ({}); promoting it by hand needs \"force\": true and admin rights",
                p.filename, h.by, h.reason
            )));
        }
    }
    Ok(())
}

/// Promotes a build into `to`, which must directly follow a channel holding it.
pub fn promote(
    ctx: &Ctx,
    id: &str,
    to: &str,
    force: bool,
    actor: &Actor,
) -> Result<ChangeResult, ServiceError> {
    let idx = ctx.channel_index(to)?;
    let mut conn = ctx.conn()?;
    let p = resolve(&mut conn, id)?;
    manual_gate(ctx, &mut conn, &p, to, actor, force)?;
    let held = super::packages::current_channels(&mut conn, &p.id)?;
    drop(conn);
    if held.iter().any(|c| c == to) {
        let mut conn = ctx.conn()?;
        return Ok(ChangeResult {
            package: view(&mut conn, ctx, p, actor)?,
            changed: false,
            revisions: BTreeMap::new(),
            fell_back_to: BTreeMap::new(),
        });
    }
    let Some(source) = idx.checked_sub(1).map(|i| ctx.config.channels[i].clone()) else {
        return Err(ServiceError::NotAllowed(format!(
            "{to:?} is the first channel; builds enter it by upload, not promotion"
        )));
    };
    if held.is_empty() && ctx.channel_index(&source)? == 0 {
        // The usual first-hour slip: an upload without `?channel=`.
        return Err(ServiceError::NotAllowed(format!(
            "{} is in no channel yet: add it to {source:?} first, by uploading it again \
             with ?channel={source} (the same bytes are not stored twice)",
            p.filename
        )));
    }
    if !held.contains(&source) {
        return Err(ServiceError::NotAllowed(format!(
            "{} is not in {source:?}; promotion to {to:?} only comes from {source:?} (levels are never skipped)",
            p.filename
        )));
    }
    let change = Change {
        summary: format!("promote {} from {source} to {to}", p.filename),
        ops: vec![ChannelOp {
            channel: to.to_string(),
            add: vec![p.id.clone()],
            remove: vec![],
            require_in: Some(source.clone()),
            force: false,
        }],
        events: vec![PendingEvent {
            kind: "promoted",
            package_id: Some(p.id.clone()),
            channel: Some(to.to_string()),
            reason: None,
            detail: Some(serde_json::json!({ "from": source, "forced": force })),
        }],
        ..Change::default()
    };
    let committed = commit(ctx, change, actor)?.map_err(|_| ServiceError::Contention)?;
    let mut conn = ctx.conn()?;
    Ok(ChangeResult {
        package: view(&mut conn, ctx, p, actor)?,
        changed: !committed.revisions.is_empty(),
        revisions: committed.revisions.into_iter().collect(),
        fell_back_to: BTreeMap::new(),
    })
}

/// Removes a build from `from` and every later channel holding it. Each channel
/// then serves the newest other build of the same name and arch it still holds.
pub fn demote(
    ctx: &Ctx,
    id: &str,
    from: &str,
    reason: &str,
    actor: &Actor,
) -> Result<ChangeResult, ServiceError> {
    let idx = ctx.channel_index(from)?;
    // Before anything is looked up: who may not demote learns nothing.
    actor.require_promote(from)?;
    if reason.trim().is_empty() {
        return Err(ServiceError::BadRequest(
            "a demotion needs a reason (\"reason\": \"...\")".into(),
        ));
    }
    let mut conn = ctx.conn()?;
    let p = resolve(&mut conn, id)?;
    let held = super::packages::current_channels(&mut conn, &p.id)?;
    let affected: Vec<String> = ctx.config.channels[idx..]
        .iter()
        .filter(|c| held.contains(c))
        .cloned()
        .collect();
    if !held.iter().any(|c| c == from) {
        return Err(ServiceError::NotAllowed(format!(
            "{} is not in {from:?}",
            p.filename
        )));
    }
    // A demotion changes every later channel holding the build too, and
    // records a rejection for every later channel (automatic promotion never
    // brings the build back there), so the caller needs the right on each.
    for c in &ctx.config.channels[idx..] {
        actor.require_promote(c)?;
    }
    // Rejected for `from` and every later channel: never promoted there automatically.
    let rejections: Vec<Reject> = ctx.config.channels[idx..]
        .iter()
        .map(|c| Reject {
            package_id: p.id.clone(),
            channel: c.clone(),
            reason: reason.trim().to_string(),
        })
        .collect();
    // What each channel falls back to: the newest remaining build of this name/arch.
    let mut fell_back_to = BTreeMap::new();
    let mut fallback_ids = BTreeMap::new();
    for c in &affected {
        let others: Vec<PackageSummary> = packages::table
            .filter(packages::name.eq(&p.name))
            .filter(packages::arch.eq(&p.arch))
            .filter(packages::kind.eq(&p.kind))
            .filter(packages::id.ne(&p.id))
            .filter(
                packages::id.eq_any(
                    memberships::table
                        .filter(memberships::channel.eq(c))
                        .filter(memberships::removed_in.is_null())
                        .select(memberships::package_id),
                ),
            )
            .select(PackageSummary::as_select())
            .load(&mut conn)?;
        let best = others.into_iter().max_by(super::packages::by_version);
        fallback_ids.insert(c.clone(), best.as_ref().map(|b| b.id.clone()));
        fell_back_to.insert(c.clone(), best);
    }
    drop(conn);
    let change = Change {
        summary: format!("demote {} from {from}: {reason}", p.filename),
        ops: affected
            .iter()
            .map(|c| ChannelOp {
                channel: c.clone(),
                add: vec![],
                remove: vec![p.id.clone()],
                require_in: None,
                force: false,
            })
            .collect(),
        events: affected
            .iter()
            .map(|c| PendingEvent {
                kind: "demoted",
                package_id: Some(p.id.clone()),
                channel: Some(c.clone()),
                reason: Some(reason.to_string()),
                detail: Some(serde_json::json!({
                    "requested_from": from,
                    "fell_back_to": fallback_ids.get(c).cloned().flatten(),
                })),
            })
            .collect(),
        rejections,
        ..Change::default()
    };
    let committed = commit(ctx, change, actor)?.map_err(|_| ServiceError::Contention)?;
    let mut conn = ctx.conn()?;
    let mut fb = BTreeMap::new();
    for (c, best) in fell_back_to {
        let v = match best {
            Some(b) => Some(view(&mut conn, ctx, b, actor)?),
            None => None,
        };
        fb.insert(c, v);
    }
    Ok(ChangeResult {
        package: view(&mut conn, ctx, p, actor)?,
        changed: !committed.revisions.is_empty(),
        revisions: committed.revisions.into_iter().collect(),
        fell_back_to: fb,
    })
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BulkResult {
    pub channel: String,
    /// The new revision, or None when every build was already there.
    pub revision: Option<i32>,
    pub added: Vec<String>,
    pub already_present: Vec<String>,
}

/// Adds many builds to a channel in ONE revision: a release set promoted
/// together, or stored uploads pushed into the first channel. The same rules as
/// single promotion: every build must be in the channel right before `to`.
pub fn promote_many(
    ctx: &Ctx,
    ids: &[String],
    to: &str,
    force: bool,
    actor: &Actor,
) -> Result<BulkResult, ServiceError> {
    let idx = ctx.channel_index(to)?;
    if ids.is_empty() || ids.len() > 100_000 {
        return Err(ServiceError::BadRequest(
            "\"packages\" must list between 1 and 100000 builds".into(),
        ));
    }
    let source = idx.checked_sub(1).map(|i| ctx.config.channels[i].clone());
    let mut conn = ctx.conn()?;
    let in_channel = |conn: &mut DbConnection, c: &str| -> Result<HashSet<String>, ServiceError> {
        Ok(memberships::table
            .filter(memberships::channel.eq(c))
            .filter(memberships::removed_in.is_null())
            .select(memberships::package_id)
            .load::<String>(conn)?
            .into_iter()
            .collect())
    };
    let present = in_channel(&mut conn, to)?;
    let in_source = match &source {
        Some(s) => Some(in_channel(&mut conn, s)?),
        None => None,
    };
    let mut added = Vec::new();
    let mut already_present = Vec::new();
    let mut missing = Vec::new();
    let mut seen = HashSet::new();
    for id in ids {
        let p = resolve(&mut conn, id)?;
        if !seen.insert(p.id.clone()) {
            continue;
        }
        manual_gate(ctx, &mut conn, &p, to, actor, force)?;
        if present.contains(&p.id) {
            already_present.push(p.id);
        } else if in_source.as_ref().is_some_and(|s| !s.contains(&p.id)) {
            missing.push(p.filename);
        } else {
            added.push(p.id);
        }
    }
    drop(conn);
    if let (Some(s), false) = (&source, missing.is_empty()) {
        missing.truncate(20);
        return Err(ServiceError::NotAllowed(format!(
            "not in {s:?}, so they cannot be promoted to {to:?}: {}",
            missing.join(", ")
        )));
    }
    if added.is_empty() {
        return Ok(BulkResult {
            channel: to.to_string(),
            revision: None,
            added,
            already_present,
        });
    }
    let (kind, detail) = match &source {
        Some(s) => ("promoted", Some(serde_json::json!({ "from": s }))),
        None => ("added", None),
    };
    let change = Change {
        summary: format!("{kind} {} into {to}", builds(added.len())),
        ops: vec![ChannelOp {
            channel: to.to_string(),
            add: added.clone(),
            remove: vec![],
            require_in: source.clone(),
            force: false,
        }],
        events: added
            .iter()
            .map(|id| PendingEvent {
                kind,
                package_id: Some(id.clone()),
                channel: Some(to.to_string()),
                reason: None,
                detail: detail.clone(),
            })
            .collect(),
        ..Change::default()
    };
    let committed = commit(ctx, change, actor)?.map_err(|_| ServiceError::Contention)?;
    Ok(BulkResult {
        channel: to.to_string(),
        revision: committed.revisions.get(to).copied(),
        added,
        already_present,
    })
}

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
        let (_, created) = super::publish::head_revision(&mut *ctx.conn()?, name)?;
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
        let (head, _) = super::publish::head_revision(&mut conn, name)?;
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
/// dates. A freeze does not stop it, since no package set changes.
fn republish(ctx: &Ctx, channel: &str, summary: String, actor: &Actor) -> Result<(), ServiceError> {
    let change = Change {
        summary,
        ops: vec![ChannelOp {
            channel: channel.to_string(),
            force: true,
            ..ChannelOp::default()
        }],
        ..Change::default()
    };
    commit(ctx, change, actor)?.map_err(|_| {
        ServiceError::Publication(format!("re-signing {channel} inserted a package"))
    })?;
    Ok(())
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LatestView {
    #[serde(flatten)]
    pub package: PackageView,
    pub channel: String,
    pub download_url: String,
}

/// The build of `name` a host following `channel` gets now: the newest the
/// channel holds (of `arch`, when given). For pollers, with an ETag.
pub fn latest(
    ctx: &Ctx,
    channel: &str,
    name: &str,
    arch: Option<&str>,
    actor: &Actor,
) -> Result<LatestView, ServiceError> {
    ctx.require_read(actor, channel)?;
    let mut conn = ctx.conn()?;
    let mut q = packages::table
        .filter(packages::name.eq(name))
        .filter(
            packages::id.eq_any(
                memberships::table
                    .filter(memberships::channel.eq(channel))
                    .filter(memberships::removed_in.is_null())
                    .select(memberships::package_id),
            ),
        )
        .select((PackageSummary::as_select(), packages::pool_path))
        .into_boxed();
    if let Some(a) = arch {
        q = q.filter(packages::arch.eq(a.to_string()));
    }
    let found: Vec<(PackageSummary, Option<String>)> = q.load(&mut conn)?;
    let Some((best, pool)) = found
        .into_iter()
        .max_by(|a, b| super::packages::by_version(&a.0, &b.0))
    else {
        return Err(ServiceError::NotFound(format!(
            "channel {channel:?} holds no build of {name:?}"
        )));
    };
    let base = &ctx.config.base_url;
    let download_url = match pool {
        Some(p) => format!("{base}/deb/{p}"),
        None => format!(
            "{base}/rpm/{channel}/{}",
            super::packages::rpm_location(&best.id, &best.filename)
        ),
    };
    let package = view(&mut conn, ctx, best, actor)?;
    Ok(LatestView {
        package,
        channel: channel.into(),
        download_url,
    })
}

/// "1 build", "3 builds".
pub fn builds(n: usize) -> String {
    if n == 1 {
        "1 build".into()
    } else {
        format!("{n} builds")
    }
}
