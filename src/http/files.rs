//! Streaming a stored file to a client: exact Content-Length, Last-Modified,
//! If-Modified-Since, one byte range (or a full 200), caching by kind, and never a
//! Content-Encoding (dnf and apt hash the raw bytes).

use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::body::SizedStream;
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;

use super::ApiError;
use crate::service::repo::{self, Served};
use crate::service::Ctx;

const CHUNK: usize = 256 * 1024;

/// A single byte range, inclusive start, exclusive end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No (usable) Range header: send everything.
    Full,
    One(ByteRange),
    Unsatisfiable,
}

/// Parses a Range header. Multiple ranges are answered with the full file (a 200 is
/// always correct, a wrong 206 never is).
pub fn parse_range(value: &str, len: u64) -> RangeRequest {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        // Suffix: the last N bytes.
        let Ok(n) = b.parse::<u64>() else {
            return RangeRequest::Full;
        };
        if n == 0 || len == 0 {
            return RangeRequest::Unsatisfiable;
        }
        ByteRange {
            start: len.saturating_sub(n),
            end: len,
        }
    } else {
        let Ok(start) = a.parse::<u64>() else {
            return RangeRequest::Full;
        };
        let end = if b.is_empty() {
            len
        } else {
            match b.parse::<u64>() {
                Ok(e) if e >= start => (e + 1).min(len),
                _ => return RangeRequest::Full,
            }
        };
        if start >= len {
            return RangeRequest::Unsatisfiable;
        }
        ByteRange { start, end }
    };
    RangeRequest::One(range)
}

fn http_date(ts: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(ts.max(0) as u64);
    httpdate::fmt_http_date(t)
}

fn parse_http_date(v: &str) -> Option<i64> {
    let t: SystemTime = httpdate::parse_http_date(v).ok()?;
    Some(t.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64)
}

pub fn content_type(name: &str) -> &'static str {
    if name.ends_with(".xml") {
        "text/xml"
    } else if name.ends_with(".gz") {
        "application/gzip"
    } else if name.ends_with(".rpm") {
        "application/x-rpm"
    } else if name.ends_with(".deb") {
        "application/vnd.debian.binary-package"
    } else if name.ends_with(".xz") {
        "application/x-xz"
    } else if name.ends_with(".asc") || name.ends_with(".gpg") || name == "InRelease" {
        "application/pgp-signature"
    } else {
        "application/octet-stream"
    }
}

/// What a request asks of a file, read from its headers before the lookup.
struct Conditions {
    if_modified_since: Option<i64>,
    if_range: Option<String>,
    range: Option<String>,
}

