//! Serving published repositories: which blob answers a repository URL, and
//! with which caching facts. The HTTP layer streams the blob.

use std::collections::{HashMap, VecDeque};
use std::io::Read as _;
use std::sync::Mutex;

use bytes::Bytes;
use diesel::prelude::*;

use super::{Actor, ChannelName, Ctx, ServiceError};
use crate::config::Storage;
use crate::db::schema::*;

/// A file to serve from the blob store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub blob: String,
    pub size: u64,
    /// Unix seconds; never decreases from one publication of a channel to
    /// the next.
    pub last_modified: i64,
    /// Whether `last_modified` identifies these bytes: false when another
    /// revision served different bytes at this path within the same second,
    /// so If-Modified-Since and If-Range dates must not be trusted.
    pub exact_time: bool,
    /// Checksum-named or content-addressed: cache forever.
    pub immutable: bool,
    /// A package file (not metadata): may be answered by a redirect.
    pub package: bool,
}

/// Bytes `start..start + count` of a served file, read whole (small files).
/// Files up to HOT_FILE bytes come from this instance's memory once read.
pub fn read_range(
    ctx: &Ctx,
    served: &Served,
    start: u64,
    count: u64,
) -> Result<Bytes, ServiceError> {
    let short = || {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("blob {} is shorter than recorded", served.blob),
        )
    };
    if served.size <= HOT_FILE && start + count <= served.size {
        let whole = match ctx.hot.get(&served.blob) {
            Some(b) => b,
            None => {
                let b = Bytes::from(ctx.store.get_bytes(&served.blob)?);
                if b.len() as u64 != served.size {
                    return Err(short().into());
                }
                ctx.hot.insert(&served.blob, b.clone());
                b
            }
        };
        return Ok(whole.slice(start as usize..(start + count) as usize));
    }
    let mut buf = Vec::with_capacity(count as usize);
    open_range(ctx, served, start, count)?.read_to_end(&mut buf)?;
    if buf.len() as u64 != count {
        return Err(short().into());
    }
    Ok(Bytes::from(buf))
}

/// Where a package download may be sent instead of streaming it: a
/// presigned object storage URL, when `s3_redirect_downloads` is set.
pub fn redirect(ctx: &Ctx, served: &Served) -> Result<Option<String>, ServiceError> {
    let ttl = match &ctx.config.storage {
        Storage::S3(s) if served.package => s.redirect_downloads,
        _ => None,
    };
    match ttl {
        Some(ttl) => Ok(ctx.store.presign(&served.blob, ttl)?),
        None => Ok(None),
    }
}

/// Files at most this big are kept in memory once read: every published
/// metadata file of a modest channel, so hosts' refreshes cost no store reads.
pub const HOT_FILE: u64 = 1024 * 1024;

/// Small blobs held in memory per instance, by digest, up to a byte budget;
/// the oldest go first. A blob never changes under its digest, so an entry
/// cannot be stale: a new revision names new blobs, and the old age out.
pub struct HotFiles {
    budget: usize,
    inner: Mutex<HotInner>,
}

#[derive(Default)]
struct HotInner {
    blobs: HashMap<String, Bytes>,
    order: VecDeque<String>,
    bytes: usize,
}

impl HotFiles {
    pub fn new(budget: usize) -> HotFiles {
        HotFiles {
            budget,
            inner: Mutex::default(),
        }
    }

    fn get(&self, digest: &str) -> Option<Bytes> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.blobs.get(digest).cloned()
    }

    fn insert(&self, digest: &str, bytes: Bytes) {
        if bytes.len() > self.budget {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.blobs.contains_key(digest) {
            return;
        }
        while inner.bytes + bytes.len() > self.budget {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some(b) = inner.blobs.remove(&old) {
                inner.bytes -= b.len();
            }
        }
        inner.bytes += bytes.len();
        inner.order.push_back(digest.to_string());
        inner.blobs.insert(digest.to_string(), bytes);
    }
}

