//! Published yum repositories: /rpm/{channel}.repo, repodata and package files.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::auth::Caller;
use super::{blocking, files, ApiError};
use crate::service::{repo, Ctx};

/// `/rpm/{channel}.repo`
pub async fn repo_file(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    file: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let file = file.into_inner();
    let Some(channel) = file.strip_suffix(".repo") else {
        return Err(ApiError::not_found(format!(
            "no file {file:?}; try /rpm/<channel>.repo"
        )));
    };
    let channel = ctx.channel(channel)?;
    let text = blocking(&ctx, move |c| repo::repo_file(c, &channel, &who)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(text))
}

/// `/rpm/{channel}/repodata/{file}`: repomd.xml or a checksum-named data file.
pub async fn repodata(
    ctx: web::Data<Ctx>,
    req: HttpRequest,
    Caller(who): Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (channel, file) = path.into_inner();
    let channel = ctx.channel(&channel)?;
    let name = file.clone();
    let latest = req.path().contains("/latest/repodata/");
    let missing = format!("no metadata file {file:?} in this channel");
    files::serve(&ctx, &req, &file, missing, move |c| {
        repo::repodata(c, &channel, latest, &name, &who)
    })
    .await
}

/// `/rpm/{channel}/Packages/{sha256}/{filename}`
pub async fn package(
    ctx: web::Data<Ctx>,
    req: HttpRequest,
    Caller(who): Caller,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (channel, sha, file) = path.into_inner();
    let channel = ctx.channel(&channel)?;
    let name = file.clone();
    let missing = format!("{file:?} is not in this channel");
    files::serve(&ctx, &req, &file, missing, move |c| {
        repo::package_file(c, &channel, &sha, &name, &who)
    })
    .await
}

/// `/rpm/{channel}/latest/Packages/{sha256}/{filename}`: the same files.
pub async fn latest_package(
    ctx: web::Data<Ctx>,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    package(ctx, req, caller, path).await
}

fn text(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

/// `/keys/forklift.asc`: the public key hosts import.
pub async fn public_key(ctx: web::Data<Ctx>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/pgp-keys"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(ctx.signer.public_key_armored().to_string())
}

/// `/deb/{channel}.sources` and `/deb/{channel}.pref`
pub async fn deb_file(
    ctx: web::Data<Ctx>,
    Caller(who): Caller,
    file: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let file = file.into_inner();
    if let Some(channel) = file.strip_suffix(".sources") {
        let channel = ctx.channel(channel)?;
        return Ok(text(
            blocking(&ctx, move |c| repo::sources_file(c, &channel, &who)).await?,
        ));
    }
    if let Some(channel) = file.strip_suffix(".pref") {
        let channel = ctx.channel(channel)?;
        return Ok(text(
            blocking(&ctx, move |c| repo::pref_file(c, &channel, &who)).await?,
        ));
    }
    Err(ApiError::not_found(format!(
        "no file {file:?}; try /deb/<channel>.sources or /deb/<channel>.pref"
    )))
}

/// `/deb/dists/{channel}/{rest}`: Release files, Packages indexes, by-hash copies.
pub async fn dists(
    ctx: web::Data<Ctx>,
    req: HttpRequest,
    Caller(who): Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (channel, rest) = path.into_inner();
    let channel = ctx.channel(&channel)?;
    let name = rest.rsplit('/').next().unwrap_or_default().to_string();
    let missing = format!("no file {name:?} in this suite");
    files::serve(&ctx, &req, &name, missing, move |c| {
        repo::dists(c, &channel, &rest, &who)
    })
    .await
}

/// `/deb/pool/{rest}`: the package files of every suite, each stored once.
pub async fn pool(
    ctx: web::Data<Ctx>,
    req: HttpRequest,
    Caller(who): Caller,
    rest: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let pool_path = format!("pool/{}", rest.into_inner());
    let name = pool_path.rsplit('/').next().unwrap_or_default().to_string();
    // Which channels hold the file decides who may read it: the service checks.
    let missing = format!("{name:?} is not in any channel");
    files::serve(&ctx, &req, &name, missing, move |c| {
        repo::pool_file(c, &pool_path, &who)
    })
    .await
}
