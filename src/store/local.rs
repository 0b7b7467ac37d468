//! Local filesystem backend: `<data>/blobs/sha256/<ab>/<digest>`, temp files in
//! `<data>/tmp` on the same filesystem so the final rename is atomic.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::temp::{at, TempArea};
use super::{check_digest, BlobStore, StoreError};

#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    tmp: TempArea,
}

impl LocalStore {
    pub fn open(data_dir: &Path) -> Result<LocalStore, StoreError> {
        let root = data_dir.join("blobs").join("sha256");
        fs::create_dir_all(&root).map_err(at(&root))?;
        let tmp = TempArea::open(data_dir.join("tmp"))?;
        Ok(LocalStore { root, tmp })
    }

    fn path(&self, digest: &str) -> Result<PathBuf, StoreError> {
        check_digest(digest)?;
        Ok(self.root.join(&digest[..2]).join(digest))
    }
}

impl BlobStore for LocalStore {
    fn put_file(&self, digest: &str, file: tempfile::NamedTempFile) -> Result<(), StoreError> {
        let dest = self.path(digest)?;
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        // Durable before visible: a crash after the rename never exposes a torn file.
        file.as_file().sync_all()?;
        file.persist(&dest).map_err(|e| StoreError::Io(e.error))?;
        // And the rename itself durable, before a database row may point at it.
        if let Some(parent) = dest.parent() {
            File::open(parent)?.sync_all()?;
        }
        Ok(())
    }

    fn put_bytes(&self, digest: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let dest = self.path(digest)?;
        if dest.exists() {
            match File::options().append(true).open(&dest) {
                Ok(f) => {
                    f.set_modified(SystemTime::now())?;
                    return Ok(());
                }
                // Swept between the check and the open: write it again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut tmp = self.temp_file()?;
        tmp.write_all(bytes)?;
        self.put_file(digest, tmp)
    }

    fn size(&self, digest: &str) -> Result<Option<u64>, StoreError> {
        match fs::metadata(self.path(digest)?) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn get_range(
        &self,
        digest: &str,
        start: u64,
        len: u64,
    ) -> Result<Box<dyn Read + Send>, StoreError> {
        let mut f = match File::open(self.path(digest)?) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(digest.to_string()))
            }
            Err(e) => return Err(e.into()),
        };
        f.seek(SeekFrom::Start(start))?;
        Ok(Box::new(f.take(len)))
    }

    fn delete(&self, digest: &str) -> Result<(), StoreError> {
        match fs::remove_file(self.path(digest)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn list(&self) -> Result<Vec<(String, SystemTime)>, StoreError> {
        let mut out = Vec::new();
        for dir in fs::read_dir(&self.root)? {
            let dir = dir?;
            if !dir.file_type()?.is_dir() {
                continue;
            }
            for f in fs::read_dir(dir.path())? {
                let f = f?;
                let name = f.file_name().to_string_lossy().to_string();
                if check_digest(&name).is_ok() {
                    out.push((name, f.metadata()?.modified()?));
                }
            }
        }
        Ok(out)
    }

    fn modified(&self, digest: &str) -> Result<Option<SystemTime>, StoreError> {
        match fs::metadata(self.path(digest)?) {
            Ok(m) => Ok(Some(m.modified()?)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn sweep_temp(&self, older_than: Option<SystemTime>) -> Result<usize, StoreError> {
        self.tmp.sweep(older_than)
    }

    fn temp_file(&self) -> Result<tempfile::NamedTempFile, StoreError> {
        self.tmp.file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const D: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn put_get_range_delete() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = LocalStore::open(dir.path()).expect("open");
        assert!(!s.exists(D).expect("exists"));
        s.put_bytes(D, b"hello").expect("put");
        assert_eq!(s.size(D).expect("size"), Some(5));
        let mut out = String::new();
        s.get_range(D, 1, 3)
            .expect("get")
            .read_to_string(&mut out)
            .expect("read");
        assert_eq!(out, "ell");
        let listed: Vec<String> = s
            .list()
            .expect("list")
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(listed, vec![D.to_string()]);
        s.delete(D).expect("delete");
        assert!(!s.exists(D).expect("exists"));
    }

    #[test]
    fn temp_sweep_respects_age() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = LocalStore::open(dir.path()).expect("open");
        let t = s.temp_file().expect("temp");
        let (_, path) = t.keep().expect("keep");
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        assert_eq!(s.sweep_temp(Some(hour_ago)).expect("sweep"), 0);
        assert!(path.exists());
        assert_eq!(s.sweep_temp(None).expect("sweep"), 1);
        assert!(!path.exists());
    }

    #[test]
    fn storing_present_bytes_refreshes_their_time() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = LocalStore::open(dir.path()).expect("open");
        s.put_bytes(D, b"hello").expect("put");
        let old = SystemTime::now() - Duration::from_secs(7200);
        File::options()
            .append(true)
            .open(s.path(D).expect("path"))
            .and_then(|f| f.set_modified(old))
            .expect("age it");
        assert!(s.modified(D).expect("mtime").expect("present") <= old);
        s.put_bytes(D, b"hello").expect("put again");
        assert!(s.modified(D).expect("mtime").expect("present") > old);
        assert_eq!(s.size(D).expect("size"), Some(5));
    }

    #[test]
    fn errors_name_their_path() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").expect("file");
        let err = LocalStore::open(&file).expect_err("a file is no data dir");
        assert!(err.to_string().contains("not-a-dir"), "{err}");
    }

    #[test]
    fn hostile_digests_never_become_paths() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = LocalStore::open(dir.path()).expect("open");
        for bad in ["../../etc/passwd", "", "ABCD", &"g".repeat(64)] {
            assert!(
                matches!(s.size(bad), Err(StoreError::BadDigest(_))),
                "{bad}"
            );
        }
    }
}
