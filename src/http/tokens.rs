//! /api/v1/tokens (admin): create, list, revoke; /api/v1/events: the audit log.

use actix_web::{web, HttpResponse};

use super::auth::Caller;
use super::{blocking, ApiError, JsonLine};
use crate::service::access::tokens::{pooled, CreateToken};
use crate::service::catalog::audit::{self, AuditQuery};
use crate::service::Ctx;

pub async fn list(ctx: web::Data<Ctx>, Caller(who): Caller) -> Result<HttpResponse, ApiError> {
    let v = blocking(&ctx, move |c| pooled::list(c, &who)).await?;
    Ok(HttpResponse::Ok().json_line(v))
}

/// The response carries the secret once; it is never retrievable again.
pub async fn create(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    body: web::Json<CreateToken>,
) -> Result<HttpResponse, ApiError> {
    let req = body.into_inner();
    let v = blocking(&ctx, move |c| pooled::create(c, &req, &who)).await?;
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json_line(v))
}

pub async fn revoke(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let n = name.clone();
    blocking(&ctx, move |c| pooled::revoke(c, &n, &who)).await?;
    Ok(HttpResponse::Ok().json_line(serde_json::json!({ "revoked": name })))
}

pub async fn events(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let v = blocking(&ctx, move |c| audit::events(c, &q, &who)).await?;
    Ok(HttpResponse::Ok().json_line(v))
}
