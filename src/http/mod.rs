//! HTTP edge: the route table, thin handlers, error mapping and file serving.

pub mod auth;
pub mod channels;
pub mod checks;
pub mod error;
pub mod files;
pub mod packages;
pub mod repo;
pub mod tokens;
pub mod ui;
pub mod webhooks;

use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};

pub use error::ApiError;

use crate::service::Ctx;

/// JSON bodies are small commands; a bulk promotion names many builds
/// (each id is 64 hex characters), so it gets room for tens of thousands.
const JSON_LIMIT: usize = 64 * 1024;
const BULK_JSON_LIMIT: usize = 8 * 1024 * 1024;

fn json_config(limit: usize) -> web::JsonConfig {
    // `curl -d` sends a form content type by default; the body is JSON anyway.
    web::JsonConfig::default()
        .limit(limit)
        .content_type_required(false)
        .error_handler(error::json_error)
}

/// The whole route table.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config(JSON_LIMIT))
        .app_data(web::QueryConfig::default().error_handler(error::query_error))
        .app_data(web::PathConfig::default().error_handler(error::path_error))
        .route("/", web::get().to(index))
        .route("/healthz", web::get().to(health))
        .route("/metrics", web::get().to(metrics))
        .service(
            web::scope("/api/v1")
                .route("/packages", web::get().to(packages::list))
                .route("/packages", web::post().to(packages::upload_multipart))
                .route("/packages/", web::post().to(packages::upload_multipart))
                .route("/packages/{id}", web::put().to(packages::upload_raw))
                .route("/packages/{id}", web::get().to(packages::detail))
                .route("/packages/{id}/promote", web::post().to(packages::promote))
                .route("/packages/{id}/demote", web::post().to(packages::demote))
                .route("/packages/{id}/hold", web::post().to(packages::hold))
                .route("/packages/{id}/release", web::post().to(packages::release))
                .route("/packages/{id}/checks", web::post().to(checks::report))
                .route("/packages/{id}/notes", web::post().to(checks::note))
                .route("/packages/{id}", web::delete().to(packages::discard))
                .route("/channels", web::get().to(channels::list))
                .route("/channels/{name}", web::get().to(channels::detail))
                .service(
                    web::resource("/channels/{name}/promote")
                        .app_data(json_config(BULK_JSON_LIMIT))
                        .route(web::post().to(channels::promote_many)),
                )
                .route(
                    "/channels/{name}/revisions",
                    web::get().to(channels::revisions),
                )
                .route(
                    "/channels/{name}/revisions/{number}",
                    web::get().to(channels::revision),
                )
                .route("/channels/{name}/diff", web::get().to(channels::diff))
                .route("/channels/{name}/policy", web::get().to(channels::policy))
                .route(
                    "/channels/{name}/policy",
                    web::put().to(channels::set_policy),
                )
                .route(
                    "/channels/{name}/candidates",
                    web::get().to(channels::candidates),
                )
                .route("/channels/{name}/freeze", web::post().to(channels::freeze))
                .route(
                    "/channels/{name}/unfreeze",
                    web::post().to(channels::unfreeze),
                )
                .route("/scheduler/run", web::post().to(channels::run_scheduler))
                .route("/tokens", web::get().to(tokens::list))
                .route("/tokens", web::post().to(tokens::create))
                .route("/tokens/{name}", web::delete().to(tokens::revoke))
                .route("/events", web::get().to(tokens::events))
                .route("/webhooks", web::get().to(webhooks::list))
                .route("/webhooks", web::post().to(webhooks::create))
                .route("/webhooks/{id}", web::get().to(webhooks::detail))
                .route("/webhooks/{id}", web::patch().to(webhooks::update))
                .route("/webhooks/{id}", web::delete().to(webhooks::delete))
                .route("/webhooks/{id}/attempts", web::get().to(webhooks::attempts))
                .route(
                    "/webhooks/{id}/redeliver",
                    web::post().to(webhooks::redeliver),
                )
                .route("/channels/{name}/latest", web::get().to(channels::latest)),
        )
        .route("/ui", web::get().to(|| async { ui::see_other("/ui/") }))
        .service(
            web::scope("/ui")
                // Pages are text that compresses ~15×; repository files are
                // served elsewhere, uncompressed, with their exact sizes.
                .wrap(actix_web::middleware::Compress::default())
                .route("/", web::get().to(ui::board::page))
                .route("/board", web::get().to(ui::board::table))
                .route("/login", web::get().to(ui::session::form))
                .route("/login", web::post().to(ui::session::sign_in))
                .route("/logout", web::post().to(ui::session::sign_out))
                .route("/builds/{id}", web::get().to(ui::builds::page))
                .route("/builds/{id}/promote", web::post().to(ui::builds::promote))
                .route("/builds/{id}/demote", web::post().to(ui::builds::demote))
                .route("/builds/{id}/hold", web::post().to(ui::builds::hold))
                .route("/builds/{id}/release", web::post().to(ui::builds::release))
                .route("/builds/{id}/discard", web::post().to(ui::builds::discard))
                .route("/channels/{name}", web::get().to(ui::channels::page))
                .route(
                    "/channels/{name}/freeze",
                    web::post().to(ui::channels::freeze),
                )
                .route(
                    "/channels/{name}/unfreeze",
                    web::post().to(ui::channels::unfreeze),
                )
                .route("/static/{name}", web::get().to(ui::asset)),
        )
        .route("/rpm/{file}", web::get().to(repo::repo_file))
        .route(
            "/rpm/{channel}/repodata/{file}",
            web::get().to(repo::repodata),
        )
        .route(
            "/rpm/{channel}/repodata/{file}",
            web::head().to(repo::repodata),
        )
        .route(
            "/rpm/{channel}/Packages/{sha}/{file}",
            web::get().to(repo::package),
        )
        .route(
            "/rpm/{channel}/Packages/{sha}/{file}",
            web::head().to(repo::package),
        )
        // The latest-only view shares the channel's package files.
        .route(
            "/rpm/{channel}/latest/repodata/{file}",
            web::get().to(repo::repodata),
        )
        .route(
            "/rpm/{channel}/latest/repodata/{file}",
            web::head().to(repo::repodata),
        )
        .route(
            "/rpm/{channel}/latest/Packages/{sha}/{file}",
            web::get().to(repo::latest_package),
        )
        .route(
            "/rpm/{channel}/latest/Packages/{sha}/{file}",
            web::head().to(repo::latest_package),
        )
        .route("/keys/forklift.asc", web::get().to(repo::public_key))
        .route("/deb/{file}", web::get().to(repo::deb_file))
        .route("/deb/dists/{channel}/{rest:.*}", web::get().to(repo::dists))
        .route(
            "/deb/dists/{channel}/{rest:.*}",
            web::head().to(repo::dists),
        )
        .route("/deb/pool/{rest:.*}", web::get().to(repo::pool))
        .route("/deb/pool/{rest:.*}", web::head().to(repo::pool))
        .default_service(web::to(not_found));
}

