//! Each package's published metadata, compressed once: its primary,
//! filelists and other XML as gzip members (RPM) or its Packages stanza as a
//! gzip member (.deb). Publication assembles a revision from these pieces, so
//! its cost is concatenation and hashing, not compression of the whole channel.
//!
//! Pieces are a pure function of a package's stored row, which never changes,
//! so this per-process cache is never invalidated (a discarded build's entry
//! is dropped to free memory). Several servers each keep their own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use diesel::prelude::*;

use super::ServiceError;
use crate::db::models::PackageRow;
use crate::db::schema::packages;
use crate::db::DbConnection;
use crate::formats::apt::{stanza_member, stanza_text};
use crate::formats::yum::Fragments;

/// What rendering needs of one package.
#[derive(Debug)]
pub struct Pieces {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub arch: String,
    pub epoch: i32,
    pub version: String,
    pub release: String,
    /// RPM: gzip members of its primary, filelists and other fragments.
    pub primary: Vec<u8>,
    pub filelists: Vec<u8>,
    pub other: Vec<u8>,
    /// .deb: its Packages stanza with the blank line after it, and that as a
    /// gzip member.
    pub apt_text: String,
    pub apt: Vec<u8>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = packages)]
struct Source {
    id: String,
    kind: String,
    name: String,
    arch: String,
    epoch: i32,
    version: String,
    release: String,
    primary_xml: String,
    filelists_xml: String,
    other_xml: String,
    apt_stanza: Option<String>,
}

impl Source {
    fn from_row(p: &PackageRow) -> Source {
        Source {
            id: p.id.clone(),
            kind: p.kind.clone(),
            name: p.name.clone(),
            arch: p.arch.clone(),
            epoch: p.epoch,
            version: p.version.clone(),
            release: p.release.clone(),
            primary_xml: p.primary_xml.clone(),
            filelists_xml: p.filelists_xml.clone(),
            other_xml: p.other_xml.clone(),
            apt_stanza: p.apt_stanza.clone(),
        }
    }

    fn compress(self) -> Pieces {
        let (primary, filelists, other) = if self.kind == "rpm" {
            Fragments {
                primary: self.primary_xml,
                filelists: self.filelists_xml,
                other: self.other_xml,
            }
            .compress()
        } else {
            Default::default()
        };
        let apt_text = self
            .apt_stanza
            .as_deref()
            .map(stanza_text)
            .unwrap_or_default();
        let apt = if apt_text.is_empty() {
            Vec::new()
        } else {
            stanza_member(&apt_text)
        };
        Pieces {
            id: self.id,
            kind: self.kind,
            name: self.name,
            arch: self.arch,
            epoch: self.epoch,
            version: self.version,
            release: self.release,
            primary,
            filelists,
            other,
            apt_text,
            apt,
        }
    }
}

#[derive(Default)]
pub struct PieceCache {
    map: Mutex<HashMap<String, Arc<Pieces>>>,
}

impl PieceCache {
    /// The pieces of `ids`, compressing (on every core) those not cached yet.
    /// `fresh` is an upload whose row is not committed yet.
    pub fn get_many(
        &self,
        conn: &mut DbConnection,
        ids: &[&String],
        fresh: Option<&PackageRow>,
    ) -> Result<Vec<Arc<Pieces>>, ServiceError> {
        let missing: Vec<&String> = {
            let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            ids.iter()
                .filter(|id| !map.contains_key(**id))
                .copied()
                .collect()
        };
        if !missing.is_empty() {
            let mut sources: Vec<Source> = Vec::with_capacity(missing.len());
            for chunk in missing.chunks(500) {
                sources.extend(
                    packages::table
                        .filter(packages::id.eq_any(chunk))
                        .select(Source::as_select())
                        .load::<Source>(conn)?,
                );
            }
            if let Some(p) = fresh {
                if missing.contains(&&p.id) && !sources.iter().any(|s| s.id == p.id) {
                    sources.push(Source::from_row(p));
                }
            }
            let compressed = compress_all(sources);
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            for p in compressed {
                map.insert(p.id.clone(), Arc::new(p));
            }
        }
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        Ok(ids.iter().filter_map(|id| map.get(*id).cloned()).collect())
    }

    pub fn forget(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// Compresses on every available core: a first publication of many packages
/// is bound by gzip.
fn compress_all(sources: Vec<Source>) -> Vec<Pieces> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    if threads <= 1 || sources.len() < 64 {
        return sources.into_iter().map(Source::compress).collect();
    }
    let per = sources.len().div_ceil(threads);
    let mut chunks: Vec<Vec<Source>> = Vec::new();
    let mut it = sources.into_iter();
    loop {
        let chunk: Vec<Source> = it.by_ref().take(per).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| s.spawn(move || c.into_iter().map(Source::compress).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}
