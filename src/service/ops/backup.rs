//! `forklift backup DEST`: a consistent copy of a running server. The
//! database first, as one snapshot (SQLite's `VACUUM INTO`, or `pg_dump`
//! of an exported snapshot); then exactly the blobs that snapshot
//! references, read through the store and verified, skipping those DEST
//! holds already; then the keys, the configuration and the manifest. The
//! database file is renamed into place last but one, the manifest last: an
//! interrupted backup never leaves a database naming blobs it lacks.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::layout::*;
use super::{human_bytes, io_at, OpsError, Progress};
use crate::db::DbUrl;
use crate::service::access::tokens::ADMIN_TOKEN_FILE as SERVER_ADMIN_TOKEN;
use crate::service::catalog::queries::{referenced_blobs, BlobUse};
use crate::service::catalog::views::rfc3339;
use crate::service::{Ctx, ServiceError};
use crate::store::BlobStore;

/// What a backup did.
#[derive(Debug)]
pub struct BackupReport {
    pub dest: PathBuf,
    pub manifest: Manifest,
    pub database_bytes: u64,
    /// Blobs copied now, and their bytes.
    pub copied: u64,
    pub copied_bytes: u64,
    /// Blobs DEST held already with the right size.
    pub present: u64,
}

impl std::fmt::Display for BackupReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = &self.manifest;
        writeln!(f, "backup into {}", self.dest.display())?;
        writeln!(
            f,
            "database: {} snapshot {} ({})",
            m.database,
            m.database_file,
            human_bytes(self.database_bytes)
        )?;
        writeln!(
            f,
            "blobs: {} referenced ({} builds, {} published files; {}): {} copied ({}), {} already present",
            m.blobs,
            m.packages,
            m.published_files,
            human_bytes(m.blob_bytes),
            self.copied,
            human_bytes(self.copied_bytes),
            self.present
        )?;
        for k in &m.keys {
            writeln!(f, "signing key ({}): {} {}", k.role, k.file, k.fingerprint)?;
        }
        if m.admin_token {
            writeln!(f, "admin token: {ADMIN_TOKEN_FILE} (mode 0600)")?;
        }
        write!(f, "{CONFIG_FILE} (secrets left out) and {MANIFEST} written")
    }
}

/// Backs the server of `ctx` up into `dest`, while it runs.
pub fn backup(ctx: &Ctx, dest: &Path, progress: &dyn Progress) -> Result<BackupReport, OpsError> {
    let existed = dest.exists();
    fs::create_dir_all(dest).map_err(io_at(dest))?;
    if let Err(e) = refuse_inside_data_dir(&ctx.config.data_dir, dest) {
        if !existed {
            let _ = fs::remove_dir(dest);
        }
        return Err(e);
    }
    let created_at = rfc3339(ctx.clock.now());
    let snapshot = snapshot_database(ctx, dest)?;
    let (copied, copied_bytes, present) =
        copy_blobs(ctx.store.as_ref(), &snapshot.refs, dest, progress)?;
    let keys = copy_keys(ctx, dest)?;
    let config = ctx
        .config
        .to_toml()
        .map_err(|e| ServiceError::Internal(format!("configuration as TOML: {e}")))?;
    write_file(&dest.join(CONFIG_FILE), config.as_bytes(), false)?;
    let admin_token = copy_optional(
        &ctx.config.data_dir.join(SERVER_ADMIN_TOKEN),
        &dest.join(ADMIN_TOKEN_FILE),
    )?;
    let final_path = dest.join(snapshot.file);
    // The database holds token hashes and webhook secrets.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&snapshot.partial, fs::Permissions::from_mode(0o600))
            .map_err(io_at(&snapshot.partial))?;
    }
    fs::rename(&snapshot.partial, &final_path).map_err(io_at(&final_path))?;
    for other in [SQLITE_FILE, PGDUMP_FILE] {
        if other != snapshot.file {
            remove_if_present(&dest.join(other))?;
        }
    }
    sync_dir(dest)?;
    let database_bytes = fs::metadata(&final_path).map_err(io_at(&final_path))?.len();
    let manifest = Manifest {
        format: FORMAT,
        created_at,
        forklift_version: env!("CARGO_PKG_VERSION").into(),
        database: snapshot.kind.into(),
        database_file: snapshot.file.into(),
        channels: ctx.config.channels.clone(),
        packages: snapshot.refs.values().filter(|u| u.package).count() as u64,
        published_files: snapshot.refs.values().filter(|u| !u.package).count() as u64,
        blobs: snapshot.refs.len() as u64,
        blob_bytes: snapshot.refs.values().map(|u| u.size.max(0) as u64).sum(),
        keys,
        admin_token,
    };
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| ServiceError::Internal(format!("manifest: {e}")))?;
    write_file(&dest.join(MANIFEST), &json, false)?;
    Ok(BackupReport {
        dest: dest.to_path_buf(),
        manifest,
        database_bytes,
        copied,
        copied_bytes,
        present,
    })
}

/// A backup inside the data directory would copy the store into itself.
fn refuse_inside_data_dir(data_dir: &Path, dest: &Path) -> Result<(), OpsError> {
    let (Ok(data), Ok(dest_c)) = (data_dir.canonicalize(), dest.canonicalize()) else {
        return Ok(());
    };
    if dest_c.starts_with(&data) {
        return Err(OpsError::Refused(format!(
            "{} is inside the data directory {}: back up somewhere else",
            dest.display(),
            data_dir.display()
        )));
    }
    Ok(())
}

struct Snapshot {
    /// Where the database copy was written, renamed to `file` at the end.
    partial: PathBuf,
    file: &'static str,
    kind: &'static str,
    /// What the copy references: the blobs the backup must hold.
    refs: HashMap<String, BlobUse>,
}

