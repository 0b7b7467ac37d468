//! One commit attempt, under the touched channels' locks: plan each channel's
//! new revision (members, retention, rendered files written to the blob
//! store), then write it all in one transaction.

use std::collections::{BTreeSet, HashSet};

use bytes::Bytes;
use diesel::prelude::*;

use super::render::render_channel;
use super::{Change, CommitResult, Committed, PendingEvent};
use crate::db::models::*;
use crate::db::schema::*;
use crate::db::{is_unique_violation, DbConnection};
use crate::service::catalog::queries::{frozen, head_revision, open_member_ids, open_members};
use crate::service::error::PublishError;
use crate::service::{Actor, Clock, Ctx, ServiceError};

/// Why a commit attempt did not go through.
enum Attempt {
    /// Another writer moved a head first: render again from the new state.
    Lost,
    /// The new package row already exists (a concurrent identical upload).
    Duplicate,
    Failed(ServiceError),
}

impl From<ServiceError> for Attempt {
    fn from(e: ServiceError) -> Self {
        Attempt::Failed(e)
    }
}

impl From<diesel::result::Error> for Attempt {
    fn from(e: diesel::result::Error) -> Self {
        Attempt::Failed(e.into())
    }
}

const MAX_ATTEMPTS: usize = 8;

/// A revision's time: the clock, never before the previous revision's (so
/// Last-Modified and apt's Release `Date` never go back). Several revisions
/// may share a second; `repo::head_file` then stops treating Last-Modified as
/// a validator, so no conditional request hides the newer one.
fn revision_time(clock: &dyn Clock, prev: Option<i64>) -> i64 {
    let now = clock.now();
    prev.map_or(now, |p| now.max(p))
}

/// The commit itself, with the touched channels' locks held.
pub(super) fn commit_locked(ctx: &Ctx, change: &Change, actor: &Actor) -> CommitResult {
    let start = std::time::Instant::now();
    let mut conn = ctx.conn()?;
    for _ in 0..MAX_ATTEMPTS {
        match attempt(ctx, &mut conn, change, actor) {
            Ok(c) => {
                count_publication(ctx, &c, start);
                return Ok(c);
            }
            Err(Attempt::Lost) => continue,
            Err(Attempt::Duplicate) => return Err(PublishError::DuplicatePackage.into()),
            Err(Attempt::Failed(e)) => return Err(e),
        }
    }
    Err(PublishError::Contention.into())
}

fn count_publication(ctx: &Ctx, c: &Committed, start: std::time::Instant) {
    let secs = start.elapsed().as_secs_f64();
    for channel in c.revisions.keys() {
        let l = crate::metrics::ChannelLabels {
            channel: channel.clone(),
        };
        ctx.metrics.publish_seconds.get_or_create(&l).observe(secs);
        ctx.metrics.revisions.get_or_create(&l).inc();
    }
}

struct Planned {
    channel: String,
    require_in: Option<String>,
    head: i32,
    created_at: i64,
    add: Vec<String>,
    remove: Vec<String>,
    /// Removed by retention (also in `remove`).
    retired: Vec<String>,
    count: i32,
    files: Vec<(String, String, i64)>,
}

fn attempt(
    ctx: &Ctx,
    conn: &mut DbConnection,
    change: &Change,
    actor: &Actor,
) -> Result<Committed, Attempt> {
    // Every blob this attempt stored, for [`restore_swept`] after the commit.
    let mut stored: Vec<(String, Bytes)> = Vec::new();
    let mut planned = Vec::new();
    for op in &change.ops {
        if let Some(p) = plan(ctx, conn, change, op, &mut stored)? {
            planned.push(p);
        }
    }
    let result = crate::db::write_transaction::<Committed, Attempt, _>(conn, |conn| {
        write(ctx, conn, change, actor, &planned)
    });
    if result.is_ok() {
        restore_swept(ctx, &stored);
    }
    result
}

