//! `/ui/builds/{id}`: one build's page, and its actions (forms).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::detail_pages::build_page;
use super::{error_page, html, run, see_other, Viewer};
use crate::service::board::build;
use crate::service::promotion::{gates, transitions};
use crate::service::{Ctx, PackageRef};

pub async fn page(ctx: web::Data<Ctx>, viewer: Viewer, id: web::Path<String>) -> HttpResponse {
    let back = format!("/ui/builds/{id}");
    let id = match PackageRef::parse(&id) {
        Ok(id) => id,
        Err(e) => return error_page(&viewer, e.into(), &back),
    };
    let who = viewer.actor.clone();
    match run(&ctx, &viewer, &back, move |c| {
        build::build_page(c, &id, &who)
    })
    .await
    {
        Ok(b) => html(StatusCode::OK, build_page(&viewer.reader(), &b)),
        Err(page) => page,
    }
}

/// Every action's form: the CSRF token, and the fields each action reads.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    reason: String,
}

#[derive(Debug, Clone, Copy)]
pub enum Action {
    Promote,
    Demote,
    Hold,
    Release,
    Discard,
}

/// Runs one action as the session's token, then shows the build again.
async fn act(
    ctx: web::Data<Ctx>,
    viewer: Viewer,
    id: web::Path<String>,
    form: web::Form<ActionForm>,
    action: Action,
) -> HttpResponse {
    let back = format!("/ui/builds/{id}");
    let f = form.into_inner();
    let actor = match viewer.acting(&f.csrf) {
        Ok(a) => a.clone(),
        Err(e) => return error_page(&viewer, e, &back),
    };
    let parsed = PackageRef::parse(&id).map_err(Into::into).and_then(|id| {
        let channel = match action {
            Action::Promote => Some(ctx.channel(&f.to)?),
            Action::Demote => Some(ctx.channel(&f.from)?),
            _ => None,
        };
        Ok::<_, crate::service::ServiceError>((id, channel))
    });
    let (id, channel) = match parsed {
        Ok(v) => v,
        Err(e) => return error_page(&viewer, e.into(), &back),
    };
    let reason = f.reason;
    let done = run(&ctx, &viewer, &back, move |c| match (action, channel) {
        (Action::Promote, Some(to)) => transitions::promote(c, &id, &to, false, &actor).map(drop),
        (Action::Demote, Some(from)) => {
            transitions::demote(c, &id, &from, &reason, &actor).map(drop)
        }
        (Action::Hold, _) => gates::set_held(c, &id, Some(&reason), &actor).map(drop),
        (Action::Release, _) => gates::set_held(c, &id, None, &actor).map(drop),
        (Action::Discard, _) => gates::discard(c, &id, &reason, &actor).map(drop),
        (_, None) => Err(crate::service::ServiceError::BadRequest(
            "no channel given".into(),
        )),
    })
    .await;
    match done {
        Ok(()) => see_other(&back),
        Err(page) => page,
    }
}

macro_rules! action_handler {
    ($($name:ident => $action:expr),*) => {$(
        pub async fn $name(
            ctx: web::Data<Ctx>,
            viewer: Viewer,
            id: web::Path<String>,
            form: web::Form<ActionForm>,
        ) -> HttpResponse {
            act(ctx, viewer, id, form, $action).await
        }
    )*};
}

action_handler!(
    promote => Action::Promote,
    demote => Action::Demote,
    hold => Action::Hold,
    release => Action::Release,
    discard => Action::Discard
);
