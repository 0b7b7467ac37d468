//! /api/v1/packages/{id}/checks and /notes: evidence and remarks on a build.

use actix_web::{web, HttpResponse};

use super::auth::Caller;
use super::{blocking, ApiError, JsonLine};
use crate::service::promotion::checks::{self, AddNote, ReportCheck};
use crate::service::{Ctx, PackageRef};

/// `POST /api/v1/packages/{id}/checks {"name","channel","status","url","summary"}`
pub async fn report(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    id: web::Path<String>,
    body: web::Json<ReportCheck>,
) -> Result<HttpResponse, ApiError> {
    let id = PackageRef::parse(&id)?;
    let req = body.into_inner();
    let v = blocking(&ctx, move |c| checks::report(c, &id, req, &who)).await?;
    Ok(HttpResponse::Created().json_line(v))
}

/// `POST /api/v1/packages/{id}/notes {"text","url"}`
pub async fn note(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    id: web::Path<String>,
    body: web::Json<AddNote>,
) -> Result<HttpResponse, ApiError> {
    let id = PackageRef::parse(&id)?;
    let req = body.into_inner();
    let v = blocking(&ctx, move |c| checks::add_note(c, &id, req, &who)).await?;
    Ok(HttpResponse::Created().json_line(v))
}
