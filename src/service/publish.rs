//! Publication: every change to channels goes through [`commit`], which renders
//! each changed channel's new metadata, writes it to the blob store, and then in
//! ONE database transaction creates the new revisions, moves memberships, records
//! events and switches the channels' heads.
//!
//! Crash safety: blobs are written before the transaction and are content
//! addressed, so a crash before commit leaves only unreferenced blobs (swept
//! later) and a crash after commit leaves a complete revision. Readers only ever
//! see heads that point at complete revisions.

use std::collections::{BTreeSet, HashMap, HashSet};

use diesel::prelude::*;

use super::pieces::Pieces;
use super::{Actor, Ctx, ServiceError};
use crate::db::models::*;
use crate::db::schema::*;
use crate::db::{is_unique_violation, DbConnection};
use crate::formats::apt;
use crate::formats::gzchain::Chunk;
use crate::formats::yum::{assemble_repodata, Chunks};
use bytes::Bytes;
use std::sync::{Arc, Mutex};

/// Add and remove packages in one channel.
#[derive(Debug, Clone, Default)]
pub struct ChannelOp {
    pub channel: String,
    pub add: Vec<String>,
    pub remove: Vec<String>,
    /// Added packages must still be in this channel when the change commits
    /// (a promotion's source: a concurrent demotion there wins).
    pub require_in: Option<String>,
    /// Publish a new revision even when the package set is unchanged (re-signing
    /// before an apt Valid-Until lapses).
    pub force: bool,
}

/// An event to record; `revision` is filled in from the channel's new revision.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    pub kind: &'static str,
    pub package_id: Option<String>,
    pub channel: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<serde_json::Value>,
}

/// A demotion's verdict: the build is never promoted automatically into this channel.
#[derive(Debug, Clone)]
pub struct Reject {
    pub package_id: String,
    pub channel: String,
    pub reason: String,
}

/// One atomic change.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// Package rows to insert in the same transaction (an upload; several
    /// when concurrent uploads are published together).
    pub new_packages: Vec<PackageRow>,
    /// Rejections to record in the same transaction (a demotion).
    pub rejections: Vec<Reject>,
    /// A build to mark discarded in the same transaction: (id, reason).
    pub discard: Option<(String, String)>,
    pub ops: Vec<ChannelOp>,
    pub events: Vec<PendingEvent>,
    /// Who caused each of `events`, when changes of several callers are
    /// published together; empty: the committing actor caused them all.
    pub event_actors: Vec<Actor>,
    /// One line saying what happened, stored on each new revision.
    pub summary: String,
    /// The revision's actor when it is not the committing actor (changes of
    /// several callers published together).
    pub revision_actor: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Committed {
    /// New revision number of every channel that changed.
    pub revisions: HashMap<String, i32>,
}

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

/// How far ahead of the clock a revision time may run. apt refuses a Release
/// dated 10 s or more in the future.
const MAX_SKEW_SECS: i64 = 5;

/// A revision's time: strictly after the previous one (Last-Modified and apt's
/// Date must only increase, at one-second resolution) and never more than
/// MAX_SKEW_SECS ahead of the clock. A channel republished faster than once a
/// second therefore waits (under its lock) for the clock to catch up.
fn revision_time(clock: &dyn super::Clock, prev: Option<i64>) -> i64 {
    let Some(prev) = prev else {
        return clock.now();
    };
    let t = clock.now().max(prev + 1);
    let ahead = t - clock.now();
    if ahead > MAX_SKEW_SECS {
        clock.sleep((ahead - MAX_SKEW_SECS) as u64);
    }
    t
}

/// Sleeps until the channel's next revision may be dated (see
/// [`revision_time`]), so that the commit after it does not wait.
fn wait_for_clock(ctx: &Ctx, channel: &str) -> Result<(), ServiceError> {
    let (_, prev) = head_revision(&mut *ctx.conn()?, channel)?;
    if let Some(prev) = prev {
        let ahead = (prev + 1) - ctx.clock.now();
        if ahead > MAX_SKEW_SECS {
            ctx.clock.sleep((ahead - MAX_SKEW_SECS) as u64);
        }
    }
    Ok(())
}

