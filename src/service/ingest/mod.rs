//! Ingest: an upload received to a temporary file, recognised, validated,
//! stored once by SHA-256 and recorded; optionally placed in the entry
//! channel. On any failure nothing stays behind.

mod parse;
pub mod upload;

use diesel::prelude::*;

use crate::db::models::*;
use crate::db::schema::*;
use crate::db::DbConnection;
use crate::service::catalog::packages::view;
use crate::service::catalog::queries::{current_channels, find_by_id, summary_by_id};
use crate::service::catalog::views::PackageView;
use crate::service::error::{IngestError, LookupError, PromotionError, PublishError};
use crate::service::publish::{commit, Change, ChannelOp, PendingEvent};
use crate::service::{Actor, ChannelName, Ctx, ServiceError};
use parse::parse_upload;
use upload::Received;

/// What an upload resulted in.
pub struct Ingested {
    pub package: PackageView,
    /// False when these exact bytes were already stored (HTTP 200 instead of 201).
    pub created: bool,
}

/// Validates, stores and records an upload; optionally adds it to the entry channel.
/// On any failure nothing stays behind: the temp file is dropped and a blob that no
/// row references is removed again.
pub fn ingest(
    ctx: &Ctx,
    upload: Received,
    channel: Option<ChannelName>,
    actor: &Actor,
) -> Result<Ingested, ServiceError> {
    let size = upload.size;
    let result = ingest_checked(ctx, upload, channel, actor);
    let outcome = match &result {
        Ok(i) if i.created => {
            ctx.metrics.upload_bytes.inc_by(size);
            "stored"
        }
        Ok(_) => "duplicate",
        Err(_) => "refused",
    };
    ctx.metrics
        .uploads
        .get_or_create(&crate::metrics::OutcomeLabels {
            outcome: outcome.into(),
        })
        .inc();
    result
}

fn ingest_checked(
    ctx: &Ctx,
    upload: Received,
    channel: Option<ChannelName>,
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
        ops.push(ChannelOp::add(c, vec![sha.clone()]));
        events.push(PendingEvent {
            kind: "added",
            package_id: Some(sha.clone()),
            channel: Some(c.to_string()),
            reason: None,
            detail: None,
        });
    }
    let deps = crate::service::catalog::deps::rows_for(
        &row.id,
        &row.kind,
        &row.primary_xml,
        row.apt_stanza.as_deref(),
    );
    let change = Change {
        summary: format!("upload {}", row.filename),
        new_packages: vec![row.clone()],
        new_deps: deps,
        ops,
        events,
        ..Change::default()
    };
    match commit(ctx, change, actor) {
        Ok(_) => {}
        Err(ServiceError::Publish(PublishError::DuplicatePackage)) => {
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
            return Err(PublishError::Contention.into());
        }
        Err(e) => {
            remove_orphan_blob(ctx, &sha);
            return Err(e);
        }
    }
    let mut conn = ctx.conn()?;
    let summary =
        summary_by_id(&mut conn, &sha)?.ok_or_else(|| LookupError::PackageNotFound(sha.clone()))?;
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
    channel: Option<ChannelName>,
    actor: &Actor,
) -> Result<Ingested, ServiceError> {
    if existing.discarded_at.is_some() {
        return Err(PromotionError::Discarded(format!(
            "{} was discarded ({}); a discarded build is never taken back",
            existing.filename,
            existing.discard_reason.as_deref().unwrap_or("")
        ))
        .into());
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
    IngestError::NevraConflict {
        name: row.name.clone(),
        evr: if row.release.is_empty() {
            format!("{}:{}", row.epoch, row.version)
        } else {
            format!("{}:{}-{}", row.epoch, row.version, row.release)
        },
        arch: row.arch.clone(),
        existing,
    }
    .into()
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
    Ok(existing.map(|existing| {
        IngestError::PoolConflict {
            path: path.clone(),
            existing,
        }
        .into()
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
pub fn check_entry_channel(ctx: &Ctx, channel: &ChannelName) -> Result<(), ServiceError> {
    if !channel.is_entry() {
        return Err(IngestError::NotEntryChannel {
            channel: channel.to_string(),
            entry: ctx.config.channels[0].clone(),
        }
        .into());
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
        ops: vec![ChannelOp::add(channel, vec![p.id.clone()])],
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
