//! The web UI under `/ui/`: server-rendered pages (maud) over the same service
//! functions as the API. Reading works for anyone the channels allow;
//! actions need a session (sign-in with an API token), and every form carries
//! the session's CSRF token. Errors become HTML pages with the API's status.

pub mod board;
pub mod builds;
pub mod channels;
pub mod detail_pages;
pub mod pages;
pub mod session;

use std::future::Future;
use std::pin::Pin;

use actix_web::http::{header, StatusCode};
use actix_web::{dev::Payload, web, FromRequest, HttpRequest, HttpResponse};

use super::{blocking, ApiError};
use crate::service::access::sessions::{self, Session};
use crate::service::{Actor, Ctx, ServiceError};
use pages::{message_page, Reader};

/// The session cookie: the secret only, HttpOnly, SameSite=Strict.
pub const COOKIE: &str = "forklift_session";

/// Who reads a page: a session's token, or anonymous.
pub struct Viewer {
    pub actor: Actor,
    pub session: Option<Session>,
    /// The cookie's secret, for sign-out.
    pub secret: Option<String>,
}

impl Viewer {
    pub fn reader(&self) -> Reader {
        Reader {
            name: self.session.as_ref().map(|s| s.actor.name.clone()),
            csrf: self.session.as_ref().map(|s| s.csrf.clone()),
        }
    }

    /// The session an action needs, with its form's CSRF token checked.
    pub fn acting(&self, csrf: &str) -> Result<&Actor, ApiError> {
        let Some(s) = &self.session else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "sign in to do this",
            ));
        };
        s.check_csrf(csrf)?;
        Ok(&s.actor)
    }
}

impl FromRequest for Viewer {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Viewer, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let client = crate::http::auth::client_of(req);
        let secret = req.cookie(COOKIE).map(|c| c.value().to_string());
        let ctx = req.app_data::<web::Data<Ctx>>().cloned();
        Box::pin(async move {
            let anonymous = Actor::anonymous(client.clone());
            let (Some(secret), Some(ctx)) = (secret, ctx) else {
                return Ok(Viewer {
                    actor: anonymous,
                    session: None,
                    secret: None,
                });
            };
            let s = secret.clone();
            let session = match blocking(&ctx, move |c| sessions::resume(c, &s, &client)).await {
                Ok(s) => s,
                // The session's token was revoked or expired: read anonymously.
                Err(e) if e.status == StatusCode::UNAUTHORIZED => None,
                Err(e) => return Err(e),
            };
            Ok(Viewer {
                actor: session
                    .as_ref()
                    .map(|s| s.actor.clone())
                    .unwrap_or(anonymous),
                session,
                secret: Some(secret),
            })
        })
    }
}

pub fn html(status: StatusCode, markup: maud::Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        // Pages show state that changes; never serve a stale one.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ))
        .body(markup.into_string())
}

/// 303 to `to` (after a form: the browser GETs the page).
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// An error as a page: 401 offers the sign-in, the rest say what went wrong.
pub fn error_page(viewer: &Viewer, e: ApiError, back: &str) -> HttpResponse {
    if e.status == StatusCode::UNAUTHORIZED && viewer.session.is_none() {
        let next = form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>();
        return see_other(&format!("/ui/login?next={next}"));
    }
    let title = match e.status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::UNAUTHORIZED => "Sign in needed",
        s if s.is_server_error() => "Server error",
        _ => "Not done",
    };
    html(
        e.status,
        message_page(&viewer.reader(), title, &e.message, true),
    )
}

/// Runs `f` on the blocking pool; its error as a page.
pub async fn run<T, F>(
    ctx: &web::Data<Ctx>,
    viewer: &Viewer,
    back: &str,
    f: F,
) -> Result<T, HttpResponse>
where
    F: FnOnce(&Ctx) -> Result<T, ServiceError> + Send + 'static,
    T: Send + 'static,
{
    blocking(ctx, f)
        .await
        .map_err(|e| error_page(viewer, e, back))
}

/// Static files, compiled in.
pub async fn asset(name: web::Path<String>) -> HttpResponse {
    let (body, kind) = match name.as_str() {
        "forklift.css" => (
            include_str!("static/forklift.css"),
            "text/css; charset=utf-8",
        ),
        "board.js" => (
            include_str!("static/board.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .content_type(kind)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(body)
}
