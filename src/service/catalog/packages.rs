//! Builds as callers see them: views restricted to the channels the caller
//! may read, the package list and a build's page with its history.

use std::collections::{BTreeMap, HashMap};

use diesel::prelude::*;

use super::queries::{current_channels, open_member_ids, open_memberships, resolve, ID_CHUNK};
use crate::db::models::*;
use crate::db::schema::*;
use crate::db::DbConnection;
use crate::service::catalog::views::{CheckView, EventView, PackageDetail, PackageView};
use crate::service::error::LookupError;
use crate::service::{Actor, Ctx, PackageRef, ServiceError};

/// Where a package file is served inside any channel's yum repository.
pub fn rpm_location(sha256: &str, filename: &str) -> String {
    format!("Packages/{sha256}/{filename}")
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
    for chunk in ids.chunks(ID_CHUNK) {
        let rows: Vec<(String, String)> = open_memberships()
            .filter(memberships::package_id.eq_any(chunk))
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
        ctx.require_read(actor, &ctx.channel(c)?)?;
        q = q.filter(packages::id.eq_any(open_member_ids(c)));
    }
    // Builds only in channels the caller may not read stay invisible.
    if let Some(readable) = readable_channels(ctx, actor) {
        let in_readable = open_memberships()
            .filter(memberships::channel.eq_any(readable))
            .select(memberships::package_id);
        if sees_unplaced(ctx, actor) {
            let placed = open_memberships().select(memberships::package_id);
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

pub fn detail(ctx: &Ctx, id: &PackageRef, actor: &Actor) -> Result<PackageDetail, ServiceError> {
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
                &format!("reading package {:?}", id.as_str()),
                "read access to a channel that holds it",
            ));
        }
        return Err(LookupError::PackageNotFound(id.to_string()).into());
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
    let checks = super::queries::checks_of(&mut conn, &package.id)?
        .into_iter()
        .filter(|c| ctx.may_read(actor, &c.channel))
        .map(CheckView::from)
        .collect();
    Ok(PackageDetail {
        package,
        downloads,
        checks,
        history,
    })
}
