//! `forklift fsck [--repair]`: the store checked against the database, on a
//! live server. Every build's file (size and SHA-256), every channel head's
//! published files (size, SHA-256) and signatures (by exactly the current
//! keys), the memberships against the builds, and the orphans the sweep
//! would remove. Each channel's head is read in one short snapshot
//! transaction; blobs are hashed outside any transaction.
//!
//! `--repair` (`repair.rs`) removes the orphans and republishes each damaged
//! head. A damaged build cannot be repaired: its bytes are the build.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;

use super::layout::copy_hashed;
use super::{human_bytes, OpsError, Progress};
use crate::db::schema::*;
use crate::service::catalog::queries::{head_revision, open_members, open_memberships};
use crate::service::publish::gc;
use crate::service::Ctx;

/// Something wrong that fsck found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// A build's file; cannot be repaired.
    Package {
        filename: String,
        id: String,
        problem: String,
    },
    /// A channel head's published file or signature; republishing repairs it.
    Head {
        channel: String,
        revision: i32,
        path: String,
        problem: String,
    },
    /// A membership naming a build that is gone or discarded.
    Membership {
        channel: String,
        package_id: String,
        problem: String,
    },
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Package {
                filename,
                id,
                problem,
            } => write!(f, "package {filename} ({id}): {problem}"),
            Damage::Head {
                channel,
                revision,
                path,
                problem,
            } => write!(f, "{channel} revision {revision} {path}: {problem}"),
            Damage::Membership {
                channel,
                package_id,
                problem,
            } => write!(f, "{channel} membership of {package_id}: {problem}"),
        }
    }
}

/// What fsck found, and what it repaired.
#[derive(Debug, Default)]
pub struct FsckReport {
    pub packages: u64,
    pub package_bytes: u64,
    pub heads: u64,
    pub head_files: u64,
    pub signatures: u64,
    /// Everything found wrong, before any repair.
    pub damage: Vec<Damage>,
    /// Unreferenced blobs past the sweep's age, with their sizes.
    pub orphans: Vec<(String, u64)>,
    pub repaired: Vec<String>,
    /// What is still wrong (after `--repair`, what it could not repair).
    pub remaining: Vec<String>,
    /// Whether this run repaired.
    pub repair: bool,
}

impl FsckReport {
    /// Nothing left to fix.
    pub fn is_clean(&self) -> bool {
        self.remaining.is_empty()
    }
}

impl std::fmt::Display for FsckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "checked {} builds ({}), {} channel heads ({} published files, {} signatures)",
            self.packages,
            human_bytes(self.package_bytes),
            self.heads,
            self.head_files,
            self.signatures
        )?;
        for d in &self.damage {
            writeln!(f, "DAMAGED {d}")?;
        }
        for (digest, size) in &self.orphans {
            writeln!(
                f,
                "orphan blob {digest} ({}): referenced by nothing for over {}",
                human_bytes(*size),
                humantime::format_duration(gc::LEFTOVER_AGE)
            )?;
        }
        for r in &self.repaired {
            writeln!(f, "repaired: {r}")?;
        }
        if self.repair {
            for r in &self.remaining {
                writeln!(f, "not repaired: {r}")?;
            }
        }
        let n = self.remaining.len();
        let problems = if n == 1 { "problem" } else { "problems" };
        match (n, self.repair) {
            (0, _) => write!(f, "clean"),
            (n, false) => write!(
                f,
                "{n} {problems} found; forklift fsck --repair removes the orphans and republishes damaged heads"
            ),
            (n, true) => write!(f, "{n} {problems} left"),
        }
    }
}

