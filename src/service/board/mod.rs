//! The promotion board: for every package name (and arch), which build each
//! channel serves and since when, and what stands in the way of the next step
//! (held, rejected, soaking) or moves next (a candidate, at the next run).
//! Only channels the caller may read appear; a name only they hold does not.
//! `build` and `channel`: the pages of one build and one channel.

pub mod build;
pub mod channel;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::db::models::PackageSummary;
use crate::policy::{Blocker, Note};
use crate::service::catalog::queries::{
    by_version, frozen, held, latest_event_id, load_policy, next_run, open_stays, summaries_by_ids,
};
use crate::service::catalog::views::evr;
use crate::service::promotion::candidates::blockers_by_build;
use crate::service::{Actor, Ctx, ServiceError};

/// Rows per page: the 1,000-name board fits on one.
pub const PER_PAGE: usize = 1000;

#[derive(Debug, Clone, Default)]
pub struct BoardQuery {
    /// Names containing this (case-insensitive).
    pub name: Option<String>,
    /// Only rows whose channels do not all serve the same build.
    pub differs: bool,
    /// 1-based.
    pub page: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Board {
    pub channels: Vec<Column>,
    pub rows: Vec<Row>,
    /// Rows matching the query, on every page.
    pub matching: usize,
    pub page: usize,
    pub pages: usize,
    /// Unix seconds the board was assembled at (for "how long ago").
    pub now: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub name: String,
    /// The channel's rule, in words.
    pub rule: String,
    pub frozen: Option<Note>,
    /// When its automatic rule runs next.
    pub next_run: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: String,
    pub arch: String,
    /// One per column; None where the channel serves no build of this name.
    pub cells: Vec<Option<Cell>>,
    pub differs: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub id: String,
    /// The file name: a shorter link than the id, resolved the same way.
    pub file: String,
    /// `[epoch:]version-release`
    pub evr: String,
    /// When its stay in this channel began.
    pub since: i64,
    pub held: Option<Note>,
    /// What happens next towards the following channel.
    pub next: Option<Next>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Next {
    /// May go on now: at the next automatic run, or by hand.
    Candidate {
        to: String,
        at: Option<i64>,
    },
    Soaking {
        to: String,
        until: i64,
    },
    Rejected {
        to: String,
        note: Note,
    },
    /// A check that the next channel requires failed: CI's link.
    CheckFailed {
        to: String,
        check: String,
        url: Option<String>,
    },
    /// Required checks not passed yet (not reported, or running).
    AwaitingChecks {
        to: String,
        checks: Vec<String>,
    },
}

/// A channel's rule in words; the first channel's builds come by upload.
pub fn rule_words(policy: &crate::policy::Policy) -> String {
    match policy.source {
        None => "builds enter by upload".into(),
        Some(_) => policy.rule(),
    }
}

/// Per (name, arch), the newest build a channel holds and when its stay began.
type Served = BTreeMap<(String, String), (PackageSummary, i64)>;

/// The newest build of each (name, arch) a channel holds, with its stay.
fn served(conn: &mut crate::db::DbConnection, channel: &str) -> Result<Served, ServiceError> {
    let stays: HashMap<String, i64> = open_stays(conn, channel)?.into_iter().collect();
    let ids: Vec<&String> = stays.keys().collect();
    let mut list = summaries_by_ids(conn, &ids)?;
    list.sort_by(by_version);
    let mut out = BTreeMap::new();
    for p in list {
        let since = stays.get(&p.id).copied().unwrap_or_default();
        // Sorted oldest first: the last of each name and arch wins.
        out.insert((p.name.clone(), p.arch.clone()), (p, since));
    }
    Ok(out)
}

/// What the build `p` of channel `from` does next towards `to`.
fn next_step(
    to: &str,
    p: &PackageSummary,
    blockers: Option<&Vec<Blocker>>,
    target_newer_or_same: bool,
    at: Option<i64>,
) -> Option<Next> {
    let blockers = blockers?;
    if blockers
        .iter()
        .any(|b| matches!(b, Blocker::AlreadyPresent))
    {
        return None;
    }
    for b in blockers {
        if let Blocker::Rejected { by, at, why } = b {
            let note = Note {
                by: by.clone(),
                at: *at,
                reason: why.clone(),
            };
            return Some(Next::Rejected {
                to: to.into(),
                note,
            });
        }
    }
    if target_newer_or_same || held(p).is_some() {
        return None;
    }
    for b in blockers {
        if let Blocker::FailedCheck { check, url, .. } = b {
            return Some(Next::CheckFailed {
                to: to.into(),
                check: check.clone(),
                url: url.clone(),
            });
        }
    }
    for b in blockers {
        if let Blocker::Soaking { until } = b {
            return Some(Next::Soaking {
                to: to.into(),
                until: *until,
            });
        }
    }
    let awaiting: Vec<String> = blockers
        .iter()
        .filter_map(|b| match b {
            Blocker::MissingCheck { check, .. } => Some(check.clone()),
            _ => None,
        })
        .collect();
    if !awaiting.is_empty() {
        return Some(Next::AwaitingChecks {
            to: to.into(),
            checks: awaiting,
        });
    }
    // Frozen is the column's badge; a candidate of a frozen channel waits.
    let only_frozen = blockers.iter().all(|b| matches!(b, Blocker::Frozen { .. }));
    only_frozen.then(|| Next::Candidate { to: to.into(), at })
}

/// Changes whenever the board may: with every event (each change to a
/// channel, hold or freeze writes one) and every minute (soak time left).
pub fn version(ctx: &Ctx) -> Result<String, ServiceError> {
    let last = latest_event_id(&mut *ctx.conn()?)?;
    Ok(format!("{last}-{}", ctx.clock.now() / 60))
}

/// The board for `actor`: the channels it may read, rows filtered and paged.
pub fn board(ctx: &Ctx, q: &BoardQuery, actor: &Actor) -> Result<Board, ServiceError> {
    let names: Vec<&String> = ctx
        .config
        .channels
        .iter()
        .filter(|c| ctx.may_read(actor, c))
        .collect();
    let mut conn = ctx.conn()?;
    let mut columns = Vec::with_capacity(names.len());
    let mut held_by_channel = Vec::with_capacity(names.len());
    let mut blockers = Vec::with_capacity(names.len());
    for (i, c) in names.iter().enumerate() {
        let policy = load_policy(&mut conn, &ctx.config.channels, c)?;
        columns.push(Column {
            name: (*c).clone(),
            rule: rule_words(&policy),
            frozen: frozen(&mut conn, c)?,
            next_run: next_run(&mut conn, c)?,
        });
        held_by_channel.push(served(&mut conn, c)?);
        // Badges towards this channel sit in the column before it, so only
        // when that column is its source (a private channel between them
        // hides the step).
        let source_shown = i > 0 && policy.source.as_deref() == Some(names[i - 1].as_str());
        blockers.push(if source_shown {
            Some(blockers_by_build(ctx, &mut conn, &policy)?)
        } else {
            None
        });
    }
    drop(conn);
    let mut keys: Vec<&(String, String)> = held_by_channel.iter().flat_map(|m| m.keys()).collect();
    keys.sort();
    keys.dedup();
    let needle = q.name.as_deref().map(str::to_lowercase);
    let mut rows = Vec::new();
    for key in keys {
        if needle
            .as_deref()
            .is_some_and(|n| !key.0.to_lowercase().contains(n))
        {
            continue;
        }
        let row = make_row(key, &columns, &held_by_channel, &blockers);
        if q.differs && !row.differs {
            continue;
        }
        rows.push(row);
    }
    let matching = rows.len();
    let pages = matching.div_ceil(PER_PAGE).max(1);
    let page = q.page.clamp(1, pages);
    let rows = rows
        .into_iter()
        .skip((page - 1) * PER_PAGE)
        .take(PER_PAGE)
        .collect();
    Ok(Board {
        channels: columns,
        rows,
        matching,
        page,
        pages,
        now: ctx.clock.now(),
    })
}

fn make_row(
    key: &(String, String),
    columns: &[Column],
    served: &[Served],
    blockers: &[Option<HashMap<String, Vec<Blocker>>>],
) -> Row {
    let mut cells: Vec<Option<Cell>> = Vec::with_capacity(columns.len());
    for (i, m) in served.iter().enumerate() {
        cells.push(m.get(key).map(|(p, since)| {
            let next = columns.get(i + 1).and_then(|to| {
                let target = served[i + 1].get(key).map(|(t, _)| t);
                let newer_or_same = target.is_some_and(|t| by_version(t, p).is_ge());
                let b = blockers[i + 1].as_ref().and_then(|b| b.get(&p.id));
                next_step(&to.name, p, b, newer_or_same, to.next_run)
            });
            Cell {
                id: p.id.clone(),
                file: p.filename.clone(),
                evr: evr(p.epoch, &p.version, &p.release),
                since: *since,
                held: held(p),
                next,
            }
        }));
    }
    let first = cells
        .first()
        .and_then(|c| c.as_ref().map(|c| c.id.as_str()));
    let differs = cells
        .iter()
        .any(|c| c.as_ref().map(|c| c.id.as_str()) != first);
    Row {
        name: key.0.clone(),
        arch: key.1.clone(),
        cells,
        differs,
    }
}
