//! .deb reading: a pure function from a Debian binary package to the plain struct
//! that apt metadata needs. No database, no HTTP.
//!
//! A .deb is an `ar` archive whose members are, in order, `debian-binary` ("2.0\n"),
//! `control.tar[.gz|.xz|.zst]` and `data.tar[.*]` (see shared/docs/formats.md §2).
//! Only the first two are read; the data member's header is checked for presence
//! but its body is never read, so memory stays bounded by the control caps below
//! whatever the package size.

use std::io::{self, Read};

use super::rpm::decode_text;

/// Magic bytes at the start of every `ar` archive, and so of every .deb.
pub const AR_MAGIC: &[u8; 8] = b"!<arch>\n";
/// Largest decompressed control.tar accepted (a compression bomb stops here).
pub const MAX_CONTROL_TAR: u64 = 16 * 1024 * 1024;
/// Largest `./control` file accepted.
pub const MAX_CONTROL_FILE: u64 = 1024 * 1024;
/// xz decoder memory limit: enough for `xz -9e` (64 MiB dictionary).
const XZ_MEMLIMIT: u64 = 128 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error("not a Debian binary package (no ar magic or no debian-binary member)")]
    NotDeb,
    #[error("malformed .deb: {0}")]
    Malformed(String),
    #[error("the .deb has no control.tar member before its data member")]
    MissingControl,
    #[error("the .deb's control archive or control file is too large")]
    ControlTooLarge,
    #[error("the .deb's control file has no {0} field")]
    MissingField(&'static str),
    #[error("I/O error reading .deb: {0}")]
    Io(#[from] io::Error),
}

/// What apt metadata needs from one .deb, except what only the store knows
/// (size, hashes, pool path), which the caller adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebInfo {
    pub package: String,
    pub version: String,
    pub architecture: String,
    /// All control-file fields in file order; values exactly as in the file with
    /// continuation lines joined by "\n" and keeping their leading space (so a stanza
    /// can be re-emitted byte-faithfully), trailing whitespace of each line removed.
    /// The whitespace between the colon and the first line's text is not part of
    /// the value. A value whose first line is empty (e.g. `Conffiles:`) starts
    /// with "\n".
    pub fields: Vec<(String, String)>,
}

impl DebInfo {
    /// A control field's value by name, compared case-insensitively as dpkg does.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `{package}_{version without "epoch:"}_{architecture}.deb`, the name
    /// dpkg-buildpackage and dpkg-name give the file.
    pub fn canonical_filename(&self) -> String {
        format!(
            "{}_{}_{}.deb",
            self.package,
            strip_epoch(&self.version),
            self.architecture
        )
    }

    /// The source package name: the Source field without its " (version)" part,
    /// or the binary package name when there is no Source field.
    pub fn source_name(&self) -> &str {
        self.field("Source")
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or(&self.package)
    }

    /// `pool/main/{p}/{src}/{filename}` as Debian lays out its pool: `p` is the
    /// source name's first character, or "lib" plus its fourth character when the
    /// source name starts with "lib" (`pool/main/libf/libfoo/...`).
    pub fn pool_path(&self) -> String {
        let src = self.source_name();
        format!(
            "pool/main/{}/{}/{}",
            pool_prefix(src),
            src,
            self.canonical_filename()
        )
    }
}

/// `2:1.0-1` → `1.0-1`; versions without an epoch are returned unchanged.
pub fn strip_epoch(version: &str) -> &str {
    match version.split_once(':') {
        Some((_, rest)) => rest,
        None => version,
    }
}

/// Debian's pool directory prefix for a source package name.
pub fn pool_prefix(src: &str) -> &str {
    if src.starts_with("lib") && src.len() > 3 && src.is_char_boundary(4) {
        &src[..4]
    } else {
        match src.char_indices().nth(1) {
            Some((i, _)) => &src[..i],
            None => src,
        }
    }
}

/// `[a-z0-9][a-z0-9+.-]+`, Debian policy §5.6.1 (also used for Source names).
pub fn is_valid_package_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..].iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'+' | b'.' | b'-')
        })
}

