//! Serving published repositories: which blob answers a repository URL, and
//! with which caching facts. The HTTP layer streams the blob.

use diesel::prelude::*;
use std::io::Read as _;

use super::{Actor, ChannelName, Ctx, ServiceError};
use crate::db::schema::*;

/// A file to serve from the blob store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub blob: String,
    pub size: u64,
    /// Unix seconds; strictly increases with every publication of the channel.
    pub last_modified: i64,
    /// Checksum-named or content-addressed: cache forever.
    pub immutable: bool,
}

/// Bytes `start..start + count` of a served file, read whole (small files).
pub fn read_range(
    ctx: &Ctx,
    served: &Served,
    start: u64,
    count: u64,
) -> Result<Vec<u8>, ServiceError> {
    let mut buf = Vec::with_capacity(count as usize);
    open_range(ctx, served, start, count)?.read_to_end(&mut buf)?;
    if buf.len() as u64 != count {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("blob {} is shorter than recorded", served.blob),
        )
        .into());
    }
    Ok(buf)
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
    let created_at: i64 = revisions::table
        .filter(revisions::channel.eq(channel))
        .filter(revisions::number.eq(head))
        .select(revisions::created_at)
        .first(&mut conn)?;
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
        immutable: false,
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
                immutable: true,
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
                immutable: true,
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
        immutable: true,
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
