//! rpm-md (yum/dnf) metadata rendering: pure functions over plain structs.
//!
//! Each package's three XML fragments are rendered once at upload; a channel
//! revision's metadata is the concatenation of its packages' fragments between a
//! fixed header and footer, compressed and hashed.

use std::fmt::Write as _;
use std::io::Write as _;

use sha2::{Digest, Sha256};

use super::gzchain::{self, chunk, Chunk};
use super::rpm::{Dep, FileKind, RpmInfo};

/// What the store knows about a package file that its header does not.
#[derive(Debug, Clone)]
pub struct FileFacts<'a> {
    pub sha256: &'a str,
    pub size: u64,
    /// Seconds since the epoch; createrepo_c uses the file's mtime, we use upload time.
    pub file_time: i64,
    /// href relative to the repository root.
    pub location: &'a str,
}

/// The three per-package XML fragments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fragments {
    pub primary: String,
    pub filelists: String,
    pub other: String,
}

/// Escapes text for XML and drops characters XML 1.0 cannot carry (control chars),
/// which real-world RPM descriptions sometimes contain.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

fn version_attrs(info: &RpmInfo) -> String {
    format!(
        r#"epoch="{}" ver="{}" rel="{}""#,
        info.epoch,
        esc(&info.version),
        esc(&info.release)
    )
}

