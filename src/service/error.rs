use crate::db::DbError;
use crate::formats::rpm::RpmError;
use crate::store::StoreError;

/// Failures of the domain layer. The HTTP edge maps each to a status and code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("package {0:?} not found")]
    PackageNotFound(String),
    #[error("channel {0:?} not found")]
    ChannelNotFound(String),
    #[error("revision {1} of channel {0:?} not found")]
    RevisionNotFound(String, i32),
    #[error("{0}")]
    Ambiguous(String),
    #[error("{name}-{evr}.{arch} already exists as a different file ({existing}); a build is never replaced")]
    NevraConflict {
        name: String,
        evr: String,
        arch: String,
        existing: String,
    },
    #[error("the apt pool path {path} is taken by a different file ({existing}); Debian file names carry no epoch, so builds differing only in epoch cannot share a pool")]
    PoolConflict { path: String, existing: String },
    #[error("channel {channel:?} is frozen by {by}: {reason}")]
    Frozen {
        channel: String,
        by: String,
        reason: String,
    },
    #[error("{0}")]
    Held(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Discarded(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("a live token named {0:?} exists already; revoke it first")]
    TokenExists(String),
    #[error("no live token named {0:?}")]
    TokenNotFound(String),
    #[error("unsupported package type: {0}")]
    UnsupportedType(String),
    #[error("invalid package: {0}")]
    InvalidPackage(String),
    #[error("{0}")]
    DigestMismatch(String),
    #[error("upload exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("{0}")]
    InvalidFilename(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotAllowed(String),
    #[error("upload interrupted: {0}")]
    UploadAborted(String),
    #[error("the upload sent nothing for {secs} s and was dropped; nothing was stored")]
    UploadIdle { secs: u64 },
    #[error("another publication of the same channel kept winning; try again")]
    Contention,
    #[error("signing failed: {0}")]
    Signing(String),
    /// A bug of ours: a panic in a request's work, caught and logged.
    #[error("internal failure: {0}")]
    Internal(String),
    /// Our own fault while rendering a revision (a worker thread panicked, or
    /// stored metadata is missing).
    #[error("publication failed: {0}")]
    Publication(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl ServiceError {
    /// Whether this failure is the server's storage (disk, quota, database
    /// file) being full: an operator's fault to fix, said as such (507).
    pub fn is_storage_full(&self) -> bool {
        match self {
            ServiceError::Io(e) | ServiceError::Store(StoreError::Io(e)) => io_is_full(e),
            ServiceError::Db(e) => {
                let m = e.to_string();
                // SQLite's SQLITE_FULL, and PostgreSQL's disk_full (53100) texts.
                m.contains("database or disk is full")
                    || m.contains("No space left on device")
                    || m.contains("Disk quota exceeded")
            }
            _ => false,
        }
    }
}

/// ENOSPC and EDQUOT.
pub fn io_is_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || matches!(e.raw_os_error(), Some(28 | 122))
}

impl From<diesel::result::Error> for ServiceError {
    fn from(e: diesel::result::Error) -> Self {
        ServiceError::Db(DbError::Query(e))
    }
}

impl From<RpmError> for ServiceError {
    fn from(e: RpmError) -> Self {
        match e {
            RpmError::NotRpm => ServiceError::UnsupportedType("not an RPM".into()),
            RpmError::Malformed(m) => ServiceError::InvalidPackage(m),
            e @ (RpmError::PayloadDigest { .. } | RpmError::HeaderDigest) => {
                ServiceError::DigestMismatch(e.to_string())
            }
            RpmError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                ServiceError::InvalidPackage("the file is truncated".into())
            }
            RpmError::Io(e) => ServiceError::Io(e),
        }
    }
}