/// A reader over bytes `start..start + count` of a served file (streamed).
pub fn open_range(
    ctx: &Ctx,
    served: &Served,
    start: u64,
    count: u64,
) -> Result<Box<dyn std::io::Read + Send>, ServiceError> {
    Ok(ctx.store.get_range(&served.blob, start, count)?)
}

/// A file of a channel's current revision, by path: repomd.xml and its
/// signature, apt's Release files and canonical Packages names. These change in
/// place, so they are served only from the head and never cached.
fn head_file(ctx: &Ctx, channel: &ChannelName, path: &str) -> Result<Option<Served>, ServiceError> {
    let mut conn = ctx.conn()?;
    let Some(head) = channels::table
        .find(channel)
        .select(channels::head)
        .first::<i32>(&mut conn)
        .optional()?
    else {
        return Ok(None);
    };
    // The head and the revision before it: sharing a second, their files
    // cannot be told apart by Last-Modified.
    let times: Vec<(i32, i64)> = revisions::table
        .filter(revisions::channel.eq(channel))
        .filter(revisions::number.eq_any([head - 1, head]))
        .select((revisions::number, revisions::created_at))
        .load(&mut conn)?;
    let time_of = |n: i32| times.iter().find(|(m, _)| *m == n).map(|(_, t)| *t);
    let Some(created_at) = time_of(head) else {
        return Ok(None);
    };
    let exact_time = time_of(head - 1) != Some(created_at);
    let found: Option<(String, i64)> = revision_files::table
        .filter(revision_files::channel.eq(channel))
        .filter(revision_files::number.eq(head))
        .filter(revision_files::path.eq(path))
        .select((revision_files::blob, revision_files::size))
        .first(&mut conn)
        .optional()?;
    Ok(found.map(|(blob, size)| Served {
        blob,
        size: size as u64,
        last_modified: created_at,
        exact_time,
        immutable: false,
        package: false,
    }))
}

/// A checksum-named file (yum data file, apt by-hash copy) of the current
/// revision or of a superseded one still within the grace period, so a client
/// mid-refresh never gets a 404.
fn named_by_checksum(
    ctx: &Ctx,
    channel: &ChannelName,
    path: &str,
) -> Result<Option<Served>, ServiceError> {
    let mut conn = ctx.conn()?;
    let rows: Vec<(i32, String, i64)> = revision_files::table
        .filter(revision_files::channel.eq(channel))
        .filter(revision_files::path.eq(path))
        .select((
            revision_files::number,
            revision_files::blob,
            revision_files::size,
        ))
        .order(revision_files::number.desc())
        .limit(16)
        .load(&mut conn)?;
    let horizon = ctx.clock.now() - ctx.config.grace_period.as_secs() as i64;
    for (number, blob, size) in rows {
        let (created, superseded): (i64, Option<i64>) = revisions::table
            .filter(revisions::channel.eq(channel))
            .filter(revisions::number.eq(number))
            .select((revisions::created_at, revisions::superseded_at))
            .first(&mut conn)?;
        if superseded.is_none_or(|s| s > horizon) {
            return Ok(Some(Served {
                blob,
                size: size as u64,
                last_modified: created,
                // Checksum-named: these bytes are the only ones at this path.
                exact_time: true,
                immutable: true,
                package: false,
            }));
        }
    }
    Ok(None)
}

/// `/rpm/<channel>/repodata/<name>`, or `/rpm/<channel>/latest/repodata/<name>`
/// for the latest-only view.
pub fn repodata(
    ctx: &Ctx,
    channel: &ChannelName,
    latest: bool,
    name: &str,
    actor: &Actor,
) -> Result<Option<Served>, ServiceError> {
    ctx.require_read(actor, channel)?;
    if name.contains('/') {
        return Ok(None);
    }
    let path = if latest {
        format!("latest/repodata/{name}")
    } else {
        format!("repodata/{name}")
    };
    if name == "repomd.xml" || name == "repomd.xml.asc" {
        head_file(ctx, channel, &path)
    } else {
        named_by_checksum(ctx, channel, &path)
    }
}