/// JSON answers end with a newline, so `curl` output ends its line in a terminal
/// and line-based tools see one record per response.
pub trait JsonLine {
    fn json_line<T: serde::Serialize>(&mut self, value: T) -> HttpResponse;
}

impl JsonLine for HttpResponseBuilder {
    fn json_line<T: serde::Serialize>(&mut self, value: T) -> HttpResponse {
        match serde_json::to_vec(&value) {
            Ok(mut body) => {
                body.push(b'\n');
                self.content_type(actix_web::http::header::ContentType::json())
                    .body(body)
            }
            Err(e) => actix_web::ResponseError::error_response(&ApiError::internal(e)),
        }
    }
}

/// `GET /`: browsers go to the board; API clients get where to go from here.
async fn index(ctx: web::Data<Ctx>, req: HttpRequest) -> HttpResponse {
    let browser = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if browser {
        return ui::see_other("/ui/");
    }
    let base = &ctx.config.base_url;
    HttpResponse::Ok().json_line(serde_json::json!({
        "name": "forklift",
        "version": env!("CARGO_PKG_VERSION"),
        "channels": format!("{base}/api/v1/channels"),
        "packages": format!("{base}/api/v1/packages"),
        "signing_key": format!("{base}/keys/forklift.asc"),
        "board": format!("{base}/ui/"),
    }))
}

/// `GET /metrics`: Prometheus (OpenMetrics text) for callers who may read
/// every channel.
async fn metrics(
    ctx: web::Data<Ctx>,
    auth::Caller(who): auth::Caller,
) -> Result<HttpResponse, ApiError> {
    let text = blocking(&ctx, move |c| crate::service::observe::render(c, &who)).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(text))
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json_line(serde_json::json!({"status": "ok"}))
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

/// Runs blocking service code off the async workers, at most
/// `Ctx::blocking_slots` at a time (later callers wait without a thread). A
/// panic is logged inside the request's span (method and path) and answered
/// as a 500, never an anonymous failure.
pub async fn blocking<T, F>(ctx: &web::Data<Ctx>, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&Ctx) -> Result<T, crate::service::ServiceError> + Send + 'static,
    T: Send + 'static,
{
    let slots = ctx.blocking_slots.clone();
    blocking_in(ctx, slots, f).await
}

/// [`blocking`] admitted by `slots` (file serving has its own).
pub async fn blocking_in<T, F>(
    ctx: &web::Data<Ctx>,
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    f: F,
) -> Result<T, ApiError>
where
    F: FnOnce(&Ctx) -> Result<T, crate::service::ServiceError> + Send + 'static,
    T: Send + 'static,
{
    let ctx = ctx.get_ref().clone();
    let permit = slots.acquire_owned().await.map_err(ApiError::internal)?;
    let span = tracing::Span::current();
    let result = web::block(move || {
        let _in_request = span.enter();
        let _permit = permit;
        crate::formats::contain_panic(|| f(&ctx)).unwrap_or_else(|panic| {
            tracing::error!(%panic, "request panicked");
            Err(crate::service::ServiceError::Internal(format!(
                "a request panicked: {panic}"
            )))
        })
    })
    .await?;
    Ok(result?)
}
