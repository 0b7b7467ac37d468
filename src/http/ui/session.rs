//! Sign-in and sign-out: an API token becomes a server-side session whose
//! secret the browser keeps in an HttpOnly, SameSite=Strict cookie (Secure
//! when the public URL is https).

use actix_web::cookie::{time::Duration as CookieAge, Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::pages::login_page;
use super::{error_page, html, see_other, Viewer, COOKIE};
use crate::http::blocking;
use crate::service::access::sessions::{self, SESSION_SECS};
use crate::service::Ctx;

#[derive(Debug, Default, Deserialize)]
pub struct Next {
    #[serde(default)]
    next: String,
}

/// Only our own pages: never an open redirect.
fn safe_next(next: &str) -> &str {
    if next.starts_with("/ui/") && !next.starts_with("/ui//") && !next.contains('\\') {
        next
    } else {
        "/ui/"
    }
}

pub async fn form(viewer: Viewer, q: web::Query<Next>) -> HttpResponse {
    html(
        StatusCode::OK,
        login_page(&viewer.reader(), None, safe_next(&q.next)),
    )
}

#[derive(Debug, Deserialize)]
pub struct SignIn {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

fn cookie(ctx: &Ctx, value: String, age: CookieAge) -> Cookie<'static> {
    Cookie::build(COOKIE, value)
        .path("/ui")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(ctx.config.base_url.starts_with("https://"))
        .max_age(age)
        .finish()
}

pub async fn sign_in(
    ctx: web::Data<Ctx>,
    viewer: Viewer,
    req: HttpRequest,
    form: web::Form<SignIn>,
) -> HttpResponse {
    let client = crate::http::auth::client_of(&req);
    let SignIn { token, next } = form.into_inner();
    let next = safe_next(&next).to_string();
    match blocking(&ctx, move |c| sessions::sign_in(c, &token, &client)).await {
        Ok(s) => HttpResponse::SeeOther()
            .cookie(cookie(&ctx, s.secret, CookieAge::seconds(SESSION_SECS)))
            .insert_header((actix_web::http::header::LOCATION, next))
            .finish(),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => html(
            StatusCode::UNAUTHORIZED,
            login_page(&viewer.reader(), Some(&e.message), &next),
        ),
        Err(e) => error_page(&viewer, e, "/ui/login"),
    }
}

#[derive(Debug, Deserialize)]
pub struct SignOut {
    #[serde(default)]
    csrf: String,
}

pub async fn sign_out(
    ctx: web::Data<Ctx>,
    viewer: Viewer,
    form: web::Form<SignOut>,
) -> HttpResponse {
    if let Err(e) = viewer.acting(&form.csrf) {
        return error_page(&viewer, e, "/ui/");
    }
    let Some(secret) = viewer.secret.clone() else {
        return see_other("/ui/");
    };
    if let Err(e) = blocking(&ctx, move |c| sessions::sign_out(c, &secret)).await {
        return error_page(&viewer, e, "/ui/");
    }
    let mut r = see_other("/ui/");
    let _ = r.add_cookie(&cookie(&ctx, String::new(), CookieAge::ZERO));
    r
}
