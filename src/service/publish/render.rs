//! Rendering a channel revision's files from its members' cached pieces:
//! the signed yum repository, its latest-only view and the signed apt suite.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use bytes::Bytes;

use super::pieces::Pieces;
use crate::db::models::*;
use crate::db::DbConnection;
use crate::formats::apt;
use crate::formats::gzchain::Chunk;
use crate::formats::yum::{assemble_repodata, Chunks};
use crate::service::catalog::queries::by_version;
use crate::service::error::PublishError;
use crate::service::{Ctx, ServiceError};

/// One published file of a revision: its path, bytes (shared between the
/// paths that serve the same content) and SHA-256.
pub struct OutFile {
    pub path: String,
    pub bytes: Bytes,
    pub sha256: String,
}

impl OutFile {
    fn new(path: String, bytes: Bytes, sha256: Option<String>) -> OutFile {
        let sha256 =
            sha256.unwrap_or_else(|| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)));
        OutFile {
            path,
            bytes,
            sha256,
        }
    }
}

/// Renders every published file of a channel revision: the yum repository
/// (`repodata/…`, signed repomd.xml) and the apt suite (`dists/<channel>/…`,
/// by-hash copies, Release, InRelease, Release.gpg). Paths are relative to the
/// channel's yum root, or to `/deb/` for `dists/`.
pub(super) fn render_channel(
    ctx: &Ctx,
    conn: &mut DbConnection,
    channel: &str,
    members: &HashSet<String>,
    new_packages: &[PackageRow],
    created_at: i64,
) -> Result<Vec<OutFile>, ServiceError> {
    let ids: Vec<&String> = members.iter().collect();
    let mut rows = ctx.pieces.get_many(conn, &ids, new_packages)?;
    rows.sort_by(|a, b| by_version(a.as_ref(), b.as_ref()).then_with(|| a.id.cmp(&b.id)));
    // The chunks of every file, compressed where a package has a new
    // neighbour; what is left is concatenation, hashing and signing.
    let rpms: Vec<&Arc<Pieces>> = rows.iter().filter(|r| r.kind == "rpm").collect();
    let yum = ctx
        .pieces
        .rpm_chunks(conn, &format!("{channel}/yum"), &rpms, new_packages)?;
    // The latest-only view (`latest/`): the newest build of each name and arch,
    // for pollers such as GoCD's that refuse a spec matching several versions.
    // `rows` is sorted by name, arch, version: the last of each run wins.
    let mut newest: Vec<&Arc<Pieces>> = Vec::new();
    for r in rpms.iter().copied() {
        match newest.last_mut() {
            Some(last) if last.name == r.name && last.arch == r.arch => *last = r,
            _ => newest.push(r),
        }
    }
    // One build per name: the view is the repository itself (and its own
    // blocks are released).
    let latest_view = format!("{channel}/latest");
    let latest_seq: &[&Arc<Pieces>] = if newest.len() == rpms.len() {
        &[]
    } else {
        &newest
    };
    let latest_chunks = ctx
        .pieces
        .rpm_chunks(conn, &latest_view, latest_seq, new_packages)?;
    let latest = (!latest_seq.is_empty()).then_some((latest_chunks, latest_seq.len()));
    let indexes = apt_indexes(ctx, channel, &rows)?;
    let sign_err = |e: crate::signing::SigningError| PublishError::Signing(e.to_string());
    // yum and apt are independent: one core each.
    let (yum, apt) = std::thread::scope(|s| {
        let yum = s.spawn(|| {
            let latest = latest.as_ref().map(|(c, n)| (c.as_slice(), *n));
            render_yum(ctx, (&yum, rpms.len()), latest, created_at)
        });
        let apt = render_apt(ctx, channel, indexes, created_at);
        (yum.join(), apt)
    });
    let mut out = yum
        .map_err(|_| PublishError::Publication("yum rendering panicked".into()))?
        .map_err(sign_err)?;
    out.extend(apt.map_err(sign_err)?);
    Ok(out)
}

/// The yum repository (`repodata/…`, signed repomd.xml) and its latest-only
/// view (`latest/…`; `None`: every name has one build, so the view is the
/// repository itself), assembled from chunks.
/// Each repository is given as its blocks' chunks and its package count.
fn render_yum(
    ctx: &Ctx,
    repo_chunks: (&[Arc<Chunks>], usize),
    latest: Option<(&[Arc<Chunks>], usize)>,
    created_at: i64,
) -> Result<Vec<OutFile>, crate::signing::SigningError> {
    fn repo(
        ctx: &Ctx,
        (chunks, count): (&[Arc<Chunks>], usize),
        prefix: &str,
        created_at: i64,
    ) -> Result<Vec<OutFile>, crate::signing::SigningError> {
        let refs: Vec<&Chunks> = chunks.iter().map(|c| c.as_ref()).collect();
        let repodata = assemble_repodata(&refs, count, created_at);
        let asc = ctx.signer.detached(&repodata.repomd)?;
        let mut out: Vec<OutFile> = repodata
            .files
            .into_iter()
            .map(|f| {
                OutFile::new(
                    format!("{prefix}{}", f.path),
                    f.bytes.into(),
                    Some(f.sha256),
                )
            })
            .collect();
        out.push(OutFile::new(
            format!("{prefix}repodata/repomd.xml"),
            repodata.repomd.into(),
            None,
        ));
        out.push(OutFile::new(
            format!("{prefix}repodata/repomd.xml.asc"),
            asc.into_bytes().into(),
            None,
        ));
        Ok(out)
    }
    let mut out = repo(ctx, repo_chunks, "", created_at)?;
    match latest {
        // Byte-identical: the same blobs (and signature) under a second path.
        None => {
            let copies: Vec<OutFile> = out
                .iter()
                .map(|f| OutFile {
                    path: format!("latest/{}", f.path),
                    bytes: f.bytes.clone(),
                    sha256: f.sha256.clone(),
                })
                .collect();
            out.extend(copies);
        }
        Some(latest) => out.extend(repo(ctx, latest, "latest/", created_at)?),
    }
    Ok(out)
}

