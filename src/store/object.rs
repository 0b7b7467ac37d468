//! Object storage backend (S3 and S3-compatible servers through the
//! `object_store` crate): blobs under `<prefix>/blobs/sha256/<ab>/<digest>`,
//! the same layout as on disk. Uploads are still streamed into a local temp
//! file first (hashed and checked there), then sent in multipart parts of
//! PART bytes, so memory stays bounded whatever the file's size and the
//! object appears under its final key only once complete; a failed upload is
//! aborted. Parts of uploads cut off by a crash are invisible and left to the
//! bucket's lifecycle rule (docs/deployment.md).
//!
//! The `BlobStore` interface is synchronous (it runs on blocking threads), so
//! this backend owns a small runtime and hands each request to it.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt as _;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{GetOptions, GetRange, ObjectStore, PutPayload, WriteMultipart};

use super::temp::TempArea;
use super::{check_digest, BlobStore, StoreError};

/// Multipart part size: above S3's 5 MiB minimum, small enough that the
/// parts in flight stay far below the 64 MiB an upload may cost.
const PART: usize = 8 * 1024 * 1024;
/// Parts sent concurrently per upload.
const PARTS_IN_FLIGHT: usize = 2;
/// Chunks of a download buffered between the store and the reader.
const READ_AHEAD: usize = 4;

/// How to reach the bucket; credentials come from the standard AWS
/// environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`, web identity, instance metadata).
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    pub bucket: String,
    /// Key prefix, without slashes at either end; may be empty.
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

pub struct ObjectBlobStore {
    inner: Arc<dyn ObjectStore>,
    signer: Option<Arc<dyn Signer>>,
    root: ObjectPath,
    tmp: TempArea,
    /// Always Some until drop, which shuts it down without waiting: a store
    /// may be dropped inside another runtime, where waiting would panic.
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for ObjectBlobStore {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for ObjectBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ObjectBlobStore({})", self.root)
    }
}

fn err(e: object_store::Error) -> StoreError {
    match e {
        object_store::Error::NotFound { path, .. } => StoreError::NotFound(path),
        other => StoreError::Remote(other.to_string()),
    }
}

impl ObjectBlobStore {
    /// Opens an S3 bucket; checks that it answers before the server starts.
    pub fn open_s3(
        settings: &S3Settings,
        temp_dir: PathBuf,
    ) -> Result<ObjectBlobStore, StoreError> {
        let mut b = AmazonS3Builder::from_env().with_bucket_name(&settings.bucket);
        if let Some(endpoint) = &settings.endpoint {
            b = b
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                // Path-style addressing: what MinIO, Ceph and test servers expect.
                .with_virtual_hosted_style_request(false);
        }
        if let Some(region) = &settings.region {
            b = b.with_region(region);
        }
        let s3 = Arc::new(b.build().map_err(err)?);
        let store = Self::with(s3.clone(), Some(s3), &settings.prefix, temp_dir)?;
        store.check_reachable()?;
        Ok(store)
    }

    /// Any `object_store` implementation (the unit tests use the in-memory one).
    pub fn with(
        inner: Arc<dyn ObjectStore>,
        signer: Option<Arc<dyn Signer>>,
        prefix: &str,
        temp_dir: PathBuf,
    ) -> Result<ObjectBlobStore, StoreError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("object-store")
            .enable_all()
            .build()?;
        let root = ObjectPath::from(prefix).child("blobs").child("sha256");
        Ok(ObjectBlobStore {
            inner,
            signer,
            root,
            tmp: TempArea::open(temp_dir)?,
            rt: Some(rt),
        })
    }

    fn check_reachable(&self) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        let root = self.root.clone();
        self.run(async move {
            let mut listing = inner.list(Some(&root));
            match listing.next().await {
                None | Some(Ok(_)) => Ok(()),
                Some(Err(e)) => Err(err(e)),
            }
        })
    }

    fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        if let Some(rt) = &self.rt {
            rt.spawn(fut);
        }
    }

    fn key(&self, digest: &str) -> Result<ObjectPath, StoreError> {
        check_digest(digest)?;
        Ok(self.root.child(&digest[..2]).child(digest))
    }

    /// Runs `fut` on this store's runtime and waits for it; callable from any
    /// thread, including one inside another runtime.
    fn run<T, F>(&self, fut: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| StoreError::Remote("object store task ended without answer".into()))?
    }

    /// A URL that lets its holder GET the blob for `valid_for`, signed with
    /// this instance's credentials; None when the backend cannot sign.
    pub fn presign(&self, digest: &str, valid_for: Duration) -> Result<Option<String>, StoreError> {
        let Some(signer) = self.signer.clone() else {
            return Ok(None);
        };
        let key = self.key(digest)?;
        self.run(async move {
            let url = signer
                .signed_url(http::Method::GET, &key, valid_for)
                .await
                .map_err(err)?;
            Ok(Some(url.to_string()))
        })
    }
}

