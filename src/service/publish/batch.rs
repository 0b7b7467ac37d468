//! Changes published together: changes that only add builds to one channel
//! wait in that channel's queue, and whoever holds the channel's lock next
//! commits all waiting changes as one revision (group commit).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use super::attempt::commit_locked;
use super::{Change, CommitResult};
use crate::service::{Actor, Ctx};

pub(super) fn take(slot: &Slot) -> Option<CommitResult> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}

type Slot = Arc<Mutex<Option<CommitResult>>>;

/// (channel, source, gated).
pub type BatchKey = (String, Option<String>, bool);

/// A change waiting for its channel, and where its result goes.
pub(super) struct Entry {
    pub(super) change: Change,
    pub(super) actor: Actor,
    pub(super) slot: Slot,
}

/// Per channel, the changes waiting to be published together.
#[derive(Default)]
pub struct Waiting {
    queues: Mutex<HashMap<String, Vec<Entry>>>,
}

impl Waiting {
    pub(super) fn push(&self, channel: &str, entry: Entry) {
        self.lock()
            .entry(channel.to_string())
            .or_default()
            .push(entry);
    }

    pub(crate) fn len(&self, channel: &str) -> usize {
        self.lock().get(channel).map_or(0, Vec::len)
    }

    pub(super) fn take_all(&self, channel: &str) -> Vec<Entry> {
        self.lock().remove(channel).unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Entry>>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Changes that may be published together: they only add builds to one
/// channel (uploads with `?channel=`, promotions, automatic promotions).
/// Keyed by the channel, the source the builds must still be in, and
/// whether a gate judges them (gated and ungated changes are not joined).
pub(super) fn batch_key(change: &Change) -> Option<BatchKey> {
    match change.ops.as_slice() {
        [op] if op.remove.is_empty()
            && !op.force
            && change.rejections.is_empty()
            && change.discard.is_none()
            && change.event_actors.is_empty() =>
        {
            Some((op.channel.clone(), op.require_in.clone(), op.gate.is_some()))
        }
        _ => None,
    }
}

/// Commits `batch` (under the channel's lock): runs of changes with the same
/// source as one joint change where possible, the rest one by one.
pub(super) fn commit_batch(ctx: &Ctx, batch: Vec<Entry>) {
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
            if let Ok(done) = commit_locked(ctx, &joint, &group[0].actor) {
                for e in &group {
                    *e.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(Ok(done.clone()));
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
        joint.new_deps.extend(e.change.new_deps.iter().cloned());
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
pub(super) fn commit_alone(ctx: &Ctx, change: Change, actor: &Actor) -> CommitResult {
    // Lock every touched channel in a fixed order to rule out deadlocks.
    let names: BTreeSet<String> = change.ops.iter().map(|o| o.channel.clone()).collect();
    let locks: Vec<_> = names.iter().map(|n| ctx.locks.get(n)).collect();
    let _guards: Vec<_> = locks
        .iter()
        .map(|l| l.lock().unwrap_or_else(|p| p.into_inner()))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let _across = crate::db::lock_channels(&ctx.pool, &names)?;
    commit_locked(ctx, &change, actor)
}
