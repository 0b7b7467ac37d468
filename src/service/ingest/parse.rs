//! Recognising an upload by its magic bytes and reading it into a package
//! row, with its metadata rendered once.

use std::io::{BufReader, Read, Seek, SeekFrom};

use super::upload::Received;
use crate::db::models::*;
use crate::formats::apt::{render_stanza, DebFileFacts};
use crate::formats::deb::{read_deb, DebError, AR_MAGIC};
use crate::formats::rpm::{read_rpm, RPM_MAGIC};
use crate::formats::yum::{render_fragments, FileFacts};
use crate::service::catalog::packages::rpm_location;
use crate::service::error::IngestError;
use crate::service::ServiceError;

/// Recognises the upload by its magic bytes, validates it and renders its
/// metadata once (yum fragments for an RPM, the Packages stanza for a .deb).
pub(super) fn parse_upload(
    upload: &Received,
    uploaded_at: i64,
    uploader: &str,
) -> Result<PackageRow, ServiceError> {
    let mut file = upload.file.reopen()?;
    let mut magic = [0u8; 8];
    let n = read_prefix(&mut file, &mut magic)?;
    file.seek(SeekFrom::Start(0))?;
    if n >= 4 && magic[..4] == RPM_MAGIC {
        let info = read_rpm(&mut file)?;
        let filename = info.canonical_filename();
        let location = rpm_location(&upload.sha256, &filename);
        let frags = render_fragments(
            &info,
            &FileFacts {
                sha256: &upload.sha256,
                size: upload.size,
                file_time: uploaded_at,
                location: &location,
            },
        );
        Ok(PackageRow {
            id: upload.sha256.clone(),
            kind: "rpm".into(),
            name: info.name.clone(),
            epoch: info.epoch as i32,
            version: info.version.clone(),
            release: info.release.clone(),
            arch: info.arch.clone(),
            filename,
            size: upload.size as i64,
            summary: info.summary.clone(),
            uploaded_at,
            uploaded_by: uploader.to_string(),
            primary_xml: frags.primary,
            filelists_xml: frags.filelists,
            other_xml: frags.other,
            apt_stanza: None,
            pool_path: None,
        })
    } else if n >= 8 && &magic == AR_MAGIC {
        let info = read_deb(BufReader::new(&mut file)).map_err(deb_error)?;
        // apt checks every hash it is given; the upload hashed only sha256.
        file.seek(SeekFrom::Start(0))?;
        let (md5, sha1, sha512) = other_digests(&mut file)?;
        let pool_path = info.pool_path();
        let stanza = render_stanza(
            &info,
            &DebFileFacts {
                filename: &pool_path,
                size: upload.size,
                md5: &md5,
                sha1: &sha1,
                sha256: &upload.sha256,
                sha512: &sha512,
            },
        );
        // The version was validated by read_deb: the epoch fits an i32.
        let (epoch, version, release) = crate::formats::debver::split(&info.version);
        let (version, release) = (version.to_string(), release.to_string());
        let summary = info
            .field("Description")
            .and_then(|d| d.lines().next())
            .unwrap_or_default()
            .trim()
            .to_string();
        Ok(PackageRow {
            id: upload.sha256.clone(),
            kind: "deb".into(),
            name: info.package.clone(),
            epoch,
            version,
            release,
            arch: info.architecture.clone(),
            filename: info.canonical_filename(),
            size: upload.size as i64,
            summary,
            uploaded_at,
            uploaded_by: uploader.to_string(),
            primary_xml: String::new(),
            filelists_xml: String::new(),
            other_xml: String::new(),
            apt_stanza: Some(stanza),
            pool_path: Some(pool_path),
        })
    } else {
        Err(IngestError::UnsupportedType("the file is neither an RPM nor a .deb".into()).into())
    }
}

fn deb_error(e: DebError) -> ServiceError {
    match e {
        DebError::NotDeb => {
            IngestError::UnsupportedType("an ar archive, but not a Debian package".into()).into()
        }
        DebError::Io(e) if e.kind() != std::io::ErrorKind::UnexpectedEof => ServiceError::Io(e),
        other => IngestError::InvalidPackage(other.to_string()).into(),
    }
}

fn other_digests(file: &mut std::fs::File) -> Result<(String, String, String), ServiceError> {
    use sha2::Digest;
    let (mut md5, mut sha1, mut sha512) = (md5::Md5::new(), sha1::Sha1::new(), sha2::Sha512::new());
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
        sha1.update(&buf[..n]);
        sha512.update(&buf[..n]);
    }
    Ok((
        hex::encode(md5.finalize()),
        hex::encode(sha1.finalize()),
        hex::encode(sha512.finalize()),
    ))
}

fn read_prefix(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let r = f.read(&mut buf[n..])?;
        if r == 0 {
            break;
        }
        n += r;
    }
    Ok(n)
}
