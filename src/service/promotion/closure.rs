//! Dependency closure as a promotion gate: before a promotion commits (under
//! the target channel's publication lock, on the revision it plans), every
//! requirement that the change could break must still be met by the channel
//! itself or the hosts' base system. Incremental: the requirements of the
//! builds being added, and those of remaining builds that mention something
//! only the removed builds provided; never the whole channel.

use std::collections::{BTreeSet, HashMap, HashSet};

use diesel::prelude::*;

use crate::db::schema::packages;
use crate::db::DbConnection;
use crate::formats::deps::{offers, Kind, Op, Provider, Universe, Verdict};
use crate::policy::Policy;
use crate::service::catalog::deps::{
    holding_file, provided_names, provisions_of, requirements_naming, requirements_of, Provision,
    Requirement,
};
use crate::service::catalog::queries::{open_members, ID_CHUNK};
use crate::service::error::{BuildRef, MissingDep, PromotionError, Unsatisfied};
use crate::service::publish::{Gate, GateInput};
use crate::service::{Ctx, ServiceError};

/// Whether the channel's policy asks for the check.
pub fn enabled(policy: &Policy) -> bool {
    policy.spec.check_dependencies.unwrap_or(false)
}

/// The gate a promotion's channel operation carries, or none.
pub fn gate_for(policy: &Policy, overridden: bool) -> Option<Gate> {
    (enabled(policy) && !overridden).then_some(gate as Gate)
}

/// The verdict on one planned revision.
#[derive(Debug, Default)]
pub struct Report {
    pub missing: Vec<MissingDep>,
    /// Requirements taken as met without being judged (see formats::deps).
    pub assumed: Vec<String>,
}

/// [`Gate`]: refuses the revision when it leaves a requirement unmet.
pub fn gate(ctx: &Ctx, conn: &mut DbConnection, input: &GateInput<'_>) -> Result<(), ServiceError> {
    let report = evaluate(ctx, conn, input)?;
    if report.missing.is_empty() {
        return Ok(());
    }
    Err(
        PromotionError::DependenciesUnsatisfied(Box::new(Unsatisfied {
            channel: input.channel.to_string(),
            missing: report.missing,
        }))
        .into(),
    )
}

/// What the change leaves unmet, with what the source channel offers.
pub fn evaluate(
    ctx: &Ctx,
    conn: &mut DbConnection,
    input: &GateInput<'_>,
) -> Result<Report, ServiceError> {
    let started = std::time::Instant::now();
    // Builds whose upload did not get to record their facts.
    let involved: Vec<String> = input.added.iter().chain(input.removed).cloned().collect();
    crate::service::catalog::deps::backfill(conn, Some(&involved))?;
    let added: HashSet<&String> = input.added.iter().collect();
    let mut reqs = requirements_of(conn, input.added)?;
    if !input.removed.is_empty() {
        let lost = provided_names(conn, input.removed)?;
        reqs.extend(
            requirements_naming(conn, &lost)?
                .into_iter()
                .filter(|r| input.members.contains(&r.0) && !added.contains(&r.0)),
        );
        reqs.sort();
        reqs.dedup();
    }
    let names: Vec<String> = reqs
        .iter()
        .flat_map(|r| Universe::names(Kind::of(&r.1), &r.3))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let provisions = provisions_of(conn, &names)?;
    let inside = Maps::of(provisions.iter().filter(|p| input.members.contains(&p.0)));
    let mut report = Report::default();
    let mut unmet: Vec<&Requirement> = Vec::new();
    for r in &reqs {
        let kind = Kind::of(&r.1);
        match inside.universe(kind, ctx).check(&r.3, &r.2) {
            Verdict::Satisfied => {}
            Verdict::Assumed(note) => report.assumed.push(note),
            Verdict::Missing => unmet.push(r),
        }
    }
    // A path outside primary.xml's files may still be in a full file list.
    let mut still = Vec::with_capacity(unmet.len());
    for r in unmet {
        let path = Kind::of(&r.1) == Kind::Rpm && r.3.starts_with('/') && !r.3.contains(' ');
        if !(path
            && holding_file(conn, &r.3)?
                .iter()
                .any(|i| input.members.contains(i)))
        {
            still.push(r);
        }
    }
    if !still.is_empty() {
        report.missing = explain(ctx, conn, input, &provisions, &still)?;
    }
    tracing::debug!(
        channel = input.channel,
        checked = reqs.len(),
        missing = report.missing.len(),
        ms = started.elapsed().as_millis() as u64,
        "dependency closure"
    );
    Ok(report)
}

