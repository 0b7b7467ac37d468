//! Packages: ingesting uploads, looking builds up, listing them with history.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use diesel::prelude::*;

use super::publish::{commit, Change, ChannelOp, PendingEvent};
use super::upload::Received;
use super::views::{EventView, PackageDetail, PackageView};
use super::{now, Actor, Ctx, ServiceError};
use crate::db::models::*;
use crate::db::schema::*;
use crate::db::DbConnection;
use crate::formats::rpm::{read_rpm, RPM_MAGIC};
use crate::formats::yum::{render_fragments, FileFacts};

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
    if let Some(c) = &channel {
        check_entry_channel(ctx, c)?;
    }
    let mut conn = ctx.conn()?;
    // Same bytes again: the existing record, never a second copy.
    if let Some(existing) = find_by_id(&mut conn, &upload.sha256)? {
        drop(conn);
        if let Some(c) = channel {
            add_existing_to_entry(ctx, &existing, &c, actor)?;
        }
        let mut conn = ctx.conn()?;
        return Ok(Ingested {
            package: view(&mut conn, ctx, existing)?,
            created: false,
        });
    }

    let mut file = upload.file.reopen()?;
    let mut magic = [0u8; 8];
    let n = read_prefix(&mut file, &mut magic)?;
    if n >= 4 && magic[..4] == RPM_MAGIC {
        // fall through
    } else if n >= 8 && &magic[..8] == b"!<arch>\n" {
        return Err(ServiceError::UnsupportedType(
            ".deb packages are not supported yet".into(),
        ));
    } else {
        return Err(ServiceError::UnsupportedType(
            "the file is neither an RPM nor a .deb".into(),
        ));
    }
    let info = read_rpm(&mut file)?;
    drop(file);

    // A different file with the same identity: refused, never replaced.
    let same: Option<String> = packages::table
        .filter(packages::kind.eq("rpm"))
        .filter(packages::name.eq(&info.name))
        .filter(packages::epoch.eq(info.epoch as i32))
        .filter(packages::version.eq(&info.version))
        .filter(packages::release.eq(&info.release))
        .filter(packages::arch.eq(&info.arch))
        .select(packages::id)
        .first(&mut conn)
        .optional()?;
    if let Some(existing) = same {
        return Err(nevra_conflict(&info, existing));
    }
    drop(conn);

    let uploaded_at = now();
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
    let row = PackageRow {
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
        uploaded_by: actor.name.clone(),
        primary_xml: frags.primary,
        filelists_xml: frags.filelists,
        other_xml: frags.other,
    };

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
        new_package: Some(row.clone()),
        ops,
        events,
    };
    match commit(ctx, change, actor) {
        Ok(Ok(_)) => {}
        Ok(Err(_duplicate)) => {
            // A concurrent upload won the race. Same bytes: fine, return it. Same
            // identity with other bytes: that one is the build, ours is refused.
            let mut conn = ctx.conn()?;
            if let Some(existing) = find_by_id(&mut conn, &sha)? {
                drop(conn);
                if let Some(c) = channel {
                    add_existing_to_entry(ctx, &existing, &c, actor)?;
                }
                let mut conn = ctx.conn()?;
                return Ok(Ingested {
                    package: view(&mut conn, ctx, existing)?,
                    created: false,
                });
            }
            remove_orphan_blob(ctx, &sha);
            let other: String = packages::table
                .filter(packages::kind.eq("rpm"))
                .filter(packages::name.eq(&info.name))
                .filter(packages::epoch.eq(info.epoch as i32))
                .filter(packages::version.eq(&info.version))
                .filter(packages::release.eq(&info.release))
                .filter(packages::arch.eq(&info.arch))
                .select(packages::id)
                .first(&mut conn)?;
            return Err(nevra_conflict(&info, other));
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
        package: view(&mut conn, ctx, summary)?,
        created: true,
    })
}

fn nevra_conflict(info: &crate::formats::rpm::RpmInfo, existing: String) -> ServiceError {
    ServiceError::NevraConflict {
        name: info.name.clone(),
        evr: format!("{}:{}-{}", info.epoch, info.version, info.release),
        arch: info.arch.clone(),
        existing,
    }
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
fn check_entry_channel(ctx: &Ctx, channel: &str) -> Result<(), ServiceError> {
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
        new_package: None,
        ops: vec![ChannelOp {
            channel: channel.to_string(),
            add: vec![p.id.clone()],
            remove: vec![],
            require_in: None,
        }],
        events: vec![PendingEvent {
            kind: "added",
            package_id: Some(p.id.clone()),
            channel: Some(channel.to_string()),
            reason: None,
            detail: None,
        }],
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

pub fn view(
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

pub fn list(ctx: &Ctx, f: &ListFilter) -> Result<Vec<PackageView>, ServiceError> {
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
        ctx.channel_index(c)?;
        let in_channel = memberships::table
            .filter(memberships::channel.eq(c.clone()))
            .filter(memberships::removed_in.is_null())
            .select(memberships::package_id);
        q = q.filter(packages::id.eq_any(in_channel));
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
    views(&mut conn, ctx, list)
}

pub fn detail(ctx: &Ctx, id: &str) -> Result<PackageDetail, ServiceError> {
    let mut conn = ctx.conn()?;
    let p = resolve(&mut conn, id)?;
    let history: Vec<EventView> = events::table
        .filter(events::package_id.eq(&p.id))
        .order(events::id.asc())
        .select(EventRow::as_select())
        .load(&mut conn)?
        .into_iter()
        .map(EventView::from)
        .collect();
    let package = view(&mut conn, ctx, p)?;
    let downloads: BTreeMap<String, String> = package
        .channels
        .iter()
        .map(|c| {
            (
                c.clone(),
                format!(
                    "{}/rpm/{c}/{}",
                    ctx.config.base_url,
                    rpm_location(&package.id, &package.filename)
                ),
            )
        })
        .collect();
    Ok(PackageDetail {
        package,
        downloads,
        history,
    })
}