/// A version as Debian policy §5.6.12 and dpkg's parser define it:
/// `[epoch:]upstream[-revision]`, the epoch decimal digits that fit dpkg's int,
/// the upstream version starting with a digit and made of alphanumerics and
/// `. + ~ -` (and `:` after an epoch), the revision of alphanumerics and `. + ~`.
/// So a version is always a valid URL path segment (no `#`, `?`, `%`, `/`).
pub fn is_valid_version(version: &str) -> bool {
    let (epoch, rest) = match version.split_once(':') {
        Some((e, r)) => (Some(e), r),
        None => (None, version),
    };
    if let Some(e) = epoch {
        if e.is_empty() || !e.bytes().all(|c| c.is_ascii_digit()) || e.parse::<i32>().is_err() {
            return false;
        }
    }
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((u, r)) => (u, Some(r)),
        None => (rest, None),
    };
    let upstream_ok = upstream.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && upstream.bytes().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, b'.' | b'+' | b'~' | b'-')
                || (c == b':' && epoch.is_some())
        });
    let revision_ok = revision.is_none_or(|r| {
        !r.is_empty()
            && r.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'~'))
    });
    upstream_ok && revision_ok
}

/// `[a-z0-9-]+`.
pub fn is_valid_architecture(arch: &str) -> bool {
    !arch.is_empty()
        && arch
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// A reader that fails once more than `limit` bytes have come through it, and
/// remembers that it did so.
struct CappedReader<R> {
    inner: R,
    remaining: u64,
    exceeded: bool,
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.exceeded {
            return Err(io::Error::other("size cap exceeded"));
        }
        // Ask for one byte more than allowed so that exceeding is detected.
        let want = buf
            .len()
            .min(self.remaining.saturating_add(1).min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.remaining {
            self.exceeded = true;
            return Err(io::Error::other("size cap exceeded"));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// One member header of an `ar` archive (60 bytes): its name and body size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArMember {
    pub name: String,
    pub size: u64,
}

/// Parses a 60-byte ar member header as dpkg writes it: a space-padded name
/// (GNU ar adds a trailing '/'), decimal size, and the "`\n" terminator.
/// Extended names (a GNU `//` table, `/N` references, BSD `#1/N`) are refused:
/// dpkg-deb never writes them, and they are where ar readers allocate sizes
/// taken from the file.
pub fn parse_ar_header(h: &[u8; 60]) -> Result<ArMember, DebError> {
    if &h[58..60] != b"`\n" {
        return Err(DebError::Malformed("bad ar member header".into()));
    }
    let raw = String::from_utf8_lossy(&h[..16]);
    let raw = raw.trim_end_matches(' ');
    if raw.starts_with('/') || raw.starts_with("#1/") {
        return Err(DebError::Malformed(format!(
            "ar member {raw:?} uses an extended name, which .deb files never do"
        )));
    }
    let name = raw.trim_end_matches('/').to_string();
    let size_text = std::str::from_utf8(&h[48..58])
        .unwrap_or("")
        .trim_end_matches(' ');
    let size = size_text
        .parse::<u64>()
        .ok()
        .filter(|_| !size_text.is_empty() && size_text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            DebError::Malformed(format!("ar member {name:?} has a bad size {size_text:?}"))
        })?;
    Ok(ArMember { name, size })
}

/// Reads the next member header, skipping whatever of the previous member's
/// body (and its padding byte) was not read. None at the end of the archive.
fn next_member<R: Read>(r: &mut R, skip: u64) -> Result<Option<ArMember>, DebError> {
    let skipped = io::copy(&mut r.by_ref().take(skip), &mut io::sink())?;
    if skipped != skip {
        return Err(DebError::Malformed("the ar archive is truncated".into()));
    }
    let mut h = [0u8; 60];
    match read_full(r, &mut h)? {
        0 => Ok(None),
        60 => parse_ar_header(&h).map(Some),
        _ => Err(DebError::Malformed("the ar archive is truncated".into())),
    }
}

/// Bytes to skip after reading `read` bytes of `m`'s body, to reach the next header.
fn rest_of(m: &ArMember, read: u64) -> u64 {
    m.size.saturating_sub(read) + m.size % 2
}

/// Streams the ar archive; reads only debian-binary and control.tar.{gz,xz,zst} (or uncompressed control.tar); never reads data.tar into memory.
/// Caps: decompressed control tar ≤ 16 MiB (else ControlTooLarge), ./control ≤ 1 MiB. Requires first member debian-binary starting with "2.".
/// Validates Package/Version/Architecture present, package name [a-z0-9][a-z0-9+.-]+, version per Debian policy, architecture [a-z0-9-]+.
/// A panic inside a decompressor or the tar reader becomes [`DebError::Malformed`].
pub fn read_deb<R: std::io::Read>(r: R) -> Result<DebInfo, DebError> {
    super::contain_panic(|| read_members(r)).unwrap_or_else(|why| {
        Err(DebError::Malformed(format!(
            "the package could not be read ({why})"
        )))
    })
}

fn read_members<R: std::io::Read>(r: R) -> Result<DebInfo, DebError> {
    let mut r = r;
    let mut magic = [0u8; 8];
    if read_full(&mut r, &mut magic)? != 8 || &magic != AR_MAGIC {
        return Err(DebError::NotDeb);
    }

    // 1. debian-binary
    let first = match next_member(&mut r, 0) {
        Ok(Some(m)) => m,
        Ok(None) | Err(DebError::Malformed(_)) => return Err(DebError::NotDeb),
        Err(e) => return Err(e),
    };
    if first.name != "debian-binary" {
        return Err(DebError::NotDeb);
    }
    let mut version = Vec::new();
    (&mut r)
        .take(first.size.min(64))
        .read_to_end(&mut version)?;
    if !version.starts_with(b"2.") {
        return Err(DebError::Malformed(format!(
            "unsupported .deb format version {:?}",
            String::from_utf8_lossy(&version).trim()
        )));
    }
    let mut skip = rest_of(&first, version.len() as u64);

    // 2. control.tar.*, after any "_"-prefixed members dpkg ignores.
    let control = loop {
        let Some(m) = next_member(&mut r, skip)? else {
            return Err(DebError::MissingControl);
        };
        if m.name.starts_with('_') {
            skip = rest_of(&m, 0);
            continue;
        }
        if m.name.starts_with("data.tar") {
            return Err(DebError::MissingControl);
        }
        let Some(compression) = m.name.strip_prefix("control.tar") else {
            return Err(DebError::Malformed(format!(
                "unexpected member {:?} before control.tar",
                m.name
            )));
        };
        let mut body = (&mut r).take(m.size);
        let control = read_control_member(&mut body, compression)?;
        skip = rest_of(&m, m.size - body.limit());
        break control;
    };

    // 3. data.tar.* must follow; only its header is read.
    loop {
        let Some(m) = next_member(&mut r, skip)? else {
            return Err(DebError::Malformed("no data.tar member".into()));
        };
        if m.name.starts_with('_') {
            skip = rest_of(&m, 0);
            continue;
        }
        if !m.name.starts_with("data.tar") {
            return Err(DebError::Malformed(format!(
                "unexpected member {:?} after control.tar",
                m.name
            )));
        }
        break;
    }

    parse_control(&control)
}

/// `read` until `buf` is full or the reader ends; returns the bytes read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Decompresses the control member and returns the bytes of its `./control`.
fn read_control_member<R: Read>(member: &mut R, compression: &str) -> Result<Vec<u8>, DebError> {
    let decoder: Box<dyn Read + '_> = match compression {
        "" => Box::new(member),
        ".gz" => Box::new(flate2::read::GzDecoder::new(member)),
        ".xz" => {
            let stream = liblzma::stream::Stream::new_stream_decoder(XZ_MEMLIMIT, 0)
                .map_err(|e| DebError::Malformed(format!("xz decoder: {e}")))?;
            Box::new(liblzma::read::XzDecoder::new_stream(member, stream))
        }
        ".zst" => Box::new(
            zstd::stream::read::Decoder::new(member)
                .map_err(|e| DebError::Malformed(format!("zstd decoder: {e}")))?,
        ),
        other => {
            return Err(DebError::Malformed(format!(
                "unsupported control member compression control.tar{other}"
            )))
        }
    };
    let mut capped = CappedReader {
        inner: decoder,
        remaining: MAX_CONTROL_TAR,
        exceeded: false,
    };
    let result = scan_control_tar(&mut capped);
    // Whatever follows the tar's end-of-archive blocks still counts against the cap.
    let drained = result
        .is_ok()
        .then(|| io::copy(&mut capped, &mut io::sink()));
    if capped.exceeded {
        return Err(DebError::ControlTooLarge);
    }
    let control = result?;
    if let Some(Err(e)) = drained {
        return Err(DebError::Malformed(format!(
            "control.tar{compression}: {e}"
        )));
    }
    control.ok_or(DebError::MissingControl)
}

/// Walks the control tar, returning the contents of `./control` if present.
/// Every entry is read through (so the size cap applies to the whole archive).
fn scan_control_tar<R: Read>(r: &mut R) -> Result<Option<Vec<u8>>, DebError> {
    let bad = |e: io::Error| DebError::Malformed(format!("bad control archive: {e}"));
    let mut tar = tar::Archive::new(r);
    let mut control = None;
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path_bytes();
        let path = path.strip_prefix(b"./").unwrap_or(&path);
        if path != b"control" {
            continue;
        }
        if !entry.header().entry_type().is_file() {
            return Err(DebError::Malformed(
                "./control is not a regular file".into(),
            ));
        }
        if control.is_some() {
            return Err(DebError::Malformed("two ./control entries".into()));
        }
        if entry.header().size().map_err(bad)? > MAX_CONTROL_FILE {
            return Err(DebError::ControlTooLarge);
        }
        let mut bytes = Vec::new();
        (&mut entry)
            .take(MAX_CONTROL_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(bad)?;
        if bytes.len() as u64 > MAX_CONTROL_FILE {
            return Err(DebError::ControlTooLarge);
        }
        control = Some(bytes);
    }
    Ok(control)
}

/// A deb822 field name: printable ASCII without ':' and not starting with '#' or '-'.
fn is_valid_field_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('#')
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|c| (b'!'..=b'~').contains(&c) && c != b':')
}

