//! /api/v1/packages: upload, list, detail, promote, demote.

use actix_multipart::Multipart;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;

use super::auth::Caller;
use super::{blocking, ApiError, JsonLine};
use crate::service::packages::{self, Ingested, ListFilter};
use crate::service::{channels, gates, upload, Ctx};

#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    /// Also add the upload to this channel (only the first channel of the path).
    pub channel: Option<String>,
}

/// Refuses oversized uploads before reading a byte, when the client says the size.
fn check_declared_length(ctx: &Ctx, req: &HttpRequest) -> Result<(), ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > ctx.config.max_upload_bytes => Err(crate::service::ServiceError::TooLarge {
            limit: ctx.config.max_upload_bytes,
        }
        .into()),
        _ => Ok(()),
    }
}

fn check_channel(ctx: &Ctx, channel: &Option<String>) -> Result<(), ApiError> {
    if let Some(c) = channel {
        let idx = ctx.channel_index(c)?;
        if idx != 0 {
            return Err(crate::service::ServiceError::NotAllowed(format!(
                "uploads go into {:?}, the first channel; {c:?} is reached by promotion",
                ctx.config.channels[0]
            ))
            .into());
        }
    }
    Ok(())
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
    // Before a byte of the body is read.
    who.require_upload()?;
    let name = name.into_inner();
    upload::check_client_name(&name)?;
    check_channel(&ctx, &query.channel)?;
    check_declared_length(&ctx, &req)?;
    let received = upload::receive(&ctx, name, body).await?;
    let channel = query.into_inner().channel;
    let result = blocking(&ctx, move |c| packages::ingest(c, received, channel, &who)).await?;
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
    who.require_upload()?;
    check_channel(&ctx, &query.channel)?;
    check_declared_length(&ctx, &req)?;
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
        let channel = query.into_inner().channel;
        let who = who.clone();
        let result = blocking(&ctx, move |c| packages::ingest(c, received, channel, &who)).await?;
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
    let id = id.into_inner();
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
    let id = id.into_inner();
    let PromoteBody { to, force } = body.into_inner();
    // Who may promote into `to` is the channel's policy: the service decides.
    let r = blocking(&ctx, move |c| channels::promote(c, &id, &to, force, &who)).await?;
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
    let id = id.into_inner();
    let b = body.into_inner();
    // Later channels the demotion also touches are checked by the service.
    who.require_promote(&b.from)?;
    let r = blocking(&ctx, move |c| {
        channels::demote(c, &id, &b.from, &b.reason, &who)
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
    let id = id.into_inner();
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
    let id = id.into_inner();
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
    who.require_admin()?;
    let id = id.into_inner();
    let reason = q.into_inner().reason;
    let v = blocking(&ctx, move |c| gates::discard(c, &id, &reason, &who)).await?;
    Ok(HttpResponse::Ok().json_line(v))
}
