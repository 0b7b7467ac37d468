//! Named queries: the lookups every domain shares, written once (a build by
//! id or file name, the channels holding it, a channel's open members and
//! head, builds in version order).

use std::collections::HashMap;

use diesel::prelude::*;

use crate::db::models::*;
use crate::db::schema::*;
use crate::db::DbConnection;
use crate::policy::{CheckFact, CheckStatus, Note, Policy, PolicySpec};
use crate::service::error::LookupError;
use crate::service::{PackageRef, ServiceError};

/// A build's place in version order: name, arch and kind, then the version
/// by that kind's rules (dpkg's for .debs, rpmvercmp for RPMs).
pub trait Versioned {
    /// (name, arch, kind, epoch, version, release)
    fn order_key(&self) -> (&str, &str, &str, i32, &str, &str);
}

/// `Versioned` for structs with the identity fields `name`, `arch`, `kind`,
/// `epoch`, `version` and `release`.
macro_rules! versioned {
    ($($t:ty),*) => {$(
        impl $crate::service::catalog::queries::Versioned for $t {
            fn order_key(&self) -> (&str, &str, &str, i32, &str, &str) {
                (&self.name, &self.arch, &self.kind, self.epoch, &self.version, &self.release)
            }
        }
    )*};
}
pub(crate) use versioned;

versioned!(PackageSummary, PackageRow);

/// Orders builds by [`Versioned::order_key`]: sorting groups each name and
/// arch together, oldest first; `max_by` picks the newest.
pub fn by_version<T: Versioned>(a: &T, b: &T) -> std::cmp::Ordering {
    let (an, aa, ak, ae, av, ar) = a.order_key();
    let (bn, ba, bk, be, bv, br) = b.order_key();
    (an, aa, ak)
        .cmp(&(bn, ba, bk))
        .then_with(|| crate::formats::compare_versions(ak, (ae, av, ar), (be, bv, br)))
}

pub fn find_by_id(
    conn: &mut DbConnection,
    id: &str,
) -> Result<Option<PackageSummary>, ServiceError> {
    summary_by_id(conn, id)
}

pub fn summary_by_id(
    conn: &mut DbConnection,
    id: &str,
) -> Result<Option<PackageSummary>, ServiceError> {
    Ok(packages::table
        .find(id)
        .select(PackageSummary::as_select())
        .first(conn)
        .optional()?)
}

/// The build with this id, which must exist (a row read back after a change).
pub fn summary_of(conn: &mut DbConnection, id: &str) -> Result<PackageSummary, ServiceError> {
    summary_by_id(conn, id)?.ok_or_else(|| LookupError::PackageNotFound(id.to_string()).into())
}

/// Resolves `{id}` in URLs: a sha256, or a canonical file name.
pub fn resolve(conn: &mut DbConnection, id: &PackageRef) -> Result<PackageSummary, ServiceError> {
    let name = match id {
        PackageRef::Sha256(sha) => {
            if let Some(p) = summary_by_id(conn, sha)? {
                return Ok(p);
            }
            // A file name may look like a digest, too.
            sha
        }
        PackageRef::FileName(name) => name,
    };
    let mut by_name: Vec<PackageSummary> = packages::table
        .filter(packages::filename.eq(name))
        .select(PackageSummary::as_select())
        .limit(2)
        .load(conn)?;
    match by_name.len() {
        0 => Err(LookupError::PackageNotFound(id.to_string()).into()),
        1 => Ok(by_name.remove(0)),
        _ => Err(LookupError::Ambiguous(format!(
            "{name:?} names more than one build (they differ in epoch); use the sha256 id"
        ))
        .into()),
    }
}

/// Channels holding the package now, in promotion order.
pub fn current_channels(conn: &mut DbConnection, id: &str) -> Result<Vec<String>, ServiceError> {
    let names: Vec<String> = open_memberships()
        .filter(memberships::package_id.eq(id))
        .select(memberships::channel)
        .load(conn)?;
    let order: Vec<String> = channels::table
        .order(channels::position.asc())
        .select(channels::name)
        .load(conn)?;
    Ok(order.into_iter().filter(|c| names.contains(c)).collect())
}

