//! `/ui/`: the board, and the table alone for its live updates.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::pages::{board_page, board_table, BoardPage};
use super::{html, run, Viewer};
use crate::service::board::{self, BoardQuery};
use crate::service::Ctx;

#[derive(Debug, Default, Deserialize)]
pub struct Query {
    #[serde(default)]
    name: String,
    #[serde(default)]
    differs: Option<String>,
    #[serde(default)]
    page: Option<usize>,
}

impl Query {
    fn board(&self) -> BoardQuery {
        BoardQuery {
            name: Some(self.name.trim().to_string()).filter(|n| !n.is_empty()),
            differs: self.differs.is_some(),
            page: self.page.unwrap_or(1),
        }
    }

    fn encoded(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("name", self.name.trim());
        if self.differs.is_some() {
            q.append_pair("differs", "1");
        }
        q.append_pair("page", &self.page.unwrap_or(1).to_string());
        q.finish()
    }
}

/// The ETag of what `viewer` would see for `q`: changes with any event, with
/// the minute (soak time left), and with who is looking.
fn etag(version: &str, viewer: &Viewer, q: &Query) -> String {
    use sha2::Digest as _;
    let who = viewer.actor.name.as_str();
    let h = sha2::Sha256::digest(format!("{version}\n{who}\n{}", q.encoded()));
    format!("\"{}\"", hex::encode(&h[..12]))
}

pub async fn page(ctx: web::Data<Ctx>, viewer: Viewer, q: web::Query<Query>) -> HttpResponse {
    let q = q.into_inner();
    let (bq, who) = (q.board(), viewer.actor.clone());
    let got = run(&ctx, &viewer, "/ui/", move |c| {
        Ok((board::board(c, &bq, &who)?, board::version(c)?))
    })
    .await;
    let (b, version) = match got {
        Ok(v) => v,
        Err(page) => return page,
    };
    let tag = etag(&version, &viewer, &q);
    let live = format!("/ui/board?{}", q.encoded());
    let p = BoardPage {
        board: &b,
        name: q.name.trim(),
        differs: q.differs.is_some(),
        etag: &tag,
        live: &live,
    };
    html(StatusCode::OK, board_page(&viewer.reader(), &p))
}

/// The table alone, for the live script: 304 while nothing changed.
pub async fn table(
    ctx: web::Data<Ctx>,
    viewer: Viewer,
    q: web::Query<Query>,
    req: HttpRequest,
) -> HttpResponse {
    let q = q.into_inner();
    let version = match run(&ctx, &viewer, "/ui/", board::version).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let tag = etag(&version, &viewer, &q);
    let seen = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if seen == Some(tag.as_str()) {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, tag))
            .finish();
    }
    let (bq, who) = (q.board(), viewer.actor.clone());
    let b = match run(&ctx, &viewer, "/ui/", move |c| board::board(c, &bq, &who)).await {
        Ok(b) => b,
        Err(page) => return page,
    };
    let mut r = html(StatusCode::OK, board_table(&b));
    r.headers_mut().insert(
        header::ETAG,
        header::HeaderValue::from_str(&tag).unwrap_or(header::HeaderValue::from_static("\"\"")),
    );
    r
}
