//! Publication: every change to channels goes through [`commit`], which renders
//! each changed channel's new metadata, writes it to the blob store, and then in
//! ONE database transaction creates the new revisions, moves memberships, records
//! events and switches the channels' heads.
//!
//! Crash safety: blobs are written before the transaction and are content
//! addressed, so a crash before commit leaves only unreferenced blobs (swept
//! later) and a crash after commit leaves a complete revision. Readers only ever
//! see heads that point at complete revisions.

mod attempt;
mod batch;
pub mod gc;
pub mod pieces;
mod render;
pub mod resign;
mod rules;
pub mod setup;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use batch::Waiting;
use batch::{batch_key, commit_alone, commit_batch, take, Entry};
pub use rules::{mark_discarded, record_rejection};

use crate::db::models::*;
use crate::service::error::PublishError;
use crate::service::{Actor, Ctx, ServiceError};

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
    /// Run under the channel's publication lock on the planned revision (the
    /// promotion domain's dependency closure): its refusal fails the change.
    pub gate: Option<Gate>,
}

/// What a [`Gate`] judges: one channel's planned revision.
pub struct GateInput<'a> {
    pub channel: &'a str,
    /// Where the added builds come from (a promotion's source channel).
    pub source: Option<&'a str>,
    /// Every build the channel will hold.
    pub members: &'a std::collections::HashSet<String>,
    pub added: &'a [String],
    /// Removed ones, those retention retires included.
    pub removed: &'a [String],
}

/// A check on a planned revision, supplied by a higher domain.
pub type Gate = fn(&Ctx, &mut crate::db::DbConnection, &GateInput<'_>) -> Result<(), ServiceError>;

impl ChannelOp {
    /// Puts `ids` into `channel`.
    pub fn add(channel: &str, ids: Vec<String>) -> ChannelOp {
        ChannelOp {
            channel: channel.to_string(),
            add: ids,
            ..ChannelOp::default()
        }
    }

    /// Takes `ids` out of `channel`.
    pub fn remove(channel: &str, ids: Vec<String>) -> ChannelOp {
        ChannelOp {
            channel: channel.to_string(),
            remove: ids,
            ..ChannelOp::default()
        }
    }

    /// The added builds must still be in `source` when the change commits.
    pub fn from_source(mut self, source: Option<String>) -> ChannelOp {
        self.require_in = source;
        self
    }

    /// The planned revision must pass `gate`.
    pub fn gated(mut self, gate: Option<Gate>) -> ChannelOp {
        self.gate = gate;
        self
    }
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
    /// Their dependency facts (`package_deps`), in the same transaction.
    pub new_deps: Vec<DepRow>,
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

/// What a commit gives its caller.
pub type CommitResult = Result<Committed, ServiceError>;

/// Commits one change: its new revisions, memberships, package rows and
/// events in one transaction, after rendering and storing every new file.
///
/// Changes that add builds to one channel and arrive while it is publishing
/// are **published together**: each waits in
/// the channel's queue, and whoever holds the channel's lock next commits all
/// waiting changes as one revision (group commit). Each caller still gets its
/// own answer. Instances sharing one PostgreSQL also take the channel's
/// advisory lock there, so their publications of a channel take turns and
/// the compare-and-set on its head rarely has to retry. When the joint commit fails (a duplicate upload, a freeze, a
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
    // And across instances: the channel's lock in the shared database.
    let _across = match crate::db::lock_channels(&ctx.pool, &[key.0.as_str()]) {
        Ok(l) => l,
        Err(e) => {
            // Every change taken from the queue is answered, this one included.
            let why = format!("cannot take the channel's publication lock: {e}");
            for e in ctx.locks.waiting.take_all(&key.0) {
                let failed = Err(PublishError::Publication(why.clone()).into());
                *e.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(failed);
            }
            return take(&slot).unwrap_or_else(|| Err(PublishError::Publication(why).into()));
        }
    };
    let batch = ctx.locks.waiting.take_all(&key.0);
    commit_batch(ctx, batch);
    // Empty only if the holder that took this change panicked.
    take(&slot).unwrap_or_else(|| {
        Err(PublishError::Publication("the publication this change joined failed".into()).into())
    })
}
