//! The backup directory's layout and the file handling backup and restore
//! share: the manifest, blob paths, hashed copies, private files, and the
//! PostgreSQL client programs.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::{io_at, OpsError, Progress};
use crate::store::check_digest;

/// The manifest's format; a restore refuses others.
pub const FORMAT: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
pub const SQLITE_FILE: &str = "forklift.db";
pub const PGDUMP_FILE: &str = "forklift.pgdump";
pub const CONFIG_FILE: &str = "config.toml";
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
pub const CURRENT_KEY: &str = "keys/signing-key.asc";
pub const NEXT_KEY: &str = "keys/signing-key-next.asc";

/// `manifest.json`: what a backup holds, written last.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// RFC 3339, when the database snapshot was taken.
    pub created_at: String,
    pub forklift_version: String,
    /// `sqlite` or `postgresql`.
    pub database: String,
    /// The database file in the backup directory.
    pub database_file: String,
    pub channels: Vec<String>,
    /// Builds (not discarded) and published files the snapshot references.
    pub packages: u64,
    pub published_files: u64,
    /// Distinct blobs referenced, and their bytes.
    pub blobs: u64,
    pub blob_bytes: u64,
    pub keys: Vec<KeyEntry>,
    pub admin_token: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyEntry {
    /// `current` or `next` (the configured `signing_key_next`).
    pub role: String,
    /// Relative to the backup directory.
    pub file: String,
    pub fingerprint: String,
}

/// Where a blob lives under a directory laid out like the file store.
pub fn blob_path(root: &Path, digest: &str) -> Result<PathBuf, OpsError> {
    check_digest(digest)?;
    Ok(root
        .join("blobs")
        .join("sha256")
        .join(&digest[..2])
        .join(digest))
}

/// Copies `from` into `to`, hashing on the way and reporting bytes to
/// `progress`; returns the SHA-256 and the length.
pub fn copy_hashed(
    from: &mut dyn Read,
    to: &mut dyn Write,
    progress: &dyn Progress,
) -> std::io::Result<(String, u64)> {
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
        total += n as u64;
        progress.advance(n as u64);
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// Writes a file whole or not at all (a temp file renamed over it), synced;
/// readable by the owner only when `private`.
pub fn write_file(path: &Path, bytes: &[u8], private: bool) -> Result<(), OpsError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_at(dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".partial-")
        .tempfile_in(dir)
        .map_err(io_at(dir))?;
    tmp.write_all(bytes).map_err(io_at(path))?;
    tmp.as_file().sync_all().map_err(io_at(path))?;
    // tempfile creates files 0600 already; a public file is widened.
    #[cfg(unix)]
    if !private {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644)).map_err(io_at(path))?;
    }
    #[cfg(not(unix))]
    let _ = private;
    tmp.persist(path).map_err(|e| OpsError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Reads a file that may be absent.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, OpsError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_at(path)(e)),
    }
}

/// Removes a file that may be absent.
pub fn remove_if_present(path: &Path) -> Result<(), OpsError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_at(path)(e)),
    }
}

/// Syncs a directory, so the renames in it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<(), OpsError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(dir))
}

/// A PostgreSQL client program (`pg_dump`, `pg_restore`) for the database
/// at `url`: the password, if the URL has one, goes in PGPASSWORD rather
/// than on the command line, where other local users could read it.
pub fn pg_tool(tool: &str, url: &str) -> Result<Command, OpsError> {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        return Err(OpsError::Tool {
            tool: tool.into(),
            message: "not found on PATH: install the PostgreSQL client programs \
                      (the server's major version or newer), e.g. `apt-get install postgresql-client`, \
                      and run this again"
                .into(),
        });
    }
    let (url, password) = split_password(url);
    let mut cmd = Command::new(tool);
    cmd.arg(format!("--dbname={url}"));
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    Ok(cmd)
}

/// Runs a PostgreSQL client program; its stderr becomes the error.
pub fn run_pg_tool(tool: &str, cmd: &mut Command) -> Result<(), OpsError> {
    let out = cmd.output().map_err(|e| OpsError::Tool {
        tool: tool.into(),
        message: e.to_string(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(OpsError::Tool {
        tool: tool.into(),
        message: format!(
            "failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    })
}

/// `postgres://user:secret@host/db` → (`postgres://user@host/db`, the
/// secret percent-decoded).
fn split_password(url: &str) -> (String, Option<String>) {
    let (Some(s), Some(at)) = (url.find("://"), url.rfind('@')) else {
        return (url.to_string(), None);
    };
    if at < s {
        return (url.to_string(), None);
    }
    match url[s + 3..at].find(':') {
        Some(c) => {
            let colon = s + 3 + c;
            let bare = format!("{}{}", &url[..colon], &url[at..]);
            (bare, Some(percent_decode(&url[colon + 1..at])))
        }
        None => (url.to_string(), None),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_leave_the_url() {
        assert_eq!(
            split_password("postgres://fk:s%40cret@db:5432/forklift"),
            (
                "postgres://fk@db:5432/forklift".to_string(),
                Some("s@cret".to_string())
            )
        );
        assert_eq!(
            split_password("postgres://fk@db/forklift"),
            ("postgres://fk@db/forklift".to_string(), None)
        );
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}
