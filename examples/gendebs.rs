//! Generates .debs for the apt publication benchmark (`bench/apt.sh`).
//!
//! Many small, valid, distinct Debian binary packages:
//!
//! ```text
//! cargo run --release --example gendebs -- --count 10000 --out /tmp/debs [--size-kb 8]
//! ```
//!
//! writes `bench-deb-00001_1.0-1_amd64.deb` … into `--out`. Each package is an
//! `ar` archive (the `ar` crate; plain 16-byte member names, as dpkg-deb writes
//! them) with the members `debian-binary` ("2.0\n"), `control.tar.gz` and
//! `data.tar.gz` (the `tar` and `flate2` crates). `./control` has Package,
//! Version, Architecture (amd64), Maintainer, Installed-Size, Depends, Section,
//! Priority, Homepage and a multi-line Description; `./md5sums` lists the data
//! files. The data archive holds a program under /usr/bin (`#!/bin/sh` plus
//! `--size-kb` KiB of pseudo-random, incompressible bytes, different in every
//! package) and a README under /usr/share/doc. Packages are built on all cores.
//! The output depends only on the arguments (fixed mtimes, owners and seeds).
//!
//! Every package passes `dpkg-deb --info`/`--contents` and is indexed by
//! `apt-ftparchive packages` and `aptly repo add`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use flate2::write::GzEncoder;
use flate2::Compression;
use md5::{Digest, Md5};

#[derive(Parser, Debug)]
#[command(about = "Generate .debs for the Forklift apt publication benchmark")]
struct Args {
    /// How many packages to write.
    #[arg(long)]
    count: usize,
    /// Directory for the packages (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Size of each package's /usr/bin file in KiB (incompressible data).
    #[arg(long, default_value_t = 8)]
    size_kb: usize,
    /// Number of the first package (names are bench-deb-NNNNN).
    #[arg(long, default_value_t = 1)]
    start: usize,
    /// Worker threads [default: available cores].
    #[arg(long)]
    threads: Option<usize>,
}

/// A fixed mtime (2024-01-01) for every archive member and tar entry.
const MTIME: u64 = 1_704_067_200;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.count == 0 {
        bail!("--count must be at least 1");
    }
    if args.start + args.count > 100_000 {
        bail!("package numbers must stay below 100000 (names are bench-deb-NNNNN)");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 64);
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= args.count {
                            return Ok(());
                        }
                        small(&args.out, args.start + i, args.size_kb)?;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a worker thread panicked"))??;
        }
        Ok(())
    })?;
    eprintln!(
        "wrote {} packages to {} in {:.1}s ({threads} threads)",
        args.count,
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// xorshift64*: cheap, deterministic, incompressible enough for gzip.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// One tar entry: a directory (no contents) or a regular file.
enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, u32, &'a [u8]),
}

/// A gzip-compressed ustar archive of `entries`, owned by root:root, as
/// dpkg-deb builds them (paths start with "./").
fn tar_gz(entries: &[Entry]) -> anyhow::Result<Vec<u8>> {
    let gz = GzEncoder::new(Vec::new(), Compression::default());
    let mut tar = tar::Builder::new(gz);
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(MTIME);
        h.set_uid(0);
        h.set_gid(0);
        h.set_username("root")?;
        h.set_groupname("root")?;
        match *e {
            Entry::Dir(path) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                tar.append_data(&mut h, path, std::io::empty())?;
            }
            Entry::File(path, mode, body) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(mode);
                h.set_size(body.len() as u64);
                tar.append_data(&mut h, path, body)?;
            }
        }
    }
    Ok(tar.into_inner()?.finish()?)
}

fn small(out: &Path, n: usize, size_kb: usize) -> anyhow::Result<()> {
    let name = format!("bench-deb-{n:05}");
    let mut bin = b"#!/bin/sh\nexit 0\n".to_vec();
    bin.extend(noise(n as u64, size_kb * 1024));
    let readme = format!("{name}: package number {n} of a generated benchmark set.\n");

    let bin_path = format!("./usr/bin/{name}");
    let doc_dir = format!("./usr/share/doc/{name}/");
    let readme_path = format!("./usr/share/doc/{name}/README");
    let data = tar_gz(&[
        Entry::Dir("./"),
        Entry::Dir("./usr/"),
        Entry::Dir("./usr/bin/"),
        Entry::File(&bin_path, 0o755, &bin),
        Entry::Dir("./usr/share/"),
        Entry::Dir("./usr/share/doc/"),
        Entry::Dir(&doc_dir),
        Entry::File(&readme_path, 0o644, readme.as_bytes()),
    ])?;

    let md5sums = format!(
        "{:x}  {}\n{:x}  {}\n",
        Md5::digest(&bin),
        &bin_path[2..],
        Md5::digest(readme.as_bytes()),
        &readme_path[2..],
    );
    // dpkg's Installed-Size: KiB, each file rounded up, plus one per directory.
    let installed_kib = bin.len().div_ceil(1024) + readme.len().div_ceil(1024) + 6;
    let control = format!(
        "Package: {name}\n\
         Version: 1.0-1\n\
         Architecture: amd64\n\
         Maintainer: Forklift Bench <bench@example.invalid>\n\
         Installed-Size: {installed_kib}\n\
         Depends: libc6 (>= 2.17), bash (>= 4.0) | dash\n\
         Section: devel\n\
         Priority: optional\n\
         Homepage: https://example.invalid/forklift-bench\n\
         Description: synthetic package {n} for the Forklift apt benchmark\n \
         Package number {n} of a generated benchmark set. It carries a small\n \
         program under /usr/bin and a README.\n \
         .\n \
         It is not meant to be installed.\n"
    );
    let control_tar = tar_gz(&[
        Entry::Dir("./"),
        Entry::File("./control", 0o644, control.as_bytes()),
        Entry::File("./md5sums", 0o644, md5sums.as_bytes()),
    ])?;

    let path = out.join(format!("{name}_1.0-1_amd64.deb"));
    let tmp = out.join(format!(".{name}.deb.tmp"));
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let members: [(&str, &[u8]); 3] = [
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &control_tar),
        ("data.tar.gz", &data),
    ];
    // The common ar format with plain 16-byte names, as dpkg-deb writes it (every
    // member name is shorter than 16 bytes, so no GNU or BSD long-name records).
    let mut ar = ar::Builder::new(std::io::BufWriter::new(file));
    for (member, body) in members {
        let mut header = ar::Header::new(member.as_bytes().to_vec(), body.len() as u64);
        header.set_mtime(MTIME);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(0o100644);
        ar.append(&header, body)
            .with_context(|| format!("writing {member} of {name}"))?;
    }
    let mut w = ar.into_inner()?;
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
