//! The one place where failures become HTTP: a status and a stable snake_case code.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use super::JsonLine;
use crate::service::error::{
    AccessError, IngestError, LookupError, PromotionError, PublishError, WebhookError,
};
use crate::service::ServiceError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Structured facts beside the message, for errors that have them.
    pub details: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal server error; see the server log",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            // dnf (libcurl) and apt send Basic credentials after this challenge.
            r.insert_header((
                actix_web::http::header::WWW_AUTHENTICATE,
                "Basic realm=\"forklift\", charset=\"UTF-8\"",
            ));
        }
        r.json_line(Body {
            error: self.code,
            message: &self.message,
            details: self.details.as_ref(),
        })
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        use ServiceError as E;
        let (status, code) = match &e {
            E::Lookup(l) => lookup(l),
            E::Access(a) => access(a),
            E::Ingest(i) => ingest(i),
            E::Promotion(p) => promotion(p),
            E::Publish(p) => match publish(p) {
                Some(mapped) => mapped,
                None => return ApiError::internal(&e),
            },
            E::Webhook(w) => webhook(w),
            E::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            E::Db(_) | E::Store(_) | E::Io(_) if e.is_storage_full() => {
                tracing::error!(error = %e, "storage full");
                return ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "insufficient_storage",
                    "the server's storage is full; nothing of this request was stored. \
                     Reads keep working; an operator must free space",
                );
            }
            E::Db(_) | E::Store(_) | E::Io(_) | E::Internal(_) => return ApiError::internal(&e),
        };
        let details = match &e {
            E::Promotion(PromotionError::DependenciesUnsatisfied(u)) => {
                serde_json::to_value(u).ok()
            }
            _ => None,
        };
        ApiError {
            details,
            ..ApiError::new(status, code, e.to_string())
        }
    }
}

fn lookup(e: &LookupError) -> (StatusCode, &'static str) {
    match e {
        LookupError::PackageNotFound(_) => (StatusCode::NOT_FOUND, "package_not_found"),
        LookupError::ChannelNotFound(_) => (StatusCode::NOT_FOUND, "channel_not_found"),
        LookupError::RevisionNotFound(..) => (StatusCode::NOT_FOUND, "revision_not_found"),
        LookupError::Ambiguous(_) => (StatusCode::CONFLICT, "ambiguous_package"),
        LookupError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
    }
}

fn access(e: &AccessError) -> (StatusCode, &'static str) {
    match e {
        AccessError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
        AccessError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        AccessError::TokenExists(_) => (StatusCode::CONFLICT, "token_exists"),
        AccessError::TokenNotFound(_) => (StatusCode::NOT_FOUND, "token_not_found"),
    }
}

fn ingest(e: &IngestError) -> (StatusCode, &'static str) {
    use IngestError as I;
    match e {
        I::UnsupportedType(_) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_package_type",
        ),
        I::InvalidPackage(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_package"),
        I::DigestMismatch(_) => (StatusCode::UNPROCESSABLE_ENTITY, "digest_mismatch"),
        I::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "upload_too_large"),
        I::InvalidFilename(_) => (StatusCode::BAD_REQUEST, "invalid_filename"),
        I::UploadAborted(_) => (StatusCode::BAD_REQUEST, "upload_aborted"),
        I::UploadIdle { .. } => (StatusCode::REQUEST_TIMEOUT, "upload_timeout"),
        I::NevraConflict { .. } => (StatusCode::CONFLICT, "package_exists"),
        I::PoolConflict { .. } => (StatusCode::CONFLICT, "pool_path_taken"),
        I::NotEntryChannel { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "not_entry_channel"),
    }
}

