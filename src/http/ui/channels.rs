//! `/ui/channels/{name}`: one channel's page, and freezing it (forms).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::detail_pages::channel_page;
use super::{error_page, html, run, see_other, Viewer};
use crate::service::board::channel::{self, ChannelQuery};
use crate::service::promotion::gates;
use crate::service::{Ctx, ServiceError};

#[derive(Debug, Default, Deserialize)]
pub struct Query {
    #[serde(default)]
    at: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

impl Query {
    fn parse(&self) -> Result<ChannelQuery, ServiceError> {
        let at = Some(self.at.trim().to_string()).filter(|a| !a.is_empty());
        let diff = match (self.from.trim(), self.to.trim()) {
            ("", "") => None,
            (f, t) => match (f.parse(), t.parse()) {
                (Ok(f), Ok(t)) => Some((f, t)),
                _ => {
                    return Err(ServiceError::BadRequest(
                        "give two revision numbers to compare".into(),
                    ))
                }
            },
        };
        Ok(ChannelQuery { at, diff })
    }
}

pub async fn page(
    ctx: web::Data<Ctx>,
    viewer: Viewer,
    name: web::Path<String>,
    q: web::Query<Query>,
) -> HttpResponse {
    let back = format!("/ui/channels/{name}");
    let parsed = ctx.channel(&name).and_then(|n| Ok((n, q.parse()?)));
    let (name, q) = match parsed {
        Ok(v) => v,
        Err(e) => return error_page(&viewer, e.into(), &back),
    };
    let who = viewer.actor.clone();
    match run(&ctx, &viewer, &back, move |c| {
        channel::channel_page(c, &name, &q, &who)
    })
    .await
    {
        Ok(p) => html(StatusCode::OK, channel_page(&viewer.reader(), &p)),
        Err(page) => page,
    }
}

#[derive(Debug, Deserialize)]
pub struct FreezeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

async fn set_frozen(
    ctx: web::Data<Ctx>,
    viewer: Viewer,
    name: web::Path<String>,
    form: web::Form<FreezeForm>,
    freeze: bool,
) -> HttpResponse {
    let back = format!("/ui/channels/{name}");
    let actor = match viewer.acting(&form.csrf) {
        Ok(a) => a.clone(),
        Err(e) => return error_page(&viewer, e, &back),
    };
    let name = match ctx.channel(&name) {
        Ok(n) => n,
        Err(e) => return error_page(&viewer, e.into(), &back),
    };
    let reason = form.into_inner().reason;
    let done = run(&ctx, &viewer, &back, move |c| {
        let reason = freeze.then_some(reason.as_str());
        gates::set_frozen(c, &name, reason, &actor).map(drop)
    })
    .await;
    match done {
        Ok(()) => see_other(&back),
        Err(page) => page,
    }
}

pub async fn freeze(
    ctx: web::Data<Ctx>,
    viewer: Viewer,
    name: web::Path<String>,
    form: web::Form<FreezeForm>,
) -> HttpResponse {
    set_frozen(ctx, viewer, name, form, true).await
}

pub async fn unfreeze(
    ctx: web::Data<Ctx>,
    viewer: Viewer,
    name: web::Path<String>,
    form: web::Form<FreezeForm>,
) -> HttpResponse {
    set_frozen(ctx, viewer, name, form, false).await
}