impl Conditions {
    fn of(req: &HttpRequest) -> Conditions {
        let get = |h: header::HeaderName| {
            req.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Conditions {
            if_modified_since: get(header::IF_MODIFIED_SINCE)
                .as_deref()
                .and_then(parse_http_date),
            if_range: get(header::IF_RANGE),
            range: get(header::RANGE),
        }
    }
}

/// The answer to a file request, decided on the blocking thread.
enum Answer {
    NotModified,
    Unsatisfiable,
    /// Status, first byte, length, and the bytes themselves for small files.
    Send(StatusCode, u64, u64, Option<Bytes>),
    /// Fetch it from there (a presigned object storage URL).
    Redirect(String),
}

fn decide(served: &Served, cond: &Conditions) -> Answer {
    if let Some(ims) = cond.if_modified_since {
        if served.exact_time && served.last_modified <= ims {
            return Answer::NotModified;
        }
    }
    let len = served.size;
    // If-Range with a date: the range applies only if the file is unchanged.
    let range_ok = match &cond.if_range {
        None => true,
        Some(v) => served.exact_time && parse_http_date(v) == Some(served.last_modified),
    };
    let range = match &cond.range {
        Some(v) if range_ok => parse_range(v, len),
        _ => RangeRequest::Full,
    };
    match range {
        RangeRequest::Full => Answer::Send(StatusCode::OK, 0, len, None),
        RangeRequest::One(r) => {
            Answer::Send(StatusCode::PARTIAL_CONTENT, r.start, r.end - r.start, None)
        }
        RangeRequest::Unsatisfiable => Answer::Unsatisfiable,
    }
}

/// Files up to this size are read in one go on the lookup's blocking thread;
/// larger ones are streamed in CHUNK pieces, so memory stays bounded.
const SMALL: u64 = CHUNK as u64;

/// Serves the file that `lookup` finds (`None`: 404 with `missing`),
/// honouring conditional and range requests. The lookup, and the read of a
/// small file, happen in one hop to a blocking thread.
pub async fn serve<F>(
    ctx: &web::Data<Ctx>,
    req: &HttpRequest,
    name: &str,
    missing: String,
    lookup: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce(&Ctx) -> Result<Option<Served>, crate::service::ServiceError> + Send + 'static,
{
    let cond = Conditions::of(req);
    let found = super::blocking_in(ctx, ctx.file_slots.clone(), move |c| {
        let Some(served) = lookup(c)? else {
            return Ok(None);
        };
        if let Some(url) = repo::redirect(c, &served)? {
            return Ok(Some((served, Answer::Redirect(url))));
        }
        let mut answer = decide(&served, &cond);
        if let Answer::Send(_, start, count, body) = &mut answer {
            if *count <= SMALL {
                *body = Some(repo::read_range(c, &served, *start, *count)?);
            }
        }
        Ok(Some((served, answer)))
    })
    .await?;
    let Some((served, answer)) = found else {
        return Err(ApiError::not_found(missing));
    };
    let last_modified = http_date(served.last_modified);
    let cache = if served.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let resp = |status: StatusCode| {
        let mut b = HttpResponse::build(status);
        b.insert_header((header::LAST_MODIFIED, last_modified.clone()))
            .insert_header((header::CACHE_CONTROL, cache))
            .insert_header((header::ACCEPT_RANGES, "bytes"))
            .insert_header((header::CONTENT_TYPE, content_type(name)));
        b
    };
    let len = served.size;
    let (status, start, count, body) = match answer {
        Answer::NotModified => return Ok(resp(StatusCode::NOT_MODIFIED).finish()),
        // Never cached: the URL stops working when its signature expires.
        Answer::Redirect(url) => {
            return Ok(HttpResponse::TemporaryRedirect()
                .insert_header((header::LOCATION, url))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish())
        }
        Answer::Unsatisfiable => {
            return Ok(resp(StatusCode::RANGE_NOT_SATISFIABLE)
                .insert_header((header::CONTENT_RANGE, format!("bytes */{len}")))
                .finish());
        }
        Answer::Send(status, start, count, body) => (status, start, count, body),
    };
    let mut builder = resp(status);
    if status == StatusCode::PARTIAL_CONTENT {
        builder.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", start, start + count - 1, len),
        ));
    }
    if let Some(bytes) = body {
        return Ok(builder.body(bytes));
    }
    let reader = super::blocking_in(ctx, ctx.file_slots.clone(), move |c| {
        repo::open_range(c, &served, start, count)
    })
    .await?;
    Ok(builder.body(SizedStream::new(count, blob_stream(reader))))
}

/// Reads a blob on a blocking thread into a small bounded channel, so a download
/// holds at most a few chunks in memory.
fn blob_stream(
    mut reader: Box<dyn Read + Send>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || loop {
        let mut buf = vec![0u8; CHUNK];
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                buf.truncate(n);
                if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                    break;
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                break;
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |s: &str| parse_range(s, 100);
        assert_eq!(
            r("bytes=0-9"),
            RangeRequest::One(ByteRange { start: 0, end: 10 })
        );
        assert_eq!(
            r("bytes=90-"),
            RangeRequest::One(ByteRange {
                start: 90,
                end: 100
            })
        );
        assert_eq!(
            r("bytes=-5"),
            RangeRequest::One(ByteRange {
                start: 95,
                end: 100
            })
        );
        assert_eq!(
            r("bytes=50-500"),
            RangeRequest::One(ByteRange {
                start: 50,
                end: 100
            })
        );
        assert_eq!(r("bytes=100-"), RangeRequest::Unsatisfiable);
        assert_eq!(r("bytes=0-1,5-6"), RangeRequest::Full);
        assert_eq!(r("bytes=9-2"), RangeRequest::Full);
        assert_eq!(r("items=0-1"), RangeRequest::Full);
        assert_eq!(r("bytes=abc"), RangeRequest::Full);
    }

    #[test]
    fn http_dates_round_trip() {
        let s = http_date(1_700_000_000);
        assert_eq!(parse_http_date(&s), Some(1_700_000_000));
    }
}