/// One channel's next revision, rendered and stored; `None` when the channel
/// would not change (repomd.xml then stays byte-identical).
fn plan(
    ctx: &Ctx,
    conn: &mut DbConnection,
    change: &Change,
    op: &super::ChannelOp,
    stored: &mut Vec<(String, Bytes)>,
) -> Result<Option<Planned>, Attempt> {
    let (head, prev_created) = head_revision(conn, &op.channel)?;
    let current: HashSet<String> = open_members(conn, &op.channel)?.into_iter().collect();
    let add = distinct(op.add.iter().filter(|id| !current.contains(*id)));
    let remove = distinct(op.remove.iter().filter(|id| current.contains(*id)));
    let moves = !(add.is_empty() && remove.is_empty());
    if !moves && head > 0 && !op.force {
        return Ok(None);
    }
    if moves {
        refuse_if_frozen(conn, &op.channel)?;
    }
    let mut members = current;
    for id in &remove {
        members.remove(id);
    }
    members.extend(add.iter().cloned());
    // Retention: beyond the newest K builds of a name, older ones leave.
    let retired = if add.is_empty() {
        Vec::new()
    } else {
        super::rules::retention_overflow(
            ctx,
            conn,
            &op.channel,
            &members,
            &add,
            &change.new_packages,
        )?
    };
    for id in &retired {
        members.remove(id);
    }
    let mut remove = remove;
    remove.extend(retired.iter().cloned());
    if let (Some(gate), false) = (op.gate, add.is_empty()) {
        let input = super::GateInput {
            channel: &op.channel,
            source: op.require_in.as_deref(),
            members: &members,
            added: &add,
            removed: &remove,
        };
        gate(ctx, conn, &input)?;
    }
    // Last-Modified must strictly increase per publication, even within a second.
    let created_at = revision_time(ctx.clock.as_ref(), prev_created);
    let files = store_files(
        ctx,
        render_channel(
            ctx,
            conn,
            &op.channel,
            &members,
            &change.new_packages,
            created_at,
        )?,
        stored,
    )?;
    Ok(Some(Planned {
        channel: op.channel.clone(),
        require_in: op.require_in.clone(),
        head,
        created_at,
        add,
        remove,
        retired,
        count: members.len() as i32,
        files,
    }))
}

fn distinct<'a>(ids: impl Iterator<Item = &'a String>) -> Vec<String> {
    ids.cloned().collect::<BTreeSet<_>>().into_iter().collect()
}

/// Writes a revision's files to the blob store; the same content under
/// several paths (by-hash copies, an identical latest-only view) once.
fn store_files(
    ctx: &Ctx,
    rendered: Vec<super::render::OutFile>,
    stored: &mut Vec<(String, Bytes)>,
) -> Result<Vec<(String, String, i64)>, Attempt> {
    let mut files = Vec::with_capacity(rendered.len());
    let mut written: HashSet<String> = HashSet::new();
    for f in rendered {
        if written.insert(f.sha256.clone()) {
            ctx.store
                .put_bytes(&f.sha256, &f.bytes)
                .map_err(|e| Attempt::Failed(e.into()))?;
            stored.push((f.sha256.clone(), f.bytes.clone()));
        }
        files.push((f.path, f.sha256, f.bytes.len() as i64));
    }
    Ok(files)
}

fn refuse_if_frozen(conn: &mut DbConnection, channel: &str) -> Result<(), Attempt> {
    match frozen(conn, channel)? {
        Some(f) => Err(Attempt::Failed(
            PublishError::Frozen {
                channel: channel.to_string(),
                by: f.by,
                reason: f.reason,
            }
            .into(),
        )),
        None => Ok(()),
    }
}

/// The transaction: new package rows, every planned revision, the change's
/// verdicts and its events.
fn write(
    ctx: &Ctx,
    conn: &mut DbConnection,
    change: &Change,
    actor: &Actor,
    planned: &[Planned],
) -> Result<Committed, Attempt> {
    for p in &change.new_packages {
        match diesel::insert_into(packages::table).values(p).execute(conn) {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(Attempt::Duplicate),
            Err(e) => return Err(e.into()),
        }
    }
    // Row by row: batch inserts are not in the backend-neutral subset.
    for d in &change.new_deps {
        diesel::insert_into(package_deps::table)
            .values(d)
            .execute(conn)?;
    }
    for p in planned {
        if let Some(source) = &p.require_in {
            still_in_source(conn, source, &p.add)?;
        }
    }
    let mut committed = Committed::default();
    for p in planned {
        let next = write_revision(conn, change, actor, p)?;
        committed.revisions.insert(p.channel.clone(), next);
    }
    let at = ctx.clock.now();
    for r in &change.rejections {
        super::rules::record_rejection(conn, r, actor, at)?;
    }
    if let Some((id, reason)) = &change.discard {
        super::rules::mark_discarded(conn, id, reason, actor, at)?;
    }
    let events = events_of(change, actor, planned, &committed, at);
    crate::service::events::append(conn, &events)?;
    Ok(committed)
}

/// A promotion's builds must still be in its source: a concurrent demotion
/// there wins.
fn still_in_source(conn: &mut DbConnection, source: &str, ids: &[String]) -> Result<(), Attempt> {
    // A no-op update takes the source channel's row lock, so a concurrent
    // demotion there (which moves that head) is ordered before or after us.
    diesel::update(channels::table.filter(channels::name.eq(source)))
        .set(channels::head.eq(channels::head))
        .execute(conn)?;
    for id in ids {
        let still_there = open_member_ids(source)
            .filter(memberships::package_id.eq(id))
            .first::<String>(conn)
            .optional()?;
        if still_there.is_none() {
            return Err(Attempt::Failed(
                PublishError::LeftSource {
                    channel: source.to_string(),
                }
                .into(),
            ));
        }
    }
    Ok(())
}

