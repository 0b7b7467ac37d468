//! Verifying an RPM's digests: the payload's SHA-256 (or the legacy MD5 of
//! header and payload) against what the header records.

use std::io::{self, Read, Seek, SeekFrom};

use rpm::{IndexSignatureTag, IndexTag, PackageMetadata};
use sha2::{Digest, Sha256, Sha512};

use super::*;

/// Checks the payload digest recorded in the main header (RPMTAG_PAYLOADDIGEST),
/// streaming the payload from `payload_start` to the end of the file.
pub(super) fn verify_payload<R: Read + Seek>(
    meta: &PackageMetadata,
    file: &mut R,
    header_start: u64,
    payload_start: u64,
) -> Result<(), RpmError> {
    let expected = match meta
        .header
        .get_entry_data_as_string_array(IndexTag::RPMTAG_PAYLOADSHA256)
    {
        Ok(v) if !v.is_empty() => v[0].to_ascii_lowercase(),
        // Packages older than rpm 4.14 carry no payload digest; rpm itself accepts them.
        _ => return verify_legacy_md5(meta, file, header_start),
    };
    // RPMTAG_PAYLOADDIGESTALGO holds a PGP hash algorithm id: 8 = SHA256, 10 = SHA512.
    let algo = meta
        .header
        .get_entry_data_as_u32_array(IndexTag::RPMTAG_PAYLOADSHA256ALGO)
        .ok()
        .and_then(|v| v.first().copied())
        .unwrap_or(8);
    file.seek(SeekFrom::Start(payload_start))?;
    let actual = match algo {
        10 => hash_reader::<Sha512, _>(file)?,
        8 => hash_reader::<Sha256, _>(file)?,
        other => {
            return Err(RpmError::Malformed(format!(
                "unsupported payload digest algorithm {other}"
            )))
        }
    };
    if actual != expected {
        return Err(RpmError::PayloadDigest { expected, actual });
    }
    Ok(())
}

/// Old packages: the signature header's MD5 covers header + payload.
pub(super) fn verify_legacy_md5<R: Read + Seek>(
    meta: &PackageMetadata,
    file: &mut R,
    header_start: u64,
) -> Result<(), RpmError> {
    let Ok(expected) = meta
        .signature
        .get_entry_data_as_binary(IndexSignatureTag::RPMSIGTAG_MD5)
    else {
        // No digest at all over the payload: rpm accepts such packages too.
        return Ok(());
    };
    let expected = hex::encode(expected);
    file.seek(SeekFrom::Start(header_start))?;
    let actual = hash_reader::<md5::Md5, _>(file)?;
    if actual != expected {
        return Err(RpmError::PayloadDigest { expected, actual });
    }
    Ok(())
}

pub(super) fn hash_reader<D: Digest, R: Read>(r: &mut R) -> io::Result<String> {
    let mut hasher = D::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}
