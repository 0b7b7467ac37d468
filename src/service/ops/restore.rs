//! `forklift restore SRC`: a backup put back into the configured target,
//! with the server stopped. Refuses a target that holds anything (a
//! database with Forklift tables, blobs, a different key) unless forced;
//! then the database, the blobs the restored database references (each
//! verified against its digest), the signing keys where the target
//! configuration expects them, and the generated admin token.

use std::fs;
use std::path::{Path, PathBuf};

use super::layout::*;
use super::{human_bytes, io_at, OpsError, Progress};
use crate::config::Config;
use crate::db::DbUrl;
use crate::service::access::tokens::ADMIN_TOKEN_FILE as SERVER_ADMIN_TOKEN;
use crate::service::catalog::queries::referenced_blobs;
use crate::store::BlobStore;

/// What a restore did, line by line.
#[derive(Debug, Default)]
pub struct RestoreReport {
    pub lines: Vec<String>,
    /// Fingerprints of the keys now in place, current first.
    pub fingerprints: Vec<String>,
    pub restored: u64,
    pub present: u64,
}

impl std::fmt::Display for RestoreReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.lines.join("\n"))
    }
}

/// Restores the backup in `src` into the target `config` names, its blobs
/// into `store`. `force` restores over a target that is not empty.
pub fn restore(
    config: &Config,
    store: &dyn BlobStore,
    src: &Path,
    force: bool,
    progress: &dyn Progress,
) -> Result<RestoreReport, OpsError> {
    let manifest = read_manifest(src)?;
    let target = DbUrl::parse(&config.database_url)?;
    let db_file = src.join(&manifest.database_file);
    match (&target, manifest.database.as_str()) {
        (DbUrl::Sqlite(_), "sqlite") | (DbUrl::Postgres(_), "postgresql") => {}
        (_, kind) => {
            return Err(OpsError::Refused(format!(
                "{} holds a {kind} backup; the target database is {}: restore into the same kind",
                src.display(),
                crate::config::redact_password(&config.database_url)
            )))
        }
    }
    if !db_file.is_file() {
        return Err(OpsError::Refused(format!(
            "{} is missing: not a complete backup",
            db_file.display()
        )));
    }
    let keys = key_targets(config, &manifest);
    let existing = crate::db::existing_content(&config.database_url)?;
    refuse_unless_empty(config, store, src, &keys, existing, force)?;

    let mut report = RestoreReport::default();
    restore_database(&target, &db_file, existing.is_some())?;
    report.lines.push(format!(
        "database: {} restored from {} (snapshot of {})",
        manifest.database, manifest.database_file, manifest.created_at
    ));
    restore_blobs(config, store, src, progress, &mut report)?;
    for (entry, to) in &keys {
        let Some(to) = to else {
            report.lines.push(format!(
                "signing key ({}) {} {} not installed: the target configuration sets no signing_key_next",
                entry.role,
                src.join(&entry.file).display(),
                entry.fingerprint
            ));
            continue;
        };
        let bytes = fs::read(src.join(&entry.file)).map_err(io_at(&src.join(&entry.file)))?;
        write_file(to, &bytes, true)?;
        let fingerprint = crate::signing::fingerprint_of(to)?;
        if fingerprint != entry.fingerprint {
            return Err(OpsError::Refused(format!(
                "{} has fingerprint {fingerprint}, the manifest says {}",
                entry.file, entry.fingerprint
            )));
        }
        report.lines.push(format!(
            "signing key ({}): {} {fingerprint}",
            entry.role,
            to.display()
        ));
        report.fingerprints.push(fingerprint);
    }
    if let Some(token) = read_optional(&src.join(ADMIN_TOKEN_FILE))? {
        let to = config.data_dir.join(SERVER_ADMIN_TOKEN);
        write_file(&to, &token, true)?;
        report
            .lines
            .push(format!("admin token: {} (mode 0600)", to.display()));
    }
    report.lines.push(format!(
        "the backed-up configuration is {} (secrets left out); the target's own configuration was used",
        src.join(CONFIG_FILE).display()
    ));
    if manifest.channels != config.channels {
        report.lines.push(format!(
            "note: the backup's channels are {}, the target configuration's {}; forklift serve follows the configuration",
            manifest.channels.join(","),
            config.channels.join(",")
        ));
    }
    Ok(report)
}

fn read_manifest(src: &Path) -> Result<Manifest, OpsError> {
    let path = src.join(MANIFEST);
    let Some(bytes) = read_optional(&path)? else {
        return Err(OpsError::Refused(format!(
            "{} is not a Forklift backup: no {MANIFEST}",
            src.display()
        )));
    };
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| OpsError::Refused(format!("{}: {e}", path.display())))?;
    if manifest.format != FORMAT {
        return Err(OpsError::Refused(format!(
            "{} is backup format {}; this forklift reads format {FORMAT}",
            path.display(),
            manifest.format
        )));
    }
    Ok(manifest)
}

/// Each key of the backup and where the target configuration expects it
/// (None: a next key the target does not configure).
fn key_targets(config: &Config, manifest: &Manifest) -> Vec<(KeyEntry, Option<PathBuf>)> {
    manifest
        .keys
        .iter()
        .map(|k| {
            let to = match k.role.as_str() {
                "next" => config.signing_key_next.clone(),
                _ => Some(
                    config
                        .signing_key
                        .clone()
                        .unwrap_or_else(|| crate::signing::default_key_path(&config.data_dir)),
                ),
            };
            (k.clone(), to)
        })
        .collect()
}