/// Moves the channel's head from `p.head` to the next revision and records
/// that revision's rows; returns its number.
fn write_revision(
    conn: &mut DbConnection,
    change: &Change,
    actor: &Actor,
    p: &Planned,
) -> Result<i32, Attempt> {
    let next = p.head + 1;
    // Compare-and-set: only one writer can move a head from N to N+1.
    let moved = diesel::update(
        channels::table
            .filter(channels::name.eq(&p.channel))
            .filter(channels::head.eq(p.head)),
    )
    .set(channels::head.eq(next))
    .execute(conn)?;
    if moved != 1 {
        return Err(Attempt::Lost);
    }
    // A freeze that landed after planning wins over this change.
    if !(p.add.is_empty() && p.remove.is_empty()) {
        refuse_if_frozen(conn, &p.channel)?;
    }
    diesel::update(
        revisions::table
            .filter(revisions::channel.eq(&p.channel))
            .filter(revisions::number.eq(p.head)),
    )
    .set(revisions::superseded_at.eq(Some(p.created_at)))
    .execute(conn)?;
    diesel::insert_into(revisions::table)
        .values(RevisionRow {
            channel: p.channel.clone(),
            number: next,
            created_at: p.created_at,
            superseded_at: None,
            actor: change
                .revision_actor
                .clone()
                .unwrap_or_else(|| actor.name.clone()),
            summary: change.summary.clone(),
            package_count: p.count,
        })
        .execute(conn)?;
    for id in &p.remove {
        diesel::update(
            memberships::table
                .filter(memberships::channel.eq(&p.channel))
                .filter(memberships::package_id.eq(id))
                .filter(memberships::removed_in.is_null()),
        )
        .set(memberships::removed_in.eq(Some(next)))
        .execute(conn)?;
    }
    // Row by row: batch inserts are not in the backend-neutral subset.
    for id in &p.add {
        diesel::insert_into(memberships::table)
            .values(MembershipRow {
                channel: p.channel.clone(),
                package_id: id.clone(),
                added_in: next,
                removed_in: None,
            })
            .execute(conn)?;
    }
    for (path, blob, size) in &p.files {
        diesel::insert_into(revision_files::table)
            .values(RevisionFileRow {
                channel: p.channel.clone(),
                number: next,
                path: path.clone(),
                blob: blob.clone(),
                size: *size,
            })
            .execute(conn)?;
    }
    Ok(next)
}

/// The change's own events, then one `retired` per build retention removed
/// and one `published` per new revision (what pollers and webhooks key on).
fn events_of(
    change: &Change,
    actor: &Actor,
    planned: &[Planned],
    committed: &Committed,
    at: i64,
) -> Vec<NewEvent> {
    let retirements = planned.iter().flat_map(|p| {
        p.retired.iter().map(|id| PendingEvent {
            kind: "retired",
            package_id: Some(id.clone()),
            channel: Some(p.channel.clone()),
            reason: Some("retention: older than the newest builds the channel keeps".into()),
            detail: None,
        })
    });
    let published = planned.iter().map(|p| PendingEvent {
        kind: "published",
        package_id: None,
        channel: Some(p.channel.clone()),
        reason: None,
        detail: Some(serde_json::json!({
            "summary": change.summary,
            "added": p.add,
            "removed": p.remove,
        })),
    });
    // The change's own events by reference; the generated ones follow.
    let generated: Vec<PendingEvent> = retirements.chain(published).collect();
    change
        .events
        .iter()
        .chain(&generated)
        .enumerate()
        .map(|(i, e)| {
            let by = change.event_actors.get(i).unwrap_or(actor);
            NewEvent {
                at,
                kind: e.kind.to_string(),
                revision: e
                    .channel
                    .as_ref()
                    .and_then(|c| committed.revisions.get(c).copied()),
                package_id: e.package_id.clone(),
                channel: e.channel.clone(),
                actor: by.name.clone(),
                client: by.client.clone(),
                reason: e.reason.clone(),
                detail: e.detail.as_ref().map(|d| d.to_string()),
            }
        })
        .collect()
}

/// A blob that already existed was only touched by `put_bytes`; a sweep that
/// had judged it stale just before could still unlink it. Now that the
/// revision is committed (and references it), put back any that went.
fn restore_swept(ctx: &Ctx, stored: &[(String, Bytes)]) {
    for (sha, bytes) in stored {
        if matches!(ctx.store.exists(sha), Ok(false)) {
            tracing::warn!(blob = %sha, "a published blob was swept meanwhile; writing it again");
            if let Err(e) = ctx.store.put_bytes(sha, bytes) {
                tracing::error!(blob = %sha, error = %e, "could not restore a published blob");
            }
        }
    }
}
