//! Each build's dependency facts (`package_deps`), read once from the
//! metadata stored with it, and the named queries the closure gate runs:
//! only rows of the builds and capability names a change involves.

use std::collections::HashSet;

use diesel::prelude::*;

use crate::db::models::DepRow;
use crate::db::schema::*;
use crate::db::DbConnection;
use crate::formats::deps::{self, BuildDeps, Op};
use crate::service::catalog::queries::ID_CHUNK;
use crate::service::ServiceError;

/// More entries than any real package has: a fragment beyond it is not indexed.
const MAX_ENTRIES: usize = 200_000;

/// The rows for one build, from its rendered metadata (what dnf and apt read).
pub fn rows_for(id: &str, kind: &str, primary_xml: &str, stanza: Option<&str>) -> Vec<DepRow> {
    let facts: Vec<BuildDeps> = if kind == "deb" {
        deps::from_stanza(stanza.unwrap_or_default())
    } else {
        deps::from_primary(primary_xml.as_bytes(), MAX_ENTRIES).unwrap_or_else(|e| {
            tracing::warn!(id, error = %e, "dependencies not read");
            Vec::new()
        })
    };
    let kind = deps::Kind::of(kind);
    let row = |role: &str, name: String, rel: Option<(Op, String)>, expr: Option<String>| DepRow {
        package_id: id.to_string(),
        role: role.into(),
        name,
        op: rel.as_ref().map(|(o, _)| o.as_str().to_string()),
        version: rel.map(|(_, v)| v),
        expr,
    };
    let mut out = Vec::new();
    for b in facts.into_iter().take(1) {
        for p in b.provides {
            out.push(row("P", p.name, p.rel, None));
        }
        for f in b.files {
            out.push(row("F", f, None, None));
        }
        let mut seen = HashSet::new();
        for r in b.requires {
            if !seen.insert(r.clone()) {
                continue;
            }
            let mut names = deps::Universe::names(kind, &r);
            names.dedup();
            if names.is_empty() {
                // Not parsed: kept under its own text, judged (as assumed) later.
                names.push(r.clone());
            }
            for n in names {
                out.push(row("R", n, None, Some(r.clone())));
            }
        }
    }
    out
}

/// Indexes every build among `ids` (all builds when `None`) that has no rows
/// yet: builds stored before the table existed. Returns how many it indexed.
pub fn backfill(conn: &mut DbConnection, ids: Option<&[String]>) -> Result<usize, ServiceError> {
    let missing: Vec<String> = match ids {
        None => packages::table
            .filter(packages::id.ne_all(package_deps::table.select(package_deps::package_id)))
            .select(packages::id)
            .load(conn)?,
        Some(ids) => {
            let mut have: HashSet<String> = HashSet::new();
            for chunk in ids.chunks(ID_CHUNK) {
                have.extend(
                    package_deps::table
                        .filter(package_deps::package_id.eq_any(chunk))
                        .select(package_deps::package_id)
                        .distinct()
                        .load::<String>(conn)?,
                );
            }
            ids.iter().filter(|i| !have.contains(*i)).cloned().collect()
        }
    };
    // Many builds per transaction: one commit (and fsync) each would make the
    // first start after an upgrade slow.
    for chunk in missing.chunks(200) {
        let stored: Vec<(String, String, String, Option<String>)> = packages::table
            .filter(packages::id.eq_any(chunk))
            .select((
                packages::id,
                packages::kind,
                packages::primary_xml,
                packages::apt_stanza,
            ))
            .load(conn)?;
        crate::db::write_transaction(conn, |conn| -> Result<(), ServiceError> {
            for (id, kind, primary, stanza) in &stored {
                // Recorded meanwhile by another instance's backfill: not twice.
                let have: i64 = package_deps::table
                    .filter(package_deps::package_id.eq(id))
                    .count()
                    .get_result(conn)?;
                if have > 0 {
                    continue;
                }
                // Row by row: batch inserts are not in the backend-neutral subset.
                for r in rows_for(id, kind, primary, stanza.as_deref()) {
                    diesel::insert_into(package_deps::table)
                        .values(&r)
                        .execute(conn)?;
                }
            }
            Ok(())
        })?;
    }
    Ok(missing.len())
}

