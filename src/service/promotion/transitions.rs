//! Promotion and demotion by hand: one build, or many in one revision;
//! demotion falls back to the last good build.

use std::collections::{BTreeMap, HashMap, HashSet};

use diesel::prelude::*;

use crate::db::models::*;
use crate::db::schema::*;
use crate::db::DbConnection;
use crate::service::catalog::channels::builds;
use crate::service::catalog::packages::view;
use crate::service::catalog::queries::{
    by_version, current_channels, held, load_policy, open_member_ids, open_members, resolve,
};
use crate::service::catalog::views::*;
use crate::service::error::PromotionError;
use crate::service::publish::{commit, Change, ChannelOp, PendingEvent, Reject};
use crate::service::{Actor, ChannelName, Ctx, PackageRef, ServiceError};

use super::checks;

/// The manual gate into `to`: the channel's policy decides who may promote;
/// a held build, or one without the required checks passed in the source,
/// needs `force` and admin rights; a discarded one goes nowhere. Returns the
/// required checks as they stand: the evidence the promoted event records.
fn manual_gate(
    ctx: &Ctx,
    conn: &mut DbConnection,
    p: &PackageSummary,
    to: &ChannelName,
    actor: &Actor,
    force: bool,
) -> Result<Vec<serde_json::Value>, ServiceError> {
    if p.discarded_at.is_some() {
        return Err(PromotionError::Discarded(format!(
            "{} was discarded; it cannot be promoted",
            p.filename
        ))
        .into());
    }
    let policy = load_policy(conn, &ctx.config.channels, to)?;
    let entry_upload = to.is_entry() && actor.grants.may_upload();
    if policy.require_permission && !entry_upload {
        actor.require_promote(to)?;
    } else if !actor.authenticated {
        return Err(actor.denied(&format!("promoting into {to:?}"), "any permission"));
    }
    if let Some(h) = held(p) {
        if !(force && actor.grants.is_admin()) {
            return Err(PromotionError::Held(format!(
                "{} is held by {} ({}); promoting it by hand needs \"force\": true and admin rights",
                p.filename, h.by, h.reason
            )).into());
        }
    }
    let (missing, evidence) = checks::gate(conn, &policy, &p.id)?;
    let passes = missing.is_empty() || (force && actor.grants.is_admin());
    if !passes {
        return Err(PromotionError::ChecksNotPassed(format!(
            "{} has not passed the checks {:?} requires in {:?}: {}; promoting it anyway \
             needs \"force\": true and admin rights",
            p.filename,
            to.as_str(),
            policy.source.as_deref().unwrap_or("-"),
            checks::describe(&missing)
        ))
        .into());
    }
    Ok(evidence)
}

