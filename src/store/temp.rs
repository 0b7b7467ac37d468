//! The local directory uploads are streamed into before they are stored,
//! whichever backend keeps the blobs: a file is hashed and checked while it
//! is written here, so nothing reaches its final key unverified.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::StoreError;

#[derive(Debug, Clone)]
pub struct TempArea {
    dir: PathBuf,
}

impl TempArea {
    pub fn open(dir: PathBuf) -> Result<TempArea, StoreError> {
        fs::create_dir_all(&dir).map_err(at(&dir))?;
        Ok(TempArea { dir })
    }

    pub fn file(&self) -> Result<tempfile::NamedTempFile, StoreError> {
        tempfile::Builder::new()
            .prefix("upload-")
            .tempfile_in(&self.dir)
            .map_err(at(&self.dir))
    }

    /// Removes files last modified before `older_than`, or all with None.
    pub fn sweep(&self, older_than: Option<SystemTime>) -> Result<usize, StoreError> {
        let mut removed = 0;
        for f in fs::read_dir(&self.dir)? {
            let f = f?;
            let old = match older_than {
                None => true,
                Some(cutoff) => f.metadata()?.modified()? < cutoff,
            };
            if old && fs::remove_file(f.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// An I/O error that names the path it happened on (the kind is kept, so a
/// full disk is still recognised as one).
pub(super) fn at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |e| StoreError::Io(io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}