fn snapshot_database(ctx: &Ctx, dest: &Path) -> Result<Snapshot, OpsError> {
    match DbUrl::parse(&ctx.config.database_url)? {
        DbUrl::Sqlite(_) => {
            let partial = dest.join(format!("{SQLITE_FILE}.partial"));
            // VACUUM INTO writes only into a new file.
            remove_if_present(&partial)?;
            crate::db::sqlite_snapshot(&mut *ctx.conn()?, &partial)?;
            // The references as the copy records them, read from the copy.
            let mut copy = crate::db::open_sqlite_file(&partial)?;
            let refs = referenced_blobs(&mut copy)?;
            Ok(Snapshot {
                partial,
                file: SQLITE_FILE,
                kind: "sqlite",
                refs,
            })
        }
        DbUrl::Postgres(url) => {
            let partial = dest.join(format!("{PGDUMP_FILE}.partial"));
            let mut dump = pg_tool("pg_dump", &url)?;
            dump.arg("--format=custom")
                .arg(format!("--file={}", partial.display()));
            let mut conn = ctx.conn()?;
            // pg_dump dumps the snapshot this transaction exported, so the
            // references read here are exactly the dump's.
            let refs = crate::db::read_snapshot(&mut conn, |c| -> Result<_, OpsError> {
                let id = crate::db::export_snapshot(c)?.ok_or_else(|| {
                    ServiceError::Internal("no snapshot to export on PostgreSQL".into())
                })?;
                let refs = referenced_blobs(c)?;
                dump.arg(format!("--snapshot={id}"));
                run_pg_tool("pg_dump", &mut dump)?;
                Ok(refs)
            })?;
            Ok(Snapshot {
                partial,
                file: PGDUMP_FILE,
                kind: "postgresql",
                refs,
            })
        }
    }
}

/// Copies every referenced blob DEST lacks (or holds at another size);
/// returns (copied, their bytes, already present).
fn copy_blobs(
    store: &dyn BlobStore,
    refs: &HashMap<String, BlobUse>,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<(u64, u64, u64), OpsError> {
    let mut blobs: Vec<(&String, &BlobUse)> = refs.iter().collect();
    blobs.sort_by(|a, b| a.0.cmp(b.0));
    let total: u64 = blobs.iter().map(|(_, u)| u.size.max(0) as u64).sum();
    progress.begin("blobs", blobs.len() as u64, total);
    let (mut copied, mut copied_bytes, mut present) = (0, 0, 0);
    for (digest, used) in blobs {
        let size = used.size.max(0) as u64;
        let path = blob_path(dest, digest)?;
        if fs::metadata(&path).is_ok_and(|m| m.len() == size) {
            present += 1;
            progress.advance(size);
        } else {
            copy_blob(store, digest, used, &path, progress)?;
            copied += 1;
            copied_bytes += size;
        }
        progress.file_done();
    }
    progress.end();
    Ok((copied, copied_bytes, present))
}

fn copy_blob(
    store: &dyn BlobStore,
    digest: &str,
    used: &BlobUse,
    path: &Path,
    progress: &dyn Progress,
) -> Result<(), OpsError> {
    let place = "the live store";
    let size = store.size(digest)?.ok_or_else(|| OpsError::MissingBlob {
        digest: digest.into(),
        what: used.what.clone(),
        place: format!("{place} (discarded or swept since the snapshot? run the backup again; else run forklift fsck)"),
    })?;
    let damaged = |problem: String| OpsError::DamagedBlob {
        digest: digest.into(),
        what: used.what.clone(),
        place: place.into(),
        problem: format!("{problem}; run forklift fsck"),
    };
    if size != used.size.max(0) as u64 {
        return Err(damaged(format!(
            "{size} bytes where the database records {}",
            used.size
        )));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_at(dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".partial-")
        .tempfile_in(dir)
        .map_err(io_at(dir))?;
    let mut from = store.get_range(digest, 0, size)?;
    let (sha, len) = copy_hashed(&mut from, &mut tmp, progress).map_err(io_at(path))?;
    if sha != digest || len != size {
        return Err(damaged(format!("{len} bytes with SHA-256 {sha}")));
    }
    tmp.as_file().sync_all().map_err(io_at(path))?;
    tmp.persist(path).map_err(|e| OpsError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// The configured signing keys (or the generated one), mode 0600.
fn copy_keys(ctx: &Ctx, dest: &Path) -> Result<Vec<KeyEntry>, OpsError> {
    let current = ctx
        .config
        .signing_key
        .clone()
        .unwrap_or_else(|| crate::signing::default_key_path(&ctx.config.data_dir));
    let mut keys = Vec::new();
    for (role, from, rel) in [
        ("current", Some(current), CURRENT_KEY),
        ("next", ctx.config.signing_key_next.clone(), NEXT_KEY),
    ] {
        let to = dest.join(rel);
        let Some(from) = from else {
            remove_if_present(&to)?;
            continue;
        };
        let bytes = fs::read(&from).map_err(io_at(&from))?;
        write_file(&to, &bytes, true)?;
        keys.push(KeyEntry {
            role: role.into(),
            file: rel.into(),
            fingerprint: crate::signing::fingerprint_of(&from)?,
        });
    }
    Ok(keys)
}

/// Copies `from` (mode 0600) when it exists, else removes a stale `to`.
fn copy_optional(from: &Path, to: &Path) -> Result<bool, OpsError> {
    match read_optional(from)? {
        Some(bytes) => {
            write_file(to, &bytes, true)?;
            Ok(true)
        }
        None => {
            remove_if_present(to)?;
            Ok(false)
        }
    }
}
