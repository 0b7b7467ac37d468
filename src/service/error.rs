use crate::db::DbError;
use crate::formats::rpm::RpmError;
use crate::store::StoreError;

/// Failures of the service layer: one enum per domain, the request's own
/// mistakes, and the server's faults. The HTTP edge maps every variant to a
/// status and a stable code, once (`http/error.rs`, pinned by a test there).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Promotion(#[from] PromotionError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    /// A value in the request is wrong (a blank reason, a bad time, an
    /// invalid policy or token request).
    #[error("{0}")]
    BadRequest(String),
    /// A bug of ours: a panic in a request's work, caught and logged, or
    /// stored data we cannot read back.
    #[error("internal failure: {0}")]
    Internal(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// The catalog: what a request names does not exist, or names several.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("package {0:?} not found")]
    PackageNotFound(String),
    #[error("channel {0:?} not found")]
    ChannelNotFound(String),
    #[error("revision {1} of channel {0:?} not found")]
    RevisionNotFound(String, i32),
    #[error("{0}")]
    Ambiguous(String),
    /// Anything else that is not there (a file, an event, a name's latest build).
    #[error("{0}")]
    NotFound(String),
}

/// Access: who the caller is and what its token may do.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("a live token named {0:?} exists already; revoke it first")]
    TokenExists(String),
    #[error("no live token named {0:?}")]
    TokenNotFound(String),
}

/// Ingest: an upload that is refused, and why.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
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
    #[error("upload interrupted: {0}")]
    UploadAborted(String),
    #[error("the upload sent nothing for {secs} s and was dropped; nothing was stored")]
    UploadIdle { secs: u64 },
    #[error("{name}-{evr}.{arch} already exists as a different file ({existing}); a build is never replaced")]
    NevraConflict {
        name: String,
        evr: String,
        arch: String,
        existing: String,
    },
    #[error("the apt pool path {path} is taken by a different file ({existing}); Debian file names carry no epoch, so builds differing only in epoch cannot share a pool")]
    PoolConflict { path: String, existing: String },
    #[error("uploads go into {entry:?}, the first channel; {channel:?} is reached by promotion")]
    NotEntryChannel { channel: String, entry: String },
}

/// Promotion: a move between channels that the rules refuse.
#[derive(Debug, thiserror::Error)]
pub enum PromotionError {
    #[error("{0}")]
    NotAllowed(String),
    #[error("{0}")]
    Held(String),
    #[error("{0}")]
    Discarded(String),
    /// The target channel would hold builds whose requirements nothing
    /// there (or in the base system) meets.
    #[error("{}", .0.message())]
    DependenciesUnsatisfied(Box<Unsatisfied>),
    /// Required checks have not passed in the source channel.
    #[error("{0}")]
    ChecksNotPassed(String),
    /// A check was reported for a channel the build is not in.
    #[error("{0}")]
    NotInChannel(String),
}

/// What a refused promotion would have left unmet: the error body's `details`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Unsatisfied {
    pub channel: String,
    pub missing: Vec<MissingDep>,
}

/// One requirement nothing meets, who has it, and the builds of the source
/// channel that would meet it (to promote together).
#[derive(Debug, Clone, serde::Serialize)]
pub struct MissingDep {
    pub capability: String,
    pub required_by: BuildRef,
    pub offered: Vec<BuildRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BuildRef {
    pub id: String,
    pub filename: String,
}

impl Unsatisfied {
    pub fn message(&self) -> String {
        let shown: Vec<String> = self
            .missing
            .iter()
            .take(10)
            .map(|m| {
                let offer = match m.offered.first() {
                    Some(o) => format!(" ({} would provide it)", o.filename),
                    None => String::new(),
                };
                format!("{} needs {}{offer}", m.required_by.filename, m.capability)
            })
            .collect();
        let more = match self.missing.len() {
            n if n > 10 => format!(" and {} more", n - 10),
            _ => String::new(),
        };
        format!(
            "{:?} would hold builds whose dependencies it does not satisfy: {}{more}; \
             promote what provides them together (see details.missing[].offered), \
             or an admin may force it",
            self.channel,
            shown.join("; ")
        )
    }
}

/// Publication: a change that could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("channel {channel:?} is frozen by {by}: {reason}")]
    Frozen {
        channel: String,
        by: String,
        reason: String,
    },
    #[error("the build left {channel:?} while it was being promoted")]
    LeftSource { channel: String },
    #[error("another publication of the same channel kept winning; try again")]
    Contention,
    /// A package row of the change exists already: a concurrent identical
    /// upload won. Only ingest adds packages and handles this; elsewhere it
    /// is a bug.
    #[error("a package of this change was inserted concurrently")]
    DuplicatePackage,
    #[error("signing failed: {0}")]
    Signing(String),
    /// Our own fault while rendering a revision (a worker thread panicked,
    /// or stored metadata is missing).
    #[error("publication failed: {0}")]
    Publication(String),
}

/// Webhook subscriptions.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no webhook {0}")]
    NotFound(i64),
    #[error("a webhook named {0:?} exists already")]
    NameTaken(String),
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
            RpmError::NotRpm => IngestError::UnsupportedType("not an RPM".into()).into(),
            RpmError::Malformed(m) => IngestError::InvalidPackage(m).into(),
            e @ (RpmError::PayloadDigest { .. } | RpmError::HeaderDigest) => {
                IngestError::DigestMismatch(e.to_string()).into()
            }
            RpmError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                IngestError::InvalidPackage("the file is truncated".into()).into()
            }
            RpmError::Io(e) => ServiceError::Io(e),
        }
    }
}
