//! Package files for tests: the fixtures, their digests, and small .deb files
//! built by hand.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::fixture;

/// RPM fixtures (fixtures/rpms) most tests upload.
pub const DEMO10: &str = "forklift-demo-1.0-1.x86_64.rpm";
pub const DEMO11: &str = "forklift-demo-1.1-1.x86_64.rpm";
pub const DEMO20: &str = "forklift-demo-2.0-1.x86_64.rpm";
pub const LIB: &str = "forklift-lib-1.0-1.noarch.rpm";

/// The bytes of an RPM fixture.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("fixture")
}

/// A .deb fixture (fixtures/debs).
pub fn deb_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/debs")
        .join(name)
}

/// Lower-case hex SHA-256: a package's id.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The id of the package in the file at `path`.
pub fn sha256_of(path: &Path) -> String {
    sha256(&std::fs::read(path).expect("read"))
}

/// An ar archive from (name, bytes) members.
pub fn ar_archive(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut b = ar::Builder::new(&mut out);
        for (name, data) in members {
            let header = ar::Header::new(name.as_bytes().to_vec(), data.len() as u64);
            b.append(&header, *data).expect("ar member");
        }
    }
    out
}

/// A gzipped tar of (name, bytes) regular files.
pub fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).expect("tar entry");
    }
    let tar = b.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("gz");
    gz.finish().expect("gz")
}

/// A minimal binary package: debian-binary, control.tar.gz with `control`, and
/// an empty data.tar.gz.
pub fn mini_deb(control: &str) -> Vec<u8> {
    let ctl = tar_gz(&[("./control", control.as_bytes())]);
    let data = tar_gz(&[]);
    ar_archive(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &ctl),
        ("data.tar.gz", &data),
    ])
}

/// A minimal .deb (`Architecture: all`, empty data) of `package` at `version`.
pub fn build_deb(package: &str, version: &str) -> Vec<u8> {
    mini_deb(&format!(
        "Package: {package}\nVersion: {version}\nArchitecture: all\n\
         Maintainer: Test <t@example.com>\nDescription: a test package\n"
    ))
}