/// A channel's head revision number and when that revision was made (`None`
/// before the first publication).
pub(crate) fn head_revision(
    conn: &mut DbConnection,
    channel: &str,
) -> Result<(i32, Option<i64>), diesel::result::Error> {
    let head: i32 = channels::table
        .find(channel)
        .select(channels::head)
        .first(conn)?;
    let created: Option<i64> = revisions::table
        .filter(revisions::channel.eq(channel))
        .filter(revisions::number.eq(head))
        .select(revisions::created_at)
        .first(conn)
        .optional()?;
    Ok((head, created))
}

/// Error returned when a package in `Change::new_packages` already exists.
pub struct DuplicatePackage;

/// What a commit gives its caller.
pub type CommitResult = Result<Result<Committed, DuplicatePackage>, ServiceError>;

/// Commits one change: its new revisions, memberships, package rows and
/// events in one transaction, after rendering and storing every new file.
///
/// A channel takes at most one revision per second once it runs ahead of the
/// clock (see `revision_time`), so changes that add builds to one channel and
/// arrive while it is publishing are **published together**: each waits in
/// the channel's queue, and whoever holds the channel's lock next commits all
/// waiting changes as one revision (group commit). Each caller still gets its
/// own answer. When the joint commit fails (a duplicate upload, a freeze, a
/// build that left its source), the changes are committed one by one, so
/// each gets exactly the result it would have had alone.
pub fn commit(ctx: &Ctx, change: Change, actor: &Actor) -> CommitResult {
    let Some(key) = batch_key(&change) else {
        return commit_alone(ctx, change, actor);
    };
    let slot = Arc::new(Mutex::new(None));
    ctx.locks.waiting.push(
        &key.0,
        Entry {
            change,
            actor: actor.clone(),
            slot: slot.clone(),
        },
    );
    let lock = ctx.locks.get(&key.0);
    let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
    // Holding the lock, either a previous holder committed this change, or it
    // is still in the queue: only lock holders take from the queue, and they
    // answer everything they took before letting go.
    if let Some(done) = take(&slot) {
        return done;
    }
    // Wait for the clock before taking the queue, so that whatever arrives
    // meanwhile goes out in this revision too. Not fatal: this change is in
    // the queue and must be answered by whoever takes it, so on a failure the
    // commit below waits instead (`revision_time`) or reports the error.
    if let Err(e) = wait_for_clock(ctx, &key.0) {
        tracing::warn!(channel = %key.0, error = %e, "cannot read the channel's revision time");
    }
    let batch = ctx.locks.waiting.take_all(&key.0);
    commit_batch(ctx, batch);
    // Empty only if the holder that took this change panicked.
    take(&slot).unwrap_or_else(|| {
        Err(ServiceError::Publication(
            "the publication this change joined failed".into(),
        ))
    })
}

fn take(slot: &Slot) -> Option<CommitResult> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}

type Slot = Arc<Mutex<Option<CommitResult>>>;

/// A change waiting for its channel, and where its result goes.
struct Entry {
    change: Change,
    actor: Actor,
    slot: Slot,
}

/// Per channel, the changes waiting to be published together.
#[derive(Default)]
pub struct Waiting {
    queues: Mutex<HashMap<String, Vec<Entry>>>,
}

impl Waiting {
    fn push(&self, channel: &str, entry: Entry) {
        self.lock()
            .entry(channel.to_string())
            .or_default()
            .push(entry);
    }