/// Checks the server of `ctx`; with `repair`, fixes what can be fixed.
pub fn fsck(ctx: &Ctx, repair: bool, progress: &dyn Progress) -> Result<FsckReport, OpsError> {
    let mut report = FsckReport {
        repair,
        ..FsckReport::default()
    };
    let packages: Vec<(String, String, i64)> = packages::table
        .filter(packages::discarded_at.is_null())
        .select((packages::id, packages::filename, packages::size))
        .load(&mut *ctx.conn()?)?;
    let mut heads = Vec::new();
    for channel in &ctx.config.channels {
        heads.push(read_head(ctx, channel)?);
    }
    report.damage.extend(check_memberships(ctx)?);
    let mut distinct: HashMap<&str, i64> = HashMap::new();
    for h in &heads {
        for (_, blob, size) in &h.files {
            distinct.insert(blob, *size);
        }
    }
    let files = packages.len() + distinct.len();
    let bytes: i64 = packages.iter().map(|p| p.2).sum::<i64>() + distinct.values().sum::<i64>();
    progress.begin("checking", files as u64, bytes.max(0) as u64);
    for (id, filename, size) in &packages {
        report.packages += 1;
        report.package_bytes += (*size).max(0) as u64;
        let problem = check_blob(ctx, id, *size, progress)?;
        progress.file_done();
        if let Some(problem) = problem {
            if still_a_build(ctx, id)? {
                report.damage.push(Damage::Package {
                    filename: filename.clone(),
                    id: id.clone(),
                    problem,
                });
            }
        }
    }
    let mut verified = HashMap::new();
    let mut damaged_heads = Vec::new();
    for mut head in heads {
        let mut damage = check_head(ctx, &head, &mut verified, progress, &mut report)?;
        // A publication moved the head meanwhile: what was read may be gone.
        if !damage.is_empty() {
            let now = read_head(ctx, &head.channel)?;
            if now.number != head.number {
                head = now;
                damage = check_head(ctx, &head, &mut verified, progress, &mut report)?;
            }
        }
        report.heads += 1;
        if !damage.is_empty() {
            report.damage.extend(damage.iter().cloned());
            damaged_heads.push((head, damage));
        }
    }
    progress.end();
    for digest in gc::orphans(ctx)? {
        let size = ctx.store.size(&digest)?.unwrap_or(0);
        report.orphans.push((digest, size));
    }
    if repair {
        super::repair::repair(ctx, &mut report, damaged_heads, progress)?;
    } else {
        report.remaining = report
            .damage
            .iter()
            .map(|d| d.to_string())
            .chain(
                report
                    .orphans
                    .iter()
                    .map(|(d, _)| format!("orphan blob {d}")),
            )
            .collect();
    }
    Ok(report)
}

/// A channel's head as one snapshot sees it.
pub(super) struct Head {
    pub(super) channel: String,
    pub(super) number: i32,
    package_count: Option<i32>,
    members: usize,
    /// (path, blob, size)
    pub(super) files: Vec<(String, String, i64)>,
}

pub(super) fn read_head(ctx: &Ctx, channel: &str) -> Result<Head, OpsError> {
    let mut conn = ctx.conn()?;
    crate::db::read_snapshot(&mut conn, |c| {
        let (number, _) = head_revision(c, channel)?;
        let package_count: Option<i32> = revisions::table
            .filter(revisions::channel.eq(channel))
            .filter(revisions::number.eq(number))
            .select(revisions::package_count)
            .first(c)
            .optional()?;
        let members = open_members(c, channel)?.len();
        let files = revision_files::table
            .filter(revision_files::channel.eq(channel))
            .filter(revision_files::number.eq(number))
            .select((
                revision_files::path,
                revision_files::blob,
                revision_files::size,
            ))
            .load(c)?;
        Ok(Head {
            channel: channel.to_string(),
            number,
            package_count,
            members,
            files,
        })
    })
}

/// Memberships naming builds that do not exist, and builds discarded but
/// still in a channel (a discard takes a build out of every channel).
fn check_memberships(ctx: &Ctx) -> Result<Vec<Damage>, OpsError> {
    let mut conn = ctx.conn()?;
    let dangling: Vec<(String, String)> = memberships::table
        .filter(memberships::package_id.ne_all(packages::table.select(packages::id)))
        .select((memberships::channel, memberships::package_id))
        .distinct()
        .load(&mut conn)?;
    let discarded: Vec<(String, String)> = open_memberships()
        .filter(
            memberships::package_id.eq_any(
                packages::table
                    .filter(packages::discarded_at.is_not_null())
                    .select(packages::id),
            ),
        )
        .select((memberships::channel, memberships::package_id))
        .load(&mut conn)?;
    let damage = |problem: &str| {
        let problem = problem.to_string();
        move |(channel, package_id): (String, String)| Damage::Membership {
            channel,
            package_id,
            problem: problem.clone(),
        }
    };
    Ok(dangling
        .into_iter()
        .map(damage("no such build"))
        .chain(discarded.into_iter().map(damage("the build is discarded")))
        .collect())
}

/// Whether `id` is still a build to check (not discarded since it was listed).
fn still_a_build(ctx: &Ctx, id: &str) -> Result<bool, OpsError> {
    let discarded: Option<Option<i64>> = packages::table
        .find(id)
        .select(packages::discarded_at)
        .first(&mut *ctx.conn()?)
        .optional()?;
    Ok(matches!(discarded, Some(None)))
}