/// Who froze a channel, when and why; None when it is not frozen.
pub fn frozen(
    conn: &mut DbConnection,
    channel: &str,
) -> Result<Option<Note>, diesel::result::Error> {
    let row: Option<(Option<i64>, Option<String>, Option<String>)> = channels::table
        .find(channel)
        .select((
            channels::frozen_at,
            channels::frozen_by,
            channels::frozen_reason,
        ))
        .first(conn)
        .optional()?;
    Ok(match row {
        Some((Some(at), by, reason)) => Some(Note {
            by: by.unwrap_or_default(),
            at,
            reason: reason.unwrap_or_default(),
        }),
        _ => None,
    })
}

pub fn held(p: &PackageSummary) -> Option<Note> {
    p.held_at.map(|at| Note {
        by: p.held_by.clone().unwrap_or_default(),
        at,
        reason: p.held_reason.clone().unwrap_or_default(),
    })
}

pub fn rejections_for(
    conn: &mut DbConnection,
    channel: &str,
) -> Result<HashMap<String, Note>, ServiceError> {
    let rows: Vec<(String, i64, String, String)> = rejections::table
        .filter(rejections::channel.eq(channel))
        .select((
            rejections::package_id,
            rejections::at,
            rejections::actor,
            rejections::reason,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, at, by, reason)| (id, Note { by, at, reason }))
        .collect())
}

/// The channel's policy: the stored one, or the defaults.
pub fn load_policy(
    conn: &mut DbConnection,
    channels: &[String],
    channel: &str,
) -> Result<Policy, ServiceError> {
    let spec: Option<String> = policies::table
        .find(channel)
        .select(policies::spec)
        .first(conn)
        .optional()?;
    match spec {
        None => Ok(Policy::default_for(channel, channels)),
        Some(text) => {
            let spec: PolicySpec = serde_json::from_str(&text).map_err(|e| {
                ServiceError::Internal(format!("stored policy of {channel:?}: {e}"))
            })?;
            Policy::from_spec(channel, &spec, channels)
                .map_err(|e| ServiceError::BadRequest(e.to_string()))
        }
    }
}

/// A channel's head revision number and when that revision was made (`None`
/// before the first publication).
pub fn head_revision(
    conn: &mut DbConnection,
    channel: &str,
) -> Result<(i32, Option<i64>), diesel::result::Error> {
    let head: i32 = channels::table
        .find(channel)
        .select(channels::head)
        .first(conn)?;
    let created: Option<i64> = revisions::table
        .filter(revisions::channel.eq(channel))
        .filter(revisions::number.eq(head))
        .select(revisions::created_at)
        .first(conn)
        .optional()?;
    Ok((head, created))
}

/// Memberships still open: the builds channels hold now.
#[diesel::dsl::auto_type]
pub fn open_memberships() -> _ {
    memberships::table.filter(memberships::removed_in.is_null())
}

/// The ids `channel` holds now, as a subquery
/// (`packages::id.eq_any(open_member_ids(c))`).
#[diesel::dsl::auto_type]
pub fn open_member_ids<'a>(channel: &'a str) -> _ {
    open_memberships()
        .filter(memberships::channel.eq(channel))
        .select(memberships::package_id)
}

/// The builds a channel holds now.
pub fn open_members(
    conn: &mut DbConnection,
    channel: &str,
) -> Result<Vec<String>, diesel::result::Error> {
    open_member_ids(channel).load(conn)
}

/// The builds a channel holds now, each with when its current stay began
/// (the time of the revision that added it).
pub fn open_stays(
    conn: &mut DbConnection,
    channel: &str,
) -> Result<Vec<(String, i64)>, diesel::result::Error> {
    memberships::table
        .inner_join(
            revisions::table.on(revisions::channel
                .eq(memberships::channel)
                .and(revisions::number.eq(memberships::added_in))),
        )
        .filter(memberships::channel.eq(channel))
        .filter(memberships::removed_in.is_null())
        .select((memberships::package_id, revisions::created_at))
        .load(conn)
}

/// When the channel's automatic rule runs next (None: manual).
pub fn next_run(
    conn: &mut DbConnection,
    channel: &str,
) -> Result<Option<i64>, diesel::result::Error> {
    schedules::table
        .find(channel)
        .select(schedules::next_run_at)
        .first(conn)
        .optional()
}

/// The newest event's id (0 before the first).
pub fn latest_event_id(conn: &mut DbConnection) -> Result<i64, diesel::result::Error> {
    Ok(events::table
        .select(diesel::dsl::max(events::id))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0))
}

/// How many ids one statement takes: SQLite allows 32,766 parameters and a
/// bulk promotion may name more builds than that.
pub const ID_CHUNK: usize = 500;

