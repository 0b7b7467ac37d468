//! Channels as callers see them: the configured promotion path, each
//! channel's members, revisions and their diffs, the latest build of a name.

use std::collections::HashSet;

use diesel::prelude::*;

use super::packages::{rpm_location, view, views};
use super::queries::{by_version, frozen, open_member_ids, summaries_by_ids};
use crate::db::models::*;
use crate::db::schema::*;
use crate::db::DbConnection;
use crate::service::catalog::views::*;
use crate::service::error::LookupError;
use crate::service::{Actor, ChannelName, Ctx, ServiceError};

fn channel_view(
    ctx: &Ctx,
    conn: &mut DbConnection,
    name: &ChannelName,
) -> Result<ChannelView, ServiceError> {
    let idx = name.position();
    let head: Option<i32> = channels::table
        .find(name)
        .select(channels::head)
        .first(conn)
        .optional()?;
    let revision = match head {
        Some(h) if h > 0 => revisions::table
            .filter(revisions::channel.eq(name))
            .filter(revisions::number.eq(h))
            .select(RevisionRow::as_select())
            .first(conn)
            .optional()?
            .map(RevisionView::from),
        _ => None,
    };
    Ok(ChannelView {
        name: name.to_string(),
        position: idx,
        source: idx.checked_sub(1).map(|i| ctx.config.channels[i].clone()),
        revision,
        repo_url: format!("{}/rpm/{name}/", ctx.config.base_url),
        repo_file: format!("{}/rpm/{name}.repo", ctx.config.base_url),
        apt_sources: format!("{}/deb/{name}.sources", ctx.config.base_url),
        frozen: frozen(conn, name)?.map(Marker::from),
    })
}

/// The channels the caller may read, in promotion order.
pub fn list_channels(ctx: &Ctx, actor: &Actor) -> Result<Vec<ChannelView>, ServiceError> {
    let mut conn = ctx.conn()?;
    ctx.config
        .channels
        .iter()
        .filter(|c| ctx.may_read(actor, c))
        .map(|c| channel_view(ctx, &mut conn, &ctx.channel(c)?))
        .collect()
}

