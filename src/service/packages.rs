//! Packages: ingesting uploads, looking builds up, listing them with history.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufReader, Read, Seek, SeekFrom};

use diesel::prelude::*;

use super::publish::{commit, Change, ChannelOp, PendingEvent};
use super::upload::Received;
use super::views::{EventView, PackageDetail, PackageView};
use super::{Actor, Ctx, ServiceError};
use crate::db::models::*;
use crate::db::schema::*;
use crate::db::DbConnection;
use crate::formats::apt::{render_stanza, DebFileFacts};
use crate::formats::deb::{read_deb, DebError, AR_MAGIC};
use crate::formats::rpm::{read_rpm, RPM_MAGIC};
use crate::formats::yum::{render_fragments, FileFacts};

/// A build's place in version order: name, arch and kind, then the version
/// by that kind's rules (dpkg's for .debs, rpmvercmp for RPMs).
pub trait Versioned {
    /// (name, arch, kind, epoch, version, release)
    fn order_key(&self) -> (&str, &str, &str, i32, &str, &str);
}

impl Versioned for PackageSummary {
    fn order_key(&self) -> (&str, &str, &str, i32, &str, &str) {
        (
            &self.name,
            &self.arch,
            &self.kind,
            self.epoch,
            &self.version,
            &self.release,
        )
    }
}

/// Orders builds by [`Versioned::order_key`]: sorting groups each name and
/// arch together, oldest first; `max_by` picks the newest.
pub fn by_version<T: Versioned>(a: &T, b: &T) -> std::cmp::Ordering {
    let (an, aa, ak, ae, av, ar) = a.order_key();
    let (bn, ba, bk, be, bv, br) = b.order_key();
    (an, aa, ak)
        .cmp(&(bn, ba, bk))
        .then_with(|| crate::formats::compare_versions(ak, (ae, av, ar), (be, bv, br)))
}

/// What an upload resulted in.
pub struct Ingested {
    pub package: PackageView,
    /// False when these exact bytes were already stored (HTTP 200 instead of 201).
    pub created: bool,
}

/// Where a package file is served inside any channel's yum repository.
pub fn rpm_location(sha256: &str, filename: &str) -> String {
    format!("Packages/{sha256}/{filename}")
}

/// Validates, stores and records an upload; optionally adds it to the entry channel.
/// On any failure nothing stays behind: the temp file is dropped and a blob that no
/// row references is removed again.
pub fn ingest(
    ctx: &Ctx,
    upload: Received,
    channel: Option<String>,
    actor: &Actor,
) -> Result<Ingested, ServiceError> {
    actor.require_upload()?;
    if let Some(c) = &channel {
        check_entry_channel(ctx, c)?;
    }
    let mut conn = ctx.conn()?;
    // Same bytes again: the existing record, never a second copy.
    if let Some(existing) = find_by_id(&mut conn, &upload.sha256)? {
        drop(conn);
        return already_stored(ctx, existing, channel, actor);
    }

    let uploaded_at = ctx.clock.now();
    let row = parse_upload(&upload, uploaded_at, &actor.name)?;

    // A different file with the same identity: refused, never replaced.
    if let Some(existing) = same_identity(&mut conn, &row)? {
        return Err(identity_conflict(&row, existing));
    }
    if let Some(err) = pool_conflict(&mut conn, &row)? {
        return Err(err);
    }
    drop(conn);

    let sha = upload.sha256.clone();
    ctx.store.put_file(&sha, upload.file)?;

    let mut events = vec![PendingEvent {
        kind: "uploaded",
        package_id: Some(sha.clone()),
        channel: None,
        reason: None,
        detail: Some(serde_json::json!({
            "client_filename": upload.client_name,
            "size": upload.size,
        })),
    }];
    let mut ops = Vec::new();
    if let Some(c) = &channel {
        ops.push(ChannelOp {
            channel: c.clone(),
            add: vec![sha.clone()],
            remove: vec![],
            require_in: None,
            force: false,
        });
        events.push(PendingEvent {
            kind: "added",
            package_id: Some(sha.clone()),
            channel: Some(c.clone()),
            reason: None,
            detail: None,
        });
    }
    let change = Change {
        summary: format!("upload {}", row.filename),
        new_packages: vec![row.clone()],
        ops,
        events,
        ..Change::default()
    };
    match commit(ctx, change, actor) {
        Ok(Ok(_)) => {}
        Ok(Err(_duplicate)) => {
            // A concurrent upload won the race. Same bytes: fine, return it. Same
            // identity with other bytes: that one is the build, ours is refused.
            let mut conn = ctx.conn()?;
            if let Some(existing) = find_by_id(&mut conn, &sha)? {
                drop(conn);
                return already_stored(ctx, existing, channel, actor);
            }
            remove_orphan_blob(ctx, &sha);
            if let Some(other) = same_identity(&mut conn, &row)? {
                return Err(identity_conflict(&row, other));
            }
            if let Some(err) = pool_conflict(&mut conn, &row)? {
                return Err(err);
            }
            return Err(ServiceError::Contention);
        }
        Err(e) => {
            remove_orphan_blob(ctx, &sha);
            return Err(e);
        }
    }
    let mut conn = ctx.conn()?;
    let summary = summary_by_id(&mut conn, &sha)?
        .ok_or_else(|| ServiceError::PackageNotFound(sha.clone()))?;
    Ok(Ingested {
        package: view(&mut conn, ctx, summary, actor)?,
        created: true,
    })
}

