//! Where blobs live: the data directory (default) or an S3-compatible
//! bucket, and the combinations with the database that are refused.

use std::time::Duration;

use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// `<data_dir>/blobs`: one machine, with SQLite or PostgreSQL.
    File,
    S3(S3Storage),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Storage {
    pub bucket: String,
    /// Key prefix without slashes at either end; may be empty.
    pub prefix: String,
    /// e.g. `http://127.0.0.1:9000` for MinIO; None = AWS from the region.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Package downloads answer with a redirect to a presigned URL valid for
    /// this long, so their bytes bypass Forklift; None = streamed through.
    pub redirect_downloads: Option<Duration>,
}

impl Storage {
    /// The `storage` setting as written in the config.
    pub fn url(&self) -> String {
        match self {
            Storage::File => "file".into(),
            Storage::S3(s) if s.prefix.is_empty() => format!("s3://{}", s.bucket),
            Storage::S3(s) => format!("s3://{}/{}", s.bucket, s.prefix),
        }
    }
}

fn invalid(key: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message,
    }
}

/// `s3://bucket` or `s3://bucket/prefix` → (bucket, prefix).
pub(super) fn parse_s3_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = prefix.trim_matches('/');
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let prefix_ok = prefix.split('/').all(|s| {
        s.is_empty() || (s != "." && s != ".." && s.bytes().all(|b| b.is_ascii_graphic()))
    });
    (bucket_ok && prefix_ok).then(|| (bucket.to_string(), prefix.to_string()))
}

/// The raw settings this module resolves.
pub(super) struct StorageInput<'a> {
    pub storage: Option<&'a str>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub redirect_downloads: Option<Duration>,
    pub database_url: &'a str,
    pub signing_key_set: bool,
}

/// Object storage is the several-instances mode, so it needs what every
/// instance can share: PostgreSQL (SQLite is one machine's file) and a
/// configured signing key (a generated one lives on one machine's disk).
pub(super) fn resolve_storage(i: StorageInput<'_>) -> Result<Storage, ConfigError> {
    let raw = i.storage.unwrap_or("file");
    if raw == "file" || raw == "file://" {
        if i.endpoint.is_some() || i.region.is_some() || i.redirect_downloads.is_some() {
            return Err(invalid(
                "storage",
                "s3_endpoint, s3_region and s3_redirect_downloads apply only to storage = \"s3://bucket/prefix\"".into(),
            ));
        }
        return Ok(Storage::File);
    }
    let (bucket, prefix) = parse_s3_url(raw).ok_or_else(|| {
        invalid(
            "storage",
            format!("{raw:?}: use \"file\" (the data directory) or \"s3://bucket/prefix\""),
        )
    })?;
    if !i.database_url.starts_with("postgres") {
        return Err(invalid(
            "storage",
            "object storage is for several instances sharing one state, and needs database_url = \"postgres://…\"; \
             SQLite serves one instance only (use storage = \"file\" with it). Refused: s3 + SQLite"
                .into(),
        ));
    }
    if !i.signing_key_set {
        return Err(invalid(
            "signing_key",
            "object storage needs signing_key set to a key file every instance reads: a key generated \
             under one instance's data directory would differ from the others'"
                .into(),
        ));
    }
    if let Some(e) = &i.endpoint {
        if !(e.starts_with("http://") || e.starts_with("https://")) {
            return Err(invalid(
                "s3_endpoint",
                format!("{e:?}: use http(s)://host:port"),
            ));
        }
    }
    Ok(Storage::S3(S3Storage {
        bucket,
        prefix,
        endpoint: i.endpoint.map(|e| e.trim_end_matches('/').to_string()),
        region: i.region,
        redirect_downloads: i.redirect_downloads,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(storage: &'static str, db: &'static str, key: bool) -> StorageInput<'static> {
        StorageInput {
            storage: Some(storage),
            endpoint: None,
            region: None,
            redirect_downloads: None,
            database_url: db,
            signing_key_set: key,
        }
    }

    #[test]
    fn file_is_the_default() {
        let mut i = input("file", "sqlite://x", false);
        i.storage = None;
        assert_eq!(resolve_storage(i).expect("ok"), Storage::File);
    }

    #[test]
    fn s3_urls_parse_strictly() {
        assert_eq!(
            parse_s3_url("s3://my-bucket/a/b/"),
            Some(("my-bucket".into(), "a/b".into()))
        );
        assert_eq!(
            parse_s3_url("s3://bucket"),
            Some(("bucket".into(), String::new()))
        );
        for bad in [
            "s3://",
            "s3://B",
            "file:///x",
            "s3://ok-bucket/../x",
            "s3://a b",
        ] {
            assert_eq!(parse_s3_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn refused_combinations_say_why() {
        let e = resolve_storage(input("s3://b-1/p", "sqlite://x.db", true)).expect_err("sqlite");
        assert!(e.to_string().contains("SQLite"), "{e}");
        let e = resolve_storage(input("s3://b-1/p", "postgres://h/db", false)).expect_err("key");
        assert!(e.to_string().contains("signing_key"), "{e}");
        let mut i = input("file", "sqlite://x", false);
        i.region = Some("eu-west-1".into());
        assert!(resolve_storage(i).is_err());
        let ok = resolve_storage(input("s3://b-1/p/", "postgres://h/db", true)).expect("ok");
        assert_eq!(ok.url(), "s3://b-1/p");
    }
}