/// `/deb/dists/<channel>/<rest>`
pub fn dists(
    ctx: &Ctx,
    channel: &ChannelName,
    rest: &str,
    actor: &Actor,
) -> Result<Option<Served>, ServiceError> {
    ctx.require_read(actor, channel)?;
    if rest
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Ok(None);
    }
    let path = format!("dists/{channel}/{rest}");
    if rest.contains("/by-hash/") {
        named_by_checksum(ctx, channel, &path)
    } else {
        head_file(ctx, channel, &path)
    }
}

/// `/deb/pool/…`: the one shared pool. A file is served while some channel
/// holds the build, and for the grace period after the last one dropped it.
/// The caller must be able to read one of the channels the file is served for.
pub fn pool_file(
    ctx: &Ctx,
    pool_path: &str,
    actor: &Actor,
) -> Result<Option<Served>, ServiceError> {
    let mut conn = ctx.conn()?;
    let pkg: Option<(String, i64, i64)> = packages::table
        .filter(packages::pool_path.eq(pool_path))
        .filter(packages::discarded_at.is_null())
        .select((packages::id, packages::size, packages::uploaded_at))
        .first(&mut conn)
        .optional()?;
    let Some((id, size, uploaded_at)) = pkg else {
        return Ok(None);
    };
    let spans: Vec<(String, Option<i32>)> = memberships::table
        .filter(memberships::package_id.eq(&id))
        .select((memberships::channel, memberships::removed_in))
        .load(&mut conn)?;
    let horizon = ctx.clock.now() - ctx.config.grace_period.as_secs() as i64;
    let mut hidden = false;
    for (channel, removed_in) in spans {
        let visible = match removed_in {
            None => true,
            Some(n) => {
                revisions::table
                    .filter(revisions::channel.eq(&channel))
                    .filter(revisions::number.eq(n))
                    .select(revisions::created_at)
                    .first::<i64>(&mut conn)?
                    > horizon
            }
        };
        if visible && !ctx.may_read(actor, &channel) {
            hidden = true;
        } else if visible {
            return Ok(Some(Served {
                blob: id,
                size: size as u64,
                last_modified: uploaded_at,
                exact_time: true,
                immutable: true,
                package: true,
            }));
        }
    }
    if hidden {
        return Err(actor.denied(
            &format!("reading {pool_path:?}"),
            "read access to a channel that serves it",
        ));
    }
    Ok(None)
}

/// A package file under a channel: served while the channel holds the build, and
/// for the grace period after it left (hosts with cached metadata still fetch it).
pub fn package_file(
    ctx: &Ctx,
    channel: &ChannelName,
    sha: &str,
    filename: &str,
    actor: &Actor,
) -> Result<Option<Served>, ServiceError> {
    ctx.require_read(actor, channel)?;
    let mut conn = ctx.conn()?;
    let pkg: Option<(String, i64, i64)> = packages::table
        .find(sha)
        .filter(packages::discarded_at.is_null())
        .select((packages::filename, packages::size, packages::uploaded_at))
        .first(&mut conn)
        .optional()?;
    let Some((stored_name, size, uploaded_at)) = pkg else {
        return Ok(None);
    };
    if stored_name != filename {
        return Ok(None);
    }
    let spans: Vec<Option<i32>> = memberships::table
        .filter(memberships::channel.eq(channel))
        .filter(memberships::package_id.eq(sha))
        .select(memberships::removed_in)
        .load(&mut conn)?;
    let horizon = ctx.clock.now() - ctx.config.grace_period.as_secs() as i64;
    let mut visible = false;
    for removed_in in spans {
        match removed_in {
            None => visible = true,
            Some(n) => {
                let removed_at: i64 = revisions::table
                    .filter(revisions::channel.eq(channel))
                    .filter(revisions::number.eq(n))
                    .select(revisions::created_at)
                    .first(&mut conn)?;
                if removed_at > horizon {
                    visible = true;
                }
            }
        }
        if visible {
            break;
        }
    }
    if !visible {
        return Ok(None);
    }
    Ok(Some(Served {
        blob: sha.to_string(),
        size: size as u64,
        last_modified: uploaded_at,
        exact_time: true,
        immutable: true,
        package: true,
    }))
}

