//! Published yum repositories: /rpm/{channel}.repo, repodata and package files.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{blocking, files, ApiError};
use crate::service::{repo, Ctx};

/// `/rpm/{channel}.repo`
pub async fn repo_file(
    ctx: web::Data<Ctx>,
    file: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let file = file.into_inner();
    let Some(channel) = file.strip_suffix(".repo").map(str::to_string) else {
        return Err(ApiError::not_found(format!(
            "no file {file:?}; try /rpm/<channel>.repo"
        )));
    };
    let text = blocking(&ctx, move |c| repo::repo_file(c, &channel)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(text))
}

/// `/rpm/{channel}/repodata/{file}`: repomd.xml or a checksum-named data file.
pub async fn repodata(
    ctx: web::Data<Ctx>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (channel, file) = path.into_inner();
    let name = file.clone();
    let served = blocking(&ctx, move |c| {
        if name == "repomd.xml" {
            repo::repomd(c, &channel).map(Some)
        } else {
            repo::repodata_file(c, &channel, &name)
        }
    })
    .await?
    .ok_or_else(|| ApiError::not_found(format!("no metadata file {file:?} in this channel")))?;
    files::respond(&ctx, &req, served, &file)
}

/// `/rpm/{channel}/Packages/{sha256}/{filename}`
pub async fn package(
    ctx: web::Data<Ctx>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (channel, sha, file) = path.into_inner();
    let name = file.clone();
    let served = blocking(&ctx, move |c| repo::package_file(c, &channel, &sha, &name))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{file:?} is not in this channel")))?;
    files::respond(&ctx, &req, served, &file)
}
