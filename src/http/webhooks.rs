//! /api/v1/webhooks (admin): subscriptions, their attempts, manual redelivery.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::auth::Caller;
use super::{blocking, ApiError, JsonLine};
use crate::service::webhooks::{self, CreateWebhook, UpdateWebhook};
use crate::service::Ctx;

pub async fn list(ctx: web::Data<Ctx>, Caller(who): Caller) -> Result<HttpResponse, ApiError> {
    let v = blocking(&ctx, move |c| webhooks::list(c, &who)).await?;
    Ok(HttpResponse::Ok().json_line(v))
}

pub async fn create(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    body: web::Json<CreateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let req = body.into_inner();
    let v = blocking(&ctx, move |c| webhooks::create(c, &req, &who)).await?;
    Ok(HttpResponse::Created().json_line(v))
}

pub async fn detail(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let v = blocking(&ctx, move |c| webhooks::get(c, id, &who)).await?;
    Ok(HttpResponse::Ok().json_line(v))
}

pub async fn update(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    id: web::Path<i64>,
    body: web::Json<UpdateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let u = body.into_inner();
    let v = blocking(&ctx, move |c| webhooks::update(c, id, &u, &who)).await?;
    Ok(HttpResponse::Ok().json_line(v))
}

pub async fn delete(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    blocking(&ctx, move |c| webhooks::delete(c, id, &who)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
pub struct AttemptsQuery {
    pub limit: Option<i64>,
}

pub async fn attempts(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    id: web::Path<i64>,
    q: web::Query<AttemptsQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let limit = q.into_inner().limit;
    let v = blocking(&ctx, move |c| webhooks::attempts(c, id, limit, &who)).await?;
    Ok(HttpResponse::Ok().json_line(v))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedeliverBody {
    pub event_id: i64,
}

pub async fn redeliver(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    id: web::Path<i64>,
    body: web::Json<RedeliverBody>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let event = body.into_inner().event_id;
    let v = blocking(&ctx, move |c| webhooks::redeliver(c, id, event, &who)).await?;
    Ok(HttpResponse::Ok().json_line(v))
}