/// A ready-to-use dnf/yum .repo file for a channel.
pub fn repo_file(ctx: &Ctx, channel: &ChannelName, actor: &Actor) -> Result<String, ServiceError> {
    ctx.require_read(actor, channel)?;
    let base = &ctx.config.base_url;
    Ok(format!(
        "[forklift-{channel}]\n\
         name=Forklift ({channel})\n\
         baseurl={base}/rpm/{channel}/\n\
         enabled=1\n\
         gpgcheck=0\n\
         repo_gpgcheck=1\n\
         gpgkey={base}/keys/forklift.asc\n\
         metadata_expire=5m\n\
         skip_if_unavailable=False\n{}",
        if super::access::AnonymousRead::of(&ctx.config).allows(channel) {
            String::new()
        } else {
            // Never the caller's own token: secrets are not echoed into files.
            format!(
                "# {channel} is private: dnf sends these as HTTP Basic. Put a token with\n\
                 # read:{channel} (or read) in place of TOKEN and make this file mode 0600.\n\
                 username=forklift\n\
                 password=TOKEN\n"
            )
        }
    ))
}

/// A ready deb822 sources file for a channel's apt suite.
pub fn sources_file(
    ctx: &Ctx,
    channel: &ChannelName,
    actor: &Actor,
) -> Result<String, ServiceError> {
    ctx.require_read(actor, channel)?;
    let base = &ctx.config.base_url;
    let auth = if super::access::AnonymousRead::of(&ctx.config).allows(channel) {
        String::new()
    } else {
        format!(
            "# {channel} is private: apt sends HTTP Basic credentials from auth.conf.\n\
             # Create /etc/apt/auth.conf.d/forklift.conf (mode 0600) containing:\n\
             #   machine {base}/deb login forklift password TOKEN\n\
             # with a token holding read:{channel} (or read) in place of TOKEN. Keep the\n\
             # scheme: apt applies entries without one to https only.\n"
        )
    };
    Ok(format!(
        "{auth}Types: deb\nURIs: {base}/deb\nSuites: {channel}\nComponents: main\nSigned-By: /etc/apt/keyrings/forklift.asc\n"
    ))
}

/// An apt preferences file pinning the channel above installed versions, so a
/// demotion takes hosts back to the channel's build (a downgrade).
pub fn pref_file(ctx: &Ctx, channel: &ChannelName, actor: &Actor) -> Result<String, ServiceError> {
    ctx.require_read(actor, channel)?;
    Ok(format!(
        "Explanation: follow the Forklift channel {channel}, downgrading after a demotion\n\
         Package: *\nPin: release o={},n={channel}\nPin-Priority: 1001\n",
        ctx.config.apt_origin
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_files_keep_within_budget_dropping_the_oldest() {
        let hot = HotFiles::new(10);
        hot.insert("a", Bytes::from_static(b"1234"));
        hot.insert("b", Bytes::from_static(b"5678"));
        assert_eq!(hot.get("a").as_deref(), Some(&b"1234"[..]));
        hot.insert("c", Bytes::from_static(b"9abc"));
        assert!(hot.get("a").is_none(), "the oldest went");
        assert!(hot.get("b").is_some() && hot.get("c").is_some());
        hot.insert("huge", Bytes::from(vec![0u8; 11]));
        assert!(
            hot.get("huge").is_none(),
            "bigger than the budget: not kept"
        );
        assert!(hot.get("b").is_some(), "and nothing evicted for it");
    }
}
