//! apt repository metadata rendering: pure functions over plain structs.
//!
//! Each package's Packages stanza is rendered once at upload; a channel
//! revision's `Packages` file per architecture is the concatenation of its
//! packages' stanzas, compressed and hashed, and the suite's `Release` lists
//! every index file (see shared/docs/formats.md §2 and §3).

use std::fmt::Write as _;
use std::io::Write as _;

use sha2::{Digest, Sha256, Sha512};

use super::deb::DebInfo;
use super::gzchain::{self, Chunk};

/// The field order `apt-ftparchive packages` (apt 2.6, `apt-pkg/tagfile-order.c`)
/// writes, matched against its real output. Fields not listed here follow
/// `Task` in their control-file order.
pub const PACKAGES_FIELD_ORDER: &[&str] = &[
    "Package",
    "Package-Type",
    "Architecture",
    "Subarchitecture",
    "Version",
    "Kernel-Version",
    "Built-Using",
    "Static-Built-Using",
    "Built-For-Profiles",
    "Auto-Built-Package",
    "Multi-Arch",
    "Priority",
    "Build-Essential",
    "Protected",
    "Important",
    "Essential",
    "Installer-Menu-Item",
    "Section",
    "Source",
    "Origin",
    "Phased-Update-Percentage",
    "Maintainer",
    "Original-Maintainer",
    "Bugs",
    "Config-Version",
    "Conffiles",
    "Triggers-Awaited",
    "Triggers-Pending",
    "Installed-Size",
    "Provides",
    "Pre-Depends",
    "Depends",
    "Recommends",
    "Suggests",
    "Conflicts",
    "Breaks",
    "Replaces",
    "Enhances",
    "Filename",
    "MSDOS-Filename",
    "Size",
    "MD5sum",
    "SHA1",
    "SHA256",
    "SHA512",
    "Homepage",
    "Description",
    "Description-md5",
    "Tag",
    "Task",
];

/// Control fields apt-ftparchive never copies: `Status` (dpkg-internal) and the
/// file facts it computes itself.
const REPLACED_OR_DROPPED: &[&str] = &[
    "Status", "Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512",
];

/// What the store knows about a .deb that its control file does not.
#[derive(Debug, Clone)]
pub struct DebFileFacts<'a> {
    /// Path relative to the repository root, e.g. the [`DebInfo::pool_path`].
    pub filename: &'a str,
    pub size: u64,
    pub md5: &'a str,
    pub sha1: &'a str,
    pub sha256: &'a str,
    pub sha512: &'a str,
}

fn push_field(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push(':');
    if !value.is_empty() && !value.starts_with('\n') {
        out.push(' ');
    }
    out.push_str(value);
    out.push('\n');
}

/// One Packages stanza (no trailing blank line), fields ordered like apt-ftparchive: Package first, then the control fields in apt-ftparchive's canonical order ([`PACKAGES_FIELD_ORDER`]), with Filename, Size and the hashes from `f`, then control fields apt does not know in file order. Known fields get apt's spelling (`package:` → `Package:`), unknown ones keep the file's. `Status` is dropped, as apt-ftparchive does. Ends with "\n".
pub fn render_stanza(info: &DebInfo, f: &DebFileFacts) -> String {
    let mut out = String::with_capacity(1024);
    let size = f.size.to_string();
    for &name in PACKAGES_FIELD_ORDER {
        let value = match name {
            "Package" => Some(info.package.as_str()),
            "Version" => Some(info.version.as_str()),
            "Architecture" => Some(info.architecture.as_str()),
            "Filename" => Some(f.filename),
            "Size" => Some(size.as_str()),
            "MD5sum" => Some(f.md5),
            "SHA1" => Some(f.sha1),
            "SHA256" => Some(f.sha256),
            "SHA512" => Some(f.sha512),
            _ => info.field(name),
        };
        if let Some(value) = value {
            push_field(&mut out, name, value);
        }
    }
    for (name, value) in &info.fields {
        let known = |list: &[&str]| list.iter().any(|k| k.eq_ignore_ascii_case(name));
        if !known(PACKAGES_FIELD_ORDER) && !known(REPLACED_OR_DROPPED) {
            push_field(&mut out, name, value);
        }
    }
    out
}

