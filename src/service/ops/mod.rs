//! Operations on a server's whole state, for the `forklift backup`,
//! `forklift restore` and `forklift fsck` commands: a consistent copy of the
//! database, the blobs it references, the signing keys and the configuration
//! (`backup`); that copy put back into an empty target (`restore`); and the
//! store checked against the database, orphans and damaged heads repaired
//! (`fsck`). Backup and fsck run beside a live server: short read
//! transactions, no locks beyond a publication's, and the sweep's own orphan
//! rules (`publish::gc`), so uploads in flight are never touched.
//!
//! A backup directory holds `manifest.json`, `forklift.db` (SQLite) or
//! `forklift.pgdump` (PostgreSQL, `pg_dump --format=custom`), `blobs/sha256/
//! <ab>/<digest>` as the file store lays them out, `keys/`, `config.toml` and,
//! when the server generated one, `admin-token`.

pub mod backup;
pub mod fsck;
mod layout;
pub mod progress;
mod repair;
pub mod restore;

pub use layout::Manifest;
pub use progress::{NoProgress, Progress};

use std::path::PathBuf;

use crate::db::DbError;
use crate::service::ServiceError;
use crate::signing::SigningError;
use crate::store::StoreError;

/// Failures of the operator commands. [`OpsError::exit_code`] sorts them
/// into "could not run as asked" (2) and "ran and failed" (1).
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The command cannot run as asked: a target that is not empty, a
    /// directory that is not a backup, a backup of the other database kind.
    #[error("{0}")]
    Refused(String),
    /// An external program the command needs (pg_dump, pg_restore).
    #[error("{tool}: {message}")]
    Tool { tool: String, message: String },
    /// A blob the database references is not in the store it is read from.
    #[error("blob {digest} ({what}) is missing from {place}")]
    MissingBlob {
        digest: String,
        what: String,
        place: String,
    },
    /// A blob's bytes are not what its digest or the database says.
    #[error("blob {digest} ({what}) in {place} is damaged: {problem}")]
    DamagedBlob {
        digest: String,
        what: String,
        place: String,
        problem: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Signing(#[from] SigningError),
}

impl From<diesel::result::Error> for OpsError {
    fn from(e: diesel::result::Error) -> Self {
        OpsError::Db(DbError::Query(e))
    }
}

impl OpsError {
    /// 2 when the command could not run as asked (usage, configuration, a
    /// missing tool, a refused target), 1 when it ran and failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            OpsError::Refused(_) | OpsError::Tool { .. } => 2,
            _ => 1,
        }
    }
}

/// An I/O error that names its path.
pub(crate) fn io_at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> OpsError + '_ {
    move |source| OpsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `1.5 MiB`, for reports.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
