//! /api/v1/channels: the promotion path, revisions and diffs.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::auth::Caller;
use super::{blocking, ApiError};
use crate::service::channels::{self, RevisionQuery};
use crate::service::Ctx;

pub async fn list(ctx: web::Data<Ctx>, Caller(who): Caller) -> Result<HttpResponse, ApiError> {
    let v = blocking(&ctx, move |c| channels::list_channels(c, &who)).await?;
    Ok(HttpResponse::Ok().json(v))
}

pub async fn detail(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    ctx.require_read(&who, &name)?;
    let v = blocking(&ctx, move |c| channels::channel_detail(c, &name)).await?;
    Ok(HttpResponse::Ok().json(v))
}

pub async fn revisions(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    name: web::Path<String>,
    q: web::Query<RevisionQuery>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    ctx.require_read(&who, &name)?;
    let q = q.into_inner();
    let v = blocking(&ctx, move |c| channels::revisions(c, &name, &q)).await?;
    Ok(HttpResponse::Ok().json(v))
}

pub async fn revision(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    path: web::Path<(String, i32)>,
) -> Result<HttpResponse, ApiError> {
    let (name, number) = path.into_inner();
    ctx.require_read(&who, &name)?;
    let v = blocking(&ctx, move |c| channels::revision_detail(c, &name, number)).await?;
    Ok(HttpResponse::Ok().json(v))
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
    let name = name.into_inner();
    ctx.require_read(&who, &name)?;
    let DiffQuery { from, to } = q.into_inner();
    let v = blocking(&ctx, move |c| channels::diff(c, &name, from, to)).await?;
    Ok(HttpResponse::Ok().json(v))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    /// sha256 ids or canonical file names.
    pub packages: Vec<String>,
}

/// `POST /api/v1/channels/{name}/promote {"packages": [...]}`: one revision.
pub async fn promote_many(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    name: web::Path<String>,
    body: web::Json<BulkBody>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    // Into the first channel this is an upload step; later, a promotion.
    if !(ctx.channel_index(&name)? == 0 && who.grants.may_upload()) {
        who.require_promote(&name)?;
    }
    let ids = body.into_inner().packages;
    let r = blocking(&ctx, move |c| channels::promote_many(c, &ids, &name, &who)).await?;
    Ok(HttpResponse::Ok().json(r))
}