/// Each architecture's stanzas and chunks, in file order: the configured
/// `apt_architectures` plus those of the member .debs; `all` packages appear
/// in every architecture's index.
struct ArchIndex {
    arch: String,
    texts: Vec<Arc<Pieces>>,
    chunks: Vec<Arc<Chunk>>,
}

fn apt_indexes(
    ctx: &Ctx,
    channel: &str,
    rows: &[Arc<Pieces>],
) -> Result<Vec<ArchIndex>, ServiceError> {
    let debs: Vec<&Arc<Pieces>> = rows.iter().filter(|r| r.kind == "deb").collect();
    let mut archs: BTreeSet<String> = ctx.config.apt_architectures.iter().cloned().collect();
    archs.extend(
        debs.iter()
            .filter(|r| r.arch != "all")
            .map(|r| r.arch.clone()),
    );
    archs
        .into_iter()
        .map(|arch| {
            let seq: Vec<&Arc<Pieces>> = debs
                .iter()
                .filter(|r| r.arch == arch || r.arch == "all")
                .copied()
                .collect();
            let chunks = ctx
                .pieces
                .deb_chunks(&format!("{channel}/apt/{arch}"), &seq)?;
            Ok(ArchIndex {
                arch,
                texts: seq.into_iter().cloned().collect(),
                chunks,
            })
        })
        .collect()
}

/// The apt suite (`dists/<channel>/…`: Packages and Packages.gz per
/// architecture, by-hash copies, Release, InRelease, Release.gpg). Paths are
/// relative to `/deb/`.
fn render_apt(
    ctx: &Ctx,
    channel: &str,
    indexes: Vec<ArchIndex>,
    created_at: i64,
) -> Result<Vec<OutFile>, crate::signing::SigningError> {
    let mut out = Vec::new();
    let mut index_files = Vec::new();
    let archs: Vec<String> = indexes.iter().map(|i| i.arch.clone()).collect();
    for index in &indexes {
        let texts: Vec<&str> = index.texts.iter().map(|p| p.apt_text.as_str()).collect();
        let chunks: Vec<&Chunk> = index.chunks.iter().map(|c| c.as_ref()).collect();
        index_files.extend(apt::assemble_arch_indexes(
            channel,
            "main",
            &index.arch,
            &ctx.config.apt_origin,
            &ctx.config.apt_label,
            &texts,
            &chunks,
        ));
    }
    let release = apt::render_release(
        &apt::ReleaseMeta {
            origin: ctx.config.apt_origin.clone(),
            label: ctx.config.apt_label.clone(),
            suite: channel.to_string(),
            codename: channel.to_string(),
            date: created_at,
            valid_until: ctx
                .config
                .apt_valid_for
                .map(|d| created_at + d.as_secs() as i64),
            architectures: archs,
            components: vec!["main".into()],
            description: format!("Forklift channel {channel}"),
        },
        &index_files,
    );
    // Two RSA signatures of one text, the slowest step of a publication
    // (docs/benchmarks.md, "The CI step"): side by side.
    let (inrelease, release_gpg) = std::thread::scope(|s| {
        let detached = s.spawn(|| ctx.signer.detached(release.as_bytes()));
        let clear = ctx.signer.clearsign(&release);
        let detached = detached.join().unwrap_or_else(|_| {
            Err(crate::signing::SigningError::Pgp(
                "signing thread panicked".into(),
            ))
        });
        (clear, detached)
    });
    let (inrelease, release_gpg) = (inrelease?, release_gpg?);
    let dists = format!("dists/{channel}");
    for f in index_files {
        let paths = apt::by_hash_paths(&f);
        let bytes = Bytes::from(f.bytes);
        for by_hash in paths {
            out.push(OutFile {
                path: format!("{dists}/{by_hash}"),
                bytes: bytes.clone(),
                sha256: f.sha256.clone(),
            });
        }
        out.push(OutFile::new(
            format!("{dists}/{}", f.path),
            bytes,
            Some(f.sha256),
        ));
    }
    out.push(OutFile::new(
        format!("{dists}/Release"),
        release.into_bytes().into(),
        None,
    ));
    out.push(OutFile::new(
        format!("{dists}/InRelease"),
        inrelease.into_bytes().into(),
        None,
    ));
    out.push(OutFile::new(
        format!("{dists}/Release.gpg"),
        release_gpg.into_bytes().into(),
        None,
    ));
    Ok(out)
}