/// Requirement rows matching `$filter`, with each build's kind and arch.
macro_rules! requirement_rows {
    ($conn:expr, $filter:expr) => {{
        let rows: Vec<(String, String, String, Option<String>)> = package_deps::table
            .inner_join(packages::table.on(package_deps::package_id.eq(packages::id)))
            .filter(package_deps::role.eq("R"))
            .filter($filter)
            .select((
                package_deps::package_id,
                packages::kind,
                packages::arch,
                package_deps::expr,
            ))
            .load($conn)?;
        rows.into_iter()
            .filter_map(|(id, k, a, e)| e.map(|e| (id, k, a, e)))
    }};
}

/// A requirement of a build: (build, kind, arch, requirement text).
pub type Requirement = (String, String, String, String);

/// The requirements of the given builds.
pub fn requirements_of(
    conn: &mut DbConnection,
    ids: &[String],
) -> Result<Vec<Requirement>, ServiceError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(ID_CHUNK) {
        out.extend(requirement_rows!(
            conn,
            package_deps::package_id.eq_any(chunk)
        ));
    }
    dedup(out)
}

/// The requirements (of any build) that mention one of `names`.
pub fn requirements_naming(
    conn: &mut DbConnection,
    names: &[String],
) -> Result<Vec<Requirement>, ServiceError> {
    let mut out = Vec::new();
    for chunk in names.chunks(ID_CHUNK) {
        out.extend(requirement_rows!(conn, package_deps::name.eq_any(chunk)));
    }
    dedup(out)
}

fn dedup(mut v: Vec<Requirement>) -> Result<Vec<Requirement>, ServiceError> {
    v.sort();
    v.dedup();
    Ok(v)
}

/// One provide or file row: (build, kind, arch, role, name, op, version).
pub type Provision = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

/// What any build provides (or holds as a file) under one of `names`.
pub fn provisions_of(
    conn: &mut DbConnection,
    names: &[String],
) -> Result<Vec<Provision>, ServiceError> {
    let mut out = Vec::new();
    for chunk in names.chunks(ID_CHUNK) {
        out.extend(
            package_deps::table
                .inner_join(packages::table.on(package_deps::package_id.eq(packages::id)))
                .filter(package_deps::role.eq_any(["P", "F"]))
                .filter(package_deps::name.eq_any(chunk))
                .select((
                    package_deps::package_id,
                    packages::kind,
                    packages::arch,
                    package_deps::role,
                    package_deps::name,
                    package_deps::op,
                    package_deps::version,
                ))
                .load::<Provision>(conn)?,
        );
    }
    Ok(out)
}

/// The capability names and file paths the given builds provide.
pub fn provided_names(
    conn: &mut DbConnection,
    ids: &[String],
) -> Result<Vec<String>, ServiceError> {
    let mut out: Vec<String> = Vec::new();
    for chunk in ids.chunks(ID_CHUNK) {
        out.extend(
            package_deps::table
                .filter(package_deps::role.eq_any(["P", "F"]))
                .filter(package_deps::package_id.eq_any(chunk))
                .select(package_deps::name)
                .load::<String>(conn)?,
        );
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// RPM builds whose full file list (filelists.xml) holds `path`: what dnf
/// answers a file requirement with beyond primary.xml's files. A scan, so
/// only asked for requirements nothing else met.
pub fn holding_file(conn: &mut DbConnection, path: &str) -> Result<Vec<String>, ServiceError> {
    let text = crate::formats::yum::esc(path);
    let mut pattern = String::from("%>");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push_str("</file>%");
    Ok(packages::table
        .filter(packages::kind.eq("rpm"))
        .filter(packages::filelists_xml.like(pattern).escape('\\'))
        .select(packages::id)
        .load(conn)?)
}