/// The latest result of every check of one build, in every channel.
pub fn checks_of(
    conn: &mut DbConnection,
    package_id: &str,
) -> Result<Vec<CheckRow>, diesel::result::Error> {
    check_results::table
        .filter(check_results::package_id.eq(package_id))
        .order((check_results::channel.asc(), check_results::name.asc()))
        .select(CheckRow::as_select())
        .load(conn)
}

/// The latest check results of the builds in a channel, by build id and
/// check name: what a policy whose source is that channel reads.
pub fn checks_in(
    conn: &mut DbConnection,
    channel: &str,
) -> Result<HashMap<String, std::collections::BTreeMap<String, CheckFact>>, ServiceError> {
    let rows: Vec<CheckRow> = check_results::table
        .filter(check_results::channel.eq(channel))
        .filter(check_results::package_id.eq_any(open_member_ids(channel)))
        .select(CheckRow::as_select())
        .load(conn)?;
    let mut out: HashMap<String, std::collections::BTreeMap<String, CheckFact>> = HashMap::new();
    for r in rows {
        let fact = check_fact(&r)?;
        out.entry(r.package_id).or_default().insert(r.name, fact);
    }
    Ok(out)
}

/// One build's checks in one channel, by name.
pub fn checks_at(
    conn: &mut DbConnection,
    package_id: &str,
    channel: &str,
) -> Result<std::collections::BTreeMap<String, CheckFact>, ServiceError> {
    let rows: Vec<CheckRow> = check_results::table
        .filter(check_results::package_id.eq(package_id))
        .filter(check_results::channel.eq(channel))
        .select(CheckRow::as_select())
        .load(conn)?;
    rows.into_iter()
        .map(|r| Ok((r.name.clone(), check_fact(&r)?)))
        .collect()
}

fn check_fact(r: &CheckRow) -> Result<CheckFact, ServiceError> {
    Ok(CheckFact {
        status: CheckStatus::parse(&r.status).map_err(ServiceError::Internal)?,
        by: r.reported_by.clone(),
        at: r.reported_at,
        url: r.url.clone(),
    })
}

/// The summaries of `ids` (those that exist), in chunks of [`ID_CHUNK`].
pub fn summaries_by_ids<S: AsRef<str>>(
    conn: &mut DbConnection,
    ids: &[S],
) -> Result<Vec<PackageSummary>, diesel::result::Error> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(ID_CHUNK) {
        let chunk: Vec<&str> = chunk.iter().map(|s| s.as_ref()).collect();
        out.extend(
            packages::table
                .filter(packages::id.eq_any(chunk))
                .select(PackageSummary::as_select())
                .load::<PackageSummary>(conn)?,
        );
    }
    Ok(out)
}

/// What a referenced blob holds, as the database records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobUse {
    /// Its size in bytes.
    pub size: i64,
    /// A build's file (else a published metadata file).
    pub package: bool,
    /// Who needs it, for messages: `package NAME` or `CHANNEL revision N PATH`
    /// (the first of several users).
    pub what: String,
}

/// Every blob the database references: the file of each build not
/// discarded, and every published file of the revisions whose files are
/// kept. The sweep spares exactly these; a backup copies exactly these.
pub fn referenced_blobs(
    conn: &mut DbConnection,
) -> Result<HashMap<String, BlobUse>, diesel::result::Error> {
    // A discarded build's file is deleted after its commit; a crash in
    // between leaves it for the sweep.
    let packages: Vec<(String, i64, String)> = packages::table
        .filter(packages::discarded_at.is_null())
        .select((packages::id, packages::size, packages::filename))
        .load(conn)?;
    let mut out: HashMap<String, BlobUse> = packages
        .into_iter()
        .map(|(id, size, filename)| {
            let what = format!("package {filename}");
            let package = true;
            (
                id,
                BlobUse {
                    size,
                    package,
                    what,
                },
            )
        })
        .collect();
    let files: Vec<(String, i64, String, i32, String)> = revision_files::table
        .select((
            revision_files::blob,
            revision_files::size,
            revision_files::channel,
            revision_files::number,
            revision_files::path,
        ))
        .load(conn)?;
    for (blob, size, channel, number, path) in files {
        out.entry(blob).or_insert_with(|| BlobUse {
            size,
            package: false,
            what: format!("{channel} revision {number} {path}"),
        });
    }
    Ok(out)
}