/// Promotes a build into `to`, which must directly follow a channel holding it.
pub fn promote(
    ctx: &Ctx,
    id: &PackageRef,
    to: &ChannelName,
    force: bool,
    actor: &Actor,
) -> Result<ChangeResult, ServiceError> {
    let idx = to.position();
    let mut conn = ctx.conn()?;
    let p = resolve(&mut conn, id)?;
    let evidence = manual_gate(ctx, &mut conn, &p, to, actor, force)?;
    let held = current_channels(&mut conn, &p.id)?;
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
        return Err(PromotionError::NotAllowed(format!(
            "{:?} is the first channel; builds enter it by upload, not promotion",
            to.as_str()
        ))
        .into());
    };
    if held.is_empty() && idx == 1 {
        // The usual first-hour slip: an upload without `?channel=`.
        return Err(PromotionError::NotAllowed(format!(
            "{} is in no channel yet: add it to {source:?} first, by uploading it again \
             with ?channel={source} (the same bytes are not stored twice)",
            p.filename
        ))
        .into());
    }
    if !held.contains(&source) {
        return Err(PromotionError::NotAllowed(format!(
            "{} is not in {source:?}; promotion to {:?} only comes from {source:?} (levels are never skipped)",
            p.filename,
            to.as_str()
        )).into());
    }
    let (gate, overridden) = {
        let mut conn = ctx.conn()?;
        let policy = load_policy(&mut conn, &ctx.config.channels, to)?;
        let ids = [p.id.clone()];
        super::closure::prepare(ctx, &mut conn, &policy, Some(&source), &ids, force, actor)?
    };
    let mut change = Change {
        summary: format!("promote {} from {source} to {to}", p.filename),
        ops: vec![ChannelOp::add(to, vec![p.id.clone()])
            .from_source(Some(source.clone()))
            .gated(gate)],
        events: vec![PendingEvent {
            kind: "promoted",
            package_id: Some(p.id.clone()),
            channel: Some(to.to_string()),
            reason: None,
            detail: Some(promoted_detail(&source, force, evidence)),
        }],
        ..Change::default()
    };
    super::closure::record_override(&mut change.events, overridden);
    let committed = commit(ctx, change, actor)?;
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
    id: &PackageRef,
    from: &ChannelName,
    reason: &str,
    actor: &Actor,
) -> Result<ChangeResult, ServiceError> {
    let idx = from.position();
    // Before anything is looked up: who may not demote learns nothing.
    actor.require_promote(from)?;
    if reason.trim().is_empty() {
        return Err(ServiceError::BadRequest(
            "a demotion needs a reason (\"reason\": \"...\")".into(),
        ));
    }
    let mut conn = ctx.conn()?;
    let p = resolve(&mut conn, id)?;
    let held = current_channels(&mut conn, &p.id)?;
    let affected: Vec<String> = ctx.config.channels[idx..]
        .iter()
        .filter(|c| held.contains(c))
        .cloned()
        .collect();
    if !held.iter().any(|c| c == from) {
        return Err(
            PromotionError::NotAllowed(format!("{} is not in {from:?}", p.filename)).into(),
        );
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
            .filter(packages::id.eq_any(open_member_ids(c)))
            .select(PackageSummary::as_select())
            .load(&mut conn)?;
        let best = others.into_iter().max_by(by_version);
        fallback_ids.insert(c.clone(), best.as_ref().map(|b| b.id.clone()));
        fell_back_to.insert(c.clone(), best);
    }
    // Never a refusal: what each channel is left without is only recorded.
    let mut unmet: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for c in &affected {
        if let Some(u) = super::closure::left_unmet(ctx, &mut conn, c, &p.id) {
            unmet.insert(c.clone(), u);
        }
    }
    drop(conn);
    let mut change = Change {
        summary: format!("demote {} from {from}: {reason}", p.filename),
        ops: affected
            .iter()
            .map(|c| ChannelOp::remove(c, vec![p.id.clone()]))
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
    for e in &mut change.events {
        let left = e.channel.as_ref().and_then(|c| unmet.remove(c));
        if let (Some(l), Some(d)) = (left, e.detail.as_mut().and_then(|d| d.as_object_mut())) {
            d.insert("leaves_unsatisfied".into(), l);
        }
    }
    let committed = commit(ctx, change, actor)?;
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
    ids: &[PackageRef],
    to: &ChannelName,
    force: bool,
    actor: &Actor,
) -> Result<BulkResult, ServiceError> {
    let idx = to.position();
    if ids.is_empty() || ids.len() > 100_000 {
        return Err(ServiceError::BadRequest(
            "\"packages\" must list between 1 and 100000 builds".into(),
        ));
    }
    let source = idx.checked_sub(1).map(|i| ctx.config.channels[i].clone());
    let mut conn = ctx.conn()?;
    let in_channel = |conn: &mut DbConnection, c: &str| -> Result<HashSet<String>, ServiceError> {
        Ok(open_members(conn, c)?.into_iter().collect())
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
    let mut evidence = HashMap::new();
    for id in ids {
        let p = resolve(&mut conn, id)?;
        if !seen.insert(p.id.clone()) {
            continue;
        }
        evidence.insert(
            p.id.clone(),
            manual_gate(ctx, &mut conn, &p, to, actor, force)?,
        );
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
        return Err(PromotionError::NotAllowed(format!(
            "not in {s:?}, so they cannot be promoted to {:?}: {}",
            to.as_str(),
            missing.join(", ")
        ))
        .into());
    }
    if added.is_empty() {
        return Ok(BulkResult {
            channel: to.to_string(),
            revision: None,
            added,
            already_present,
        });
    }
    let kind = if source.is_some() {
        "promoted"
    } else {
        "added"
    };
    let (gate, overridden) = {
        let mut conn = ctx.conn()?;
        let policy = load_policy(&mut conn, &ctx.config.channels, to)?;
        let from = source.as_deref();
        super::closure::prepare(ctx, &mut conn, &policy, from, &added, force, actor)?
    };
    let mut change = Change {
        summary: format!("{kind} {} into {to}", builds(added.len())),
        ops: vec![ChannelOp::add(to, added.clone())
            .from_source(source.clone())
            .gated(gate)],
        events: added
            .iter()
            .map(|id| PendingEvent {
                kind,
                package_id: Some(id.clone()),
                channel: Some(to.to_string()),
                reason: None,
                detail: source
                    .as_ref()
                    .map(|s| promoted_detail(s, force, evidence.remove(id).unwrap_or_default())),
            })
            .collect(),
        ..Change::default()
    };
    super::closure::record_override(&mut change.events, overridden);
    let committed = commit(ctx, change, actor)?;
    Ok(BulkResult {
        channel: to.to_string(),
        revision: committed.revisions.get(to.as_str()).copied(),
        added,
        already_present,
    })
}

/// What a promoted event records: where from, whether forced, and the
/// required checks that allowed it (sent on in `package.promoted`).
fn promoted_detail(source: &str, force: bool, checks: Vec<serde_json::Value>) -> serde_json::Value {
    let mut detail = serde_json::json!({ "from": source, "forced": force });
    if !checks.is_empty() {
        detail["checks"] = serde_json::Value::Array(checks);
    }
    detail
}
