//! /api/v1/channels: the promotion path, revisions and diffs.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::auth::Caller;
use super::{blocking, ApiError, JsonLine};
use crate::policy::PolicySpec;
use crate::service::catalog::channels::{self, RevisionQuery};
use crate::service::promotion::{candidates, gates, policies, scheduler, transitions};
use crate::service::{Ctx, PackageRef};

pub async fn list(ctx: web::Data<Ctx>, Caller(who): Caller) -> Result<HttpResponse, ApiError> {
    let v = blocking(&ctx, move |c| channels::list_channels(c, &who)).await?;
    Ok(HttpResponse::Ok().json_line(v))
}

pub async fn detail(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = ctx.channel(&name)?;
    let v = blocking(&ctx, move |c| channels::channel_detail(c, &name, &who)).await?;
    Ok(HttpResponse::Ok().json_line(v))
}

pub async fn revisions(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    name: web::Path<String>,
    q: web::Query<RevisionQuery>,
) -> Result<HttpResponse, ApiError> {
    let name = ctx.channel(&name)?;
    let q = q.into_inner();
    let v = blocking(&ctx, move |c| channels::revisions(c, &name, &q, &who)).await?;
    Ok(HttpResponse::Ok().json_line(v))
}

pub async fn revision(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    path: web::Path<(String, i32)>,
) -> Result<HttpResponse, ApiError> {
    let (name, number) = path.into_inner();
    let name = ctx.channel(&name)?;
    let v = blocking(&ctx, move |c| {
        channels::revision_detail(c, &name, number, &who)
    })
    .await?;
    Ok(HttpResponse::Ok().json_line(v))
}

#[derive(Debug, Deserialize)]
pub struct DiffQuery {
    pub from: i32,
    pub to: i32,
}

pub async fn diff(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    name: web::Path<String>,
    q: web::Query<DiffQuery>,
) -> Result<HttpResponse, ApiError> {
    let name = ctx.channel(&name)?;
    let DiffQuery { from, to } = q.into_inner();
    let v = blocking(&ctx, move |c| channels::diff(c, &name, from, to, &who)).await?;
    Ok(HttpResponse::Ok().json_line(v))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    /// sha256 ids or canonical file names.
    pub packages: Vec<String>,
    /// Promote held builds anyway (admin only).
    #[serde(default)]
    pub force: bool,
}

/// `POST /api/v1/channels/{name}/promote {"packages": [...]}`: one revision.
pub async fn promote_many(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    name: web::Path<String>,
    body: web::Json<BulkBody>,
) -> Result<HttpResponse, ApiError> {
    let name = ctx.channel(&name)?;
    // Who may promote into `name` is the channel's policy: the service decides.
    let BulkBody { packages, force } = body.into_inner();
    let packages = packages
        .iter()
        .map(|p| PackageRef::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    let r = blocking(&ctx, move |c| {
        transitions::promote_many(c, &packages, &name, force, &who)
    })
    .await?;
    Ok(HttpResponse::Ok().json_line(r))
}

/// `GET /api/v1/channels/{name}/policy`
pub async fn policy(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = ctx.channel(&name)?;
    let v = blocking(&ctx, move |c| policies::read_policy(c, &name, &who)).await?;
    Ok(HttpResponse::Ok().json_line(v))
}

/// `PUT /api/v1/channels/{name}/policy` (admin)
pub async fn set_policy(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    name: web::Path<String>,
    body: web::Json<PolicySpec>,
) -> Result<HttpResponse, ApiError> {
    let name = ctx.channel(&name)?;
    let spec = body.into_inner();
    let v = blocking(&ctx, move |c| policies::set_policy(c, &name, &spec, &who)).await?;
    Ok(HttpResponse::Ok().json_line(v))
}

/// `GET /api/v1/channels/{name}/candidates`: what may go on, and why not.
pub async fn candidates(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = ctx.channel(&name)?;
    let v = blocking(&ctx, move |c| candidates::candidates(c, &name, &who)).await?;
    Ok(HttpResponse::Ok().json_line(v))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeBody {
    #[serde(default)]
    pub reason: String,
}

/// `POST /api/v1/channels/{name}/freeze {"reason"}`
pub async fn freeze(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    name: web::Path<String>,
    body: web::Json<FreezeBody>,
) -> Result<HttpResponse, ApiError> {
    let name = ctx.channel(&name)?;
    let reason = body.into_inner().reason;
    let v = blocking(&ctx, move |c| {
        gates::set_frozen(c, &name, Some(&reason), &who)
    })
    .await?;
    Ok(HttpResponse::Ok().json_line(v))
}

/// `POST /api/v1/channels/{name}/unfreeze`
pub async fn unfreeze(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = ctx.channel(&name)?;
    let v = blocking(&ctx, move |c| gates::set_frozen(c, &name, None, &who)).await?;
    Ok(HttpResponse::Ok().json_line(v))
}

/// `POST /api/v1/scheduler/run` (admin): run every due automatic promotion now.
pub async fn run_scheduler(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
) -> Result<HttpResponse, ApiError> {
    let v = blocking(&ctx, move |c| scheduler::run_now(c, &who)).await?;
    Ok(HttpResponse::Ok().json_line(v))
}

#[derive(Debug, Deserialize)]
pub struct LatestQuery {
    pub name: String,
    pub arch: Option<String>,
}

/// `GET /api/v1/channels/{name}/latest?name=app`: the current build of a name,
/// with an ETag (the build's sha256) so pollers get 304 until it changes.
pub async fn latest(
    ctx: web::Data<Ctx>,
    req: actix_web::HttpRequest,
    Caller(who): Caller,
    name: web::Path<String>,
    q: web::Query<LatestQuery>,
) -> Result<HttpResponse, ApiError> {
    let channel = ctx.channel(&name)?;
    let LatestQuery { name, arch } = q.into_inner();
    let v = blocking(&ctx, move |c| {
        channels::latest(c, &channel, &name, arch.as_deref(), &who)
    })
    .await?;
    let etag = format!("\"{}\"", v.package.id);
    let matches = req
        .headers()
        .get(actix_web::http::header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut r = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    r.insert_header((actix_web::http::header::ETAG, etag))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-cache"));
    Ok(if matches { r.finish() } else { r.json_line(v) })
}
