//! Receiving an upload: the body is streamed into a temp file next to the blob
//! store while it is hashed, so memory does not grow with the file.

use std::io::Write;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use crate::service::error::IngestError;
use crate::service::{Actor, ChannelName, Ctx, ServiceError};

/// A fully received upload, not yet validated or visible anywhere.
pub struct Received {
    pub file: tempfile::NamedTempFile,
    pub sha256: String,
    pub size: u64,
    /// The name the client sent (a hint only; the stored name is canonical).
    pub client_name: String,
}

/// Rejects names that could be read as paths. The name is never used as one,
/// but a name with `/` or `..` is a client bug or an attack, worth a clear 400.
pub fn check_client_name(name: &str) -> Result<(), ServiceError> {
    let bad = name.is_empty()
        || name.len() > 255
        || name.contains('/')
        || name.contains('\\')
        || name.contains("..")
        || name.starts_with('.')
        || name.chars().any(char::is_control);
    if bad {
        Err(IngestError::InvalidFilename(format!(
            "file name {name:?} is not allowed: no '/', '\\', '..', leading '.' or control characters"
        )).into())
    } else {
        Ok(())
    }
}

/// What an upload says about itself before its body is read.
pub struct Announced<'a> {
    pub actor: &'a Actor,
    /// The name the client sent.
    pub client_name: &'a str,
    /// `?channel=`: only the first channel of the path receives uploads.
    pub channel: Option<&'a ChannelName>,
    /// The `Content-Length`, when the client sent one.
    pub declared_len: Option<u64>,
}

/// Everything that can be refused before a byte of the body is read: the
/// caller's right to upload, the file name, the channel and the declared size.
pub fn admit(ctx: &Ctx, a: &Announced<'_>) -> Result<(), ServiceError> {
    a.actor.require_upload()?;
    check_client_name(a.client_name)?;
    if let Some(c) = a.channel {
        super::check_entry_channel(ctx, c)?;
    }
    match a.declared_len {
        Some(n) if n > ctx.config.max_upload_bytes => Err(IngestError::TooLarge {
            limit: ctx.config.max_upload_bytes,
        }
        .into()),
        _ => Ok(()),
    }
}

/// Streams `body` into a temp file, hashing as it goes; refuses more than `limit`
/// bytes. On any error the temp file is removed (dropped). The caller
/// [`admit`]ted the upload first (its right to upload is decided there, and
/// again by `packages::ingest`); the name is checked here because a multipart
/// field's name is known only now.
pub async fn receive<S, E>(
    ctx: &Ctx,
    client_name: String,
    mut body: S,
) -> Result<Received, ServiceError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    check_client_name(&client_name)?;
    let limit = ctx.config.max_upload_bytes;
    let store = ctx.store.clone();
    let tmp = actix_web::web::block(move || store.temp_file())
        .await
        .map_err(|e| ServiceError::Io(std::io::Error::other(e.to_string())))??;
    let (std_file, path) = tmp.into_parts();
    let mut file = tokio::fs::File::from_std(std_file);
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    // A client that stops sending would otherwise hold its temp file (and a
    // connection) for ever; dropping the future here removes the file.
    let idle = ctx.config.upload_idle_timeout;
    loop {
        let Ok(next) = tokio::time::timeout(idle, body.next()).await else {
            return Err(IngestError::UploadIdle {
                secs: idle.as_secs(),
            }
            .into());
        };
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| IngestError::UploadAborted(e.to_string()))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(IngestError::TooLarge { limit }.into());
        }
        hasher.update(&chunk);
        tokio::io::AsyncWriteExt::write_all(&mut file, &chunk).await?;
    }
    tokio::io::AsyncWriteExt::flush(&mut file).await?;
    let std_file = file.into_std().await;
    let mut named = tempfile::NamedTempFile::from_parts(std_file, path);
    named.flush()?;
    Ok(Received {
        file: named,
        sha256: hex::encode(hasher.finalize()),
        size,
        client_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_look_like_paths_are_refused() {
        for bad in [
            "",
            "../x.rpm",
            "a/b.rpm",
            "..",
            ".hidden.rpm",
            "a\\b.rpm",
            "x\n.rpm",
        ] {
            assert!(check_client_name(bad).is_err(), "{bad:?}");
        }
        for good in ["app-1.0-1.x86_64.rpm", "hello_2.0_amd64.deb", "a b.rpm"] {
            assert!(check_client_name(good).is_ok(), "{good:?}");
        }
    }
}