fn promotion(e: &PromotionError) -> (StatusCode, &'static str) {
    match e {
        PromotionError::NotAllowed(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "promotion_not_allowed")
        }
        PromotionError::Held(_) => (StatusCode::CONFLICT, "package_held"),
        PromotionError::Discarded(_) => (StatusCode::GONE, "package_discarded"),
        PromotionError::DependenciesUnsatisfied(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "dependencies_unsatisfied")
        }
        PromotionError::ChecksNotPassed(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "checks_not_passed")
        }
        PromotionError::NotInChannel(_) => (StatusCode::CONFLICT, "not_in_channel"),
    }
}

/// `None`: the server's own fault (500, details in the log only).
fn publish(e: &PublishError) -> Option<(StatusCode, &'static str)> {
    Some(match e {
        PublishError::Frozen { .. } => (StatusCode::LOCKED, "channel_frozen"),
        PublishError::LeftSource { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "promotion_not_allowed")
        }
        PublishError::Contention => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
        PublishError::DuplicatePackage
        | PublishError::Signing(_)
        | PublishError::Publication(_) => return None,
    })
}

fn webhook(e: &WebhookError) -> (StatusCode, &'static str) {
    match e {
        WebhookError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        WebhookError::NameTaken(_) => (StatusCode::CONFLICT, "webhook_exists"),
    }
}

/// A name in the request that names nothing (parsed at the edge).
impl From<LookupError> for ApiError {
    fn from(e: LookupError) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::internal(e)
    }
}

/// JSON errors for malformed request bodies and query strings.
pub fn json_error(
    err: actix_web::error::JsonPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    match err {
        J::Overflow { .. } | J::OverflowKnownLength { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            err.to_string(),
        )
        .into(),
        J::Deserialize(e) => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", json_problem(&e)).into()
        }
        _ => ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", err.to_string()).into(),
    }
}

/// What is wrong with a JSON body, in words: no parser prefixes, the field by name.
pub fn json_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof if e.line() == 1 && e.column() == 0 => {
            "this request needs a JSON body (see docs/api.md)".into()
        }
        Category::Eof => format!("the JSON body ends too early ({e})"),
        Category::Syntax => format!("the body is not valid JSON ({e})"),
        Category::Data => format!("the JSON body does not fit this request: {e}"),
        Category::Io => format!("the body could not be read ({e})"),
    }
}

pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    let message = match &err {
        actix_web::error::QueryPayloadError::Deserialize(e) => {
            format!("the query string does not fit this request: {e}")
        }
        other => other.to_string(),
    };
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message).into()
}

