//! Domain services: everything the HTTP layer calls. Blocking code (database,
//! blob store) — the HTTP layer runs it via `web::block`.

pub mod channels;
pub mod error;
pub mod gc;
pub mod packages;
pub mod publish;
pub mod repo;
pub mod upload;
pub mod views;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use error::ServiceError;

use crate::config::Config;
use crate::db::{Pool, PooledConn};
use crate::store::BlobStore;

/// Everything a service call needs; cheap to clone into blocking closures.
#[derive(Clone)]
pub struct Ctx {
    pub config: Arc<Config>,
    pub pool: Pool,
    pub store: Arc<dyn BlobStore>,
    pub locks: Arc<ChannelLocks>,
    pub signer: Arc<crate::signing::Signer>,
}

impl Ctx {
    pub fn conn(&self) -> Result<PooledConn, ServiceError> {
        Ok(self.pool.get().map_err(crate::db::DbError::from)?)
    }

    pub fn channel_index(&self, name: &str) -> Result<usize, ServiceError> {
        self.config
            .channels
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| ServiceError::ChannelNotFound(name.to_string()))
    }
}

/// Who made a change, recorded on every event.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub client: String,
}

impl Actor {
    pub fn anonymous(client: impl Into<String>) -> Actor {
        Actor {
            name: "anonymous".into(),
            client: client.into(),
        }
    }
}

/// One lock per channel, so publications of one channel serialise inside this
/// process while other channels publish in parallel. Across processes the
/// compare-and-set on `channels.head` keeps publications consistent.
#[derive(Default)]
pub struct ChannelLocks {
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl ChannelLocks {
    pub fn get(&self, channel: &str) -> Arc<Mutex<()>> {
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(channel.to_string()).or_default().clone()
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
