//! Generates RPMs for the ingest benchmark (`bench/ingest.sh`).
//!
//! Many small, valid, distinct packages:
//!
//! ```text
//! cargo run --release --example genrpms -- --count 10000 --out /tmp/rpms [--size-kb 8]
//! ```
//!
//! writes `bench-pkg-00001-1.0-1.x86_64.rpm` … into `--out`. Each package has a
//! binary under /usr/bin (`--size-kb` KiB of pseudo-random, incompressible bytes,
//! different in every package), a %config file under /etc, a documentation file,
//! a Requires, a Provides and a changelog entry. Packages are built on all cores.
//!
//! One big package (for the "memory does not grow with the upload" test):
//!
//! ```text
//! cargo run --release --example genrpms -- --big-file /tmp/big.rpm --big-size-gib 2
//! ```
//!
//! writes one valid RPM whose whole file stays just under `--big-size-gib` GiB
//! (the server's default `max_upload_bytes` is exactly 2 GiB). Its single file
//! is read from a sparse temporary file of zeros and stored uncompressed, so the
//! upload really is ~2 GiB. The rpm crate keeps the (uncompressed) payload in
//! memory while building, so this needs roughly `--big-size-gib` GiB of free RAM.
//!
//! Every package passes `rpm -Kv --nosignature` and is indexed by createrepo_c.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use rpm::{BuildConfig, CompressionType, Dependency, FileOptions, PackageBuilder};

#[derive(Parser, Debug)]
#[command(about = "Generate RPMs for the Forklift ingest benchmark")]
struct Args {
    /// How many small packages to write.
    #[arg(long)]
    count: Option<usize>,
    /// Directory for the small packages (created if missing).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Size of each package's /usr/bin file in KiB (incompressible data).
    #[arg(long, default_value_t = 8)]
    size_kb: usize,
    /// Number of the first package (names are bench-pkg-NNNNN).
    #[arg(long, default_value_t = 1)]
    start: usize,
    /// Worker threads [default: available cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Write ONE big package to this path instead.
    #[arg(long)]
    big_file: Option<PathBuf>,
    /// Upper bound for the big package's file size, in GiB.
    #[arg(long, default_value_t = 2.0)]
    big_size_gib: f64,
}

/// A fixed changelog date (2024-01-01) so the output only depends on the arguments.
const CHANGELOG_DATE: u32 = 1_704_067_200;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(path) = &args.big_file {
        return big(path, args.big_size_gib);
    }
    let (Some(count), Some(out)) = (args.count, args.out.clone()) else {
        bail!("give --count N --out DIR, or --big-file PATH");
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
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
                        if i >= count {
                            return Ok(());
                        }
                        small(&out, args.start + i, args.size_kb)?;
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
        "wrote {count} packages to {} in {:.1}s ({threads} threads)",
        out.display(),
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

fn small(out: &Path, n: usize, size_kb: usize) -> anyhow::Result<()> {
    let name = format!("bench-pkg-{n:05}");
    let mut bin = b"#!/bin/sh\nexit 0\n".to_vec();
    bin.extend(noise(n as u64, size_kb * 1024));
    let pkg = PackageBuilder::new(
        &name,
        "1.0",
        "Apache-2.0",
        "x86_64",
        "Synthetic package for the Forklift ingest benchmark",
    )
    .release("1")
    .description(format!(
        "Package number {n} of a generated benchmark set. It carries a program, \
         a configuration file and a README."
    ))
    .url("https://example.invalid/forklift-bench")
    .vendor("Forklift benchmark")
    .packager("Forklift Bench <bench@example.invalid>")
    .group("Development/Tools")
    .build_host("bench.example.invalid")
    .using_config(BuildConfig::v4().compression(CompressionType::Gzip))
    .with_file_contents(
        bin,
        FileOptions::new(format!("/usr/bin/{name}")).permissions(0o755),
    )?
    .with_file_contents(
        format!("# {name} configuration\nlevel = {n}\n"),
        FileOptions::new(format!("/etc/{name}.conf"))
            .permissions(0o644)
            .config(),
    )?
    .with_file_contents(
        format!("{name}: nothing to see here.\n"),
        FileOptions::new(format!("/usr/share/doc/{name}/README"))
            .permissions(0o644)
            .doc(),
    )?
    .requires(Dependency::greater_eq("bash", "4.0"))
    .requires(Dependency::any("/bin/sh"))
    .provides(Dependency::eq(format!("bench-capability-{n}"), "1.0"))
    .add_changelog_entry(
        "Forklift Bench <bench@example.invalid> - 1.0-1",
        format!("- Generated package {n}."),
        CHANGELOG_DATE,
    )
    .build()
    .with_context(|| format!("building {name}"))?;
    let path = out.join(format!("{name}-1.0-1.x86_64.rpm"));
    pkg.write_file(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn big(path: &Path, size_gib: f64) -> anyhow::Result<()> {
    if size_gib.is_nan() || size_gib <= 0.01 {
        bail!("--big-size-gib must be more than 0.01");
    }
    let limit = (size_gib * (1u64 << 30) as f64) as u64;
    // Headers, lead and cpio framing take a few KiB; 1 MiB of slack keeps the
    // whole file at or under `limit`.
    let content = limit - (1 << 20);
    if content > u32::MAX as u64 {
        bail!("files over 4 GiB need RPM large-file tags; keep --big-size-gib below 4");
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    // A sparse file of zeros: no disk used, reads cost only the copy.
    let src = tempfile::Builder::new()
        .prefix(".genrpms-big-")
        .tempfile_in(dir)?;
    src.as_file().set_len(content)?;
    let started = Instant::now();
    let pkg = PackageBuilder::new(
        "bench-big",
        "1.0",
        "Apache-2.0",
        "x86_64",
        "One very large synthetic package for the Forklift upload memory test",
    )
    .release("1")
    .description("A single large data file, stored uncompressed.")
    .build_host("bench.example.invalid")
    .using_config(BuildConfig::v4().compression(CompressionType::None))
    .with_file(
        src.path(),
        FileOptions::new("/usr/share/bench-big/blob.bin").permissions(0o644),
    )?
    .with_file_contents(
        "#!/bin/sh\nexit 0\n",
        FileOptions::new("/usr/bin/bench-big").permissions(0o755),
    )?
    .with_file_contents(
        "size = big\n",
        FileOptions::new("/etc/bench-big.conf")
            .permissions(0o644)
            .config(),
    )?
    .requires(Dependency::any("/bin/sh"))
    .provides(Dependency::eq("bench-big-data", "1.0"))
    .add_changelog_entry(
        "Forklift Bench <bench@example.invalid> - 1.0-1",
        "- Big.",
        CHANGELOG_DATE,
    )
    .build()
    .context("building the big package")?;
    drop(src);
    pkg.write_file(path)
        .with_context(|| format!("writing {}", path.display()))?;
    let size = std::fs::metadata(path)?.len();
    if size > limit {
        bail!(
            "{} is {size} bytes, over the {limit} byte bound",
            path.display()
        );
    }
    eprintln!(
        "wrote {} ({size} bytes) in {:.1}s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