    fn take_all(&self, channel: &str) -> Vec<Entry> {
        self.lock().remove(channel).unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Entry>>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Changes that may be published together: they only add builds to one
/// channel (uploads with `?channel=`, promotions, automatic promotions).
/// Keyed by the channel and the source the builds must still be in.
fn batch_key(change: &Change) -> Option<(String, Option<String>)> {
    match change.ops.as_slice() {
        [op] if op.remove.is_empty()
            && !op.force
            && change.rejections.is_empty()
            && change.discard.is_none()
            && change.event_actors.is_empty() =>
        {
            Some((op.channel.clone(), op.require_in.clone()))
        }
        _ => None,
    }
}

/// Commits `batch` (under the channel's lock): runs of changes with the same
/// source as one joint change where possible, the rest one by one.
fn commit_batch(ctx: &Ctx, batch: Vec<Entry>) {
    let mut groups: Vec<Vec<Entry>> = Vec::new();
    for e in batch {
        match groups.last_mut() {
            Some(g) if batch_key(&g[0].change) == batch_key(&e.change) => g.push(e),
            _ => groups.push(vec![e]),
        }
    }
    for group in groups {
        if group.len() > 1 {
            let joint = join(&group);
            if let Ok(Ok(done)) = commit_locked(ctx, &joint, &group[0].actor) {
                for e in &group {
                    *e.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(Ok(Ok(done.clone())));
                }
                continue;
            }
        }
        for e in group {
            let result = commit_locked(ctx, &e.change, &e.actor);
            *e.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
        }
    }
}

/// One change doing what every change of `group` does, each event recorded
/// with its own caller; the revision names every caller.
fn join(group: &[Entry]) -> Change {
    let mut op = group[0].change.ops[0].clone();
    op.add.clear();
    let mut joint = Change::default();
    let mut names: Vec<&str> = Vec::new();
    for e in group {
        op.add.extend(e.change.ops[0].add.iter().cloned());
        joint
            .new_packages
            .extend(e.change.new_packages.iter().cloned());
        joint.events.extend(e.change.events.iter().cloned());
        joint
            .event_actors
            .extend(std::iter::repeat_n(e.actor.clone(), e.change.events.len()));
        if !names.contains(&e.actor.name.as_str()) {
            names.push(&e.actor.name);
        }
    }
    joint.ops = vec![op];
    joint.summary = format!(
        "{} changes published together: {}",
        group.len(),
        group
            .iter()
            .map(|e| e.change.summary.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    );
    if joint.summary.len() > 1000 {
        let mut cut = 1000;
        while !joint.summary.is_char_boundary(cut) {
            cut -= 1;
        }
        joint.summary.truncate(cut);
        joint.summary.push('…');
    }
    // The revision row's actor: the callers, by name.
    joint.revision_actor = Some(names.join(", "));
    joint
}

/// A change that is not published together with others.
fn commit_alone(ctx: &Ctx, change: Change, actor: &Actor) -> CommitResult {
    // Lock every touched channel in a fixed order to rule out deadlocks.
    let names: BTreeSet<String> = change.ops.iter().map(|o| o.channel.clone()).collect();
    let locks: Vec<_> = names.iter().map(|n| ctx.locks.get(n)).collect();
    let _guards: Vec<_> = locks
        .iter()
        .map(|l| l.lock().unwrap_or_else(|p| p.into_inner()))
        .collect();
    commit_locked(ctx, &change, actor)
}

/// The commit itself, with the touched channels' locks held.
fn commit_locked(ctx: &Ctx, change: &Change, actor: &Actor) -> CommitResult {
    let mut conn = ctx.conn()?;
    for _ in 0..MAX_ATTEMPTS {
        match attempt(ctx, &mut conn, change, actor) {
            Ok(c) => return Ok(Ok(c)),
            Err(Attempt::Lost) => continue,
            Err(Attempt::Duplicate) => return Ok(Err(DuplicatePackage)),
            Err(Attempt::Failed(e)) => return Err(e),
        }
    }
    Err(ServiceError::Contention)
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
    let mut planned = Vec::new();
    // Every blob this attempt stored, for [`restore_swept`] after the commit.
    let mut stored: Vec<(String, Bytes)> = Vec::new();
    for op in &change.ops {
        let ch: ChannelRow = channels::table
            .find(&op.channel)
            .select(ChannelRow::as_select())
            .first(conn)?;
        let prev_created: Option<i64> = revisions::table
            .filter(revisions::channel.eq(&op.channel))
            .filter(revisions::number.eq(ch.head))
            .select(revisions::created_at)
            .first(conn)
            .optional()?;
        let current: HashSet<String> = memberships::table
            .filter(memberships::channel.eq(&op.channel))
            .filter(memberships::removed_in.is_null())
            .select(memberships::package_id)
            .load(conn)?
            .into_iter()
            .collect();
        let add: Vec<String> = op
            .add
            .iter()
            .filter(|id| !current.contains(*id))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let remove: Vec<String> = op
            .remove
            .iter()
            .filter(|id| current.contains(*id))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // An unchanged channel gets no new revision: repomd.xml stays byte-identical.
        if add.is_empty() && remove.is_empty() && ch.head > 0 && !op.force {
            continue;
        }
        if !(add.is_empty() && remove.is_empty()) {
            if let Some(f) = super::gates::frozen(conn, &op.channel)? {
                return Err(Attempt::Failed(ServiceError::Frozen {
                    channel: op.channel.clone(),
                    by: f.by,
                    reason: f.reason,
                }));
            }
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
            super::gates::retention_overflow(
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
        // Last-Modified must strictly increase per publication, even within a second.
        let created_at = revision_time(ctx.clock.as_ref(), prev_created);
        let rendered = render_channel(
            ctx,
            conn,
            &op.channel,
            &members,
            &change.new_packages,
            created_at,
        )?;
        let mut files = Vec::with_capacity(rendered.len());
        let mut written: HashSet<String> = HashSet::new();
        for f in rendered {
            // The same content under several paths (by-hash copies, an
            // identical latest-only view) is written once.
            if written.insert(f.sha256.clone()) {
                ctx.store
                    .put_bytes(&f.sha256, &f.bytes)
                    .map_err(|e| Attempt::Failed(e.into()))?;
                stored.push((f.sha256.clone(), f.bytes.clone()));
            }
            files.push((f.path, f.sha256, f.bytes.len() as i64));
        }
        planned.push(Planned {
            channel: op.channel.clone(),
            require_in: op.require_in.clone(),
            head: ch.head,
            created_at,
            add,
            remove,
            retired,
            count: members.len() as i32,
            files,
        });
    }

    let result = crate::db::write_transaction::<Committed, Attempt, _>(conn, |conn| {
        for p in &change.new_packages {
            match diesel::insert_into(packages::table).values(p).execute(conn) {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Err(Attempt::Duplicate),
                Err(e) => return Err(e.into()),
            }
        }
        let mut committed = Committed::default();
        for p in &planned {
            let Some(source) = &p.require_in else {
                continue;
            };
            // A no-op update takes the source channel's row lock, so a concurrent
            // demotion there (which moves that head) is ordered before or after us.
            diesel::update(channels::table.filter(channels::name.eq(source)))
                .set(channels::head.eq(channels::head))
                .execute(conn)?;
            for id in &p.add {
                let still_there = memberships::table
                    .filter(memberships::channel.eq(source))
                    .filter(memberships::package_id.eq(id))
                    .filter(memberships::removed_in.is_null())
                    .select(memberships::package_id)
                    .first::<String>(conn)
                    .optional()?;
                if still_there.is_none() {
                    return Err(Attempt::Failed(ServiceError::NotAllowed(format!(
                        "the build left {source:?} while it was being promoted"
                    ))));
                }
            }
        }
        for p in &planned {
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
            // A freeze that landed after the check above wins over this change.
            if !(p.add.is_empty() && p.remove.is_empty()) {
                if let Some(f) = super::gates::frozen(conn, &p.channel)? {
                    return Err(Attempt::Failed(ServiceError::Frozen {
                        channel: p.channel.clone(),
                        by: f.by,
                        reason: f.reason,
                    }));
                }
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
            let rows: Vec<MembershipRow> = p
                .add
                .iter()
                .map(|id| MembershipRow {
                    channel: p.channel.clone(),
                    package_id: id.clone(),
                    added_in: next,
                    removed_in: None,
                })
                .collect();
            // Row by row: batch inserts are not in the backend-neutral subset.
            for row in &rows {
                diesel::insert_into(memberships::table)
                    .values(row)
                    .execute(conn)?;
            }
            let files: Vec<RevisionFileRow> = p
                .files
                .iter()
                .map(|(path, blob, size)| RevisionFileRow {
                    channel: p.channel.clone(),
                    number: next,
                    path: path.clone(),
                    blob: blob.clone(),
                    size: *size,
                })
                .collect();
            for f in &files {
                diesel::insert_into(revision_files::table)
                    .values(f)
                    .execute(conn)?;
            }
            committed.revisions.insert(p.channel.clone(), next);
        }
        let at = ctx.clock.now();
        for r in &change.rejections {
            super::gates::record_rejection(conn, r, actor, at)?;
        }
        if let Some((id, reason)) = &change.discard {
            super::gates::mark_discarded(conn, id, reason, actor, at)?;
        }
        let retirements: Vec<PendingEvent> = planned
            .iter()
            .flat_map(|p| {
                p.retired.iter().map(|id| PendingEvent {
                    kind: "retired",
                    package_id: Some(id.clone()),
                    channel: Some(p.channel.clone()),
                    reason: Some(
                        "retention: older than the newest builds the channel keeps".into(),
                    ),
                    detail: None,
                })
            })
            .collect();
        // One `published` event per new revision: what pollers and webhooks key on.
        let published: Vec<PendingEvent> = planned
            .iter()
            .map(|p| PendingEvent {
                kind: "published",
                package_id: None,
                channel: Some(p.channel.clone()),
                reason: None,
                detail: Some(serde_json::json!({
                    "summary": change.summary,
                    "added": p.add,
                    "removed": p.remove,
                })),
            })
            .collect();
        let events: Vec<NewEvent> = change
            .events
            .iter()
            .chain(retirements.iter())
            .chain(published.iter())
            .enumerate()
            .map(|(i, e)| (e, change.event_actors.get(i).unwrap_or(actor)))
            .map(|(e, by)| NewEvent {
                at,
                kind: e.kind.to_string(),
                package_id: e.package_id.clone(),
                channel: e.channel.clone(),
                revision: e
                    .channel
                    .as_ref()
                    .and_then(|c| committed.revisions.get(c).copied()),
                actor: by.name.clone(),
                client: by.client.clone(),
                reason: e.reason.clone(),
                detail: e.detail.as_ref().map(|d| d.to_string()),
            })
            .collect();
        super::events::append(conn, &events)?;
        Ok(committed)
    });
    if result.is_ok() {
        restore_swept(ctx, &stored);
    }
    result
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

/// One published file of a revision: its path, bytes (shared between the
/// paths that serve the same content) and SHA-256.
pub struct OutFile {
    pub path: String,
    pub bytes: Bytes,
    pub sha256: String,
}

impl OutFile {
    fn new(path: String, bytes: Bytes, sha256: Option<String>) -> OutFile {
        let sha256 =
            sha256.unwrap_or_else(|| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)));
        OutFile {
            path,
            bytes,
            sha256,
        }
    }
}

/// Renders every published file of a channel revision: the yum repository
/// (`repodata/…`, signed repomd.xml) and the apt suite (`dists/<channel>/…`,
/// by-hash copies, Release, InRelease, Release.gpg). Paths are relative to the
/// channel's yum root, or to `/deb/` for `dists/`.
fn render_channel(
    ctx: &Ctx,
    conn: &mut DbConnection,
    channel: &str,
    members: &HashSet<String>,
    new_packages: &[PackageRow],
    created_at: i64,
) -> Result<Vec<OutFile>, Attempt> {
    let ids: Vec<&String> = members.iter().collect();
    let mut rows = ctx.pieces.get_many(conn, &ids, new_packages)?;
    rows.sort_by(|a, b| {
        super::packages::by_version(a.as_ref(), b.as_ref()).then_with(|| a.id.cmp(&b.id))
    });
    // The chunks of every file, compressed where a package has a new
    // neighbour; what is left is concatenation, hashing and signing.
    let rpms: Vec<&Arc<Pieces>> = rows.iter().filter(|r| r.kind == "rpm").collect();
    let yum = ctx
        .pieces
        .rpm_chunks(conn, &format!("{channel}/yum"), &rpms, new_packages)?;
    // The latest-only view (`latest/`): the newest build of each name and arch,
    // for pollers such as GoCD's that refuse a spec matching several versions.
    // `rows` is sorted by name, arch, version: the last of each run wins.
    let mut newest: Vec<&Arc<Pieces>> = Vec::new();
    for r in rpms.iter().copied() {
        match newest.last_mut() {
            Some(last) if last.name == r.name && last.arch == r.arch => *last = r,
            _ => newest.push(r),
        }
    }
    // One build per name: the view is the repository itself (and its own
    // blocks are released).
    let latest_view = format!("{channel}/latest");
    let latest_seq: &[&Arc<Pieces>] = if newest.len() == rpms.len() {
        &[]
    } else {
        &newest
    };
    let latest_chunks = ctx
        .pieces
        .rpm_chunks(conn, &latest_view, latest_seq, new_packages)?;
    let latest = (!latest_seq.is_empty()).then_some((latest_chunks, latest_seq.len()));
    let indexes = apt_indexes(ctx, channel, &rows)?;
    let sign_err =
        |e: crate::signing::SigningError| Attempt::Failed(ServiceError::Signing(e.to_string()));
    // yum and apt are independent: one core each.
    let (yum, apt) = std::thread::scope(|s| {
        let yum = s.spawn(|| {
            let latest = latest.as_ref().map(|(c, n)| (c.as_slice(), *n));
            render_yum(ctx, (&yum, rpms.len()), latest, created_at)
        });
        let apt = render_apt(ctx, channel, indexes, created_at);
        (yum.join(), apt)
    });
    let mut out = yum
        .map_err(|_| Attempt::Failed(ServiceError::Publication("yum rendering panicked".into())))?
        .map_err(sign_err)?;
    out.extend(apt.map_err(sign_err)?);
    Ok(out)
}

/// The yum repository (`repodata/…`, signed repomd.xml) and its latest-only
/// view (`latest/…`; `None`: every name has one build, so the view is the
/// repository itself), assembled from chunks.
/// Each repository is given as its blocks' chunks and its package count.
fn render_yum(
    ctx: &Ctx,
    repo_chunks: (&[Arc<Chunks>], usize),
    latest: Option<(&[Arc<Chunks>], usize)>,
    created_at: i64,
) -> Result<Vec<OutFile>, crate::signing::SigningError> {
    fn repo(
        ctx: &Ctx,
        (chunks, count): (&[Arc<Chunks>], usize),
        prefix: &str,
        created_at: i64,
    ) -> Result<Vec<OutFile>, crate::signing::SigningError> {
        let refs: Vec<&Chunks> = chunks.iter().map(|c| c.as_ref()).collect();
        let repodata = assemble_repodata(&refs, count, created_at);
        let asc = ctx.signer.detached(&repodata.repomd)?;
        let mut out: Vec<OutFile> = repodata
            .files
            .into_iter()
            .map(|f| {
                OutFile::new(
                    format!("{prefix}{}", f.path),
                    f.bytes.into(),
                    Some(f.sha256),
                )
            })
            .collect();
        out.push(OutFile::new(
            format!("{prefix}repodata/repomd.xml"),
            repodata.repomd.into(),
            None,
        ));
        out.push(OutFile::new(
            format!("{prefix}repodata/repomd.xml.asc"),
            asc.into_bytes().into(),
            None,
        ));
        Ok(out)
    }
    let mut out = repo(ctx, repo_chunks, "", created_at)?;
    match latest {
        // Byte-identical: the same blobs (and signature) under a second path.
        None => {
            let copies: Vec<OutFile> = out
                .iter()
                .map(|f| OutFile {
                    path: format!("latest/{}", f.path),
                    bytes: f.bytes.clone(),
                    sha256: f.sha256.clone(),
                })
                .collect();
            out.extend(copies);
        }
        Some(latest) => out.extend(repo(ctx, latest, "latest/", created_at)?),
    }
    Ok(out)
}

/// Each architecture's stanzas and chunks, in file order: the configured
/// `apt_architectures` plus those of the member .debs; `all` packages appear
/// in every architecture's index.
struct ArchIndex {
    arch: String,
    texts: Vec<Arc<Pieces>>,
    chunks: Vec<Arc<Chunk>>,
}

fn apt_indexes(
    ctx: &Ctx,
    channel: &str,
    rows: &[Arc<Pieces>],
) -> Result<Vec<ArchIndex>, ServiceError> {
    let debs: Vec<&Arc<Pieces>> = rows.iter().filter(|r| r.kind == "deb").collect();
    let mut archs: BTreeSet<String> = ctx.config.apt_architectures.iter().cloned().collect();
    archs.extend(
        debs.iter()
            .filter(|r| r.arch != "all")
            .map(|r| r.arch.clone()),
    );
    archs
        .into_iter()
        .map(|arch| {
            let seq: Vec<&Arc<Pieces>> = debs
                .iter()
                .filter(|r| r.arch == arch || r.arch == "all")
                .copied()
                .collect();
            let chunks = ctx
                .pieces
                .deb_chunks(&format!("{channel}/apt/{arch}"), &seq)?;
            Ok(ArchIndex {
                arch,
                texts: seq.into_iter().cloned().collect(),
                chunks,
            })
        })
        .collect()
}

/// The apt suite (`dists/<channel>/…`: Packages and Packages.gz per
/// architecture, by-hash copies, Release, InRelease, Release.gpg). Paths are
/// relative to `/deb/`.
fn render_apt(
    ctx: &Ctx,
    channel: &str,
    indexes: Vec<ArchIndex>,
    created_at: i64,
) -> Result<Vec<OutFile>, crate::signing::SigningError> {
    let mut out = Vec::new();
    let mut index_files = Vec::new();
    let archs: Vec<String> = indexes.iter().map(|i| i.arch.clone()).collect();
    for index in &indexes {
        let texts: Vec<&str> = index.texts.iter().map(|p| p.apt_text.as_str()).collect();
        let chunks: Vec<&Chunk> = index.chunks.iter().map(|c| c.as_ref()).collect();
        index_files.extend(apt::assemble_arch_indexes(
            channel,
            "main",
            &index.arch,
            &ctx.config.apt_origin,
            &ctx.config.apt_label,
            &texts,
            &chunks,
        ));
    }
    let release = apt::render_release(
        &apt::ReleaseMeta {
            origin: ctx.config.apt_origin.clone(),
            label: ctx.config.apt_label.clone(),
            suite: channel.to_string(),
            codename: channel.to_string(),
            date: created_at,
            valid_until: ctx
                .config
                .apt_valid_for
                .map(|d| created_at + d.as_secs() as i64),
            architectures: archs,
            components: vec!["main".into()],
            description: format!("Forklift channel {channel}"),
        },
        &index_files,
    );
    let inrelease = ctx.signer.clearsign(&release)?;
    let release_gpg = ctx.signer.detached(release.as_bytes())?;
    let dists = format!("dists/{channel}");
    for f in index_files {
        let paths = apt::by_hash_paths(&f);
        let bytes = Bytes::from(f.bytes);
        for by_hash in paths {
            out.push(OutFile {
                path: format!("{dists}/{by_hash}"),
                bytes: bytes.clone(),
                sha256: f.sha256.clone(),
            });
        }
        out.push(OutFile::new(
            format!("{dists}/{}", f.path),
            bytes,
            Some(f.sha256),
        ));
    }
    out.push(OutFile::new(
        format!("{dists}/Release"),
        release.into_bytes().into(),
        None,
    ));
    out.push(OutFile::new(
        format!("{dists}/InRelease"),
        inrelease.into_bytes().into(),
        None,
    ));
    out.push(OutFile::new(
        format!("{dists}/Release.gpg"),
        release_gpg.into_bytes().into(),
        None,
    ));
    Ok(out)
}