/// Each unmet requirement with its build and the source's builds that meet it.
fn explain(
    ctx: &Ctx,
    conn: &mut DbConnection,
    input: &GateInput<'_>,
    provisions: &[Provision],
    unmet: &[&Requirement],
) -> Result<Vec<MissingDep>, ServiceError> {
    let source: HashSet<String> = match input.source {
        Some(s) => open_members(conn, s)?.into_iter().collect(),
        None => HashSet::new(),
    };
    let outside = Maps::of(
        provisions
            .iter()
            .filter(|p| source.contains(&p.0) && !input.members.contains(&p.0)),
    );
    let mut out = Vec::new();
    let mut ids: BTreeSet<String> = BTreeSet::new();
    for r in unmet {
        let kind = Kind::of(&r.1);
        let offered = offers(kind, &r.3, &r.2, &outside.universe(kind, ctx));
        ids.insert(r.0.clone());
        ids.extend(offered.iter().cloned());
        out.push((r, offered));
    }
    let names = filenames(conn, &ids.into_iter().collect::<Vec<_>>())?;
    let build = |id: &String| BuildRef {
        id: id.clone(),
        filename: names.get(id).cloned().unwrap_or_default(),
    };
    Ok(out
        .into_iter()
        .map(|(r, offered)| MissingDep {
            capability: r.3.clone(),
            required_by: build(&r.0),
            offered: offered.iter().map(build).collect(),
        })
        .collect())
}

fn filenames(
    conn: &mut DbConnection,
    ids: &[String],
) -> Result<HashMap<String, String>, ServiceError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(ID_CHUNK) {
        out.extend(
            packages::table
                .filter(packages::id.eq_any(chunk))
                .select((packages::id, packages::filename))
                .load::<(String, String)>(conn)?,
        );
    }
    Ok(out)
}

/// Providers by name and files by path, per packaging kind.
#[derive(Default)]
struct Maps {
    provides: HashMap<Kind, HashMap<String, Vec<Provider>>>,
    files: HashMap<Kind, HashMap<String, Vec<String>>>,
    empty_p: HashMap<String, Vec<Provider>>,
    empty_f: HashMap<String, Vec<String>>,
}

impl Maps {
    fn of<'a>(rows: impl Iterator<Item = &'a Provision>) -> Maps {
        let mut m = Maps::default();
        for (id, kind, arch, role, name, op, version) in rows {
            let kind = Kind::of(kind);
            if role == "F" {
                m.files
                    .entry(kind)
                    .or_default()
                    .entry(name.clone())
                    .or_default()
                    .push(id.clone());
                continue;
            }
            let rel = op
                .as_deref()
                .and_then(|o| Op::parse(o, Kind::Rpm))
                .zip(version.clone());
            m.provides
                .entry(kind)
                .or_default()
                .entry(name.clone())
                .or_default()
                .push(Provider {
                    id: id.clone(),
                    arch: arch.clone(),
                    rel,
                });
        }
        m
    }

    fn universe<'a>(&'a self, kind: Kind, ctx: &'a Ctx) -> Universe<'a> {
        Universe {
            kind,
            provides: self.provides.get(&kind).unwrap_or(&self.empty_p),
            files: self.files.get(&kind).unwrap_or(&self.empty_f),
            external: &ctx.external,
        }
    }
}

/// A manual promotion's gate, and what a forced one let through.
pub type Prepared = (Option<Gate>, Option<serde_json::Value>);