pub fn path_error(
    err: actix_web::error::PathError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    let message = match &err {
        actix_web::error::PathError::Deserialize(e) => format!("the URL path does not fit: {e}"),
        other => other.to_string(),
    };
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", message).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::error::{
        AccessError as A, IngestError as I, LookupError as L, PromotionError as P,
        PublishError as Pb, WebhookError as W,
    };
    use crate::service::ServiceError as E;

    fn mapped(e: E) -> (u16, &'static str) {
        let a = ApiError::from(e);
        (a.status.as_u16(), a.code)
    }

    /// The stable codes clients program against (docs/api.md, Errors): a
    /// change here is a change of the API.
    #[test]
    fn every_service_error_has_a_pinned_status_and_code() {
        let s = || "x".to_string();
        let full = || std::io::Error::from_raw_os_error(28);
        let cases: Vec<(E, u16, &str)> = vec![
            (L::PackageNotFound(s()).into(), 404, "package_not_found"),
            (L::ChannelNotFound(s()).into(), 404, "channel_not_found"),
            (
                L::RevisionNotFound(s(), 3).into(),
                404,
                "revision_not_found",
            ),
            (L::Ambiguous(s()).into(), 409, "ambiguous_package"),
            (L::NotFound(s()).into(), 404, "not_found"),
            (A::Unauthenticated(s()).into(), 401, "unauthenticated"),
            (A::Forbidden(s()).into(), 403, "forbidden"),
            (A::TokenExists(s()).into(), 409, "token_exists"),
            (A::TokenNotFound(s()).into(), 404, "token_not_found"),
            (
                I::UnsupportedType(s()).into(),
                415,
                "unsupported_package_type",
            ),
            (I::InvalidPackage(s()).into(), 422, "invalid_package"),
            (I::DigestMismatch(s()).into(), 422, "digest_mismatch"),
            (I::TooLarge { limit: 1 }.into(), 413, "upload_too_large"),
            (I::InvalidFilename(s()).into(), 400, "invalid_filename"),
            (I::UploadAborted(s()).into(), 400, "upload_aborted"),
            (I::UploadIdle { secs: 1 }.into(), 408, "upload_timeout"),
            (
                I::NevraConflict {
                    name: s(),
                    evr: s(),
                    arch: s(),
                    existing: s(),
                }
                .into(),
                409,
                "package_exists",
            ),
            (
                I::PoolConflict {
                    path: s(),
                    existing: s(),
                }
                .into(),
                409,
                "pool_path_taken",
            ),
            (
                I::NotEntryChannel {
                    channel: s(),
                    entry: s(),
                }
                .into(),
                422,
                "not_entry_channel",
            ),
            (P::NotAllowed(s()).into(), 422, "promotion_not_allowed"),
            (P::Held(s()).into(), 409, "package_held"),
            (P::Discarded(s()).into(), 410, "package_discarded"),
            (
                P::DependenciesUnsatisfied(Box::new(crate::service::error::Unsatisfied {
                    channel: s(),
                    missing: Vec::new(),
                }))
                .into(),
                422,
                "dependencies_unsatisfied",
            ),
            (P::ChecksNotPassed(s()).into(), 422, "checks_not_passed"),
            (P::NotInChannel(s()).into(), 409, "not_in_channel"),
            (
                Pb::Frozen {
                    channel: s(),
                    by: s(),
                    reason: s(),
                }
                .into(),
                423,
                "channel_frozen",
            ),
            (
                Pb::LeftSource { channel: s() }.into(),
                422,
                "promotion_not_allowed",
            ),
            (Pb::Contention.into(), 503, "busy"),
            (Pb::DuplicatePackage.into(), 500, "internal_error"),
            (Pb::Signing(s()).into(), 500, "internal_error"),
            (Pb::Publication(s()).into(), 500, "internal_error"),
            (W::NotFound(1).into(), 404, "not_found"),
            (W::NameTaken(s()).into(), 409, "webhook_exists"),
            (E::BadRequest(s()), 400, "bad_request"),
            (E::Internal(s()), 500, "internal_error"),
            (
                E::Db(crate::db::DbError::Query(
                    diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::Unknown,
                        Box::new("database or disk is full".to_string()),
                    ),
                )),
                507,
                "insufficient_storage",
            ),
            (
                E::Db(crate::db::DbError::Connect(s())),
                500,
                "internal_error",
            ),
            (E::Io(std::io::Error::other("x")), 500, "internal_error"),
            (E::Io(full()), 507, "insufficient_storage"),
            (
                E::Store(crate::store::StoreError::Io(full())),
                507,
                "insufficient_storage",
            ),
            (
                E::Store(crate::store::StoreError::NotFound(s())),
                500,
                "internal_error",
            ),
        ];
        for (e, status, code) in cases {
            let what = format!("{e:?}");
            assert_eq!(mapped(e), (status, code), "{what}");
        }
    }

    #[test]
    fn json_problems_name_the_field_not_the_parser() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            to: String,
        }
        let msg = |text: &str| json_problem(&serde_json::from_str::<Body>(text).expect_err(text));
        assert!(msg("").starts_with("this request needs a JSON body"));
        assert!(msg("{}").contains("missing field `to`"), "{}", msg("{}"));
        assert!(msg("{\"to\": 5}").contains("invalid type"));
        assert!(msg("{\"to\":").contains("ends too early"));
        assert!(msg("{to}").contains("not valid JSON"));
        assert!(!msg("{}").contains("Json deserialize"));
    }
}