fn write_deps(out: &mut String, tag: &str, deps: &[Dep]) {
    if deps.is_empty() {
        return;
    }
    let _ = writeln!(out, "    <rpm:{tag}>");
    for d in deps {
        let _ = write!(out, r#"      <rpm:entry name="{}""#, esc(&d.name));
        if let Some(f) = d.flags {
            let _ = write!(out, r#" flags="{f}""#);
        }
        if let Some(e) = &d.epoch {
            let _ = write!(out, r#" epoch="{}""#, esc(e));
        }
        if let Some(v) = &d.ver {
            let _ = write!(out, r#" ver="{}""#, esc(v));
        }
        if let Some(r) = &d.rel {
            let _ = write!(out, r#" rel="{}""#, esc(r));
        }
        if d.pre {
            out.push_str(r#" pre="1""#);
        }
        out.push_str("/>\n");
    }
    let _ = writeln!(out, "    </rpm:{tag}>");
}

fn write_file(out: &mut String, indent: &str, kind: FileKind, path: &str) {
    match kind {
        FileKind::Dir => {
            let _ = writeln!(out, r#"{indent}<file type="dir">{}</file>"#, esc(path));
        }
        FileKind::Ghost => {
            let _ = writeln!(out, r#"{indent}<file type="ghost">{}</file>"#, esc(path));
        }
        FileKind::File => {
            let _ = writeln!(out, "{indent}<file>{}</file>", esc(path));
        }
    }
}

/// Renders the primary, filelists and other fragments of one package.
pub fn render_fragments(info: &RpmInfo, file: &FileFacts<'_>) -> Fragments {
    let mut p = String::with_capacity(2048);
    p.push_str("<package type=\"rpm\">\n");
    let _ = writeln!(p, "  <name>{}</name>", esc(&info.name));
    let _ = writeln!(p, "  <arch>{}</arch>", esc(&info.arch));
    let _ = writeln!(p, "  <version {}/>", version_attrs(info));
    let _ = writeln!(
        p,
        r#"  <checksum type="sha256" pkgid="YES">{}</checksum>"#,
        file.sha256
    );
    let _ = writeln!(p, "  <summary>{}</summary>", esc(&info.summary));
    let _ = writeln!(p, "  <description>{}</description>", esc(&info.description));
    let _ = writeln!(p, "  <packager>{}</packager>", esc(&info.packager));
    let _ = writeln!(p, "  <url>{}</url>", esc(&info.url));
    let _ = writeln!(
        p,
        r#"  <time file="{}" build="{}"/>"#,
        file.file_time, info.build_time
    );
    let _ = writeln!(
        p,
        r#"  <size package="{}" installed="{}" archive="{}"/>"#,
        file.size, info.installed_size, info.archive_size
    );
    let _ = writeln!(p, r#"  <location href="{}"/>"#, esc(file.location));
    p.push_str("  <format>\n");
    let _ = writeln!(p, "    <rpm:license>{}</rpm:license>", esc(&info.license));
    let _ = writeln!(p, "    <rpm:vendor>{}</rpm:vendor>", esc(&info.vendor));
    let _ = writeln!(p, "    <rpm:group>{}</rpm:group>", esc(&info.group));
    let _ = writeln!(
        p,
        "    <rpm:buildhost>{}</rpm:buildhost>",
        esc(&info.buildhost)
    );
    let _ = writeln!(
        p,
        "    <rpm:sourcerpm>{}</rpm:sourcerpm>",
        esc(&info.sourcerpm)
    );
    let _ = writeln!(
        p,
        r#"    <rpm:header-range start="{}" end="{}"/>"#,
        info.header_start, info.header_end
    );
    write_deps(&mut p, "provides", &info.provides);
    write_deps(&mut p, "requires", &info.requires);
    write_deps(&mut p, "conflicts", &info.conflicts);
    write_deps(&mut p, "obsoletes", &info.obsoletes);
    write_deps(&mut p, "suggests", &info.suggests);
    write_deps(&mut p, "enhances", &info.enhances);
    write_deps(&mut p, "recommends", &info.recommends);
    write_deps(&mut p, "supplements", &info.supplements);
    for f in info
        .files
        .iter()
        .filter(|f| super::rpm::is_primary_file(&f.path))
    {
        write_file(&mut p, "    ", f.kind, &f.path);
    }
    p.push_str("  </format>\n</package>\n");

    let ident = format!(
        r#"pkgid="{}" name="{}" arch="{}""#,
        file.sha256,
        esc(&info.name),
        esc(&info.arch)
    );
    let mut fl = String::with_capacity(256 + 64 * info.files.len());
    let _ = writeln!(fl, "<package {ident}>");
    let _ = writeln!(fl, "  <version {}/>", version_attrs(info));
    for f in &info.files {
        write_file(&mut fl, "  ", f.kind, &f.path);
    }
    fl.push_str("</package>\n");

    let mut o = String::with_capacity(512);
    let _ = writeln!(o, "<package {ident}>");
    let _ = writeln!(o, "  <version {}/>", version_attrs(info));
    for c in &info.changelog {
        let _ = writeln!(
            o,
            r#"  <changelog author="{}" date="{}">{}</changelog>"#,
            esc(&c.author),
            c.date,
            esc(&c.text)
        );
    }
    o.push_str("</package>\n");

    Fragments {
        primary: p,
        filelists: fl,
        other: o,
    }
}

/// One rendered, compressed metadata file of a revision.
#[derive(Debug, Clone)]
pub struct DataFile {
    /// "primary", "filelists" or "other".
    pub kind: &'static str,
    /// Path relative to the repository root, e.g. `repodata/<sha>-primary.xml.gz`.
    pub path: String,
    pub bytes: Vec<u8>,
    pub sha256: String,
    /// Of the decompressed XML. Optional in repomd.xml (dnf does not need it):
    /// incremental assembly leaves it out so a publication never hashes the
    /// whole uncompressed channel.
    pub open_sha256: Option<String>,
    pub open_size: Option<u64>,
}

/// The complete metadata of one repository revision.
#[derive(Debug, Clone)]
pub struct Repodata {
    pub files: Vec<DataFile>,
    pub repomd: Vec<u8>,
}

const PRIMARY_HEAD: &str = r#"<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="{N}">"#;
const FILELISTS_HEAD: &str =
    r#"<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="{N}">"#;
const OTHER_HEAD: &str =
    r#"<otherdata xmlns="http://linux.duke.edu/metadata/other" packages="{N}">"#;

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    // mtime 0 keeps output a pure function of the input (byte-identical republishing).
    let mut enc = flate2::GzBuilder::new().mtime(0).write(
        Vec::with_capacity(bytes.len() / 4),
        flate2::Compression::new(6),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// The XML before the packages of a data file.
fn opening(head: &str, count: usize) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}\n",
        head.replace("{N}", &count.to_string())
    )
}

fn closing(tail: &str) -> String {
    format!("{tail}\n")
}

fn data_file<'a>(
    kind: &'static str,
    head: &str,
    tail: &str,
    count: usize,
    parts: impl Iterator<Item = &'a str>,
) -> DataFile {
    let mut xml = opening(head, count);
    for part in parts {
        xml.push_str(part);
    }
    xml.push_str(&closing(tail));
    let open_sha256 = sha256_hex(xml.as_bytes());
    let bytes = gzip(xml.as_bytes());
    let sha256 = sha256_hex(&bytes);
    DataFile {
        kind,
        path: format!("repodata/{sha256}-{kind}.xml.gz"),
        open_size: Some(xml.len() as u64),
        bytes,
        sha256,
        open_sha256: Some(open_sha256),
    }
}

/// One block of consecutive packages in the three data files, each file's
/// part compressed against that file's text of the block before it (see
/// [`super::gzchain`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunks {
    pub primary: Chunk,
    pub filelists: Chunk,
    pub other: Chunk,
}

/// The chunks of the packages `block` when the packages `prev` come right
/// before them in the data files (empty: the block is the first).
pub fn block_chunks(block: &[&Fragments], prev: &[&Fragments]) -> Chunks {
    fn text(list: &[&Fragments], part: fn(&Fragments) -> &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(list.iter().map(|f| part(f).len()).sum());
        for f in list {
            out.extend_from_slice(part(f).as_bytes());
        }
        out
    }
    let parts: [fn(&Fragments) -> &str; 3] = [|f| &f.primary, |f| &f.filelists, |f| &f.other];
    let [primary, filelists, other] =
        parts.map(|part| chunk(&text(block, part), &text(prev, part)));
    Chunks {
        primary,
        filelists,
        other,
    }
}

fn assembled_file<'a>(
    kind: &'static str,
    head: &str,
    tail: &str,
    count: usize,
    members: impl Iterator<Item = &'a Chunk>,
) -> DataFile {
    // The opening and the first package are compressed without a dictionary:
    // the opening holds the package count, which changes with every revision.
    let open = chunk(opening(head, count).as_bytes(), b"");
    let close = chunk(closing(tail).as_bytes(), b"");
    let mut parts: Vec<&Chunk> = vec![&open];
    for m in members {
        parts.push(m);
    }
    parts.push(&close);
    let bytes = gzchain::assemble(parts.iter().copied());
    let sha256 = sha256_hex(&bytes);
    DataFile {
        kind,
        path: format!("repodata/{sha256}-{kind}.xml.gz"),
        bytes,
        sha256,
        open_sha256: None,
        open_size: None,
    }
}

/// A revision's repodata assembled from the chunks of its `count` packages:
/// blocks in file order, each made by [`block_chunks`] with the block before
/// it in this same list. Concatenation and one SHA-256 per file; decompresses
/// to exactly what [`render_repodata`] writes for the same packages.
/// repomd.xml leaves out the open-* fields.
pub fn assemble_repodata(members: &[&Chunks], count: usize, timestamp: i64) -> Repodata {
    let n = count;
    let files = vec![
        assembled_file(
            "primary",
            PRIMARY_HEAD,
            "</metadata>",
            n,
            members.iter().map(|m| &m.primary),
        ),
        assembled_file(
            "filelists",
            FILELISTS_HEAD,
            "</filelists>",
            n,
            members.iter().map(|m| &m.filelists),
        ),
        assembled_file(
            "other",
            OTHER_HEAD,
            "</otherdata>",
            n,
            members.iter().map(|m| &m.other),
        ),
    ];
    let repomd = render_repomd(&files, timestamp);
    Repodata { files, repomd }
}

/// Renders a revision's repodata from its packages' fragments (already in the
/// order they should appear) and the revision's timestamp.
pub fn render_repodata(fragments: &[&Fragments], timestamp: i64) -> Repodata {
    let n = fragments.len();
    let files = vec![
        data_file(
            "primary",
            PRIMARY_HEAD,
            "</metadata>",
            n,
            fragments.iter().map(|f| f.primary.as_str()),
        ),
        data_file(
            "filelists",
            FILELISTS_HEAD,
            "</filelists>",
            n,
            fragments.iter().map(|f| f.filelists.as_str()),
        ),
        data_file(
            "other",
            OTHER_HEAD,
            "</otherdata>",
            n,
            fragments.iter().map(|f| f.other.as_str()),
        ),
    ];
    let repomd = render_repomd(&files, timestamp);
    Repodata { files, repomd }
}

pub fn render_repomd(files: &[DataFile], timestamp: i64) -> Vec<u8> {
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(r#"<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">"#);
    x.push('\n');
    let _ = writeln!(x, "  <revision>{timestamp}</revision>");
    for f in files {
        let _ = writeln!(x, r#"  <data type="{}">"#, f.kind);
        let _ = writeln!(x, r#"    <checksum type="sha256">{}</checksum>"#, f.sha256);
        if let Some(open) = &f.open_sha256 {
            let _ = writeln!(
                x,
                r#"    <open-checksum type="sha256">{open}</open-checksum>"#
            );
        }
        let _ = writeln!(x, r#"    <location href="{}"/>"#, f.path);
        let _ = writeln!(x, "    <timestamp>{timestamp}</timestamp>");
        let _ = writeln!(x, "    <size>{}</size>", f.bytes.len());
        if let Some(open_size) = f.open_size {
            let _ = writeln!(x, "    <open-size>{open_size}</open-size>");
        }
        x.push_str("  </data>\n");
    }
    x.push_str("</repomd>\n");
    x.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::rpm::{Changelog, FileItem};

    fn sample() -> RpmInfo {
        RpmInfo {
            name: "hello".into(),
            epoch: 1,
            version: "1.2".into(),
            release: "3".into(),
            arch: "x86_64".into(),
            summary: "Say <hi> & bye\u{1}".into(),
            requires: vec![Dep {
                name: "/bin/sh".into(),
                flags: None,
                epoch: None,
                ver: None,
                rel: None,
                pre: true,
            }],
            files: vec![
                FileItem {
                    path: "/etc/hello".into(),
                    kind: FileKind::Dir,
                },
                FileItem {
                    path: "/usr/bin/hello".into(),
                    kind: FileKind::File,
                },
                FileItem {
                    path: "/usr/share/doc/hello/README".into(),
                    kind: FileKind::File,
                },
                FileItem {
                    path: "/var/log/hello.log".into(),
                    kind: FileKind::Ghost,
                },
            ],
            changelog: vec![Changelog {
                author: "Jane <j@x>".into(),
                date: 5,
                text: "- a".into(),
            }],
            ..Default::default()
        }
    }

    fn facts() -> FileFacts<'static> {
        FileFacts {
            sha256: "ab",
            size: 10,
            file_time: 7,
            location: "Packages/ab/hello.rpm",
        }
    }

    #[test]
    fn primary_fragment_escapes_and_filters_files() {
        let f = render_fragments(&sample(), &facts());
        assert!(f
            .primary
            .contains("<summary>Say &lt;hi&gt; &amp; bye</summary>"));
        assert!(f.primary.contains(r#"<rpm:entry name="/bin/sh" pre="1"/>"#));
        assert!(f.primary.contains(r#"<file type="dir">/etc/hello</file>"#));
        assert!(f.primary.contains("<file>/usr/bin/hello</file>"));
        assert!(
            !f.primary.contains("README"),
            "non-primary file leaked into primary"
        );
        assert!(f.filelists.contains("README"));
        assert!(f
            .filelists
            .contains(r#"<file type="ghost">/var/log/hello.log</file>"#));
        assert!(f.other.contains(r#"author="Jane &lt;j@x&gt;" date="5""#));
        assert!(f
            .primary
            .contains(r#"<version epoch="1" ver="1.2" rel="3"/>"#));
    }

    #[test]
    fn repodata_checksums_and_names_match_content() {
        let f = render_fragments(&sample(), &facts());
        let r = render_repodata(&[&f], 100);
        assert_eq!(r.files.len(), 3);
        for d in &r.files {
            assert_eq!(d.sha256, sha256_hex(&d.bytes));
            assert!(d.path.contains(&d.sha256));
            let mut dec = flate2::read::GzDecoder::new(d.bytes.as_slice());
            let mut s = String::new();
            std::io::Read::read_to_string(&mut dec, &mut s).expect("valid gzip");
            assert_eq!(Some(sha256_hex(s.as_bytes())), d.open_sha256);
            assert!(s.contains(r#"packages="1""#));
        }
        let repomd = String::from_utf8(r.repomd.clone()).expect("utf8");
        assert!(repomd.contains("<revision>100</revision>"));
        assert!(repomd.contains(&r.files[0].path));
        // Deterministic: same input, same bytes.
        assert_eq!(render_repodata(&[&f], 100).repomd, r.repomd);
    }

    fn gunzip(b: &[u8]) -> String {
        // MultiGzDecoder: every member, as zlib's gzread does.
        let mut dec = flate2::read::MultiGzDecoder::new(b);
        let mut s = String::new();
        std::io::Read::read_to_string(&mut dec, &mut s).expect("valid gzip");
        s
    }

    proptest::proptest! {
        /// Incremental assembly decompresses to exactly the from-scratch rendering.
        #[test]
        fn assembled_equals_from_scratch(
            parts in proptest::collection::vec(
                ("\\PC{0,200}", "\\PC{0,200}", "\\PC{0,80}"), 0..12),
            cuts in proptest::collection::vec(0usize..12, 0..12),
            ts in 0i64..4_000_000_000,
        ) {
            let frags: Vec<Fragments> = parts
                .into_iter()
                .map(|(p, f, o)| Fragments { primary: p, filelists: f, other: o })
                .collect();
            // Cut into blocks at arbitrary points, as publication's boundaries fall.
            let all: Vec<&Fragments> = frags.iter().collect();
            let blocks: Vec<&[&Fragments]> = super::gzchain::cut_blocks(&all, &cuts);
            let chunks: Vec<Chunks> = blocks
                .iter()
                .enumerate()
                .map(|(i, b)| block_chunks(b, if i == 0 { &[] } else { blocks[i - 1] }))
                .collect();
            let assembled =
                assemble_repodata(&chunks.iter().collect::<Vec<_>>(), frags.len(), ts);
            let scratch = render_repodata(&frags.iter().collect::<Vec<_>>(), ts);
            for (a, s) in assembled.files.iter().zip(&scratch.files) {
                proptest::prop_assert_eq!(a.kind, s.kind);
                proptest::prop_assert_eq!(gunzip(&a.bytes), gunzip(&s.bytes));
                proptest::prop_assert_eq!(&a.sha256, &sha256_hex(&a.bytes));
                proptest::prop_assert!(a.path.contains(&a.sha256));
            }
            let repomd = String::from_utf8(assembled.repomd).expect("utf8");
            proptest::prop_assert!(!repomd.contains("open-checksum"));
            proptest::prop_assert!(repomd.contains(&assembled.files[0].path));
        }
    }

    #[test]
    fn empty_repository_is_valid() {
        let r = render_repodata(&[], 1);
        assert_eq!(r.files.len(), 3);
        assert!(String::from_utf8_lossy(&r.repomd).contains("primary"));
    }
}