/// These exact bytes are stored already: answer with the existing record (and
/// put it in the entry channel when asked).
fn already_stored(
    ctx: &Ctx,
    existing: PackageSummary,
    channel: Option<String>,
    actor: &Actor,
) -> Result<Ingested, ServiceError> {
    if existing.discarded_at.is_some() {
        return Err(ServiceError::Discarded(format!(
            "{} was discarded ({}); a discarded build is never taken back",
            existing.filename,
            existing.discard_reason.as_deref().unwrap_or("")
        )));
    }
    if let Some(c) = channel {
        add_existing_to_entry(ctx, &existing, &c, actor)?;
    }
    let mut conn = ctx.conn()?;
    Ok(Ingested {
        package: view(&mut conn, ctx, existing, actor)?,
        created: false,
    })
}

fn identity_conflict(row: &PackageRow, existing: String) -> ServiceError {
    ServiceError::NevraConflict {
        name: row.name.clone(),
        evr: if row.release.is_empty() {
            format!("{}:{}", row.epoch, row.version)
        } else {
            format!("{}:{}-{}", row.epoch, row.version, row.release)
        },
        arch: row.arch.clone(),
        existing,
    }
}

/// Debian pool file names carry no epoch, so `1:2.0-1` and `2.0-1` of one
/// package would share a pool path: the second is refused, as reprepro and dak do.
fn pool_conflict(
    conn: &mut DbConnection,
    row: &PackageRow,
) -> Result<Option<ServiceError>, ServiceError> {
    let Some(path) = &row.pool_path else {
        return Ok(None);
    };
    let existing: Option<String> = packages::table
        .filter(packages::pool_path.eq(path))
        .select(packages::id)
        .first(conn)
        .optional()?;
    Ok(existing.map(|existing| ServiceError::PoolConflict {
        path: path.clone(),
        existing,
    }))
}

/// The stored package with the same kind, name, epoch, version, release and arch.
fn same_identity(
    conn: &mut DbConnection,
    row: &PackageRow,
) -> Result<Option<String>, ServiceError> {
    Ok(packages::table
        .filter(packages::kind.eq(&row.kind))
        .filter(packages::name.eq(&row.name))
        .filter(packages::epoch.eq(row.epoch))
        .filter(packages::version.eq(&row.version))
        .filter(packages::release.eq(&row.release))
        .filter(packages::arch.eq(&row.arch))
        .select(packages::id)
        .first(conn)
        .optional()?)
}

