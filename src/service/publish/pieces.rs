//! Published metadata compressed in blocks: the packages of a data file (or
//! an apt index) are cut into blocks of about 16 at boundaries chosen by
//! their ids, and each block's primary, filelists and other XML (RPM) or
//! stanzas (.deb) are one deflate chunk compressed against the block before
//! it (`formats::gzchain`). Publication assembles a revision from cached
//! chunks, so its cost is concatenation and hashing plus compressing the
//! block that changed and the one after it; the files compress about as well
//! as one gzip stream.
//!
//! A chunk is a pure function of stored package rows, which never change, so
//! cached chunks are never stale; a chunk is dropped once no published view
//! uses it. The package summaries are kept per id (a discarded build's entry
//! is dropped). Several servers each keep their own cache.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use diesel::prelude::*;

use crate::db::models::PackageRow;
use crate::db::schema::packages;
use crate::db::DbConnection;
use crate::formats::apt::{stanza_block_chunk, stanza_text};
use crate::formats::gzchain::Chunk;
use crate::formats::yum::{block_chunks, Chunks, Fragments};
use crate::service::catalog::queries::ID_CHUNK;
use crate::service::error::PublishError;
use crate::service::ServiceError;

/// Below this many chunks to compress, one thread does it.
const PARALLEL_FROM: usize = 64;

/// What ordering and rendering need of one package.
#[derive(Debug)]
pub struct Pieces {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub arch: String,
    pub epoch: i32,
    pub version: String,
    pub release: String,
    /// .deb: its Packages stanza with the blank line after it (the plain
    /// `Packages` file is their concatenation).
    pub apt_text: String,
}

crate::service::catalog::queries::versioned!(Pieces);

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
            apt_stanza: p.apt_stanza.clone(),
        }
    }

    fn into_pieces(self) -> Pieces {
        let apt_text = self
            .apt_stanza
            .as_deref()
            .map(stanza_text)
            .unwrap_or_default();
        Pieces {
            id: self.id,
            kind: self.kind,
            name: self.name,
            arch: self.arch,
            epoch: self.epoch,
            version: self.version,
            release: self.release,
            apt_text,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = packages)]
struct FragmentRow {
    id: String,
    primary_xml: String,
    filelists_xml: String,
    other_xml: String,
}

/// A block: the ids of its packages in order, and those of the block before
/// it (whose text is its dictionary); joined, so equality is exact.
#[derive(Clone, PartialEq, Eq, Hash)]
struct BlockKey {
    ids: String,
    prev: String,
}

/// Compressed blocks, kept while some published view uses them: each view
/// (a channel's repository, its latest-only view, one apt index) holds the
/// keys of its last rendering, and a block no view holds is dropped. So the
/// cache is about the size of the published metadata, compressed.
struct BlockCache<T> {
    inner: Mutex<BlockInner<T>>,
}

struct BlockInner<T> {
    blocks: HashMap<BlockKey, (Arc<T>, usize)>,
    views: HashMap<String, Vec<BlockKey>>,
}

impl<T> Default for BlockCache<T> {
    fn default() -> Self {
        BlockCache {
            inner: Mutex::new(BlockInner {
                blocks: HashMap::new(),
                views: HashMap::new(),
            }),
        }
    }
}

impl<T> BlockCache<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, BlockInner<T>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a reference to each of `keys` that is cached, so no other view
    /// can drop it before [`Self::publish`]; returns the indexes of the others.
    fn acquire(&self, keys: &[BlockKey]) -> Vec<usize> {
        let mut inner = self.lock();
        (0..keys.len())
            .filter(|&i| match inner.blocks.get_mut(&keys[i]) {
                Some(e) => {
                    e.1 += 1;
                    false
                }
                None => true,
            })
            .collect()
    }

    /// Gives back what [`Self::acquire`] took, when the blocks will not be
    /// published after all.
    fn abandon(&self, keys: &[BlockKey], missing: &[usize]) {
        let mut inner = self.lock();
        for (i, k) in keys.iter().enumerate() {
            if missing.binary_search(&i).is_ok() {
                continue;
            }
            if let Some(e) = inner.blocks.get_mut(k) {
                e.1 = e.1.saturating_sub(1);
                if e.1 == 0 {
                    inner.blocks.remove(k);
                }
            }
        }
    }

    /// Stores the `fresh` blocks (the ones [`Self::acquire`] found missing),
    /// makes `keys` the blocks of `view`, releases the view's previous ones,
    /// and returns `keys`' blocks in order.
    fn publish(
        &self,
        view: &str,
        keys: Vec<BlockKey>,
        fresh: Vec<(BlockKey, T)>,
    ) -> Result<Vec<Arc<T>>, ServiceError> {
        let mut inner = self.lock();
        for (k, v) in fresh {
            // Another view may have stored the same block meanwhile.
            inner.blocks.entry(k).or_insert((Arc::new(v), 0)).1 += 1;
        }
        let out = keys
            .iter()
            .map(|k| {
                inner.blocks.get(k).map(|e| e.0.clone()).ok_or_else(|| {
                    PublishError::Publication("a metadata block went missing".into()).into()
                })
            })
            .collect();
        let old = inner
            .views
            .insert(view.to_string(), keys)
            .unwrap_or_default();
        for k in old {
            if let Some(e) = inner.blocks.get_mut(&k) {
                e.1 = e.1.saturating_sub(1);
                if e.1 == 0 {
                    inner.blocks.remove(&k);
                }
            }
        }
        out
    }
}

