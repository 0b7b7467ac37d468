//! One channel's page: its rule in words and next run, its candidates and
//! why each waits, its revisions, a diff between two of them, and what it
//! held at a given time; all from the catalog and promotion services.

use crate::service::catalog::channels::{self, RevisionQuery};
use crate::service::catalog::queries::{load_policy, next_run};
use crate::service::catalog::views::{DiffView, Marker, RevisionDetail, RevisionView};
use crate::service::promotion::candidates::{candidates, Candidates};
use crate::service::{Actor, ChannelName, Ctx, ServiceError};

/// Revisions the page lists, newest first.
pub const REVISIONS_SHOWN: usize = 50;

#[derive(Debug, Clone, Default)]
pub struct ChannelQuery {
    /// RFC 3339: show the revision in force then.
    pub at: Option<String>,
    pub diff: Option<(i32, i32)>,
}

#[derive(Debug, Clone)]
pub struct ChannelPageData {
    pub name: String,
    pub rule: String,
    pub next_run: Option<i64>,
    pub frozen: Option<Marker>,
    pub may_freeze: bool,
    pub candidates: Candidates,
    pub revisions: Vec<RevisionView>,
    pub diff: Option<DiffView>,
    /// The time asked and the revision then in force (None: none was).
    pub at: Option<(String, Option<RevisionDetail>)>,
}

pub fn channel_page(
    ctx: &Ctx,
    name: &ChannelName,
    q: &ChannelQuery,
    actor: &Actor,
) -> Result<ChannelPageData, ServiceError> {
    // Checks the right to read before anything else is looked at.
    let candidates = candidates(ctx, name, actor)?;
    let (rule, next_run) = {
        let mut conn = ctx.conn()?;
        let policy = load_policy(&mut conn, &ctx.config.channels, name)?;
        (super::rule_words(&policy), next_run(&mut conn, name)?)
    };
    let mut revisions = channels::revisions(ctx, name, &RevisionQuery::default(), actor)?;
    revisions.truncate(REVISIONS_SHOWN);
    let diff = match q.diff {
        Some((from, to)) => Some(channels::diff(ctx, name, from, to, actor)?),
        None => None,
    };
    let at = match &q.at {
        Some(t) => {
            let found = channels::revisions(
                ctx,
                name,
                &RevisionQuery {
                    at: Some(t.clone()),
                },
                actor,
            )?;
            let detail = match found.first() {
                Some(r) => Some(channels::revision_detail(ctx, name, r.number, actor)?),
                None => None,
            };
            Some((t.clone(), detail))
        }
        None => None,
    };
    Ok(ChannelPageData {
        name: name.to_string(),
        rule,
        next_run,
        frozen: candidates.frozen.clone(),
        may_freeze: actor.grants.may_promote(name),
        candidates,
        revisions,
        diff,
        at,
    })
}
