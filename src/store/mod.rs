//! Content-addressed blob store. Every package file and every published metadata
//! file lives here exactly once, under its SHA-256.
//!
//! The interface is deliberately small (put / get a range / size / delete /
//! list): the local filesystem (`local`, the default) and S3-compatible object
//! storage (`object`) implement it.

mod local;
mod object;
mod temp;

pub use local::LocalStore;
pub use object::{ObjectBlobStore, S3Settings};

use std::io::Read;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("blob {0} not found")]
    NotFound(String),
    #[error("invalid blob digest {0:?}")]
    BadDigest(String),
    #[error("blob store I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("object store error: {0}")]
    Remote(String),
}

pub trait BlobStore: Send + Sync + 'static {
    /// Moves a fully written and validated file into the store under `digest`.
    /// The blob becomes visible atomically; the source path is consumed.
    fn put_file(&self, digest: &str, file: tempfile::NamedTempFile) -> Result<(), StoreError>;
    /// Stores small in-memory content (published metadata). When the blob is
    /// present already its modification time is refreshed, so the sweep sees
    /// it as in use while the revision that reuses it commits.
    fn put_bytes(&self, digest: &str, bytes: &[u8]) -> Result<(), StoreError>;
    /// Size in bytes, or None when absent.
    fn size(&self, digest: &str) -> Result<Option<u64>, StoreError>;
    /// Reads `len` bytes starting at `start`.
    fn get_range(
        &self,
        digest: &str,
        start: u64,
        len: u64,
    ) -> Result<Box<dyn Read + Send>, StoreError>;
    fn delete(&self, digest: &str) -> Result<(), StoreError>;
    fn exists(&self, digest: &str) -> Result<bool, StoreError> {
        Ok(self.size(digest)?.is_some())
    }
    /// Every stored digest with its last modification time (for the orphan sweep).
    fn list(&self) -> Result<Vec<(String, std::time::SystemTime)>, StoreError>;
    /// Last modification time, or None when absent.
    fn modified(&self, digest: &str) -> Result<Option<std::time::SystemTime>, StoreError>;
    /// Removes temp files last modified before `older_than`, or all of them
    /// with None (uploads cut off by a crash or by a client gone silent).
    fn sweep_temp(&self, older_than: Option<std::time::SystemTime>) -> Result<usize, StoreError>;
    /// A temp file on the same volume as the store, for streaming uploads into.
    fn temp_file(&self) -> Result<tempfile::NamedTempFile, StoreError>;
    /// A short-lived URL from which the blob can be fetched without us, when
    /// the backend can sign one (object storage); None otherwise.
    fn presign(
        &self,
        _digest: &str,
        _valid_for: std::time::Duration,
    ) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    /// Reads a whole blob into memory; only for small metadata files.
    fn get_bytes(&self, digest: &str) -> Result<Vec<u8>, StoreError> {
        let len = self
            .size(digest)?
            .ok_or_else(|| StoreError::NotFound(digest.to_string()))?;
        let mut out = Vec::with_capacity(len as usize);
        self.get_range(digest, 0, len)?.read_to_end(&mut out)?;
        Ok(out)
    }
}

/// A digest is exactly 64 lowercase hex characters; anything else never reaches a path.
pub fn check_digest(digest: &str) -> Result<(), StoreError> {
    if digest.len() == 64
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(StoreError::BadDigest(digest.to_string()))
    }
}

/// Opens the store configured for `data_dir`.
pub fn open_local(data_dir: &Path) -> Result<LocalStore, StoreError> {
    LocalStore::open(data_dir)
}