/// Recognises the upload by its magic bytes, validates it and renders its
/// metadata once (yum fragments for an RPM, the Packages stanza for a .deb).
fn parse_upload(
    upload: &Received,
    uploaded_at: i64,
    uploader: &str,
) -> Result<PackageRow, ServiceError> {
    let mut file = upload.file.reopen()?;
    let mut magic = [0u8; 8];
    let n = read_prefix(&mut file, &mut magic)?;
    file.seek(SeekFrom::Start(0))?;
    if n >= 4 && magic[..4] == RPM_MAGIC {
        let info = read_rpm(&mut file)?;
        let filename = info.canonical_filename();
        let location = rpm_location(&upload.sha256, &filename);
        let frags = render_fragments(
            &info,
            &FileFacts {
                sha256: &upload.sha256,
                size: upload.size,
                file_time: uploaded_at,
                location: &location,
            },
        );
        Ok(PackageRow {
            id: upload.sha256.clone(),
            kind: "rpm".into(),
            name: info.name.clone(),
            epoch: info.epoch as i32,
            version: info.version.clone(),
            release: info.release.clone(),
            arch: info.arch.clone(),
            filename,
            size: upload.size as i64,
            summary: info.summary.clone(),
            uploaded_at,
            uploaded_by: uploader.to_string(),
            primary_xml: frags.primary,
            filelists_xml: frags.filelists,
            other_xml: frags.other,
            apt_stanza: None,
            pool_path: None,
        })
    } else if n >= 8 && &magic == AR_MAGIC {
        let info = read_deb(BufReader::new(&mut file)).map_err(deb_error)?;
        // apt checks every hash it is given; the upload hashed only sha256.
        file.seek(SeekFrom::Start(0))?;
        let (md5, sha1, sha512) = other_digests(&mut file)?;
        let pool_path = info.pool_path();
        let stanza = render_stanza(
            &info,
            &DebFileFacts {
                filename: &pool_path,
                size: upload.size,
                md5: &md5,
                sha1: &sha1,
                sha256: &upload.sha256,
                sha512: &sha512,
            },
        );
        // The version was validated by read_deb: the epoch fits an i32.
        let (epoch, version, release) = crate::formats::debver::split(&info.version);
        let (version, release) = (version.to_string(), release.to_string());
        let summary = info
            .field("Description")
            .and_then(|d| d.lines().next())
            .unwrap_or_default()
            .trim()
            .to_string();
        Ok(PackageRow {
            id: upload.sha256.clone(),
            kind: "deb".into(),
            name: info.package.clone(),
            epoch,
            version,
            release,
            arch: info.architecture.clone(),
            filename: info.canonical_filename(),
            size: upload.size as i64,
            summary,
            uploaded_at,
            uploaded_by: uploader.to_string(),
            primary_xml: String::new(),
            filelists_xml: String::new(),
            other_xml: String::new(),
            apt_stanza: Some(stanza),
            pool_path: Some(pool_path),
        })
    } else {
        Err(ServiceError::UnsupportedType(
            "the file is neither an RPM nor a .deb".into(),
        ))
    }
}

fn deb_error(e: DebError) -> ServiceError {
    match e {
        DebError::NotDeb => {
            ServiceError::UnsupportedType("an ar archive, but not a Debian package".into())
        }
        DebError::Io(e) if e.kind() != std::io::ErrorKind::UnexpectedEof => ServiceError::Io(e),
        other => ServiceError::InvalidPackage(other.to_string()),
    }
}

fn other_digests(file: &mut std::fs::File) -> Result<(String, String, String), ServiceError> {
    use sha2::Digest;
    let (mut md5, mut sha1, mut sha512) = (md5::Md5::new(), sha1::Sha1::new(), sha2::Sha512::new());
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
        sha1.update(&buf[..n]);
        sha512.update(&buf[..n]);
    }
    Ok((
        hex::encode(md5.finalize()),
        hex::encode(sha1.finalize()),
        hex::encode(sha512.finalize()),
    ))
}

fn read_prefix(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let r = f.read(&mut buf[n..])?;
        if r == 0 {
            break;
        }
        n += r;
    }
    Ok(n)
}

/// Deletes a blob unless a package row references it (the upload that wrote it
/// failed, or lost a race to an identical upload that did not).
fn remove_orphan_blob(ctx: &Ctx, sha: &str) {
    let referenced = ctx.conn().ok().and_then(|mut c| {
        packages::table
            .find(sha)
            .select(packages::id)
            .first::<String>(&mut c)
            .optional()
            .ok()
    });
    if let Some(None) = referenced {
        if let Err(e) = ctx.store.delete(sha) {
            tracing::warn!(blob = sha, error = %e, "could not remove orphan blob");
        }
    }
}

/// Only the first channel of the promotion path receives uploads.
pub fn check_entry_channel(ctx: &Ctx, channel: &str) -> Result<(), ServiceError> {
    let idx = ctx.channel_index(channel)?;
    if idx != 0 {
        return Err(ServiceError::NotAllowed(format!(
            "uploads go into {:?}, the first channel; {channel:?} is reached by promotion",
            ctx.config.channels[0]
        )));
    }
    Ok(())
}