/// For a manual promotion of `ids` into `to` from `source`: the gate its
/// change carries, and, when an admin's `force` overrides an enabled check,
/// what the override let through (recorded in the promoted events).
pub fn prepare(
    ctx: &Ctx,
    conn: &mut DbConnection,
    policy: &Policy,
    source: Option<&str>,
    ids: &[String],
    force: bool,
    actor: &crate::service::Actor,
) -> Result<Prepared, ServiceError> {
    if source.is_none() || !enabled(policy) {
        return Ok((None, None));
    }
    if !(force && actor.grants.is_admin()) {
        return Ok((Some(gate as Gate), None));
    }
    let mut members: HashSet<String> = open_members(conn, &policy.channel)?.into_iter().collect();
    let added: Vec<String> = ids
        .iter()
        .filter(|i| !members.contains(*i))
        .cloned()
        .collect();
    members.extend(added.iter().cloned());
    let report = evaluate(
        ctx,
        conn,
        &GateInput {
            channel: &policy.channel,
            source,
            members: &members,
            added: &added,
            removed: &[],
        },
    )?;
    let overridden = (!report.missing.is_empty()).then(|| {
        serde_json::Value::Array(
            report
                .missing
                .iter()
                .map(|m| serde_json::json!({ "capability": m.capability, "required_by": m.required_by.id }))
                .collect(),
        )
    });
    Ok((None, overridden))
}

/// Adds what a forced promotion left unmet to its promoted events' detail.
pub fn record_override(
    events: &mut [crate::service::publish::PendingEvent],
    overridden: Option<serde_json::Value>,
) {
    let Some(list) = overridden else { return };
    for e in events.iter_mut().filter(|e| e.kind == "promoted") {
        let required: Vec<serde_json::Value> = list
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| e.package_id.as_deref() == m["required_by"].as_str())
            .cloned()
            .collect();
        if let Some(d) = e.detail.as_mut().and_then(|d| d.as_object_mut()) {
            d.insert(
                "forced_dependencies".into(),
                serde_json::Value::Array(required),
            );
        }
    }
}

/// The builds admitted, and each refused one's unmet requirements.
pub type Admitted = (Vec<String>, HashMap<String, Vec<String>>);

/// Of `candidates` (builds of the policy's source an automatic run could
/// take), those the target can take together, and why each other one may
/// not: a build is dropped when its requirements stay unmet, and the rest
/// judged again (what it provided may have been someone's requirement).
pub fn admissible(
    ctx: &Ctx,
    conn: &mut DbConnection,
    policy: &Policy,
    candidates: &[String],
) -> Result<Admitted, ServiceError> {
    let mut keep: Vec<String> = candidates.to_vec();
    let mut dropped: HashMap<String, Vec<String>> = HashMap::new();
    if !enabled(policy) || keep.is_empty() {
        return Ok((keep, dropped));
    }
    let present: HashSet<String> = open_members(conn, &policy.channel)?.into_iter().collect();
    keep.retain(|i| !present.contains(i));
    // Each round drops at least one build, so this ends.
    while !keep.is_empty() {
        let mut members = present.clone();
        members.extend(keep.iter().cloned());
        let input = GateInput {
            channel: &policy.channel,
            source: None,
            members: &members,
            added: &keep,
            removed: &[],
        };
        let report = evaluate(ctx, conn, &input)?;
        if report.missing.is_empty() {
            break;
        }
        for m in report.missing {
            dropped
                .entry(m.required_by.id)
                .or_default()
                .push(m.capability);
        }
        keep.retain(|i| !dropped.contains_key(i));
    }
    Ok((keep, dropped))
}

/// What demoting `id` out of `channel` leaves unmet there, when the channel's
/// policy checks dependencies: recorded on the demotion, never a refusal
/// (demotion is the emergency exit), so a failure to judge is only logged.
pub fn left_unmet(
    ctx: &Ctx,
    conn: &mut DbConnection,
    channel: &str,
    id: &str,
) -> Option<serde_json::Value> {
    let judged = (|| -> Result<Option<serde_json::Value>, ServiceError> {
        let policy =
            crate::service::catalog::queries::load_policy(conn, &ctx.config.channels, channel)?;
        if !enabled(&policy) {
            return Ok(None);
        }
        let mut members: HashSet<String> = open_members(conn, channel)?.into_iter().collect();
        members.remove(id);
        let removed = [id.to_string()];
        let input = GateInput {
            channel,
            source: None,
            members: &members,
            added: &[],
            removed: &removed,
        };
        let report = evaluate(ctx, conn, &input)?;
        Ok((!report.missing.is_empty()).then(|| {
            serde_json::Value::Array(
                report
                    .missing
                    .iter()
                    .map(|m| serde_json::json!({ "capability": m.capability, "required_by": m.required_by.id }))
                    .collect(),
            )
        }))
    })();
    judged.unwrap_or_else(|e| {
        tracing::warn!(channel, id, error = %e, "what a demotion leaves unmet was not judged");
        None
    })
}
