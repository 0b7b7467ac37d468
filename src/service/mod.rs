//! Domain services: everything the HTTP layer calls. Blocking code (database,
//! blob store): the HTTP layer runs it on the bounded blocking pool.
//!
//! Folders by domain, each pointing down only (a test in tests/layers.rs
//! holds the order): `catalog` (named queries and views) at the bottom,
//! `access` (grants, tokens), `publish` (every change to channels, rendered
//! and committed), then `ingest`, `promotion`, `webhooks` and `repo`, which
//! use them, and `board` (the promotion board) above those. `ops` (backup,
//! restore, fsck) sits beside `ingest`, over `publish` and `catalog`.

pub mod access;
pub mod board;
pub mod catalog;
pub mod clock;
pub mod error;
pub mod events;
pub mod ingest;
pub mod names;
pub mod observe;
pub mod ops;
pub mod promotion;
pub mod publish;
pub mod repo;
pub mod webhooks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use clock::{now, Clock, ManualClock, SystemClock};
pub use error::ServiceError;
pub use names::{ChannelName, PackageRef};

use crate::config::Config;
use crate::db::{Pool, PooledConn};
use crate::service::error::AccessError;
use crate::store::BlobStore;

/// Everything a service call needs; cheap to clone into blocking closures.
#[derive(Clone)]
pub struct Ctx {
    pub config: Arc<Config>,
    pub pool: Pool,
    pub store: Arc<dyn BlobStore>,
    pub locks: Arc<ChannelLocks>,
    pub signer: Arc<crate::signing::Signer>,
    /// Time for promotion decisions (revisions, soak, schedules); injectable so
    /// tests can run a day in seconds.
    pub clock: Arc<dyn Clock>,
    /// Each package's metadata compressed once, for incremental publication.
    pub pieces: Arc<publish::pieces::PieceCache>,
    /// Small published files read once, kept in memory by digest.
    pub hot: Arc<repo::HotFiles>,
    /// Counters and histograms for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Admission to blocking work: requests beyond it wait without holding a
    /// thread, instead of parking pool threads on the database pool.
    pub blocking_slots: Arc<tokio::sync::Semaphore>,
    /// The same for serving repository files, so that long uploads and
    /// publications never make hosts' downloads wait.
    pub file_slots: Arc<tokio::sync::Semaphore>,
    /// What the hosts' base system provides (configured patterns and base
    /// repositories' metadata), for the dependency closure gate.
    pub external: Arc<crate::formats::deps::External>,
}

impl Ctx {
    pub fn conn(&self) -> Result<PooledConn, ServiceError> {
        Ok(self.pool.get().map_err(crate::db::DbError::from)?)
    }

    /// The configured channel `raw` names (`404 channel_not_found` if none).
    pub fn channel(&self, raw: &str) -> Result<ChannelName, ServiceError> {
        Ok(ChannelName::parse(&self.config, raw)?)
    }

    /// Whether `actor` may read `channel`: through its token, or because the
    /// channel is open to anonymous readers (which token holders are too).
    pub fn may_read(&self, actor: &Actor, channel: &str) -> bool {
        actor.grants.may_read(channel) || access::AnonymousRead::of(&self.config).allows(channel)
    }

    /// Fails with 401 for anonymous callers and 403 for tokens without the right.
    /// Every read of a channel's contents, through any path, passes here.
    pub fn require_read(&self, actor: &Actor, channel: &ChannelName) -> Result<(), ServiceError> {
        if self.may_read(actor, channel) {
            return Ok(());
        }
        Err(actor.denied(
            &format!("reading channel {channel:?}"),
            &format!("read:{channel} (or read)"),
        ))
    }
}

/// Who is calling, and who made a change (recorded on every event).
#[derive(Debug, Clone)]
pub struct Actor {
    /// The token's name; "anonymous" without one; "forklift" for the server itself.
    pub name: String,
    /// The client's address.
    pub client: String,
    pub grants: access::Grants,
    pub authenticated: bool,
}

impl Actor {
    pub fn anonymous(client: impl Into<String>) -> Actor {
        Actor {
            name: "anonymous".into(),
            client: client.into(),
            grants: access::Grants::default(),
            authenticated: false,
        }
    }

    /// The server acting on its own (startup, background tasks).
    pub fn system() -> Actor {
        Actor {
            name: "forklift".into(),
            client: "local".into(),
            grants: access::Grants::admin(),
            authenticated: true,
        }
    }

    /// The error for an action this caller may not take: 401 when no token
    /// was presented (say who you are), 403 when the token lacks the right.
    /// One wording for both: "`action` needs a token with `needs`".
    pub fn denied(&self, action: &str, needs: &str) -> ServiceError {
        if self.authenticated {
            AccessError::Forbidden(format!(
                "{action} needs a token with {needs}; token {:?} has not got it",
                self.name
            ))
            .into()
        } else {
            AccessError::Unauthenticated(format!("{action} needs a token with {needs}")).into()
        }
    }

    pub fn require_upload(&self) -> Result<(), ServiceError> {
        if self.grants.may_upload() {
            return Ok(());
        }
        Err(self.denied("uploading", "the upload permission"))
    }

    pub fn require_promote(&self, channel: &str) -> Result<(), ServiceError> {
        if self.grants.may_promote(channel) {
            return Ok(());
        }
        Err(self.denied(
            &format!("changing channel {channel:?}"),
            &format!("promote:{channel}"),
        ))
    }

    pub fn require_admin(&self) -> Result<(), ServiceError> {
        if self.grants.is_admin() {
            return Ok(());
        }
        Err(self.denied("this request", "the admin permission"))
    }
}

/// One lock per channel, so publications of one channel serialise inside this
/// process while other channels publish in parallel. Across instances on one
/// PostgreSQL, `db::lock_channels` does the same, and the compare-and-set on
/// `channels.head` keeps publications consistent whatever happens.
#[derive(Default)]
pub struct ChannelLocks {
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Changes waiting for a channel's lock, to be published together.
    pub(crate) waiting: publish::Waiting,
}

impl ChannelLocks {
    pub fn get(&self, channel: &str) -> Arc<Mutex<()>> {
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(channel.to_string()).or_default().clone()
    }

    /// Changes waiting for `channel`'s lock (for tests and metrics).
    pub fn queued(&self, channel: &str) -> usize {
        self.waiting.len(channel)
    }
}