/// Sends `file` as a multipart upload with at most PARTS_IN_FLIGHT parts in
/// flight; aborts the upload on any failure so no part lingers.
async fn upload_parts(
    inner: Arc<dyn ObjectStore>,
    key: ObjectPath,
    mut file: std::fs::File,
) -> Result<(), StoreError> {
    let upload = inner.put_multipart(&key).await.map_err(err)?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
    let mut buf = vec![0u8; 1024 * 1024];
    let sent: Result<(), StoreError> = async {
        loop {
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(err)?;
            // A local file read: short, and this runtime has threads to spare.
            let n = file.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            writer.write(&buf[..n]);
        }
    }
    .await;
    match sent {
        Ok(()) => writer.finish().await.map(|_| ()).map_err(err),
        Err(e) => {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(blob = %key, error = %abort, "could not abort a multipart upload");
            }
            Err(e)
        }
    }
}

impl BlobStore for ObjectBlobStore {
    fn put_file(&self, digest: &str, file: tempfile::NamedTempFile) -> Result<(), StoreError> {
        let key = self.key(digest)?;
        let inner = self.inner.clone();
        let len = file.as_file().metadata()?.len();
        if len <= PART as u64 {
            // A fresh handle: the writer's one stands at the end of the file.
            let mut bytes = Vec::with_capacity(len as usize);
            file.reopen()?.read_to_end(&mut bytes)?;
            if bytes.len() as u64 != len {
                return Err(StoreError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "upload file changed while stored",
                )));
            }
            return self.put_bytes(digest, &bytes);
        }
        let f = file.reopen()?;
        // The temp file is removed when `file` drops, after the upload.
        let done = self.run(upload_parts(inner, key, f));
        drop(file);
        done
    }

    /// Always writes: an object's time cannot be touched, and writing it
    /// again is how the sweep learns it is in use (metadata is small).
    fn put_bytes(&self, digest: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let key = self.key(digest)?;
        let inner = self.inner.clone();
        let payload = PutPayload::from(Bytes::copy_from_slice(bytes));
        self.run(async move {
            inner.put(&key, payload).await.map_err(err)?;
            Ok(())
        })
    }

    fn size(&self, digest: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.head(digest)?.map(|m| m.size))
    }

    fn get_range(
        &self,
        digest: &str,
        start: u64,
        len: u64,
    ) -> Result<Box<dyn Read + Send>, StoreError> {
        let key = self.key(digest)?;
        if len == 0 {
            return match self.size(digest)? {
                Some(_) => Ok(Box::new(io::empty())),
                None => Err(StoreError::NotFound(digest.to_string())),
            };
        }
        let inner = self.inner.clone();
        let opts = GetOptions {
            range: Some(GetRange::Bounded(start..start + len)),
            ..GetOptions::default()
        };
        // The request is answered (or refused) here; its body follows
        // through a bounded channel as the reader asks for it.
        let body = self.run(async move { inner.get_opts(&key, opts).await.map_err(err) })?;
        // An async channel: a slow reader parks this task, never one of the
        // runtime's few threads.
        let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        self.spawn(async move {
            let mut stream = body.into_stream();
            while let Some(chunk) = stream.next().await {
                let failed = chunk.is_err();
                // The reader went away (client disconnected): stop reading.
                if tx.send(chunk.map_err(err)).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Box::new(StreamReader {
            rx,
            buf: Bytes::new(),
            left: len,
        }))
    }

    fn delete(&self, digest: &str) -> Result<(), StoreError> {
        let key = self.key(digest)?;
        let inner = self.inner.clone();
        self.run(async move {
            match inner.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(err(e)),
            }
        })
    }

    fn list(&self) -> Result<Vec<(String, SystemTime)>, StoreError> {
        let inner = self.inner.clone();
        let root = self.root.clone();
        self.run(async move {
            let mut out = Vec::new();
            let mut listing = inner.list(Some(&root));
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(err)?;
                if let Some(name) = meta.location.filename() {
                    if check_digest(name).is_ok() {
                        out.push((name.to_string(), SystemTime::from(meta.last_modified)));
                    }
                }
            }
            Ok(out)
        })
    }

    fn modified(&self, digest: &str) -> Result<Option<SystemTime>, StoreError> {
        Ok(self
            .head(digest)?
            .map(|m| SystemTime::from(m.last_modified)))
    }

    fn sweep_temp(&self, older_than: Option<SystemTime>) -> Result<usize, StoreError> {
        self.tmp.sweep(older_than)
    }

    fn temp_file(&self) -> Result<tempfile::NamedTempFile, StoreError> {
        self.tmp.file()
    }

    fn presign(&self, digest: &str, valid_for: Duration) -> Result<Option<String>, StoreError> {
        ObjectBlobStore::presign(self, digest, valid_for)
    }
}

