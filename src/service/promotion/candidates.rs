//! What a build may do next: every build of a policy's source channel
//! assessed against the rule, listed as candidates, and the automatic
//! promotion that takes the newest eligible one of each name.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::db::models::PackageSummary;
use crate::db::DbConnection;
use crate::formats::compare_versions;
use crate::policy::{blockers, Blocker, BuildFacts, Note, Policy};
use crate::service::catalog::packages::view;
use crate::service::catalog::queries::{
    by_version, checks_at, checks_in, frozen, held, load_policy, open_members, open_stays,
    rejections_for, summaries_by_ids,
};
use crate::service::catalog::views::{rfc3339, Marker, PackageView};
use crate::service::error::PublishError;
use crate::service::publish::{commit, Change, ChannelOp, PendingEvent};
use crate::service::{Actor, ChannelName, Ctx, ServiceError};

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
    pub frozen: Option<Marker>,
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
    let stays = open_stays(conn, source)?;
    let entered: HashMap<String, i64> = stays.into_iter().collect();
    let present: HashSet<String> = open_members(conn, &policy.channel)?.into_iter().collect();
    let rejected = rejections_for(conn, &policy.channel)?;
    let mut checks = if policy.require_checks.is_empty() {
        HashMap::new()
    } else {
        checks_in(conn, source)?
    };
    let ids: Vec<&String> = entered.keys().collect();
    let list = summaries_by_ids(conn, &ids)?;
    let mut out = Vec::with_capacity(list.len());
    for p in list {
        let facts = BuildFacts {
            entered_source_at: entered.get(&p.id).copied().unwrap_or(now),
            held: held(&p),
            rejected: rejected.get(&p.id).cloned(),
            present: present.contains(&p.id),
            checks: checks.remove(&p.id).unwrap_or_default(),
        };
        out.push(Assessed {
            blockers: blockers(&facts, policy, freeze.as_ref(), now),
            entered: facts.entered_source_at,
            summary: p,
        });
    }
    // Builds the target could not take for their dependencies (when
    // checked); said while they soak too, so nobody waits for nothing.
    let open: Vec<String> = out
        .iter()
        .filter(|a| {
            a.blockers
                .iter()
                .all(|b| matches!(b, Blocker::Soaking { .. }))
        })
        .map(|a| a.summary.id.clone())
        .collect();
    let (_, mut unmet) = super::closure::admissible(ctx, conn, policy, &open)?;
    for a in &mut out {
        if let Some(missing) = unmet.remove(&a.summary.id) {
            a.blockers
                .push(Blocker::UnsatisfiedDependencies { missing });
        }
    }
    out.sort_by(|a, b| by_version(&a.summary, &b.summary));
    Ok((out, freeze))
}

/// Why each build of the policy's source channel may not go on (empty: it
/// may), by build id: the board's badges.
pub fn blockers_by_build(
    ctx: &Ctx,
    conn: &mut DbConnection,
    policy: &Policy,
) -> Result<HashMap<String, Vec<Blocker>>, ServiceError> {
    let (assessed, _) = assess(ctx, conn, policy)?;
    Ok(assessed
        .into_iter()
        .map(|a| (a.summary.id, a.blockers))
        .collect())
}

/// `GET /channels/{name}/candidates`.
pub fn candidates(
    ctx: &Ctx,
    channel: &ChannelName,
    actor: &Actor,
) -> Result<Candidates, ServiceError> {
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
        frozen: freeze.map(Marker::from),
        eligible,
        blocked,
    })
}

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
    let held_ids = open_members(&mut conn, &policy.channel)?;
    let mut newest_held: HashMap<(String, String, String), PackageSummary> = HashMap::new();
    {
        for p in summaries_by_ids(&mut conn, &held_ids)? {
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
    // Only what the target can take together (the candidates list says why not).
    let chosen: Vec<PackageSummary> = {
        let mut conn = ctx.conn()?;
        let ids: Vec<String> = chosen.iter().map(|p| p.id.clone()).collect();
        let (keep, _) = super::closure::admissible(ctx, &mut conn, policy, &ids)?;
        chosen
            .into_iter()
            .filter(|p| keep.contains(&p.id))
            .collect()
    };
    if chosen.is_empty() {
        return Ok(run);
    }
    let rule = policy.rule();
    // Every chosen build passed the required checks: record them as they stood.
    let mut evidence = HashMap::new();
    if !policy.require_checks.is_empty() {
        let mut conn = ctx.conn()?;
        for p in &chosen {
            let checks = checks_at(&mut conn, &p.id, &source)?;
            evidence.insert(p.id.clone(), super::checks::evidence(policy, &checks));
        }
    }
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
        ops: vec![ChannelOp::add(
            &policy.channel,
            chosen.iter().map(|p| p.id.clone()).collect(),
        )
        .from_source(Some(source.clone()))
        .gated(super::closure::gate_for(policy, false))],
        events: chosen
            .iter()
            .map(|p| PendingEvent {
                kind: "promoted",
                package_id: Some(p.id.clone()),
                channel: Some(policy.channel.clone()),
                reason: None,
                detail: Some(match evidence.remove(&p.id) {
                    Some(checks) => serde_json::json!({
                        "from": source, "policy": policy.channel, "rule": rule, "checks": checks,
                    }),
                    None => serde_json::json!({
                        "from": source, "policy": policy.channel, "rule": rule,
                    }),
                }),
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
        Ok(c) => {
            run.revision = c.revisions.get(&policy.channel).copied();
            run.promoted = chosen.into_iter().map(|p| p.filename).collect();
        }
        // Frozen between the check and the commit: nothing moves.
        Err(ServiceError::Publish(PublishError::Frozen { .. })) => run.frozen = true,
        Err(e) => return Err(e),
    }
    Ok(run)
}