fn add_existing_to_entry(
    ctx: &Ctx,
    p: &PackageSummary,
    channel: &str,
    actor: &Actor,
) -> Result<(), ServiceError> {
    let change = Change {
        summary: format!("add {} to {channel}", p.filename),
        ops: vec![ChannelOp {
            channel: channel.to_string(),
            add: vec![p.id.clone()],
            remove: vec![],
            require_in: None,
            force: false,
        }],
        events: vec![PendingEvent {
            kind: "added",
            package_id: Some(p.id.clone()),
            channel: Some(channel.to_string()),
            reason: None,
            detail: None,
        }],
        ..Change::default()
    };
    let mut conn = ctx.conn()?;
    if current_channels(&mut conn, &p.id)?
        .iter()
        .any(|c| c == channel)
    {
        return Ok(());
    }
    drop(conn);
    let _ = commit(ctx, change, actor)?;
    Ok(())
}

pub fn find_by_id(
    conn: &mut DbConnection,
    id: &str,
) -> Result<Option<PackageSummary>, ServiceError> {
    summary_by_id(conn, id)
}

fn summary_by_id(
    conn: &mut DbConnection,
    id: &str,
) -> Result<Option<PackageSummary>, ServiceError> {
    Ok(packages::table
        .find(id)
        .select(PackageSummary::as_select())
        .first(conn)
        .optional()?)
}

/// Resolves `{id}` in URLs: a sha256, or a canonical file name.
pub fn resolve(conn: &mut DbConnection, id: &str) -> Result<PackageSummary, ServiceError> {
    if let Some(p) = summary_by_id(conn, id)? {
        return Ok(p);
    }
    let mut by_name: Vec<PackageSummary> = packages::table
        .filter(packages::filename.eq(id))
        .select(PackageSummary::as_select())
        .limit(2)
        .load(conn)?;
    match by_name.len() {
        0 => Err(ServiceError::PackageNotFound(id.to_string())),
        1 => Ok(by_name.remove(0)),
        _ => Err(ServiceError::Ambiguous(format!(
            "{id:?} names more than one build (they differ in epoch); use the sha256 id"
        ))),
    }
}

/// Channels holding the package now, in promotion order.
pub fn current_channels(conn: &mut DbConnection, id: &str) -> Result<Vec<String>, ServiceError> {
    let names: Vec<String> = memberships::table
        .filter(memberships::package_id.eq(id))
        .filter(memberships::removed_in.is_null())
        .select(memberships::channel)
        .load(conn)?;
    let order: Vec<String> = channels::table
        .order(channels::position.asc())
        .select(channels::name)
        .load(conn)?;
    Ok(order.into_iter().filter(|c| names.contains(c)).collect())
}

/// A build as `actor` may see it: only the channels it may read are listed,
/// in every response (uploads, promotions, holds as much as reads).
pub fn view(
    conn: &mut DbConnection,
    ctx: &Ctx,
    p: PackageSummary,
    actor: &Actor,
) -> Result<PackageView, ServiceError> {
    Ok(restrict(ctx, actor, view_all(conn, ctx, p)?))
}

/// Every configured channel holding the build, for decisions, never answers.
fn view_all(
    conn: &mut DbConnection,
    ctx: &Ctx,
    p: PackageSummary,
) -> Result<PackageView, ServiceError> {
    let chans = current_channels(conn, &p.id)?
        .into_iter()
        .filter(|c| ctx.config.channels.contains(c))
        .collect();
    Ok(PackageView::new(p, chans))
}

/// Builds views for many packages with one membership query.
pub fn views(
    conn: &mut DbConnection,
    ctx: &Ctx,
    list: Vec<PackageSummary>,
) -> Result<Vec<PackageView>, ServiceError> {
    let ids: Vec<&String> = list.iter().map(|p| &p.id).collect();
    let mut by_pkg: HashMap<String, Vec<String>> = HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, String)> = memberships::table
            .filter(memberships::package_id.eq_any(chunk))
            .filter(memberships::removed_in.is_null())
            .select((memberships::package_id, memberships::channel))
            .load(conn)?;
        for (p, c) in rows {
            by_pkg.entry(p).or_default().push(c);
        }
    }
    Ok(list
        .into_iter()
        .map(|p| {
            let held = by_pkg.remove(&p.id).unwrap_or_default();
            let chans = ctx
                .config
                .channels
                .iter()
                .filter(|c| held.contains(c))
                .cloned()
                .collect();
            PackageView::new(p, chans)
        })
        .collect())
}

#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct ListFilter {
    pub name: Option<String>,
    pub channel: Option<String>,
    pub arch: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// The channels `actor` may read, or None when it may read every one.
pub fn readable_channels(ctx: &Ctx, actor: &Actor) -> Option<Vec<String>> {
    let all = &ctx.config.channels;
    let r: Vec<String> = all
        .iter()
        .filter(|c| ctx.may_read(actor, c))
        .cloned()
        .collect();
    (r.len() != all.len()).then_some(r)
}