#[derive(Default)]
pub struct PieceCache {
    map: Mutex<HashMap<String, Arc<Pieces>>>,
    rpm: BlockCache<Chunks>,
    deb: BlockCache<Chunk>,
}

/// A block ends after a package whose id says so: on average every
/// `BLOCK`th package, at the same packages whatever else the file holds, so
/// adding or removing a package changes one block (and the dictionary of the
/// next) rather than moving every boundary after it. Blocks are long enough
/// to compress well and short enough to recompress in a millisecond.
const BLOCK: u32 = 16;
/// No block is longer than this, whatever the ids.
const MAX_BLOCK: usize = 256;

fn ends_block(id: &str) -> bool {
    let tail = &id[id.len().saturating_sub(8)..];
    u32::from_str_radix(tail, 16).map_or(true, |v| v % BLOCK == 0)
}

/// `seq` cut into blocks.
fn blocks<'a, 'b>(seq: &'b [&'a Arc<Pieces>]) -> Vec<&'b [&'a Arc<Pieces>]> {
    let mut out = Vec::with_capacity(seq.len() / BLOCK as usize + 1);
    let mut start = 0;
    for (i, p) in seq.iter().enumerate() {
        if ends_block(&p.id) || i + 1 - start >= MAX_BLOCK {
            out.push(&seq[start..=i]);
            start = i + 1;
        }
    }
    if start < seq.len() {
        out.push(&seq[start..]);
    }
    out
}

fn keys(blocks: &[&[&Arc<Pieces>]]) -> Vec<BlockKey> {
    let join = |b: &[&Arc<Pieces>]| {
        let mut s = String::with_capacity(b.len() * 65);
        for p in b {
            s.push_str(&p.id);
            s.push(' ');
        }
        s
    };
    let ids: Vec<String> = blocks.iter().map(|b| join(b)).collect();
    (0..ids.len())
        .map(|i| BlockKey {
            ids: ids[i].clone(),
            prev: i.checked_sub(1).map(|j| ids[j].clone()).unwrap_or_default(),
        })
        .collect()
}

