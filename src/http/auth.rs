//! Who is calling: the `Caller` extractor turns the Authorization header into
//! an [`Actor`]. Tokens arrive only in headers, so they never reach the access
//! log (which records the request line) or a URL.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::{header, StatusCode};
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use super::{blocking, ApiError};
use crate::service::access::tokens::pooled;
use crate::service::access::{parse_authorization, Presented};
use crate::service::{Actor, Ctx};

/// The client's address as events record it (the peer; "unknown" if none).
pub fn client_of(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The authenticated (or anonymous) caller of a request.
pub struct Caller(pub Actor);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let client = client_of(req);
        // A header that is present but not visible ASCII is a wrong credential,
        // not a missing one: it must never read as anonymous.
        let presented = match req.headers().get(header::AUTHORIZATION) {
            None => Presented::None,
            Some(v) => v
                .to_str()
                .map_or(Presented::Malformed, |s| parse_authorization(Some(s))),
        };
        let ctx = req.app_data::<web::Data<Ctx>>().cloned();
        Box::pin(async move {
            match presented {
                Presented::None => Ok(Caller(Actor::anonymous(client))),
                // A wrong credential is an error even where none is needed:
                // a CI job with a broken token should fail loudly, not read anonymously.
                Presented::Malformed => Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "malformed Authorization header; send \"Bearer <token>\" or HTTP Basic with the token as password",
                )),
                Presented::Token(token) => {
                    let ctx = ctx.ok_or_else(|| ApiError::internal("no app state"))?;
                    let actor =
                        blocking(&ctx, move |c| pooled::authenticate(c, &token, &client)).await?;
                    Ok(Caller(actor))
                }
            }
        })
    }
}
