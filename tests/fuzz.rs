//! A structure-aware fuzzer for `read_rpm`, `read_deb` and the upload endpoint,
//! seeded with `fixtures/` and `../shared/corpus/rpms`.
//!
//! It knows where an RPM's header index entries and a .deb's ar member headers
//! are, and mutates those fields (counts, offsets, types, sizes, names) with the
//! values parsers trip on, besides truncations, splices and byte flips. Every
//! mutant must come back as `Ok` or `Err`: a panic (even one contained by the
//! parser's own guard) fails the test, and an abort kills it. Through HTTP every
//! answer must be a 2xx or a 4xx JSON error, the server must keep serving, and
//! no temp file or unreferenced blob may remain.
//!
//! CI runs it for about a minute. Longer, or with other seeds:
//! `FORKLIFT_FUZZ_SECONDS=3600 FORKLIFT_FUZZ_SEED=$RANDOM cargo test --release --test fuzz -- --nocapture`

mod common;

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use forklift::formats::{deb::read_deb, rpm::read_rpm};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn budget(default_secs: u64) -> Duration {
    let secs = std::env::var("FORKLIFT_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_secs);
    Duration::from_secs(secs)
}

fn rng() -> (u64, StdRng) {
    let seed = std::env::var("FORKLIFT_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_261_203);
    (seed, StdRng::seed_from_u64(seed))
}

fn seeds(ext: &str) -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut dirs = vec![root.join("rpms"), root.join("debs")];
    if ext == "rpm" {
        dirs.extend(corpus_dir());
    }
    let mut out = Vec::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == ext) {
                let name = p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                out.push((name, std::fs::read(&p).expect("seed")));
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no .{ext} seeds");
    out
}

/// Values that break parsers: limits, off-by-ones, sign flips.
fn interesting(rng: &mut StdRng, near: u32) -> u32 {
    match rng.gen_range(0..10) {
        0 => 0,
        1 => 1,
        2 => u32::MAX,
        3 => i32::MAX as u32,
        4 => 0x8000_0000,
        5 => near,
        6 => near.wrapping_add(1),
        7 => near.wrapping_sub(1),
        8 => near.wrapping_add(rng.gen_range(1..64)),
        _ => rng.gen(),
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    if at + 4 <= b.len() {
        b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
}

/// Start of each header (signature, main) of a sound RPM: (start, entries, data).
fn rpm_headers(b: &[u8]) -> Vec<(usize, u32, u32)> {
    let mut out = Vec::new();
    let mut at = 96;
    for _ in 0..2 {
        if at + 16 > b.len() {
            break;
        }
        let (n, dl) = (be32(b, at + 8), be32(b, at + 12));
        out.push((at, n, dl));
        at += 16 + 16 * n as usize + dl as usize;
        at = at.div_ceil(8) * 8;
    }
    if out.len() == 2 {
        // Only the signature header is padded.
        let (s, n, dl) = out[0];
        out[1].0 = (s + 16 + 16 * n as usize + dl as usize).div_ceil(8) * 8;
    }
    out
}

fn mutate_rpm(rng: &mut StdRng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    let headers = rpm_headers(&b);
    let rounds = rng.gen_range(1..4);
    for _ in 0..rounds {
        let (start, n, dl) = headers[rng.gen_range(0..headers.len())];
        match rng.gen_range(0..9) {
            // An index entry's type, offset or count.
            0..=3 => {
                let e = start + 16 + 16 * rng.gen_range(0..n.max(1)) as usize;
                let field = e + 4 * rng.gen_range(1..4);
                if field + 4 <= b.len() {
                    let near = if field == e + 8 { dl } else { be32(&b, field) };
                    let v = if field == e + 4 {
                        rng.gen_range(0..12)
                    } else {
                        interesting(rng, near)
                    };
                    put32(&mut b, field, v);
                }
            }
            // The header's entry count or data size.
            4 => {
                let at = start + 8 + 4 * rng.gen_range(0..2);
                let near = if at == start + 8 { n } else { dl };
                put32(&mut b, at, interesting(rng, near));
            }
            // Truncation, mostly inside the headers.
            5 => {
                let end = (start + 16 + 16 * n as usize + dl as usize).min(b.len());
                let cut = rng.gen_range(0..=end.max(1));
                b.truncate(cut);
            }
            // Bytes of the data store: strings lose their NULs, numbers change.
            6 => {
                let data = start + 16 + 16 * n as usize;
                for _ in 0..rng.gen_range(1..16) {
                    let at = data + rng.gen_range(0..dl.max(1)) as usize;
                    if at < b.len() {
                        b[at] = if rng.gen_bool(0.5) { b'A' } else { rng.gen() };
                    }
                }
            }
            // Another package's tail after this header.
            7 => {
                let cut = rng.gen_range(96..b.len().max(97));
                let from = rng.gen_range(0..other.len());
                b.truncate(cut);
                b.extend_from_slice(&other[from..]);
            }
            _ => {
                for _ in 0..rng.gen_range(1..8) {
                    let at = rng.gen_range(0..b.len().max(1));
                    if at < b.len() {
                        b[at] ^= 1 << rng.gen_range(0..8);
                    }
                }
            }
        }
        if b.len() < 100 {
            break;
        }
    }
    b
}

/// ar member headers (offset of each 60-byte header) of a sound .deb.
fn ar_members(b: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 8;
    while at + 60 <= b.len() {
        out.push(at);
        let size: usize = std::str::from_utf8(&b[at + 48..at + 58])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        at += 60 + size + size % 2;
    }
    out
}

fn mutate_deb(rng: &mut StdRng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    let members = ar_members(&b);
    let m = members[rng.gen_range(0..members.len())];
    let field = |b: &mut Vec<u8>, at: usize, len: usize, text: &str| {
        let mut f = text.as_bytes().to_vec();
        f.resize(len, b' ');
        b[at..at + len].copy_from_slice(&f[..len]);
    };
    match rng.gen_range(0..7) {
        0 => {
            let size = ["9999999999", "0", "1", "60", "-1", "1e9", ""][rng.gen_range(0..7)];
            field(&mut b, m + 48, 10, size);
        }
        1 => {
            let name = [
                "//",
                "/0",
                "#1/9999999",
                "data.tar.xz/",
                "control.tar",
                "_x",
                "debian-binary",
            ][rng.gen_range(0..7)];
            field(&mut b, m, 16, name);
        }
        2 => {
            let cut = rng.gen_range(0..b.len());
            b.truncate(cut);
        }
        3 => {
            b[m + 58] = rng.gen();
        }
        // Inside a member's body (compressed control data, tar headers).
        _ => {
            let body = m + 60;
            for _ in 0..rng.gen_range(1..12) {
                let at = body + rng.gen_range(0..(b.len() - body).max(1));
                if at < b.len() {
                    b[at] = rng.gen();
                }
            }
        }
    }
    b
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts panics, including those the parsers contain themselves.
fn count_panics() -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut v) = record.lock() {
            if v.len() < 20 {
                v.push(info.to_string());
            }
        }
    }));
    seen
}