/// Parses one control paragraph into fields (see [`DebInfo::fields`]).
pub fn parse_control_fields(text: &str) -> Result<Vec<(String, String)>, DebError> {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut ended = false;
    for line in text.split('\n') {
        let line = line.trim_end();
        if line.is_empty() {
            // Blank lines before the paragraph are skipped; one after it ends it.
            ended = !fields.is_empty();
            continue;
        }
        if ended {
            return Err(DebError::Malformed(
                "control file has more than one paragraph".into(),
            ));
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = fields.last_mut() else {
                return Err(DebError::Malformed(
                    "control file starts with a continuation line".into(),
                ));
            };
            value.push('\n');
            value.push_str(line);
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(DebError::Malformed(format!(
                "control line without a field name: {line:?}"
            )));
        };
        if !is_valid_field_name(name) {
            return Err(DebError::Malformed(format!(
                "bad control field name {name:?}"
            )));
        }
        if fields.iter().any(|(k, _)| k.eq_ignore_ascii_case(name)) {
            return Err(DebError::Malformed(format!(
                "duplicate control field {name:?}"
            )));
        }
        fields.push((
            name.to_string(),
            value.trim_start_matches([' ', '\t']).to_string(),
        ));
    }
    Ok(fields)
}

fn parse_control(bytes: &[u8]) -> Result<DebInfo, DebError> {
    // Control files are UTF-8 by policy; old ones are ISO-8859-1, decoded as such.
    let text = decode_text(bytes);
    let fields = parse_control_fields(&text)?;
    let get = |name: &'static str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
            .ok_or(DebError::MissingField(name))
    };
    let package = get("Package")?;
    let version = get("Version")?;
    let architecture = get("Architecture")?;
    if !is_valid_package_name(&package) {
        return Err(DebError::Malformed(format!(
            "invalid package name {package:?}"
        )));
    }
    if !is_valid_version(&version) {
        return Err(DebError::Malformed(format!("invalid version {version:?}")));
    }
    if !is_valid_architecture(&architecture) {
        return Err(DebError::Malformed(format!(
            "invalid architecture {architecture:?}"
        )));
    }
    let info = DebInfo {
        package,
        version,
        architecture,
        fields,
    };
    // The source name becomes a pool directory: hold it to the package-name rules.
    if let Some(source) = info.field("Source") {
        let mut parts = source.split_whitespace();
        let name = parts.next().unwrap_or("");
        let rest: Vec<&str> = parts.collect();
        let version_ok = match rest.as_slice() {
            [] => true,
            [v] => v
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .is_some_and(is_valid_version),
            _ => false,
        };
        if !is_valid_package_name(name) || !version_ok {
            return Err(DebError::Malformed(format!(
                "invalid Source field {source:?}"
            )));
        }
    }
    Ok(info)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write as _;

    pub(crate) const HELLO_CONTROL: &str = "Package: hello-demo\n\
Version: 1:1.2.3-4\n\
Architecture: amd64\n\
Maintainer: Jane Doe <jane@example.com>\n\
Installed-Size: 12\n\
Depends: bash (>= 4.0), libc6 | musl\n\
Section: utils\n\
Priority: optional\n\
Homepage: https://example.com/hello\n\
Description: Demo package for formats\n \
A demo package.   \n \
.\n \
Second paragraph.\n";

    fn tar_with(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, path, *data).expect("tar append");
        }
        b.into_inner().expect("tar finish")
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).expect("gz");
        e.finish().expect("gz")
    }

    fn xz(bytes: &[u8]) -> Vec<u8> {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
        e.write_all(bytes).expect("xz");
        e.finish().expect("xz")
    }

    fn zst(bytes: &[u8]) -> Vec<u8> {
        zstd::stream::encode_all(bytes, 3).expect("zstd")
    }

    fn ar_with(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = ar::Builder::new(Vec::new());
        for (name, data) in members {
            let h = ar::Header::new(name.as_bytes().to_vec(), data.len() as u64);
            b.append(&h, *data).expect("ar append");
        }
        b.into_inner().expect("ar finish")
    }

    /// A whole .deb: debian-binary, the given control member, a small data.tar.gz.
    pub(crate) fn deb_with(control_name: &str, control_member: &[u8]) -> Vec<u8> {
        let data = gz(&tar_with(&[("./usr/bin/hello", b"#!/bin/sh\n")]));
        ar_with(&[
            ("debian-binary", b"2.0\n"),
            (control_name, control_member),
            ("data.tar.gz", &data),
        ])
    }

    pub(crate) fn control_tar(control: &str) -> Vec<u8> {
        tar_with(&[("./control", control.as_bytes()), ("./md5sums", b"")])
    }

    fn read(bytes: Vec<u8>) -> Result<DebInfo, DebError> {
        read_deb(io::Cursor::new(bytes))
    }

    fn check_hello(info: &DebInfo) {
        assert_eq!(info.package, "hello-demo");
        assert_eq!(info.version, "1:1.2.3-4");
        assert_eq!(info.architecture, "amd64");
        assert_eq!(info.fields.len(), 10);
        assert_eq!(info.fields[0], ("Package".into(), "hello-demo".into()));
        assert_eq!(
            info.field("description"),
            Some("Demo package for formats\n A demo package.\n .\n Second paragraph.")
        );
        assert_eq!(info.field("DEPENDS"), Some("bash (>= 4.0), libc6 | musl"));
        assert_eq!(info.field("Source"), None);
        assert_eq!(info.canonical_filename(), "hello-demo_1.2.3-4_amd64.deb");
        assert_eq!(
            info.pool_path(),
            "pool/main/h/hello-demo/hello-demo_1.2.3-4_amd64.deb"
        );
    }

    #[test]
    fn reads_gz_control() {
        let info = read(deb_with("control.tar.gz", &gz(&control_tar(HELLO_CONTROL))));
        check_hello(&info.expect("gz deb"));
    }

    #[test]
    fn reads_xz_control() {
        let info = read(deb_with("control.tar.xz", &xz(&control_tar(HELLO_CONTROL))));
        check_hello(&info.expect("xz deb"));
    }

    #[test]
    fn reads_zst_control() {
        let info = read(deb_with(
            "control.tar.zst",
            &zst(&control_tar(HELLO_CONTROL)),
        ));
        check_hello(&info.expect("zst deb"));
    }

    #[test]
    fn reads_uncompressed_control_and_gnu_member_names() {
        let info = read(deb_with("control.tar/", &control_tar(HELLO_CONTROL)));
        check_hello(&info.expect("plain deb"));
    }

    #[test]
    fn control_path_without_dot_slash() {
        let tar = tar_with(&[("control", HELLO_CONTROL.as_bytes())]);
        check_hello(&read(deb_with("control.tar.gz", &gz(&tar))).expect("deb"));
    }

    #[test]
    fn underscore_members_are_skipped() {
        let control = gz(&control_tar(HELLO_CONTROL));
        let data = gz(&tar_with(&[]));
        let bytes = ar_with(&[
            ("debian-binary", b"2.0\n"),
            ("_gpgorigin", b"sig"),
            ("control.tar.gz", &control),
            ("data.tar.gz", &data),
        ]);
        check_hello(&read(bytes).expect("deb"));
    }

    #[test]
    fn not_an_ar_archive() {
        assert!(matches!(
            read(b"PK\x03\x04 a zip file".to_vec()),
            Err(DebError::NotDeb)
        ));
        assert!(matches!(read(Vec::new()), Err(DebError::NotDeb)));
        assert!(matches!(read(b"!<arch>".to_vec()), Err(DebError::NotDeb)));
        // A static library is an ar archive but not a .deb.
        let lib = ar_with(&[("foo.o", b"\x7fELF")]);
        assert!(matches!(read(lib), Err(DebError::NotDeb)));
    }

    #[test]
    fn wrong_format_version() {
        let control = gz(&control_tar(HELLO_CONTROL));
        let bytes = ar_with(&[("debian-binary", b"3.0\n"), ("control.tar.gz", &control)]);
        assert!(matches!(read(bytes), Err(DebError::Malformed(_))));
    }

    #[test]
    fn missing_control_member() {
        let data = gz(&tar_with(&[]));
        let bytes = ar_with(&[("debian-binary", b"2.0\n"), ("data.tar.gz", &data)]);
        assert!(matches!(read(bytes), Err(DebError::MissingControl)));
        let bytes = ar_with(&[("debian-binary", b"2.0\n")]);
        assert!(matches!(read(bytes), Err(DebError::MissingControl)));
        // A control archive without ./control.
        let tar = gz(&tar_with(&[("./md5sums", b"")]));
        assert!(matches!(
            read(deb_with("control.tar.gz", &tar)),
            Err(DebError::MissingControl)
        ));
    }

    #[test]
    fn missing_data_member() {
        let control = gz(&control_tar(HELLO_CONTROL));
        let bytes = ar_with(&[("debian-binary", b"2.0\n"), ("control.tar.gz", &control)]);
        assert!(matches!(read(bytes), Err(DebError::Malformed(_))));
    }

    #[test]
    fn control_without_version() {
        let control = HELLO_CONTROL.replace("Version: 1:1.2.3-4\n", "");
        let r = read(deb_with("control.tar.gz", &gz(&control_tar(&control))));
        assert!(matches!(r, Err(DebError::MissingField("Version"))), "{r:?}");
        let control = HELLO_CONTROL.replace("Architecture: amd64\n", "Architecture:\n");
        let r = read(deb_with("control.tar.gz", &gz(&control_tar(&control))));
        assert!(
            matches!(r, Err(DebError::MissingField("Architecture"))),
            "{r:?}"
        );
    }

    #[test]
    fn invalid_identity_fields() {
        for (from, to) in [
            ("Package: hello-demo", "Package: Hello"),
            ("Package: hello-demo", "Package: h"),
            ("Package: hello-demo", "Package: ../etc"),
            ("Version: 1:1.2.3-4", "Version: 1.0/../x"),
            ("Version: 1:1.2.3-4", "Version: x:1.0"),
            ("Version: 1:1.2.3-4", "Version: 1:"),
            ("Architecture: amd64", "Architecture: amd64/x"),
            ("Architecture: amd64", "Architecture: AMD64"),
            ("Section: utils", "Source: ../evil"),
            ("Section: utils", "Source: ok (1.0) extra"),
        ] {
            let control = HELLO_CONTROL.replace(from, to);
            let r = read(deb_with("control.tar.gz", &gz(&control_tar(&control))));
            assert!(matches!(r, Err(DebError::Malformed(_))), "{to}: {r:?}");
        }
    }

    #[test]
    fn versions_follow_debian_policy() {
        for good in [
            "1.0",
            "1.0-1",
            "1:2.3-4",
            "2.0+dfsg-1ubuntu1~22.04",
            "1.0~rc1",
            "0",
            "1.2-3-4",
            "1:1.0:2-1",
            "3.0.2-1+deb12u1",
            "2147483647:1",
        ] {
            assert!(is_valid_version(good), "{good}");
        }
        for bad in [
            "",
            "1.0#2",
            "1.0?x",
            "1.0%20",
            "a1.0",
            "1.0-",
            "-1",
            "1.0-1_2",
            "1.0-a:b",
            "x:1.0",
            ":1.0",
            "1:",
            "2147483648:1",
            "1.0 1",
            "1.0/x",
            "1.0:2",
        ] {
            assert!(!is_valid_version(bad), "{bad}");
        }
    }

    #[test]
    fn ar_headers_are_checked() {
        fn header(name: &str, size: &str) -> [u8; 60] {
            let mut h = [b' '; 60];
            h[..name.len()].copy_from_slice(name.as_bytes());
            h[48..48 + size.len()].copy_from_slice(size.as_bytes());
            h[58..60].copy_from_slice(b"`\n");
            h
        }
        let m = parse_ar_header(&header("data.tar.xz/", "1234")).expect("gnu name");
        assert_eq!((m.name.as_str(), m.size), ("data.tar.xz", 1234));
        // A GNU name table of 9,999,999,999 bytes: refused before any allocation.
        assert!(parse_ar_header(&header("//", "9999999999")).is_err());
        assert!(parse_ar_header(&header("/0", "10")).is_err());
        assert!(parse_ar_header(&header("#1/999999999", "9999999999")).is_err());
        assert!(parse_ar_header(&header("x", "12a")).is_err());
        assert!(parse_ar_header(&header("x", "")).is_err());
        let mut bad_end = header("x", "1");
        bad_end[59] = b'x';
        assert!(parse_ar_header(&bad_end).is_err());
        // A name table in a whole package is refused, not allocated.
        let mut deb = AR_MAGIC.to_vec();
        deb.extend_from_slice(&header("//", "9999999999"));
        assert!(read(deb).is_err());
    }

    #[test]
    fn control_tar_bomb_is_refused() {
        // 20 MiB of zeros: tiny compressed, over the 16 MiB cap decompressed. Zero
        // blocks end a tar early, so this also checks that trailing data counts.
        let zeros = vec![0u8; 20 * 1024 * 1024];
        for (name, member) in [
            ("control.tar.gz", gz(&zeros)),
            ("control.tar.xz", xz(&zeros)),
            ("control.tar.zst", zst(&zeros)),
        ] {
            assert!(member.len() < 200 * 1024, "{name}: {}", member.len());
            let r = read(deb_with(name, &member));
            assert!(matches!(r, Err(DebError::ControlTooLarge)), "{name}: {r:?}");
        }
        // A real tar whose md5sums entry is huge.
        let tar = tar_with(&[
            ("./md5sums", &zeros),
            ("./control", HELLO_CONTROL.as_bytes()),
        ]);
        let r = read(deb_with("control.tar.gz", &gz(&tar)));
        assert!(matches!(r, Err(DebError::ControlTooLarge)), "{r:?}");
        // A control file over 1 MiB.
        let big = format!("{HELLO_CONTROL}X-Big: {}\n", "a".repeat(1024 * 1024));
        let r = read(deb_with("control.tar.gz", &gz(&control_tar(&big))));
        assert!(matches!(r, Err(DebError::ControlTooLarge)), "{r:?}");
    }

    #[test]
    fn corrupt_control_member() {
        let mut member = gz(&control_tar(HELLO_CONTROL));
        let n = member.len();
        member[n / 2] ^= 0xff;
        member[n / 2 + 1] ^= 0xff;
        let r = read(deb_with("control.tar.gz", &member));
        assert!(r.is_err(), "{r:?}");
        let r = read(deb_with("control.tar.bz2", b"BZh9"));
        assert!(matches!(r, Err(DebError::Malformed(_))), "{r:?}");
    }

    #[test]
    fn control_field_parsing() {
        let text = "\nPackage: p1\nConffiles:\n /etc/a 1234\n /etc/b 5678  \nX-Custom:   spaced\t\nEmpty:\nDescription: s\n l1\n .\n\tl2\n\n";
        let f = parse_control_fields(text).expect("parse");
        assert_eq!(
            f,
            vec![
                ("Package".into(), "p1".into()),
                ("Conffiles".into(), "\n /etc/a 1234\n /etc/b 5678".into()),
                ("X-Custom".into(), "spaced".into()),
                ("Empty".into(), "".into()),
                ("Description".into(), "s\n l1\n .\n\tl2".into()),
            ]
        );
        assert!(parse_control_fields(" cont\nPackage: x\n").is_err());
        assert!(parse_control_fields("Package: x\n\nPackage: y\n").is_err());
        assert!(parse_control_fields("Package: x\npackage: y\n").is_err());
        assert!(parse_control_fields("Package x\n").is_err());
        assert!(parse_control_fields("#comment: x\n").is_err());
        assert!(parse_control_fields("Package: x\r\nVersion: 1\r\n").expect("crlf")[1].1 == "1");
    }

    #[test]
    fn latin1_control_is_decoded() {
        let control = HELLO_CONTROL.replace("Jane Doe", "Tom\u{e1}\u{161}");
        let latin1 = control.replace('\u{161}', "s").replace('\u{e1}', "\u{0}");
        let mut bytes = latin1.into_bytes();
        let at = bytes.iter().position(|&b| b == 0).expect("marker");
        bytes[at] = 0xe1;
        let tar = tar_with(&[("./control", &bytes)]);
        let info = read(deb_with("control.tar.gz", &gz(&tar))).expect("deb");
        assert_eq!(
            info.field("Maintainer"),
            Some("Tom\u{e1}s <jane@example.com>")
        );
    }

    #[test]
    fn filenames_and_pool_paths() {
        let mk = |package: &str, version: &str, source: Option<&str>| {
            let mut fields = vec![("Package".to_string(), package.to_string())];
            if let Some(s) = source {
                fields.push(("Source".to_string(), s.to_string()));
            }
            DebInfo {
                package: package.into(),
                version: version.into(),
                architecture: "all".into(),
                fields,
            }
        };
        let d = mk("forklift-epoch", "2:0.5-1", None);
        assert_eq!(d.canonical_filename(), "forklift-epoch_0.5-1_all.deb");
        assert_eq!(
            d.pool_path(),
            "pool/main/f/forklift-epoch/forklift-epoch_0.5-1_all.deb"
        );
        let d = mk("libfoo1", "1:2:3-1", Some("libfoo (1:2:3-0)"));
        assert_eq!(d.canonical_filename(), "libfoo1_2:3-1_all.deb");
        assert_eq!(d.pool_path(), "pool/main/libf/libfoo/libfoo1_2:3-1_all.deb");
        let d = mk("python3-x", "1.0", Some("x"));
        assert_eq!(d.pool_path(), "pool/main/x/x/python3-x_1.0_all.deb");
        let d = mk("lib", "1.0", None);
        assert_eq!(d.pool_path(), "pool/main/l/lib/lib_1.0_all.deb");
        let d = mk("0ad", "1.0", Some("0ad"));
        assert_eq!(d.pool_path(), "pool/main/0/0ad/0ad_1.0_all.deb");
    }

    fn fixture_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/debs")
    }

    #[test]
    fn real_fixtures_parse() {
        let dir = fixture_dir();
        let Ok(listing) = std::fs::read_dir(&dir) else {
            return;
        };
        let mut seen = 0;
        for entry in listing {
            let path = entry.expect("dir entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("deb") {
                continue;
            }
            let file = std::fs::File::open(&path).expect("open fixture");
            let info = read_deb(io::BufReader::new(file))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // The fixtures are named canonically by build.sh.
            let name = path.file_name().and_then(|n| n.to_str()).expect("name");
            assert_eq!(info.canonical_filename(), name);
            assert!(info
                .field("Description")
                .is_some_and(|d| d.contains("\n .\n")));
            assert!(info.field("Installed-Size").is_some());
            seen += 1;
        }
        if seen == 0 {
            return;
        }
        let open =
            |n: &str| read_deb(std::fs::File::open(dir.join(n)).expect("open")).expect("parse");
        let hello = open("forklift-hello_2.0-1_amd64.deb");
        assert_eq!(hello.version, "2.0-1");
        assert_eq!(hello.field("Depends"), Some("forklift-common (>= 1.0)"));
        assert_eq!(
            hello.pool_path(),
            "pool/main/f/forklift-hello/forklift-hello_2.0-1_amd64.deb"
        );
        let epoch = open("forklift-epoch_0.5-1_all.deb");
        assert_eq!(epoch.version, "2:0.5-1");
        assert_eq!(epoch.architecture, "all");
        assert!(open("forklift-hello_1.0-1_amd64.deb")
            .field("Depends")
            .is_none());
    }
}