/// One file under `dists/<suite>/`, with its content and digests.
#[derive(Debug, Clone)]
pub struct IndexFile {
    /// Relative to `dists/<suite>/`, e.g. "main/binary-amd64/Packages.xz".
    pub path: String,
    pub bytes: Vec<u8>,
    pub sha256: String,
    pub sha512: String,
}

impl IndexFile {
    /// Hashes `bytes` and wraps them.
    pub fn new(path: String, bytes: Vec<u8>) -> IndexFile {
        IndexFile {
            sha256: hex::encode(Sha256::digest(&bytes)),
            sha512: hex::encode(Sha512::digest(&bytes)),
            path,
            bytes,
        }
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// gzip level for Packages.gz (apt prefers .xz, so .gz is rarely fetched).
const GZIP_LEVEL: u32 = 6;
/// xz preset for Packages.xz: xz's default, about 0.3 s per MB of Packages
/// (~1,500 stanzas); preset 1 is 5x faster but 20% larger.
const XZ_PRESET: u32 = 6;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    // mtime 0 and no file name keep output a pure function of the input.
    let mut enc = flate2::GzBuilder::new().mtime(0).write(
        Vec::with_capacity(bytes.len() / 4 + 64),
        flate2::Compression::new(GZIP_LEVEL),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

fn xz(bytes: &[u8]) -> Vec<u8> {
    // Single-threaded with the default CRC64 check: deterministic.
    let mut enc =
        liblzma::write::XzEncoder::new(Vec::with_capacity(bytes.len() / 5 + 64), XZ_PRESET);
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// Replaces line breaks and other control characters with spaces and trims, so
/// a configured value can never add a line or end one in whitespace.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// Packages, Packages.gz, Packages.xz for one architecture from stanzas (each
/// followed by a blank line, as apt-ftparchive writes them; no stanzas give an
/// empty file), plus the per-component "main/binary-<arch>/Release" with dak's
/// fields (Archive, Origin, Label, Acquire-By-Hash, Component, Architecture).
/// gzip -6 and xz -6, both deterministic (gzip mtime 0).
pub fn render_arch_indexes(
    suite: &str,
    component: &str,
    arch: &str,
    origin: &str,
    label: &str,
    stanzas: &[&str],
) -> Vec<IndexFile> {
    let dir = format!("{component}/binary-{arch}");
    let mut packages = String::with_capacity(stanzas.iter().map(|s| s.len() + 2).sum());
    for stanza in stanzas {
        packages.push_str(stanza);
        if !stanza.ends_with('\n') {
            packages.push('\n');
        }
        packages.push('\n');
    }
    let packages = packages.into_bytes();
    let gz = gzip(&packages);
    let xz = xz(&packages);

    let release = component_release(suite, component, arch, origin, label);

    vec![
        IndexFile::new(format!("{dir}/Packages"), packages),
        IndexFile::new(format!("{dir}/Packages.gz"), gz),
        IndexFile::new(format!("{dir}/Packages.xz"), xz),
        IndexFile::new(format!("{dir}/Release"), release.into_bytes()),
    ]
}

/// A stanza as it appears in Packages: with the blank line that ends it.
pub fn stanza_text(stanza: &str) -> String {
    let mut text = String::with_capacity(stanza.len() + 2);
    text.push_str(stanza);
    if !stanza.ends_with('\n') {
        text.push('\n');
    }
    text.push('\n');
    text
}

/// The Packages.gz chunk of a block of consecutive stanzas (texts from
/// [`stanza_text`]), compressed against the block before it (empty for the
/// first): see [`super::gzchain`]. Only blocks that changed, or whose
/// predecessor did, are compressed again when a suite changes.
pub fn stanza_block_chunk(block: &[&str], prev: &[&str]) -> Chunk {
    gzchain::chunk(block.concat().as_bytes(), prev.concat().as_bytes())
}

/// The per-component Release of one architecture's index directory.
fn component_release(
    suite: &str,
    component: &str,
    arch: &str,
    origin: &str,
    label: &str,
) -> String {
    let mut release = String::new();
    for (name, value) in [
        ("Archive", suite),
        ("Origin", origin),
        ("Label", label),
        ("Acquire-By-Hash", "yes"),
        ("Component", component),
        ("Architecture", arch),
    ] {
        let value = one_line(value);
        if !value.is_empty() {
            let _ = writeln!(release, "{name}: {value}");
        }
    }
    release
}

/// An architecture's indexes assembled from its stanzas' texts and the chunks
/// of their blocks (made by [`stanza_block_chunk`], in order, each with the
/// block before it):
/// `Packages` (apt checks the decompressed index against its Release entry),
/// `Packages.gz` (one gzip stream decompressing to exactly `Packages`) and
/// the per-component Release. No `.xz`: every apt reads gzip, and xz would
/// mean compressing the whole suite on every change.
pub fn assemble_arch_indexes(
    suite: &str,
    component: &str,
    arch: &str,
    origin: &str,
    label: &str,
    stanzas: &[&str],
    chunks: &[&Chunk],
) -> Vec<IndexFile> {
    let dir = format!("{component}/binary-{arch}");
    let mut plain = Vec::with_capacity(stanzas.iter().map(|t| t.len()).sum());
    for text in stanzas {
        plain.extend_from_slice(text.as_bytes());
    }
    let gz = gzchain::assemble(chunks.iter().copied());
    vec![
        IndexFile::new(format!("{dir}/Packages"), plain),
        IndexFile::new(format!("{dir}/Packages.gz"), gz),
        IndexFile::new(
            format!("{dir}/Release"),
            component_release(suite, component, arch, origin, label).into_bytes(),
        ),
    ]
}

/// What the suite's Release file says about itself.
#[derive(Debug, Clone)]
pub struct ReleaseMeta {
    pub origin: String,
    pub label: String,
    pub suite: String,
    pub codename: String,
    /// Unix seconds.
    pub date: i64,
    /// Unix seconds.
    pub valid_until: Option<i64>,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    pub description: String,
}

/// RFC 2822 date in UTC the way dak writes it: "Sun, 22 Nov 2026 03:18:19 UTC".
pub fn release_date(unix_secs: i64) -> String {
    chrono::DateTime::from_timestamp(unix_secs, 0)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S UTC")
        .to_string()
}

/// The dists/<suite>/Release text: Origin, Label, Suite, Codename, Date (RFC 2822 UTC, "Sun, 22 Nov 2026 03:18:19 UTC"), optional Valid-Until, Acquire-By-Hash: yes, Architectures, Components, Description, then SHA256: and SHA512: blocks listing every IndexFile (" <hex> <size right-aligned like apt-ftparchive> <path>"). NO line may end in whitespace (rPGP clearsign bug): empty fields are left out, control characters in values become spaces.
pub fn render_release(meta: &ReleaseMeta, files: &[IndexFile]) -> String {
    let mut out = String::with_capacity(512 + files.len() * 250);
    let date = release_date(meta.date);
    let valid_until = meta.valid_until.map(release_date).unwrap_or_default();
    let architectures = meta.architectures.join(" ");
    let components = meta.components.join(" ");
    for (name, value) in [
        ("Origin", meta.origin.as_str()),
        ("Label", meta.label.as_str()),
        ("Suite", meta.suite.as_str()),
        ("Codename", meta.codename.as_str()),
        ("Date", date.as_str()),
        ("Valid-Until", valid_until.as_str()),
        ("Acquire-By-Hash", "yes"),
        ("Architectures", architectures.as_str()),
        ("Components", components.as_str()),
        ("Description", meta.description.as_str()),
    ] {
        let value = one_line(value);
        if !value.is_empty() {
            let _ = writeln!(out, "{name}: {value}");
        }
    }
    type HashOf = fn(&IndexFile) -> &str;
    let blocks: [(&str, HashOf); 2] = [("SHA256", |f| &f.sha256), ("SHA512", |f| &f.sha512)];
    for (title, hash) in blocks {
        let _ = writeln!(out, "{title}:");
        for f in files {
            // apt-ftparchive: setw(16) right-aligned size.
            let _ = writeln!(out, " {} {:>16} {}", hash(f), f.size(), one_line(&f.path));
        }
    }
    out
}

/// by-hash paths for an index file: "main/binary-amd64/by-hash/SHA256/<hex>" and ".../SHA512/<hex>".
pub fn by_hash_paths(f: &IndexFile) -> Vec<String> {
    let dir = match f.path.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/"),
        None => String::new(),
    };
    vec![
        format!("{dir}by-hash/SHA256/{}", f.sha256),
        format!("{dir}by-hash/SHA512/{}", f.sha512),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::deb::{read_deb, tests as deb_tests};
    use std::io::Read as _;

    fn facts<'a>(filename: &'a str) -> DebFileFacts<'a> {
        DebFileFacts {
            filename,
            size: 968,
            md5: "m5",
            sha1: "s1",
            sha256: "s256",
            sha512: "s512",
        }
    }

    fn hello() -> DebInfo {
        let bytes = deb_tests::deb_with(
            "control.tar",
            &deb_tests::control_tar(deb_tests::HELLO_CONTROL),
        );
        read_deb(std::io::Cursor::new(bytes)).expect("hello deb")
    }

    #[test]
    fn stanza_matches_apt_ftparchive_order() {
        let info = hello();
        let stanza = render_stanza(&info, &facts(&info.pool_path()));
        assert_eq!(
            stanza,
            "Package: hello-demo\n\
Architecture: amd64\n\
Version: 1:1.2.3-4\n\
Priority: optional\n\
Section: utils\n\
Maintainer: Jane Doe <jane@example.com>\n\
Installed-Size: 12\n\
Depends: bash (>= 4.0), libc6 | musl\n\
Filename: pool/main/h/hello-demo/hello-demo_1.2.3-4_amd64.deb\n\
Size: 968\n\
MD5sum: m5\n\
SHA1: s1\n\
SHA256: s256\n\
SHA512: s512\n\
Homepage: https://example.com/hello\n\
Description: Demo package for formats\n \
A demo package.\n \
.\n \
Second paragraph.\n"
        );
    }

    #[test]
    fn stanza_unknown_dropped_and_odd_fields() {
        let fields = [
            ("x-zeta", "z"),
            ("Status", "install ok installed"),
            ("package", "p1"),
            ("Size", "1"),
            ("md5SUM", "old"),
            ("Conffiles", "\n /etc/a 1234"),
            ("Depends", ""),
            ("Description", "d"),
            ("Source", "src (1.0)"),
            ("Multi-Arch", "foreign"),
            ("X-Alpha", "a"),
            ("Version", "1.0"),
            ("Architecture", "all"),
        ];
        let info = DebInfo {
            package: "p1".into(),
            version: "1.0".into(),
            architecture: "all".into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        // Checked against `apt-ftparchive packages` (apt 2.6.2) on the same control.
        assert_eq!(
            render_stanza(&info, &facts("pool/main/s/src/p1_1.0_all.deb")),
            "Package: p1\n\
Architecture: all\n\
Version: 1.0\n\
Multi-Arch: foreign\n\
Source: src (1.0)\n\
Conffiles:\n /etc/a 1234\n\
Depends:\n\
Filename: pool/main/s/src/p1_1.0_all.deb\n\
Size: 968\n\
MD5sum: m5\n\
SHA1: s1\n\
SHA256: s256\n\
SHA512: s512\n\
Description: d\n\
x-zeta: z\n\
X-Alpha: a\n"
        );
    }

    fn gunzip(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    }

    fn unxz(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        liblzma::read::XzDecoder::new(b)
            .read_to_end(&mut out)
            .expect("unxz");
        out
    }

    fn indexes() -> Vec<IndexFile> {
        let info = hello();
        let a = render_stanza(&info, &facts("pool/a.deb"));
        let b = render_stanza(&info, &facts("pool/b.deb"));
        render_arch_indexes("stable", "main", "amd64", "Forklift", "Forklift", &[&a, &b])
    }

    #[test]
    fn arch_indexes_compress_and_hash() {
        let files = indexes();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "main/binary-amd64/Packages",
                "main/binary-amd64/Packages.gz",
                "main/binary-amd64/Packages.xz",
                "main/binary-amd64/Release"
            ]
        );
        let plain = &files[0].bytes;
        let text = std::str::from_utf8(plain).expect("utf8");
        assert_eq!(text.matches("Package: hello-demo\n").count(), 2);
        assert!(text.contains("Second paragraph.\n\nPackage: hello-demo\n"));
        assert!(text.ends_with("Second paragraph.\n\n"));
        assert_eq!(&gunzip(&files[1].bytes), plain);
        assert_eq!(&unxz(&files[2].bytes), plain);
        // gzip header: mtime 0, no name.
        assert_eq!(&files[1].bytes[3..8], &[0, 0, 0, 0, 0]);
        assert_eq!(
            std::str::from_utf8(&files[3].bytes).expect("utf8"),
            "Archive: stable\nOrigin: Forklift\nLabel: Forklift\nAcquire-By-Hash: yes\nComponent: main\nArchitecture: amd64\n"
        );
        for f in &files {
            assert_eq!(f.sha256, hex::encode(Sha256::digest(&f.bytes)));
            assert_eq!(f.sha512, hex::encode(Sha512::digest(&f.bytes)));
        }
        let empty = render_arch_indexes("s", "main", "arm64", "O", "L", &[]);
        assert!(empty[0].bytes.is_empty());
        assert!(gunzip(&empty[1].bytes).is_empty());
        assert!(unxz(&empty[2].bytes).is_empty());
    }

    #[test]
    fn indexes_are_deterministic() {
        let a = indexes();
        let b = indexes();
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.bytes, y.bytes, "{}", x.path);
        }
        let meta = meta();
        assert_eq!(render_release(&meta, &a), render_release(&meta, &b));
    }

    fn meta() -> ReleaseMeta {
        ReleaseMeta {
            origin: "Forklift".into(),
            label: "Forklift".into(),
            suite: "stable".into(),
            codename: "stable".into(),
            date: 1_795_317_499,
            valid_until: Some(1_795_317_499 + 7 * 86400),
            architectures: vec!["amd64".into(), "arm64".into()],
            components: vec!["main".into()],
            description: "Forklift channel stable".into(),
        }
    }

    #[test]
    fn release_lists_every_file() {
        let files = indexes();
        let release = render_release(&meta(), &files);
        let head = "Origin: Forklift\n\
Label: Forklift\n\
Suite: stable\n\
Codename: stable\n\
Date: Sun, 22 Nov 2026 03:18:19 UTC\n\
Valid-Until: Sun, 29 Nov 2026 03:18:19 UTC\n\
Acquire-By-Hash: yes\n\
Architectures: amd64 arm64\n\
Components: main\n\
Description: Forklift channel stable\n\
SHA256:\n";
        assert!(release.starts_with(head), "{release}");
        let lines: Vec<&str> = release.lines().collect();
        let sha256_at = lines.iter().position(|l| *l == "SHA256:").expect("SHA256");
        let sha512_at = lines.iter().position(|l| *l == "SHA512:").expect("SHA512");
        assert_eq!(sha512_at - sha256_at, files.len() + 1);
        assert_eq!(lines.len(), sha512_at + 1 + files.len());
        for (i, f) in files.iter().enumerate() {
            for (at, hash) in [(sha256_at, &f.sha256), (sha512_at, &f.sha512)] {
                let line = lines[at + 1 + i];
                let parts: Vec<&str> = line.split_whitespace().collect();
                assert_eq!(
                    parts,
                    [hash.as_str(), &f.size().to_string(), f.path.as_str()]
                );
                // " <hash> " then the size right-aligned in 16 columns.
                assert_eq!(line.len(), 1 + hash.len() + 1 + 16 + 1 + f.path.len());
            }
        }
        assert!(release.contains(&format!(
            " {} {:>16} main/binary-amd64/Packages.xz\n",
            files[2].sha256,
            files[2].bytes.len()
        )));
    }

    #[test]
    fn release_has_no_trailing_whitespace() {
        let files = indexes();
        let mut m = meta();
        let check = |text: &str| {
            for line in text.split('\n') {
                assert_eq!(line, line.trim_end(), "trailing whitespace in {line:?}");
            }
            assert!(text.ends_with('\n'));
        };
        check(&render_release(&m, &files));
        m.description = String::new();
        m.valid_until = None;
        m.label = " Forklift \n".into();
        m.architectures.clear();
        let release = render_release(&m, &files);
        check(&release);
        assert!(!release.contains("Description"));
        assert!(!release.contains("Valid-Until"));
        assert!(!release.contains("Architectures"));
        assert!(release.contains("Label: Forklift\nSuite"));
        check(&render_release(&m, &[]));
        for f in &files {
            if f.path.ends_with("Release") {
                check(std::str::from_utf8(&f.bytes).expect("utf8"));
            }
        }
    }

    #[test]
    fn by_hash_layout() {
        let files = indexes();
        assert_eq!(
            by_hash_paths(&files[2]),
            [
                format!("main/binary-amd64/by-hash/SHA256/{}", files[2].sha256),
                format!("main/binary-amd64/by-hash/SHA512/{}", files[2].sha512),
            ]
        );
        let top = IndexFile::new("Packages".into(), Vec::new());
        assert_eq!(
            by_hash_paths(&top)[0],
            format!("by-hash/SHA256/{}", top.sha256)
        );
    }

    /// Renders the fixtures' stanzas and compares them with what `apt-ftparchive
    /// packages fixtures/debs` wrote (fixtures/debs/build.sh), byte for byte.
    #[test]
    fn packages_match_apt_ftparchive_on_fixtures() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/debs");
        let Ok(expected) = std::fs::read_to_string(dir.join("Packages.apt-ftparchive")) else {
            return;
        };
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("fixtures/debs")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".deb"))
            .collect();
        names.sort();
        let mut stanzas = Vec::new();
        for name in &names {
            let bytes = std::fs::read(dir.join(name)).expect("read fixture");
            let info = read_deb(bytes.as_slice()).expect("parse fixture");
            let filename = format!("fixtures/debs/{name}");
            let (md5, sha1) = (
                hex::encode(md5::Md5::digest(&bytes)),
                hex::encode(sha1::Sha1::digest(&bytes)),
            );
            let (sha256, sha512) = (
                hex::encode(Sha256::digest(&bytes)),
                hex::encode(Sha512::digest(&bytes)),
            );
            stanzas.push(render_stanza(
                &info,
                &DebFileFacts {
                    filename: &filename,
                    size: bytes.len() as u64,
                    md5: &md5,
                    sha1: &sha1,
                    sha256: &sha256,
                    sha512: &sha512,
                },
            ));
        }
        let refs: Vec<&str> = stanzas.iter().map(String::as_str).collect();
        let files = render_arch_indexes("stable", "main", "amd64", "O", "L", &refs);
        assert_eq!(
            std::str::from_utf8(&files[0].bytes).expect("utf8"),
            expected
        );
    }

    proptest::proptest! {
        /// Packages.gz assembled from chunks decompresses to the from-scratch Packages.
        #[test]
        fn assembled_packages_equal_from_scratch(
            stanzas in proptest::collection::vec("Package: [a-z]{1,8}\nVersion: [0-9.]{1,6}\n(Description: \\PC{0,60}\n)?", 0..10),
            cuts in proptest::collection::vec(0usize..10, 0..10),
        ) {
            let refs: Vec<&str> = stanzas.iter().map(String::as_str).collect();
            let scratch = render_arch_indexes("s", "main", "amd64", "O", "L", &refs);
            let texts: Vec<String> = refs.iter().map(|s| stanza_text(s)).collect();
            let all: Vec<&str> = texts.iter().map(String::as_str).collect();
            let blocks: Vec<&[&str]> = super::gzchain::cut_blocks(&all, &cuts);
            let chunks: Vec<Chunk> = blocks
                .iter()
                .enumerate()
                .map(|(i, b)| stanza_block_chunk(b, if i == 0 { &[] } else { blocks[i - 1] }))
                .collect();
            let refs: Vec<&Chunk> = chunks.iter().collect();
            let assembled = assemble_arch_indexes("s", "main", "amd64", "O", "L", &all, &refs);
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(assembled[1].bytes.as_slice())
                .read_to_end(&mut out)
                .expect("gunzip");
            proptest::prop_assert_eq!(&out, &scratch[0].bytes);
            proptest::prop_assert_eq!(&assembled[0].bytes, &scratch[0].bytes);
            proptest::prop_assert_eq!(&assembled[1].path, "main/binary-amd64/Packages.gz");
            proptest::prop_assert_eq!(&assembled[2].bytes, &scratch[3].bytes);
            proptest::prop_assert_eq!(&assembled[1].sha256, &hex::encode(Sha256::digest(&assembled[1].bytes)));
        }
    }

    #[test]
    fn release_dates() {
        assert_eq!(release_date(0), "Thu, 01 Jan 1970 00:00:00 UTC");
        assert_eq!(release_date(1_772_409_600), "Mon, 02 Mar 2026 00:00:00 UTC");
    }
}
