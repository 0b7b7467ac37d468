//! /api/v1/packages: upload, list, detail, promote, demote.

use actix_multipart::Multipart;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;

use super::auth::Caller;
use super::{blocking, ApiError, JsonLine};
use crate::service::catalog::packages::{self, ListFilter};
use crate::service::ingest::{self, upload, Ingested};
use crate::service::promotion::{gates, transitions};
use crate::service::{Ctx, PackageRef};

#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    /// Also add the upload to this channel (only the first channel of the path).
    pub channel: Option<String>,
}

/// The `Content-Length` the client announced, if any.
fn declared_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

fn ingested(i: Ingested) -> HttpResponse {
    let status = if i.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    HttpResponse::build(status).json_line(i.package)
}

/// `PUT /api/v1/packages/{filename}` with the raw file as body (`curl -T`).
pub async fn upload_raw(
    ctx: web::Data<Ctx>,
    req: HttpRequest,
    Caller(who): Caller,
    name: web::Path<String>,
    query: web::Query<UploadQuery>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let channel = query
        .into_inner()
        .channel
        .map(|c| ctx.channel(&c))
        .transpose()?;
    // Refused before a byte of the body is read.
    upload::admit(
        &ctx,
        &upload::Announced {
            actor: &who,
            client_name: &name,
            channel: channel.as_ref(),
            declared_len: declared_length(&req),
        },
    )?;
    let received = upload::receive(&ctx, name, body).await?;
    let result = blocking(&ctx, move |c| ingest::ingest(c, received, channel, &who)).await?;
    Ok(ingested(result))
}

/// `POST /api/v1/packages` as multipart (`curl -F file=@x.rpm`); the first file
/// field is the package.
pub async fn upload_multipart(
    ctx: web::Data<Ctx>,
    req: HttpRequest,
    Caller(who): Caller,
    query: web::Query<UploadQuery>,
    mut form: Multipart,
) -> Result<HttpResponse, ApiError> {
    let channel = query
        .into_inner()
        .channel
        .map(|c| ctx.channel(&c))
        .transpose()?;
    upload::admit(
        &ctx,
        &upload::Announced {
            actor: &who,
            client_name: "form",
            channel: channel.as_ref(),
            declared_len: declared_length(&req),
        },
    )?;
    while let Some(field) = form.next().await {
        let field = field.map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_multipart", e.to_string())
        })?;
        let Some(filename) = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .map(str::to_string)
        else {
            continue;
        };
        let received = upload::receive(&ctx, filename, field).await?;
        let who = who.clone();
        let result = blocking(&ctx, move |c| ingest::ingest(c, received, channel, &who)).await?;
        return Ok(ingested(result));
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "missing_file",
        "the form has no file field; send it as -F file=@package.rpm",
    ))
}

pub async fn list(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    q: web::Query<ListFilter>,
) -> Result<HttpResponse, ApiError> {
    let f = q.into_inner();
    // What the caller may see is decided per build by its channels.
    let list = blocking(&ctx, move |c| packages::list(c, &f, &who)).await?;
    Ok(HttpResponse::Ok().json_line(list))
}

pub async fn detail(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = PackageRef::parse(&id)?;
    let d = blocking(&ctx, move |c| packages::detail(c, &id, &who)).await?;
    Ok(HttpResponse::Ok().json_line(d))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromoteBody {
    pub to: String,
    /// Promote a held build anyway (admin only).
    #[serde(default)]
    pub force: bool,
}

pub async fn promote(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    id: web::Path<String>,
    body: web::Json<PromoteBody>,
) -> Result<HttpResponse, ApiError> {
    let id = PackageRef::parse(&id)?;
    let PromoteBody { to, force } = body.into_inner();
    let to = ctx.channel(&to)?;
    // Who may promote into `to` is the channel's policy: the service decides.
    let r = blocking(&ctx, move |c| {
        transitions::promote(c, &id, &to, force, &who)
    })
    .await?;
    Ok(HttpResponse::Ok().json_line(r))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoteBody {
    pub from: String,
    #[serde(default)]
    pub reason: String,
}

pub async fn demote(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    id: web::Path<String>,
    body: web::Json<DemoteBody>,
) -> Result<HttpResponse, ApiError> {
    let id = PackageRef::parse(&id)?;
    let b = body.into_inner();
    let from = ctx.channel(&b.from)?;
    // Who may demote from `from` and every later channel: the service decides.
    let r = blocking(&ctx, move |c| {
        transitions::demote(c, &id, &from, &b.reason, &who)
    })
    .await?;
    Ok(HttpResponse::Ok().json_line(r))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[serde(default)]
    pub reason: String,
}

/// `POST /api/v1/packages/{id}/hold {"reason"}`: the panic button.
pub async fn hold(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    id: web::Path<String>,
    body: web::Json<ReasonBody>,
) -> Result<HttpResponse, ApiError> {
    let id = PackageRef::parse(&id)?;
    let reason = body.into_inner().reason;
    let v = blocking(&ctx, move |c| gates::set_held(c, &id, Some(&reason), &who)).await?;
    Ok(HttpResponse::Ok().json_line(v))
}

/// `POST /api/v1/packages/{id}/release`
pub async fn release(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = PackageRef::parse(&id)?;
    let v = blocking(&ctx, move |c| gates::set_held(c, &id, None, &who)).await?;
    Ok(HttpResponse::Ok().json_line(v))
}

#[derive(Debug, Deserialize)]
pub struct DiscardQuery {
    #[serde(default)]
    pub reason: String,
}

/// `DELETE /api/v1/packages/{id}?reason=...` (admin): discard a build for good.
pub async fn discard(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    id: web::Path<String>,
    q: web::Query<DiscardQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = PackageRef::parse(&id)?;
    let reason = q.into_inner().reason;
    let v = blocking(&ctx, move |c| gates::discard(c, &id, &reason, &who)).await?;
    Ok(HttpResponse::Ok().json_line(v))
}