impl PieceCache {
    /// The pieces of `ids`. `fresh` is an upload whose row is not committed yet.
    pub fn get_many(
        &self,
        conn: &mut DbConnection,
        ids: &[&String],
        fresh: &[PackageRow],
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
            for chunk in missing.chunks(ID_CHUNK) {
                sources.extend(
                    packages::table
                        .filter(packages::id.eq_any(chunk))
                        .select(Source::as_select())
                        .load::<Source>(conn)?,
                );
            }
            for p in fresh {
                if missing.contains(&&p.id) && !sources.iter().any(|s| s.id == p.id) {
                    sources.push(Source::from_row(p));
                }
            }
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            for s in sources {
                let p = s.into_pieces();
                map.insert(p.id.clone(), Arc::new(p));
            }
        }
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        Ok(ids.iter().filter_map(|id| map.get(*id).cloned()).collect())
    }

    /// The yum chunks of `seq`, the RPMs of the repository `view` in file
    /// order, one per block. Missing blocks are compressed from the fragments
    /// in the database (or `fresh`), on every core when there are many.
    pub fn rpm_chunks(
        &self,
        conn: &mut DbConnection,
        view: &str,
        seq: &[&Arc<Pieces>],
        fresh: &[PackageRow],
    ) -> Result<Vec<Arc<Chunks>>, ServiceError> {
        let blocks = blocks(seq);
        let keys = keys(&blocks);
        let missing = self.rpm.acquire(&keys);
        match compress_rpm_blocks(conn, &blocks, &keys, &missing, fresh) {
            Ok(made) => self.rpm.publish(view, keys, made),
            Err(e) => {
                self.rpm.abandon(&keys, &missing);
                Err(e)
            }
        }
    }

    /// The Packages.gz chunks of `seq`, the stanzas of the index `view` in
    /// file order, one per block.
    pub fn deb_chunks(
        &self,
        view: &str,
        seq: &[&Arc<Pieces>],
    ) -> Result<Vec<Arc<Chunk>>, ServiceError> {
        let blocks = blocks(seq);
        let keys = keys(&blocks);
        let missing = self.deb.acquire(&keys);
        fn texts<'a>(b: &[&'a Arc<Pieces>]) -> Vec<&'a str> {
            b.iter().map(|p| p.apt_text.as_str()).collect()
        }
        let compressed = match parallel(&missing, |&i| {
            let prev = if i == 0 {
                Vec::new()
            } else {
                texts(blocks[i - 1])
            };
            Some(stanza_block_chunk(&texts(blocks[i]), &prev))
        }) {
            Ok(c) => c,
            Err(e) => {
                self.deb.abandon(&keys, &missing);
                return Err(e);
            }
        };
        let made = missing
            .iter()
            .zip(compressed)
            .filter_map(|(&i, c)| Some((keys[i].clone(), c?)))
            .collect();
        self.deb.publish(view, keys, made)
    }

    pub fn forget(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// Compresses the blocks `missing` (indexes into `blocks`) from the packages'
/// fragments in the database, or `fresh` (an upload not committed yet).
fn compress_rpm_blocks(
    conn: &mut DbConnection,
    blocks: &[&[&Arc<Pieces>]],
    keys: &[BlockKey],
    missing: &[usize],
    fresh: &[PackageRow],
) -> Result<Vec<(BlockKey, Chunks)>, ServiceError> {
    let mut made = Vec::with_capacity(missing.len());
    if !missing.is_empty() {
        // The texts of the missing blocks and of the blocks before them.
        let needed: Vec<&str> = missing
            .iter()
            .flat_map(|&i| {
                let prev: &[&Arc<Pieces>] = if i == 0 { &[] } else { blocks[i - 1] };
                blocks[i].iter().chain(prev).map(|p| p.id.as_str())
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut texts: HashMap<String, Fragments> = HashMap::with_capacity(needed.len());
        for chunk in needed.chunks(ID_CHUNK) {
            for r in packages::table
                .filter(packages::id.eq_any(chunk))
                .select(FragmentRow::as_select())
                .load::<FragmentRow>(conn)?
            {
                texts.insert(
                    r.id,
                    Fragments {
                        primary: r.primary_xml,
                        filelists: r.filelists_xml,
                        other: r.other_xml,
                    },
                );
            }
        }
        for p in fresh {
            texts.entry(p.id.clone()).or_insert_with(|| Fragments {
                primary: p.primary_xml.clone(),
                filelists: p.filelists_xml.clone(),
                other: p.other_xml.clone(),
            });
        }
        let frags = |b: &[&Arc<Pieces>]| -> Option<Vec<&Fragments>> {
            b.iter().map(|p| texts.get(&p.id)).collect()
        };
        let compressed = parallel(missing, |&i| {
            let prev = if i == 0 {
                Vec::new()
            } else {
                frags(blocks[i - 1])?
            };
            Some(block_chunks(&frags(blocks[i])?, &prev))
        })?;
        for (&i, c) in missing.iter().zip(compressed) {
            let c = c.ok_or_else(|| {
                PublishError::Publication("a package's stored metadata is missing".into())
            })?;
            made.push((keys[i].clone(), c));
        }
    }
    Ok(made)
}

/// `f` over `items`, in order, on every available core (at most 8) when
/// there are many: a first publication of many packages is bound by deflate.
fn parallel<I: Sync, O: Send>(
    items: &[I],
    f: impl Fn(&I) -> Option<O> + Sync,
) -> Result<Vec<Option<O>>, ServiceError> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    if threads <= 1 || items.len() < PARALLEL_FROM {
        return Ok(items.iter().map(&f).collect());
    }
    let per = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(per)
            .map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<_>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            // A lost part would shift every later chunk onto the wrong package.
            out.extend(
                h.join().map_err(|_| {
                    PublishError::Publication("a compression thread panicked".into())
                })?,
            );
        }
        Ok(out)
    })
}