impl ObjectBlobStore {
    fn head(&self, digest: &str) -> Result<Option<object_store::ObjectMeta>, StoreError> {
        let key = self.key(digest)?;
        let inner = self.inner.clone();
        self.run(async move {
            match inner.head(&key).await {
                Ok(m) => Ok(Some(m)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(err(e)),
            }
        })
    }
}

/// A download's body as `Read`: chunks arrive through a bounded channel.
/// Read on blocking threads only (`blocking_recv`), as every `BlobStore` call is.
struct StreamReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, StoreError>>,
    buf: Bytes,
    left: u64,
}

impl Read for StreamReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            if self.left == 0 {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.buf = chunk,
                Some(Err(e)) => return Err(io::Error::other(e)),
                // Ended before the promised length: never a silent short file.
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "object store stream ended early",
                    ))
                }
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        let _ = self.buf.split_to(n);
        self.left = self.left.saturating_sub(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use std::io::Write as _;

    fn store() -> (tempfile::TempDir, ObjectBlobStore) {
        let dir = tempfile::tempdir().expect("tmp");
        let s = ObjectBlobStore::with(
            Arc::new(InMemory::new()),
            None,
            "pre/fix",
            dir.path().join("tmp"),
        )
        .expect("open");
        (dir, s)
    }

    fn sha(bytes: &[u8]) -> String {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(bytes))
    }

    #[test]
    fn bytes_round_trip_with_ranges() {
        let (_d, s) = store();
        let d = sha(b"hello");
        assert!(!s.exists(&d).expect("exists"));
        s.put_bytes(&d, b"hello").expect("put");
        assert_eq!(s.size(&d).expect("size"), Some(5));
        let mut out = String::new();
        s.get_range(&d, 1, 3)
            .expect("get")
            .read_to_string(&mut out)
            .expect("read");
        assert_eq!(out, "ell");
        assert_eq!(s.get_bytes(&d).expect("all"), b"hello");
        let listed: Vec<String> = s.list().expect("list").into_iter().map(|x| x.0).collect();
        assert_eq!(listed, vec![d.clone()]);
        assert!(s.modified(&d).expect("mtime").is_some());
        s.delete(&d).expect("delete");
        s.delete(&d).expect("deleting twice is fine");
        assert!(matches!(
            s.get_range(&d, 0, 1),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.get_range(&d, 0, 0),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn large_files_go_in_parts_and_read_back_whole() {
        let (_d, s) = store();
        // Three parts and a bit, with content that shows misplaced bytes.
        let body: Vec<u8> = (0..(3 * PART + 12345)).map(|i| (i % 251) as u8).collect();
        let d = sha(&body);
        let mut t = s.temp_file().expect("temp");
        t.write_all(&body).expect("write");
        let tmp_path = t.path().to_path_buf();
        s.put_file(&d, t).expect("put");
        assert!(!tmp_path.exists(), "the temp file goes once stored");
        assert_eq!(s.size(&d).expect("size"), Some(body.len() as u64));
        let mut back = Vec::new();
        s.get_range(&d, 0, body.len() as u64)
            .expect("get")
            .read_to_end(&mut back)
            .expect("read");
        assert!(back == body, "read back differs");
        let mut tail = Vec::new();
        let start = (2 * PART + 7) as u64;
        s.get_range(&d, start, 1000)
            .expect("get")
            .read_to_end(&mut tail)
            .expect("read");
        assert_eq!(tail, &body[start as usize..start as usize + 1000]);
    }

    #[test]
    fn small_files_are_stored_whole() {
        let (_d, s) = store();
        let mut t = s.temp_file().expect("temp");
        t.write_all(b"a small package").expect("write");
        let d = sha(b"a small package");
        s.put_file(&d, t).expect("put");
        assert_eq!(s.get_bytes(&d).expect("get"), b"a small package");
    }

    #[test]
    fn hostile_digests_never_become_keys() {
        let (_d, s) = store();
        for bad in ["../../etc/passwd", "", "ABCD", &"g".repeat(64)] {
            assert!(
                matches!(s.size(bad), Err(StoreError::BadDigest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn callable_from_inside_another_runtime() {
        let (_d, s) = store();
        let d = sha(b"x");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("rt");
        rt.block_on(async { s.put_bytes(&d, b"x") }).expect("put");
        assert!(s.exists(&d).expect("exists"));
    }
}