#[test]
fn parsers_survive_structure_aware_mutations() {
    let seen = count_panics();
    let (seed, mut rng) = rng();
    let rpms = seeds("rpm");
    let debs = seeds("deb");
    let until = Instant::now() + budget(40);
    let (mut runs, mut accepted) = (0usize, 0usize);
    while Instant::now() < until {
        for _ in 0..64 {
            let ok = if rng.gen_bool(0.7) {
                let (_, s) = &rpms[rng.gen_range(0..rpms.len())];
                let (_, o) = &rpms[rng.gen_range(0..rpms.len())];
                let m = mutate_rpm(&mut rng, s, o);
                read_rpm(Cursor::new(m)).is_ok()
            } else {
                let (_, s) = &debs[rng.gen_range(0..debs.len())];
                read_deb(Cursor::new(mutate_deb(&mut rng, s))).is_ok()
            };
            runs += 1;
            accepted += usize::from(ok);
        }
    }
    let panics = PANICS.load(Ordering::SeqCst);
    eprintln!("fuzz (seed {seed}): {runs} mutants, {accepted} still valid, {panics} panics");
    let _ = std::panic::take_hook();
    assert!(runs > 1000, "too few runs: {runs}");
    assert_eq!(
        panics,
        0,
        "parsers panicked (seed {seed}): {:?}",
        seen.lock().map(|v| v.clone()).unwrap_or_default()
    );
}

#[test]
fn uploads_of_mutants_never_fail_the_server() {
    let Some(srv) = TestServer::start(Backend::Sqlite) else {
        return;
    };
    let (seed, mut rng) = rng();
    let rpms = seeds("rpm");
    let debs = seeds("deb");
    let blobs_before = srv.blob_count();
    let mut accepted = std::collections::HashSet::new();
    let until = Instant::now() + budget(20);
    let mut sent = 0;
    while Instant::now() < until || sent < 100 {
        let (name, bytes) = if rng.gen_bool(0.7) {
            let (n, s) = &rpms[rng.gen_range(0..rpms.len())];
            let (_, o) = &rpms[rng.gen_range(0..rpms.len())];
            (n.clone(), mutate_rpm(&mut rng, s, o))
        } else {
            let (n, s) = &debs[rng.gen_range(0..debs.len())];
            (n.clone(), mutate_deb(&mut rng, s))
        };
        let r = if rng.gen_bool(0.5) {
            put_bytes(&srv.api(&format!("/packages/{name}")), &bytes)
        } else {
            post_multipart(&srv.api("/packages"), "file", &name, &bytes)
        };
        sent += 1;
        match r.status {
            200 | 201 => {
                accepted.insert(r.json()["id"].as_str().expect("id").to_string());
            }
            400..=499 => {
                let code = r.error_code();
                assert!(!code.is_empty(), "seed {seed}: {}", r.text());
            }
            s => panic!("seed {seed}: mutant of {name} got {s}: {}", r.text()),
        }
        if sent > 2000 {
            break;
        }
    }
    assert_eq!(get(&format!("{}/healthz", srv.url)).status, 200);
    assert_eq!(srv.temp_count(), 0, "temp files left behind");
    assert_eq!(
        srv.blob_count(),
        blobs_before + accepted.len(),
        "blobs left behind by refused uploads"
    );
    eprintln!(
        "fuzz uploads (seed {seed}): {sent} sent, {} accepted",
        accepted.len()
    );
}