/// Builds in no channel (just uploaded, or demoted everywhere) are visible to
/// token holders, and to anonymous callers when reads are open at all.
fn sees_unplaced(ctx: &Ctx, actor: &Actor) -> bool {
    actor.authenticated || ctx.config.anonymous_read
}

/// Drops channels the caller may not read from a view.
fn restrict(ctx: &Ctx, actor: &Actor, mut v: PackageView) -> PackageView {
    v.channels.retain(|c| ctx.may_read(actor, c));
    v
}

pub fn list(ctx: &Ctx, f: &ListFilter, actor: &Actor) -> Result<Vec<PackageView>, ServiceError> {
    let mut conn = ctx.conn()?;
    let mut q = packages::table
        .select(PackageSummary::as_select())
        .into_boxed();
    if let Some(n) = &f.name {
        q = q.filter(packages::name.eq(n.clone()));
    }
    if let Some(a) = &f.arch {
        q = q.filter(packages::arch.eq(a.clone()));
    }
    if let Some(c) = &f.channel {
        // Filtering by a channel is reading it: a private channel's contents
        // must not be listed, nor probed build by build with `name`.
        ctx.require_read(actor, c)?;
        let in_channel = memberships::table
            .filter(memberships::channel.eq(c.clone()))
            .filter(memberships::removed_in.is_null())
            .select(memberships::package_id);
        q = q.filter(packages::id.eq_any(in_channel));
    }
    // Builds only in channels the caller may not read stay invisible.
    if let Some(readable) = readable_channels(ctx, actor) {
        let in_readable = memberships::table
            .filter(memberships::channel.eq_any(readable))
            .filter(memberships::removed_in.is_null())
            .select(memberships::package_id);
        if sees_unplaced(ctx, actor) {
            let placed = memberships::table
                .filter(memberships::removed_in.is_null())
                .select(memberships::package_id);
            q = q.filter(
                packages::id
                    .eq_any(in_readable)
                    .or(diesel::dsl::not(packages::id.eq_any(placed))),
            );
        } else {
            q = q.filter(packages::id.eq_any(in_readable));
        }
    }
    let limit = f.limit.unwrap_or(1000).clamp(1, 10_000);
    let list = q
        .order((
            packages::name.asc(),
            packages::uploaded_at.asc(),
            packages::id.asc(),
        ))
        .limit(limit)
        .offset(f.offset.unwrap_or(0).max(0))
        .load(&mut conn)?;
    Ok(views(&mut conn, ctx, list)?
        .into_iter()
        .map(|v| restrict(ctx, actor, v))
        .collect())
}

pub fn detail(ctx: &Ctx, id: &str, actor: &Actor) -> Result<PackageDetail, ServiceError> {
    let mut conn = ctx.conn()?;
    let p = resolve(&mut conn, id)?;
    let full = view_all(&mut conn, ctx, p.clone())?;
    let visible = if full.channels.is_empty() {
        sees_unplaced(ctx, actor)
    } else {
        full.channels.iter().any(|c| ctx.may_read(actor, c))
    };
    if !visible {
        if !actor.authenticated {
            return Err(actor.denied(
                &format!("reading package {id:?}"),
                "read access to a channel that holds it",
            ));
        }
        return Err(ServiceError::PackageNotFound(id.to_string()));
    }
    let history: Vec<EventView> = events::table
        .filter(events::package_id.eq(&p.id))
        .order(events::id.asc())
        .select(EventRow::as_select())
        .load(&mut conn)?
        .into_iter()
        .filter(|e| e.channel.as_deref().is_none_or(|c| ctx.may_read(actor, c)))
        .map(EventView::from)
        .collect();
    let package = restrict(ctx, actor, full);
    let pool_path: Option<String> = packages::table
        .find(&package.id)
        .select(packages::pool_path)
        .first(&mut conn)?;
    let base = &ctx.config.base_url;
    // .debs live once in the shared pool; RPMs under each channel's repository.
    let downloads: BTreeMap<String, String> = package
        .channels
        .iter()
        .map(|c| {
            let url = match &pool_path {
                Some(p) => format!("{base}/deb/{p}"),
                None => format!(
                    "{base}/rpm/{c}/{}",
                    rpm_location(&package.id, &package.filename)
                ),
            };
            (c.clone(), url)
        })
        .collect();
    Ok(PackageDetail {
        package,
        downloads,
        history,
    })
}
