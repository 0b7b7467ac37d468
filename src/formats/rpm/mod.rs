//! RPM header reading: a pure function from an RPM file to the plain struct that
//! yum metadata needs. No database, no HTTP.
//!
//! Field sources follow createrepo_c's `parsehdr.c` (see shared/docs/formats.md) so
//! that dnf sees the same repository from us as from a createrepo_c run.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufReader, Read, Seek, SeekFrom};

use rpm::{IndexSignatureTag, IndexTag, PackageMetadata};

mod check;
mod depends;
mod files;
mod text;
mod verify;

use depends::*;
pub use files::is_primary_file;
use files::*;
pub use text::decode_text;
use text::*;
use verify::*;

/// Magic bytes at the start of every RPM lead.
pub const RPM_MAGIC: [u8; 4] = [0xed, 0xab, 0xee, 0xdb];

/// RPMSENSE bits used by createrepo_c.
const RPMSENSE_SENSEMASK: u32 = 0x0f;
const RPMSENSE_PREREQ: u32 = 1 << 6;
const RPMSENSE_PRETRANS: u32 = 1 << 7;
const RPMSENSE_POSTTRANS: u32 = 1 << 5;
const RPMSENSE_SCRIPT_PRE: u32 = 1 << 9;
const RPMSENSE_SCRIPT_POST: u32 = 1 << 10;
const RPMFILE_GHOST: u32 = 1 << 6;
const S_IFMT: u16 = 0o170000;
const S_IFDIR: u16 = 0o040000;
/// createrepo_c keeps this many changelog entries by default.
pub const CHANGELOG_LIMIT: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum RpmError {
    #[error("not an RPM file (bad lead magic)")]
    NotRpm,
    #[error("malformed RPM: {0}")]
    Malformed(String),
    #[error("RPM payload digest mismatch: header says {expected}, payload hashes to {actual}")]
    PayloadDigest { expected: String, actual: String },
    #[error("RPM header digest mismatch")]
    HeaderDigest,
    #[error("I/O error reading RPM: {0}")]
    Io(#[from] io::Error),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dep {
    pub name: String,
    /// LT, GT, EQ, LE, GE or None.
    pub flags: Option<&'static str>,
    pub epoch: Option<String>,
    pub ver: Option<String>,
    pub rel: Option<String>,
    pub pre: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Ghost,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileItem {
    pub path: String,
    pub kind: FileKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changelog {
    pub author: String,
    pub date: u64,
    pub text: String,
}

/// Everything dnf's metadata needs about one RPM, except what only the store knows
/// (sha256, file size, upload time), which the caller adds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RpmInfo {
    pub name: String,
    pub epoch: u32,
    pub version: String,
    pub release: String,
    pub arch: String,
    pub summary: String,
    pub description: String,
    pub packager: String,
    pub url: String,
    pub license: String,
    pub vendor: String,
    pub group: String,
    pub buildhost: String,
    pub sourcerpm: String,
    pub build_time: u64,
    pub installed_size: u64,
    pub archive_size: u64,
    pub header_start: u64,
    pub header_end: u64,
    pub provides: Vec<Dep>,
    pub requires: Vec<Dep>,
    pub conflicts: Vec<Dep>,
    pub obsoletes: Vec<Dep>,
    pub recommends: Vec<Dep>,
    pub suggests: Vec<Dep>,
    pub supplements: Vec<Dep>,
    pub enhances: Vec<Dep>,
    pub files: Vec<FileItem>,
    /// Oldest first, at most [`CHANGELOG_LIMIT`] entries (the newest ones).
    pub changelog: Vec<Changelog>,
}

impl RpmInfo {
    /// `name-version-release.arch.rpm`, the name dnf and humans expect.
    pub fn canonical_filename(&self) -> String {
        format!(
            "{}-{}-{}.{}.rpm",
            self.name, self.version, self.release, self.arch
        )
    }
}

/// Reads and validates an RPM from a seekable reader (a temp file during upload).
///
/// Memory stays bounded by the header size: the payload is streamed through the
/// digest, never held.
///
/// Hostile input cannot hurt the process: the headers' structure is checked
/// before the rpm crate allocates anything ([`check::check_layout`]), and a
/// panic inside the crate becomes [`RpmError::Malformed`].
pub fn read_rpm<R: Read + Seek>(file: R) -> Result<RpmInfo, RpmError> {
    super::contain_panic(|| read_checked(file)).unwrap_or_else(|why| {
        Err(RpmError::Malformed(format!(
            "the RPM header could not be read ({why})"
        )))
    })
}

fn read_checked<R: Read + Seek>(mut file: R) -> Result<RpmInfo, RpmError> {
    let total_len = file.seek(SeekFrom::End(0))?;
    file.seek(SeekFrom::Start(0))?;
    let mut magic = [0u8; 4];
    if file.read_exact(&mut magic).is_err() || magic != RPM_MAGIC {
        return Err(RpmError::NotRpm);
    }
    let layout = check::check_layout(&mut file, total_len)?;
    file.seek(SeekFrom::Start(0))?;
    let meta = {
        let mut reader = BufReader::new(&mut file);
        PackageMetadata::parse(&mut reader).map_err(|e| RpmError::Malformed(e.to_string()))?
    };
    let offsets = meta.get_package_segment_offsets();
    if offsets.header != layout.header_start || offsets.payload != layout.payload_start {
        return Err(RpmError::Malformed("the header sizes do not add up".into()));
    }
    // Header digests (sha256/sha1 in the signature header) when present.
    let report = meta
        .check_digests()
        .map_err(|e| RpmError::Malformed(e.to_string()))?;
    if report.result().is_err() {
        return Err(RpmError::HeaderDigest);
    }
    verify_payload(&meta, &mut file, offsets.header, offsets.payload)?;
    // The rpm crate replaces non-UTF-8 bytes; old packages use ISO-8859-1, which
    // createrepo_c converts. Read the header's strings ourselves for that, from
    // the bytes the structural check already read.
    let strings = header_strings(&layout.main_header);
    let mut info = info_from_metadata(&meta, &strings, offsets.header, offsets.payload)?;
    apply_text_fixes(&mut info, &strings);
    Ok(info)
}

fn s(meta: &PackageMetadata, tag: IndexTag) -> String {
    match meta.header.get_entry_data_as_string(tag) {
        Ok(v) => v.to_string(),
        Err(_) => meta
            .header
            .get_entry_data_as_i18n_string(tag)
            .map(str::to_string)
            .unwrap_or_default(),
    }
}

fn u64_tag(meta: &PackageMetadata, tag: IndexTag) -> Option<u64> {
    meta.header
        .get_entry_data_as_u64(tag)
        .ok()
        .or_else(|| meta.header.get_entry_data_as_u32(tag).ok().map(u64::from))
}

fn sig_u64(meta: &PackageMetadata, tag: IndexSignatureTag) -> Option<u64> {
    meta.signature.get_entry_data_as_u64(tag).ok().or_else(|| {
        meta.signature
            .get_entry_data_as_u32(tag)
            .ok()
            .map(u64::from)
    })
}

fn info_from_metadata(
    meta: &PackageMetadata,
    strings: &HashMap<u32, Vec<String>>,
    header_start: u64,
    header_end: u64,
) -> Result<RpmInfo, RpmError> {
    let bad = |e: rpm::Error| RpmError::Malformed(e.to_string());
    let name = meta.get_name().map_err(bad)?.to_string();
    let version = meta.get_version().map_err(bad)?.to_string();
    let release = meta.get_release().map_err(bad)?.to_string();
    if name.is_empty() || version.is_empty() || release.is_empty() {
        return Err(RpmError::Malformed(
            "name, version or release is empty".into(),
        ));
    }
    let is_source = meta.is_source_package();
    let arch = if is_source {
        "src".to_string()
    } else {
        meta.get_arch().map_err(bad)?.to_string()
    };
    for (field, value) in [
        ("name", &name),
        ("version", &version),
        ("release", &release),
        ("arch", &arch),
    ] {
        if value.contains('/') || value.chars().any(char::is_whitespace) || value == ".." {
            return Err(RpmError::Malformed(format!(
                "{field} {value:?} is not a valid RPM {field}"
            )));
        }
    }
    let epoch = meta.get_epoch().unwrap_or(0);
    if epoch > i32::MAX as u32 {
        return Err(RpmError::Malformed(format!(
            "epoch {epoch} is larger than rpm allows"
        )));
    }

    let files = read_files(meta, strings)?;
    let primary_files: HashSet<&str> = files
        .iter()
        .filter(|f| is_primary_file(&f.path))
        .map(|f| f.path.as_str())
        .collect();

    use IndexTag as T;
    let raw = |n: IndexTag, f: IndexTag, v: IndexTag| raw_deps(meta, strings, n, f, v);
    let provides = deps(raw(
        T::RPMTAG_PROVIDENAME,
        T::RPMTAG_PROVIDEFLAGS,
        T::RPMTAG_PROVIDEVERSION,
    ));
    let requires = filter_requires(
        raw(
            T::RPMTAG_REQUIRENAME,
            T::RPMTAG_REQUIREFLAGS,
            T::RPMTAG_REQUIREVERSION,
        ),
        &provides,
        &primary_files,
    );

    let archive_size = sig_u64(meta, IndexSignatureTag::RPMSIGTAG_LONGARCHIVESIZE)
        .or_else(|| sig_u64(meta, IndexSignatureTag::RPMSIGTAG_PAYLOADSIZE))
        .or_else(|| u64_tag(meta, IndexTag::RPMTAG_LONGARCHIVESIZE))
        .or_else(|| u64_tag(meta, IndexTag::RPMTAG_ARCHIVESIZE))
        .unwrap_or(0);

    let mut changelog: Vec<Changelog> = meta
        .get_changelog_entries()
        .unwrap_or_default()
        .into_iter()
        .take(CHANGELOG_LIMIT)
        .map(|c| Changelog {
            author: c.name,
            date: c.timestamp,
            text: c.description,
        })
        .collect();
    changelog.reverse();

    Ok(RpmInfo {
        name,
        epoch,
        version,
        release,
        arch,
        summary: s(meta, IndexTag::RPMTAG_SUMMARY),
        description: s(meta, IndexTag::RPMTAG_DESCRIPTION),
        packager: s(meta, IndexTag::RPMTAG_PACKAGER),
        url: s(meta, IndexTag::RPMTAG_URL),
        license: s(meta, IndexTag::RPMTAG_LICENSE),
        vendor: s(meta, IndexTag::RPMTAG_VENDOR),
        group: s(meta, IndexTag::RPMTAG_GROUP),
        buildhost: s(meta, IndexTag::RPMTAG_BUILDHOST),
        sourcerpm: s(meta, IndexTag::RPMTAG_SOURCERPM),
        build_time: meta.get_build_time().unwrap_or(0),
        installed_size: meta.get_installed_size().unwrap_or(0),
        archive_size,
        header_start,
        header_end,
        provides,
        requires,
        conflicts: deps(raw(
            T::RPMTAG_CONFLICTNAME,
            T::RPMTAG_CONFLICTFLAGS,
            T::RPMTAG_CONFLICTVERSION,
        )),
        obsoletes: deps(raw(
            T::RPMTAG_OBSOLETENAME,
            T::RPMTAG_OBSOLETEFLAGS,
            T::RPMTAG_OBSOLETEVERSION,
        )),
        recommends: deps(raw(
            T::RPMTAG_RECOMMENDNAME,
            T::RPMTAG_RECOMMENDFLAGS,
            T::RPMTAG_RECOMMENDVERSION,
        )),
        suggests: deps(raw(
            T::RPMTAG_SUGGESTNAME,
            T::RPMTAG_SUGGESTFLAGS,
            T::RPMTAG_SUGGESTVERSION,
        )),
        supplements: deps(raw(
            T::RPMTAG_SUPPLEMENTNAME,
            T::RPMTAG_SUPPLEMENTFLAGS,
            T::RPMTAG_SUPPLEMENTVERSION,
        )),
        enhances: deps(raw(
            T::RPMTAG_ENHANCENAME,
            T::RPMTAG_ENHANCEFLAGS,
            T::RPMTAG_ENHANCEVERSION,
        )),
        files,
        changelog,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evr_split_matches_createrepo_c() {
        assert_eq!(
            split_evr("1:2.0-3"),
            (Some("1".into()), Some("2.0".into()), Some("3".into()))
        );
        assert_eq!(
            split_evr("4.0"),
            (Some("0".into()), Some("4.0".into()), None)
        );
        assert_eq!(split_evr(""), (None, None, None));
        assert_eq!(
            split_evr("1.2-3-4"),
            (Some("0".into()), Some("1.2-3".into()), Some("4".into()))
        );
    }

    #[test]
    fn primary_file_rule() {
        assert!(is_primary_file("/etc/hello.conf"));
        assert!(is_primary_file("/usr/bin/hello"));
        assert!(is_primary_file("/opt/x/sbin/y"));
        assert!(is_primary_file("/usr/lib/sendmail"));
        assert!(!is_primary_file("/usr/share/doc/x"));
        assert!(!is_primary_file("/usr/lib/libx.so"));
    }

    #[test]
    fn flags_to_strings() {
        assert_eq!(flag_str(2), Some("LT"));
        assert_eq!(flag_str(12 | RPMSENSE_PREREQ), Some("GE"));
        assert_eq!(flag_str(0), None);
    }

    #[test]
    fn glibc_version_parsing() {
        assert_eq!(
            glibc_version("libc.so.6(GLIBC_2.34)(64bit)").as_deref(),
            Some("2.34")
        );
        assert_eq!(glibc_version("libc.so.6()(64bit)"), None);
    }

    #[test]
    fn latin1_is_decoded_like_createrepo_c() {
        assert_eq!(decode_text(b"Tom\xe1\xb9"), "Tom\u{e1}\u{b9}");
        assert_eq!(decode_text("Tomáš".as_bytes()), "Tomáš");
    }

    #[test]
    fn raw_header_strings() {
        // intro + 1 index entry (tag 1004 SUMMARY, STRING, offset 0, count 1) + store
        let mut h = vec![0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4];
        for v in [1004u32, 6, 0, 1] {
            h.extend_from_slice(&v.to_be_bytes());
        }
        h.extend_from_slice(b"\xe0b\0");
        let m = header_strings(&h);
        assert_eq!(m.get(&1004).map(|v| v[0].as_str()), Some("\u{e0}b"));
        assert!(header_strings(&h[..20]).is_empty());
    }

    #[test]
    fn not_an_rpm_is_refused() {
        let r = read_rpm(io::Cursor::new(
            b"hello world, definitely not an rpm".to_vec(),
        ));
        assert!(matches!(r, Err(RpmError::NotRpm)));
    }

    #[test]
    fn truncated_rpm_is_malformed() {
        let mut bytes = RPM_MAGIC.to_vec();
        bytes.extend_from_slice(&[0u8; 50]);
        let r = read_rpm(io::Cursor::new(bytes));
        assert!(
            matches!(r, Err(RpmError::Malformed(_)) | Err(RpmError::Io(_))),
            "{r:?}"
        );
    }
}