/// Package ids in a channel at a revision: added at or before it, not yet removed.
fn members_at(
    conn: &mut DbConnection,
    channel: &str,
    rev: i32,
) -> Result<HashSet<String>, ServiceError> {
    Ok(memberships::table
        .filter(memberships::channel.eq(channel))
        .filter(memberships::added_in.le(rev))
        .filter(
            memberships::removed_in
                .is_null()
                .or(memberships::removed_in.gt(rev)),
        )
        .select(memberships::package_id)
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

/// Views of the builds, each listing only the channels `actor` may read.
fn package_views(
    ctx: &Ctx,
    conn: &mut DbConnection,
    ids: impl IntoIterator<Item = String>,
    actor: &Actor,
) -> Result<Vec<PackageView>, ServiceError> {
    let ids: Vec<String> = ids.into_iter().collect();
    let mut list = summaries_by_ids(conn, &ids)?;
    list.sort_by(by_version);
    let mut out = views(conn, ctx, list)?;
    for v in &mut out {
        v.channels.retain(|c| ctx.may_read(actor, c));
    }
    Ok(out)
}

pub fn channel_detail(
    ctx: &Ctx,
    name: &ChannelName,
    actor: &Actor,
) -> Result<ChannelDetail, ServiceError> {
    ctx.require_read(actor, name)?;
    let mut conn = ctx.conn()?;
    let channel = channel_view(ctx, &mut conn, name)?;
    let head = channel.revision.as_ref().map(|r| r.number).unwrap_or(0);
    let ids = members_at(&mut conn, name, head)?;
    let packages = package_views(ctx, &mut conn, ids, actor)?;
    Ok(ChannelDetail { channel, packages })
}

#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct RevisionQuery {
    /// Only the revision in force at this time (RFC 3339).
    pub at: Option<String>,
}

pub fn revisions(
    ctx: &Ctx,
    name: &ChannelName,
    q: &RevisionQuery,
    actor: &Actor,
) -> Result<Vec<RevisionView>, ServiceError> {
    ctx.require_read(actor, name)?;
    let mut conn = ctx.conn()?;
    let mut query = revisions::table
        .filter(revisions::channel.eq(name))
        .select(RevisionRow::as_select())
        .into_boxed();
    if let Some(at) = &q.at {
        let t = chrono::DateTime::parse_from_rfc3339(at)
            .map_err(|e| ServiceError::BadRequest(format!("at={at:?}: {e}")))?
            .timestamp();
        query = query
            .filter(revisions::created_at.le(t))
            .order(revisions::number.desc())
            .limit(1);
    } else {
        query = query.order(revisions::number.desc());
    }
    Ok(query
        .load(&mut conn)?
        .into_iter()
        .map(RevisionView::from)
        .collect())
}

pub fn revision_detail(
    ctx: &Ctx,
    name: &ChannelName,
    number: i32,
    actor: &Actor,
) -> Result<RevisionDetail, ServiceError> {
    ctx.require_read(actor, name)?;
    let mut conn = ctx.conn()?;
    let rev: RevisionRow = revisions::table
        .filter(revisions::channel.eq(name))
        .filter(revisions::number.eq(number))
        .select(RevisionRow::as_select())
        .first(&mut conn)
        .optional()?
        .ok_or_else(|| LookupError::RevisionNotFound(name.to_string(), number))?;
    let ids = members_at(&mut conn, name, number)?;
    let packages = package_views(ctx, &mut conn, ids, actor)?;
    Ok(RevisionDetail {
        revision: rev.into(),
        packages,
    })
}

pub fn diff(
    ctx: &Ctx,
    name: &ChannelName,
    from: i32,
    to: i32,
    actor: &Actor,
) -> Result<DiffView, ServiceError> {
    ctx.require_read(actor, name)?;
    let mut conn = ctx.conn()?;
    for n in [from, to] {
        let exists = revisions::table
            .filter(revisions::channel.eq(name))
            .filter(revisions::number.eq(n))
            .select(revisions::number)
            .first::<i32>(&mut conn)
            .optional()?;
        if exists.is_none() {
            return Err(LookupError::RevisionNotFound(name.to_string(), n).into());
        }
    }
    let a = members_at(&mut conn, name, from)?;
    let b = members_at(&mut conn, name, to)?;
    let added = package_views(ctx, &mut conn, b.difference(&a).cloned(), actor)?;
    let removed = package_views(ctx, &mut conn, a.difference(&b).cloned(), actor)?;
    Ok(DiffView {
        channel: name.to_string(),
        from,
        to,
        added,
        removed,
    })
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LatestView {
    #[serde(flatten)]
    pub package: PackageView,
    pub channel: String,
    pub download_url: String,
}

/// The build of `name` a host following `channel` gets now: the newest the
/// channel holds (of `arch`, when given). For pollers, with an ETag.
pub fn latest(
    ctx: &Ctx,
    channel: &ChannelName,
    name: &str,
    arch: Option<&str>,
    actor: &Actor,
) -> Result<LatestView, ServiceError> {
    ctx.require_read(actor, channel)?;
    let mut conn = ctx.conn()?;
    let mut q = packages::table
        .filter(packages::name.eq(name))
        .filter(packages::id.eq_any(open_member_ids(channel)))
        .select((PackageSummary::as_select(), packages::pool_path))
        .into_boxed();
    if let Some(a) = arch {
        q = q.filter(packages::arch.eq(a.to_string()));
    }
    let found: Vec<(PackageSummary, Option<String>)> = q.load(&mut conn)?;
    let Some((best, pool)) = found.into_iter().max_by(|a, b| by_version(&a.0, &b.0)) else {
        return Err(LookupError::NotFound(format!(
            "channel {channel:?} holds no build of {name:?}"
        ))
        .into());
    };
    let base = &ctx.config.base_url;
    let download_url = match pool {
        Some(p) => format!("{base}/deb/{p}"),
        None => format!(
            "{base}/rpm/{channel}/{}",
            rpm_location(&best.id, &best.filename)
        ),
    };
    let package = view(&mut conn, ctx, best, actor)?;
    Ok(LatestView {
        package,
        channel: channel.into(),
        download_url,
    })
}

/// "1 build", "3 builds".
pub fn builds(n: usize) -> String {
    if n == 1 {
        "1 build".into()
    } else {
        format!("{n} builds")
    }
}
