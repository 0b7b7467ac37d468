//! Promotion gates in the database: policies, freeze, hold, rejection,
//! discard, retention, the candidates list and automatic promotion. The rules
//! themselves are the pure functions of `policy.rs`.

use std::collections::{BTreeMap, HashMap, HashSet};

use diesel::prelude::*;
use serde::Serialize;

use super::packages::{current_channels, resolve, view};
use super::policy::{blockers, Blocker, BuildFacts, Note, Policy, PolicySpec};
use super::publish::{commit, Change, ChannelOp, PendingEvent, Reject};
use super::views::{rfc3339, PackageView};
use super::{Actor, Ctx, ServiceError};
use crate::db::models::{NewEvent, PackageSummary};
use crate::db::schema::*;
use crate::db::DbConnection;
use crate::formats::compare_versions;

// ---- policies ---------------------------------------------------------------

/// The channel's policy: the stored one, or the defaults.
pub fn load_policy(
    conn: &mut DbConnection,
    channels: &[String],
    channel: &str,
) -> Result<Policy, ServiceError> {
    let spec: Option<String> = policies::table
        .find(channel)
        .select(policies::spec)
        .first(conn)
        .optional()?;
    match spec {
        None => Ok(Policy::default_for(channel, channels)),
        Some(text) => {
            let spec: PolicySpec = serde_json::from_str(&text)
                .map_err(|e| ServiceError::BadRequest(format!("stored policy: {e}")))?;
            Policy::from_spec(channel, &spec, channels)
                .map_err(|e| ServiceError::BadRequest(e.to_string()))
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyView {
    pub channel: String,
    pub source: Option<String>,
    /// The policy as configured (keys left out take their defaults).
    pub spec: PolicySpec,
    /// The automatic rule in words.
    pub rule: String,
    pub retain: u32,
    pub require_permission: bool,
    pub next_run_at: Option<String>,
    pub last_run_at: Option<String>,
}

/// `GET /channels/{name}/policy`: needs read access to the channel.
pub fn read_policy(ctx: &Ctx, channel: &str, actor: &Actor) -> Result<PolicyView, ServiceError> {
    ctx.require_read(actor, channel)?;
    policy_view(ctx, channel)
}

fn policy_view(ctx: &Ctx, channel: &str) -> Result<PolicyView, ServiceError> {
    ctx.channel_index(channel)?;
    let mut conn = ctx.conn()?;
    let p = load_policy(&mut conn, &ctx.config.channels, channel)?;
    let sched: Option<(i64, Option<i64>)> = schedules::table
        .find(channel)
        .select((schedules::next_run_at, schedules::last_run_at))
        .first(&mut conn)
        .optional()?;
    Ok(PolicyView {
        channel: channel.into(),
        source: p.source.clone(),
        rule: p.rule(),
        retain: p.retain,
        require_permission: p.require_permission,
        spec: p.spec,
        next_run_at: sched.map(|s| rfc3339(s.0)),
        last_run_at: sched.and_then(|s| s.1).map(rfc3339),
    })
}

fn store_policy(
    ctx: &Ctx,
    conn: &mut DbConnection,
    channel: &str,
    spec: &PolicySpec,
    by: &str,
) -> Result<(), ServiceError> {
    Policy::from_spec(channel, spec, &ctx.config.channels)
        .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
    let text = serde_json::to_string(spec).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
    let now = ctx.clock.now();
    crate::db::write_transaction(conn, |conn| {
        diesel::delete(policies::table.find(channel)).execute(conn)?;
        diesel::insert_into(policies::table)
            .values((
                policies::channel.eq(channel),
                policies::spec.eq(&text),
                policies::updated_at.eq(now),
                policies::updated_by.eq(by),
            ))
            .execute(conn)?;
        Ok::<_, diesel::result::Error>(())
    })?;
    Ok(())
}

/// `PUT /channels/{name}/policy` (admin).
pub fn set_policy(
    ctx: &Ctx,
    channel: &str,
    spec: &PolicySpec,
    actor: &Actor,
) -> Result<PolicyView, ServiceError> {
    actor.require_admin()?;
    ctx.channel_index(channel)?;
    let mut conn = ctx.conn()?;
    store_policy(ctx, &mut conn, channel, spec, &actor.name)?;
    crate::db::write_transaction(&mut conn, |conn| {
        channel_event(
            ctx,
            conn,
            "policy_changed",
            channel,
            actor,
            None,
            Some(serde_json::to_value(spec).unwrap_or_default()),
        )
    })?;
    drop(conn);
    super::scheduler::sync(ctx)?;
    policy_view(ctx, channel)
}

/// The config file's policies are applied at every start.
pub fn apply_config_policies(ctx: &Ctx) -> Result<(), ServiceError> {
    let mut conn = ctx.conn()?;
    for (channel, spec) in &ctx.config.policies {
        store_policy(ctx, &mut conn, channel, spec, "config")?;
    }
    Ok(())
}

fn channel_event(
    ctx: &Ctx,
    conn: &mut DbConnection,
    kind: &str,
    channel: &str,
    actor: &Actor,
    reason: Option<String>,
    detail: Option<serde_json::Value>,
) -> Result<(), ServiceError> {
    super::events::append(
        conn,
        &[NewEvent {
            at: ctx.clock.now(),
            kind: kind.into(),
            package_id: None,
            channel: Some(channel.into()),
            revision: None,
            actor: actor.name.clone(),
            client: actor.client.clone(),
            reason,
            detail: detail.map(|d| d.to_string()),
        }],
    )
}

fn package_event(
    ctx: &Ctx,
    conn: &mut DbConnection,
    kind: &str,
    package_id: &str,
    actor: &Actor,
    reason: Option<String>,
) -> Result<(), ServiceError> {
    super::events::append(
        conn,
        &[NewEvent {
            at: ctx.clock.now(),
            kind: kind.into(),
            package_id: Some(package_id.into()),
            channel: None,
            revision: None,
            actor: actor.name.clone(),
            client: actor.client.clone(),
            reason,
            detail: None,
        }],
    )
}

fn need_reason(reason: &str, what: &str) -> Result<String, ServiceError> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(ServiceError::BadRequest(format!(
            "{what} needs a reason (\"reason\": \"...\")"
        )));
    }
    Ok(r.to_string())
}

// ---- freeze -----------------------------------------------------------------

/// Who froze a channel, when and why; None when it is not frozen.
pub fn frozen(
    conn: &mut DbConnection,
    channel: &str,
) -> Result<Option<Note>, diesel::result::Error> {
    let row: Option<(Option<i64>, Option<String>, Option<String>)> = channels::table
        .find(channel)
        .select((
            channels::frozen_at,
            channels::frozen_by,
            channels::frozen_reason,
        ))
        .first(conn)
        .optional()?;
    Ok(match row {
        Some((Some(at), by, reason)) => Some(Note {
            by: by.unwrap_or_default(),
            at,
            reason: reason.unwrap_or_default(),
        }),
        _ => None,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct FreezeView {
    pub channel: String,
    pub frozen: Option<NoteView>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NoteView {
    pub by: String,
    pub at: String,
    pub reason: String,
}

impl From<Note> for NoteView {
    fn from(n: Note) -> NoteView {
        NoteView {
            by: n.by,
            at: rfc3339(n.at),
            reason: n.reason,
        }
    }
}

/// Freezing and unfreezing take the right to change the channel.
pub fn set_frozen(
    ctx: &Ctx,
    channel: &str,
    reason: Option<&str>,
    actor: &Actor,
) -> Result<FreezeView, ServiceError> {
    ctx.channel_index(channel)?;
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
        frozen: frozen(&mut conn, channel)?.map(NoteView::from),
    })
}

// ---- hold -------------------------------------------------------------------

/// The panic button: anyone who may change builds (upload, any promote, admin).
pub fn set_held(
    ctx: &Ctx,
    id: &str,
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
                let reason = need_reason(reason, "a hold")?;
                let n = diesel::update(
                    packages::table
                        .filter(packages::id.eq(&p.id))
                        .filter(packages::held_at.is_null()),
                )
                .set((
                    packages::held_at.eq(Some(ctx.clock.now())),
                    packages::held_by.eq(Some(&actor.name)),
                    packages::held_reason.eq(Some(&reason)),
                ))
                .execute(conn)?;
                if n == 1 {
                    package_event(ctx, conn, "held", &p.id, actor, Some(reason))?;
                }
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
    let p = resolve(&mut conn, &p.id)?;
    view(&mut conn, ctx, p, actor)
}

pub fn held(p: &PackageSummary) -> Option<Note> {
    p.held_at.map(|at| Note {
        by: p.held_by.clone().unwrap_or_default(),
        at,
        reason: p.held_reason.clone().unwrap_or_default(),
    })
}

// ---- rejection and discard -----------------------------------------------------

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

fn rejections_for(
    conn: &mut DbConnection,
    channel: &str,
) -> Result<HashMap<String, Note>, ServiceError> {
    let rows: Vec<(String, i64, String, String)> = rejections::table
        .filter(rejections::channel.eq(channel))
        .select((
            rejections::package_id,
            rejections::at,
            rejections::actor,
            rejections::reason,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, at, by, reason)| (id, Note { by, at, reason }))
        .collect())
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

/// `DELETE /packages/{id}` (admin): out of every channel in one change, the
/// file deleted, the row and its history kept as a tombstone.
pub fn discard(
    ctx: &Ctx,
    id: &str,
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
                .map(|c| ChannelOp {
                    channel: c.clone(),
                    remove: vec![p.id.clone()],
                    ..ChannelOp::default()
                })
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
        commit(ctx, change, actor)?.map_err(|_| ServiceError::Contention)?;
        ctx.pieces.forget(&p.id);
        // After the commit: a crash here leaves a file no row needs, which the
        // startup sweep removes.
        if let Err(e) = ctx.store.delete(&p.id) {
            tracing::warn!(error = %e, id = %p.id, "discarded build's file not deleted; the next sweep will");
        }
        conn = ctx.conn()?;
    }
    let p = resolve(&mut conn, &p.id)?;
    view(&mut conn, ctx, p, actor)
}

// ---- retention --------------------------------------------------------------

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
    let key = |p: &PackageSummary| -> Key {
        (
            p.id.clone(),
            p.kind.clone(),
            p.name.clone(),
            p.arch.clone(),
            p.epoch,
            p.version.clone(),
            p.release.clone(),
        )
    };
    // An upload's row is inserted in the same transaction, so not yet visible.
    let fresh: Vec<Key> = new_packages
        .iter()
        .map(|p| {
            (
                p.id.clone(),
                p.kind.clone(),
                p.name.clone(),
                p.arch.clone(),
                p.epoch,
                p.version.clone(),
                p.release.clone(),
            )
        })
        .collect();
    // In chunks: a bulk promotion may add more builds than a statement takes
    // parameters (SQLite allows 32,766).
    let mut names: HashSet<String> = HashSet::new();
    for chunk in adding.chunks(500) {
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
    for chunk in names.chunks(500) {
        same_names.extend(
            packages::table
                .filter(packages::name.eq_any(chunk))
                .select(PackageSummary::as_select())
                .load::<PackageSummary>(conn)?
                .iter()
                .map(key),
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

// ---- eligibility --------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    #[serde(flatten)]
    pub package: PackageView,
    pub entered_source_at: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<Blocker>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Candidates {
    pub channel: String,
    pub source: Option<String>,
    pub rule: String,
    pub frozen: Option<NoteView>,
    /// Builds in the source channel that may go on now.
    pub eligible: Vec<Candidate>,
    /// The other builds in the source channel, each with why not.
    pub blocked: Vec<Candidate>,
}

struct Assessed {
    summary: PackageSummary,
    entered: i64,
    blockers: Vec<Blocker>,
}

/// The eligibility rule applied to every build in the policy's source channel.
fn assess(
    ctx: &Ctx,
    conn: &mut DbConnection,
    policy: &Policy,
) -> Result<(Vec<Assessed>, Option<Note>), ServiceError> {
    let Some(source) = &policy.source else {
        return Ok((Vec::new(), frozen(conn, &policy.channel)?));
    };
    let now = ctx.clock.now();
    let freeze = frozen(conn, &policy.channel)?;
    // Each build's current stay in the source: its open membership's revision time.
    let stays: Vec<(String, i64)> = memberships::table
        .inner_join(
            revisions::table.on(revisions::channel
                .eq(memberships::channel)
                .and(revisions::number.eq(memberships::added_in))),
        )
        .filter(memberships::channel.eq(source))
        .filter(memberships::removed_in.is_null())
        .select((memberships::package_id, revisions::created_at))
        .load(conn)?;
    let entered: HashMap<String, i64> = stays.into_iter().collect();
    let present: HashSet<String> = memberships::table
        .filter(memberships::channel.eq(&policy.channel))
        .filter(memberships::removed_in.is_null())
        .select(memberships::package_id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let rejected = rejections_for(conn, &policy.channel)?;
    let ids: Vec<&String> = entered.keys().collect();
    let mut list = Vec::new();
    for chunk in ids.chunks(500) {
        list.extend(
            packages::table
                .filter(packages::id.eq_any(chunk))
                .select(PackageSummary::as_select())
                .load::<PackageSummary>(conn)?,
        );
    }
    let mut out = Vec::with_capacity(list.len());
    for p in list {
        let facts = BuildFacts {
            entered_source_at: entered.get(&p.id).copied().unwrap_or(now),
            held: held(&p),
            rejected: rejected.get(&p.id).cloned(),
            present: present.contains(&p.id),
        };
        out.push(Assessed {
            blockers: blockers(&facts, policy.soak, freeze.as_ref(), now),
            entered: facts.entered_source_at,
            summary: p,
        });
    }
    out.sort_by(|a, b| super::packages::by_version(&a.summary, &b.summary));
    Ok((out, freeze))
}

/// `GET /channels/{name}/candidates`.
pub fn candidates(ctx: &Ctx, channel: &str, actor: &Actor) -> Result<Candidates, ServiceError> {
    ctx.require_read(actor, channel)?;
    let mut conn = ctx.conn()?;
    let policy = load_policy(&mut conn, &ctx.config.channels, channel)?;
    let (assessed, freeze) = assess(ctx, &mut conn, &policy)?;
    let mut eligible = Vec::new();
    let mut blocked = Vec::new();
    for a in assessed {
        let c = Candidate {
            package: view(&mut conn, ctx, a.summary, actor)?,
            entered_source_at: rfc3339(a.entered),
            blockers: a.blockers,
        };
        if c.blockers.is_empty() {
            eligible.push(c);
        } else {
            blocked.push(c);
        }
    }
    Ok(Candidates {
        channel: channel.into(),
        source: policy.source.clone(),
        rule: policy.rule(),
        frozen: freeze.map(NoteView::from),
        eligible,
        blocked,
    })
}

// ---- automatic promotion ----------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize)]
pub struct AutoRun {
    pub channel: String,
    pub promoted: Vec<String>,
    pub revision: Option<i32>,
    /// Set when the run did nothing because the channel is frozen.
    pub frozen: bool,
}

/// One run of a channel's automatic rule: per (name, arch), the newest eligible
/// build, unless the channel already holds it or something newer.
pub fn auto_promote(ctx: &Ctx, policy: &Policy) -> Result<AutoRun, ServiceError> {
    let mut run = AutoRun {
        channel: policy.channel.clone(),
        ..AutoRun::default()
    };
    let Some(source) = policy.source.clone() else {
        return Ok(run);
    };
    let mut conn = ctx.conn()?;
    let (assessed, freeze) = assess(ctx, &mut conn, policy)?;
    if freeze.is_some() {
        run.frozen = true;
        return Ok(run);
    }
    // Newest build of each (kind, name, arch) the channel already holds.
    let held_ids: Vec<String> = memberships::table
        .filter(memberships::channel.eq(&policy.channel))
        .filter(memberships::removed_in.is_null())
        .select(memberships::package_id)
        .load(&mut conn)?;
    let mut newest_held: HashMap<(String, String, String), PackageSummary> = HashMap::new();
    for chunk in held_ids.chunks(500) {
        let rows: Vec<PackageSummary> = packages::table
            .filter(packages::id.eq_any(chunk))
            .select(PackageSummary::as_select())
            .load(&mut conn)?;
        for p in rows {
            let key = (p.kind.clone(), p.name.clone(), p.arch.clone());
            let newer = newest_held.get(&key).is_none_or(|h| {
                compare_versions(
                    &p.kind,
                    (p.epoch, &p.version, &p.release),
                    (h.epoch, &h.version, &h.release),
                )
                .is_gt()
            });
            if newer {
                newest_held.insert(key, p);
            }
        }
    }
    drop(conn);
    // `assessed` is sorted by name, arch, version: the last eligible one wins.
    let mut pick: BTreeMap<(String, String, String), PackageSummary> = BTreeMap::new();
    for a in assessed.into_iter().filter(|a| a.blockers.is_empty()) {
        let s = a.summary;
        pick.insert((s.kind.clone(), s.name.clone(), s.arch.clone()), s);
    }
    let chosen: Vec<PackageSummary> = pick
        .into_iter()
        .filter(|(key, p)| {
            newest_held.get(key).is_none_or(|h| {
                compare_versions(
                    &p.kind,
                    (p.epoch, &p.version, &p.release),
                    (h.epoch, &h.version, &h.release),
                )
                .is_gt()
            })
        })
        .map(|(_, p)| p)
        .collect();
    if chosen.is_empty() {
        return Ok(run);
    }
    let rule = policy.rule();
    let change = Change {
        summary: format!(
            "automatic promotion from {source} to {}: {}",
            policy.channel,
            chosen
                .iter()
                .map(|p| p.filename.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ops: vec![ChannelOp {
            channel: policy.channel.clone(),
            add: chosen.iter().map(|p| p.id.clone()).collect(),
            require_in: Some(source.clone()),
            ..ChannelOp::default()
        }],
        events: chosen
            .iter()
            .map(|p| PendingEvent {
                kind: "promoted",
                package_id: Some(p.id.clone()),
                channel: Some(policy.channel.clone()),
                reason: None,
                detail: Some(serde_json::json!({
                    "from": source,
                    "policy": policy.channel,
                    "rule": rule,
                })),
            })
            .collect(),
        ..Change::default()
    };
    let actor = Actor {
        name: format!("policy:{}", policy.channel),
        client: "scheduler".into(),
        ..Actor::system()
    };
    match commit(ctx, change, &actor) {
        Ok(Ok(c)) => {
            run.revision = c.revisions.get(&policy.channel).copied();
            run.promoted = chosen.into_iter().map(|p| p.filename).collect();
        }
        Ok(Err(_)) => return Err(ServiceError::Contention),
        // Frozen between the check and the commit: nothing moves.
        Err(ServiceError::Frozen { .. }) => run.frozen = true,
        Err(e) => return Err(e),
    }
    Ok(run)
}