/// What is wrong with a blob, if anything: absent, another size, other bytes.
pub(super) fn check_blob(
    ctx: &Ctx,
    digest: &str,
    size: i64,
    progress: &dyn Progress,
) -> Result<Option<String>, OpsError> {
    let Some(actual) = ctx.store.size(digest)? else {
        return Ok(Some("missing from the store".into()));
    };
    if actual != size.max(0) as u64 {
        progress.advance(size.max(0) as u64);
        return Ok(Some(format!(
            "{actual} bytes where the database records {size}"
        )));
    }
    let mut from = match ctx.store.get_range(digest, 0, actual) {
        Ok(r) => r,
        Err(crate::store::StoreError::NotFound(_)) => {
            return Ok(Some("missing from the store".into()))
        }
        Err(e) => return Ok(Some(format!("cannot be read: {e}"))),
    };
    match copy_hashed(&mut from, &mut std::io::sink(), progress) {
        Ok((sha, _)) if sha == digest => Ok(None),
        Ok((sha, _)) => Ok(Some(format!("its SHA-256 is {sha}"))),
        Err(e) => Ok(Some(format!("cannot be read: {e}"))),
    }
}

/// The published files whose signatures are checked: (data, detached signature).
fn signed_pairs(channel: &str) -> [(String, String); 3] {
    [
        (
            "repodata/repomd.xml".into(),
            "repodata/repomd.xml.asc".into(),
        ),
        (
            "latest/repodata/repomd.xml".into(),
            "latest/repodata/repomd.xml.asc".into(),
        ),
        (
            format!("dists/{channel}/Release"),
            format!("dists/{channel}/Release.gpg"),
        ),
    ]
}

pub(super) fn check_head(
    ctx: &Ctx,
    head: &Head,
    verified: &mut HashMap<String, Option<String>>,
    progress: &dyn Progress,
    report: &mut FsckReport,
) -> Result<Vec<Damage>, OpsError> {
    let mut damage = Vec::new();
    let mut bad = |path: &str, problem: String| {
        damage.push(Damage::Head {
            channel: head.channel.clone(),
            revision: head.number,
            path: path.to_string(),
            problem,
        })
    };
    if head.number == 0 {
        return Ok(Vec::new());
    }
    match head.package_count {
        None => bad("(revision)", "the head revision's row is missing".into()),
        Some(n) if n as usize != head.members => bad(
            "(memberships)",
            format!(
                "the revision records {n} builds, the channel holds {}",
                head.members
            ),
        ),
        Some(_) => {}
    }
    let mut good: HashMap<&str, &str> = HashMap::new();
    for (path, blob, size) in &head.files {
        report.head_files += 1;
        let problem = match verified.get(blob) {
            Some(p) => p.clone(),
            None => {
                let p = check_blob(ctx, blob, *size, progress)?;
                progress.file_done();
                verified.insert(blob.clone(), p.clone());
                p
            }
        };
        match problem {
            Some(p) => bad(path, format!("blob {blob}: {p}")),
            None => {
                good.insert(path, blob);
            }
        }
    }
    let listed: HashSet<&str> = head.files.iter().map(|f| f.0.as_str()).collect();
    let inrelease = format!("dists/{}/InRelease", head.channel);
    for (data, sig) in signed_pairs(&head.channel) {
        for p in [&data, &sig] {
            if !listed.contains(p.as_str()) {
                bad(p, "not in the revision".into());
            }
        }
        let (Some(d), Some(s)) = (good.get(data.as_str()), good.get(sig.as_str())) else {
            continue;
        };
        report.signatures += 1;
        let bytes = ctx.store.get_bytes(d)?;
        let asc = String::from_utf8_lossy(&ctx.store.get_bytes(s)?).into_owned();
        if !ctx.signer.signed_by_current_keys(&bytes, &asc) {
            bad(&sig, not_current(ctx));
        }
    }
    let release = format!("dists/{}/Release", head.channel);
    if !listed.contains(inrelease.as_str()) {
        bad(&inrelease, "not in the revision".into());
    }
    if let (Some(i), Some(r)) = (good.get(inrelease.as_str()), good.get(release.as_str())) {
        report.signatures += 1;
        let text = String::from_utf8_lossy(&ctx.store.get_bytes(i)?).into_owned();
        let release = String::from_utf8_lossy(&ctx.store.get_bytes(r)?).into_owned();
        match ctx.signer.clearsigned_by_current_keys(&text) {
            None => bad(&inrelease, not_current(ctx)),
            Some(signed) if !signed.lines().eq(release.trim_end().lines()) => {
                bad(&inrelease, "its signed text is not the Release file".into())
            }
            Some(_) => {}
        }
    }
    Ok(damage)
}

fn not_current(ctx: &Ctx) -> String {
    format!(
        "not signed by exactly the current keys ({})",
        ctx.signer.fingerprints().join(", ")
    )
}