/// Everything the restore would replace, refused unless `force`.
fn refuse_unless_empty(
    config: &Config,
    store: &dyn BlobStore,
    src: &Path,
    keys: &[(KeyEntry, Option<PathBuf>)],
    existing: Option<crate::db::Content>,
    force: bool,
) -> Result<(), OpsError> {
    let mut found = Vec::new();
    if let Some(c) = existing {
        found.push(format!(
            "the database {} holds {}, {} and {}",
            crate::config::redact_password(&config.database_url),
            counted(c.channels, "channel"),
            counted(c.packages, "build"),
            counted(c.tokens, "live token")
        ));
    }
    let blobs = store.list()?.len();
    if blobs > 0 {
        found.push(format!("the store holds {blobs} blobs"));
    }
    for (entry, to) in keys {
        let Some(to) = to else { continue };
        let ours = read_optional(&src.join(&entry.file))?;
        if let Some(theirs) = read_optional(to)? {
            if Some(&theirs) != ours.as_ref() {
                found.push(format!("a different signing key is at {}", to.display()));
            }
        }
    }
    let token = config.data_dir.join(SERVER_ADMIN_TOKEN);
    if let (Some(ours), Some(theirs)) = (
        read_optional(&src.join(ADMIN_TOKEN_FILE))?,
        read_optional(&token)?,
    ) {
        if ours != theirs {
            found.push(format!("a different admin token is at {}", token.display()));
        }
    }
    if found.is_empty() || force {
        return Ok(());
    }
    Err(OpsError::Refused(format!(
        "the target is not empty: {}. Restoring would replace it; stop its server and run again with --force to restore over it",
        found.join("; ")
    )))
}

fn counted(n: i64, what: &str) -> String {
    match n {
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    }
}

fn restore_database(target: &DbUrl, file: &Path, existing: bool) -> Result<(), OpsError> {
    match target {
        DbUrl::Sqlite(path) => {
            let path = Path::new(path);
            let dir = path.parent().unwrap_or(Path::new("."));
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            fs::create_dir_all(dir).map_err(io_at(dir))?;
            let bytes = fs::read(file).map_err(io_at(file))?;
            // The old database's journal must not be replayed into the new one.
            for suffix in ["-wal", "-shm", "-journal"] {
                let mut side = path.as_os_str().to_owned();
                side.push(suffix);
                remove_if_present(Path::new(&side))?;
            }
            write_file(path, &bytes, true)?;
        }
        DbUrl::Postgres(url) => {
            let mut cmd = pg_tool("pg_restore", url)?;
            cmd.args([
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
            ]);
            if existing {
                cmd.args(["--clean", "--if-exists"]);
            }
            cmd.arg(file);
            run_pg_tool("pg_restore", &mut cmd)?;
        }
    }
    Ok(())
}

/// The blobs the restored database references, from the backup into the
/// store, each verified; those the store holds at the right size stay.
fn restore_blobs(
    config: &Config,
    store: &dyn BlobStore,
    src: &Path,
    progress: &dyn Progress,
    report: &mut RestoreReport,
) -> Result<(), OpsError> {
    // Connecting brings an older backup's schema up to date, as serve would.
    let pool = crate::db::connect(&config.database_url)?;
    let refs = referenced_blobs(&mut *pool.get().map_err(crate::db::DbError::from)?)?;
    drop(pool);
    let mut blobs: Vec<_> = refs.into_iter().collect();
    blobs.sort_by(|a, b| a.0.cmp(&b.0));
    let total: u64 = blobs.iter().map(|(_, u)| u.size.max(0) as u64).sum();
    progress.begin("blobs", blobs.len() as u64, total);
    let mut bytes = 0;
    for (digest, used) in &blobs {
        let size = used.size.max(0) as u64;
        if store.size(digest)? == Some(size) {
            report.present += 1;
            progress.advance(size);
            progress.file_done();
            continue;
        }
        let from_path = blob_path(src, digest)?;
        let mut from = fs::File::open(&from_path).map_err(|_| OpsError::MissingBlob {
            digest: digest.clone(),
            what: used.what.clone(),
            place: format!("the backup {}", src.display()),
        })?;
        let mut tmp = store.temp_file()?;
        let (sha, len) = copy_hashed(&mut from, &mut tmp, progress).map_err(io_at(&from_path))?;
        if &sha != digest || len != size {
            return Err(OpsError::DamagedBlob {
                digest: digest.clone(),
                what: used.what.clone(),
                place: format!("the backup {}", src.display()),
                problem: format!("{len} bytes with SHA-256 {sha}, {size} bytes expected"),
            });
        }
        store.put_file(digest, tmp)?;
        report.restored += 1;
        bytes += size;
        progress.file_done();
    }
    progress.end();
    report.lines.push(format!(
        "blobs: {} referenced: {} restored ({}, each verified), {} already present",
        blobs.len(),
        report.restored,
        human_bytes(bytes),
        report.present
    ));
    Ok(())
}
