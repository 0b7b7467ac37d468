//! Structural checks of an RPM's two headers, run before any parser allocates.
//!
//! The rpm crate trusts the index: it reserves `count × item size` bytes for a
//! numeric entry and slices the data store at `offset` without checking either,
//! so one hostile entry (count 0xFFFFFFFF of INT64) makes it ask for 32 GiB and
//! the allocator aborts the whole process. rpm itself refuses such headers
//! (`headerVerifyInfo`); these are the same checks, made on the raw bytes, so
//! that every later allocation is bounded by a header this function accepted.

use std::io::{Read, Seek, SeekFrom};

use super::RpmError;

/// The lead before the signature header.
pub const LEAD_SIZE: u64 = 96;
/// rpm's own limit on index entries per header (`HEADER_TAGS_MAX`).
pub const MAX_HEADER_ENTRIES: u32 = 0xffff;
/// A header's data store. rpm allows 256 MiB; real headers stay far below
/// 16 MiB even for packages with 100,000 files, and this bounds what one
/// upload can make the parser hold.
pub const MAX_HEADER_DATA: u32 = 32 * 1024 * 1024;
/// Strings in one header, all arrays together: each becomes an allocation in
/// the parsers, so a store of 32 MiB of NULs must not become 32 million of
/// them. A package with 100,000 files has well under a million.
pub const MAX_HEADER_STRINGS: u64 = 2_000_000;
/// Region tags (HEADER_IMAGE, HEADER_SIGNATURES, HEADER_IMMUTABLE): as the
/// first entry, their data (the region trailer) sits at the end of the store.
const REGION_TAGS: [u32; 3] = [61, 62, 63];
const HEADER_MAGIC: [u8; 4] = [0x8e, 0xad, 0xe8, 0x01];
const INTRO_SIZE: u64 = 16;
const ENTRY_SIZE: u64 = 16;

/// Where the parts of a structurally sound RPM start, and the main header's
/// bytes (intro, index and data store), read once here for the callers that
/// need them raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub header_start: u64,
    pub payload_start: u64,
    pub main_header: Vec<u8>,
}

/// One index entry as stored: tag, type, offset into the data store, count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub tag: u32,
    pub kind: u32,
    pub offset: i32,
    pub count: u32,
}

/// Checks the lead and both headers of the RPM in `r` (of `total_len` bytes)
/// and says where the main header and the payload start.
pub fn check_layout<R: Read + Seek>(r: &mut R, total_len: u64) -> Result<Layout, RpmError> {
    if total_len < LEAD_SIZE + INTRO_SIZE {
        return Err(malformed("the file ends inside the lead"));
    }
    let (sig_end, _) = check_header(r, LEAD_SIZE, total_len, "signature")?;
    // The signature header is padded to a multiple of 8 bytes.
    let header_start = sig_end.div_ceil(8) * 8;
    let (payload_start, main_header) = check_header(r, header_start, total_len, "main")?;
    Ok(Layout {
        header_start,
        payload_start,
        main_header,
    })
}

/// Checks one header starting at `start`; returns the offset just past it and
/// the header's bytes.
fn check_header<R: Read + Seek>(
    r: &mut R,
    start: u64,
    total_len: u64,
    which: &str,
) -> Result<(u64, Vec<u8>), RpmError> {
    let mut intro = [0u8; INTRO_SIZE as usize];
    r.seek(SeekFrom::Start(start))?;
    read_exact_or(r, &mut intro, which)?;
    if intro[..4] != HEADER_MAGIC {
        return Err(malformed(&format!("the {which} header has a bad magic")));
    }
    let entries = be32(&intro[8..12]);
    let data_len = be32(&intro[12..16]);
    if entries == 0 || entries > MAX_HEADER_ENTRIES {
        return Err(malformed(&format!(
            "the {which} header claims {entries} entries (1 to {MAX_HEADER_ENTRIES} allowed)"
        )));
    }
    if data_len > MAX_HEADER_DATA {
        return Err(malformed(&format!(
            "the {which} header claims {data_len} bytes of data (at most {MAX_HEADER_DATA})"
        )));
    }
    let index_len = u64::from(entries) * ENTRY_SIZE;
    let end = start + INTRO_SIZE + index_len + u64::from(data_len);
    if end > total_len {
        return Err(malformed(&format!(
            "the {which} header claims {} bytes but the file ends after {}",
            end - start,
            total_len - start
        )));
    }
    // Both reads are bounded by the limits above and by the file's length.
    let mut raw = vec![0u8; (end - start) as usize];
    raw[..INTRO_SIZE as usize].copy_from_slice(&intro);
    read_exact_or(r, &mut raw[INTRO_SIZE as usize..], which)?;
    let (index, store) = raw[INTRO_SIZE as usize..].split_at(index_len as usize);
    // As rpm's hdrblobVerifyInfo: past a leading region tag, each entry's
    // data starts where the previous one's ended or later. Without this, every
    // entry could point at the same megabytes, and the parsers would copy or
    // scan them once per entry.
    let (mut data_end, mut strings) = (0u64, 0u64);
    for (i, bytes) in index.chunks_exact(ENTRY_SIZE as usize).enumerate() {
        let entry = Entry {
            tag: be32(&bytes[0..4]),
            kind: be32(&bytes[4..8]),
            offset: be32(&bytes[8..12]) as i32,
            count: be32(&bytes[12..16]),
        };
        let bad = |why: String| {
            malformed(&format!(
                "{which} header entry for tag {}: {why}",
                entry.tag
            ))
        };
        let region = i == 0 && REGION_TAGS.contains(&entry.tag);
        if !region && u64::try_from(entry.offset).unwrap_or(0) < data_end {
            return Err(bad("its data overlaps the previous entry's".into()));
        }
        let entry_end = check_entry(&entry, store).map_err(bad)?;
        if matches!(entry.kind, 6 | 8 | 9) {
            strings += u64::from(entry.count);
            if strings > MAX_HEADER_STRINGS {
                return Err(bad(format!(
                    "more than {MAX_HEADER_STRINGS} strings in one header"
                )));
            }
        }
        if !region {
            data_end = entry_end;
        }
    }
    Ok((end, raw))
}

/// Whether one index entry's data lies inside `store` (rpm's type, range and
/// count checks); returns where its data ends. Pure, so it is tested on
/// hand-made entries.
pub fn check_entry(e: &Entry, store: &[u8]) -> Result<u64, String> {
    let len = store.len() as u64;
    if e.offset < 0 {
        return Err(format!("negative offset {}", e.offset));
    }
    let offset = e.offset as u64;
    // Even an entry without data has its offset sliced by the rpm crate.
    if offset > len {
        return Err(format!("offset {offset} outside the {len}-byte data store"));
    }
    let fixed = match e.kind {
        0 => return Ok(offset), // NULL: no data
        1 | 2 | 7 => Some(1u64),
        3 => Some(2),
        4 => Some(4),
        5 => Some(8),
        6 | 8 | 9 => None,
        other => return Err(format!("unknown data type {other}")),
    };
    if e.count == 0 {
        return Err("count 0".into());
    }
    match fixed {
        Some(size) => {
            let need = u64::from(e.count) * size;
            if need > len - offset {
                return Err(format!(
                    "{} items of {size} bytes at offset {offset} do not fit in the {len}-byte data store",
                    e.count
                ));
            }
            Ok(offset + need)
        }
        None => {
            // STRING holds exactly one; arrays hold `count` NUL-terminated strings.
            if e.kind == 6 && e.count != 1 {
                return Err(format!("a STRING entry with count {}", e.count));
            }
            if u64::from(e.count) > len - offset {
                return Err(format!(
                    "{} strings cannot fit in {} bytes",
                    e.count,
                    len - offset
                ));
            }
            let mut rest = &store[offset as usize..];
            for _ in 0..e.count {
                let Some(nul) = rest.iter().position(|&b| b == 0) else {
                    return Err(format!(
                        "{} strings at offset {offset} run past the data store",
                        e.count
                    ));
                };
                rest = &rest[nul + 1..];
            }
            Ok(len - rest.len() as u64)
        }
    }
}

fn read_exact_or<R: Read>(r: &mut R, buf: &mut [u8], which: &str) -> Result<(), RpmError> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            malformed(&format!("the file ends inside the {which} header"))
        } else {
            RpmError::Io(e)
        }
    })
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn malformed(why: &str) -> RpmError {
    RpmError::Malformed(why.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: u32, offset: i32, count: u32) -> Entry {
        Entry {
            tag: 1000,
            kind,
            offset,
            count,
        }
    }

    #[test]
    fn numeric_entries_must_fit() {
        let store = [0u8; 16];
        assert!(check_entry(&entry(5, 0, 2), &store).is_ok());
        assert!(check_entry(&entry(5, 8, 1), &store).is_ok());
        assert!(check_entry(&entry(5, 8, 2), &store).is_err());
        // The 32 GiB reservation of the issue: count 0xFFFFFFFF of INT64.
        assert!(check_entry(&entry(5, 0, u32::MAX), &store).is_err());
        assert!(check_entry(&entry(4, 0, u32::MAX), &store).is_err());
        assert!(check_entry(&entry(3, 15, 1), &store).is_err());
        assert!(check_entry(&entry(7, 0, 16), &store).is_ok());
        assert!(check_entry(&entry(7, 0, 17), &store).is_err());
    }

    #[test]
    fn offsets_must_lie_inside_the_store() {
        let store = *b"abc\0def\0";
        assert!(check_entry(&entry(6, 5000, 1), &store).is_err());
        assert!(check_entry(&entry(6, -4, 1), &store).is_err());
        assert!(check_entry(&entry(4, i32::MAX, 1), &store).is_err());
    }

    #[test]
    fn strings_must_be_terminated_and_counted() {
        let store = *b"abc\0def\0";
        assert!(check_entry(&entry(6, 0, 1), &store).is_ok());
        assert!(check_entry(&entry(6, 4, 1), &store).is_ok());
        assert!(check_entry(&entry(6, 0, 2), &store).is_err());
        assert!(check_entry(&entry(8, 0, 2), &store).is_ok());
        assert!(check_entry(&entry(8, 0, 3), &store).is_err());
        assert!(check_entry(&entry(9, 0, u32::MAX), &store).is_err());
        assert!(check_entry(&entry(8, 0, 0), &store).is_err());
        assert!(check_entry(&entry(6, 8, 1), &store).is_err());
    }

    #[test]
    fn entries_may_not_share_their_data() {
        // Two STRING_ARRAY entries over the same 4 bytes, then the same at the end.
        let mut store = vec![0u8; 8];
        let mut header = Vec::new();
        header.extend_from_slice(&HEADER_MAGIC);
        header.extend_from_slice(&[0; 4]);
        header.extend_from_slice(&2u32.to_be_bytes());
        header.extend_from_slice(&8u32.to_be_bytes());
        for tag in [1000u32, 1001] {
            for v in [tag, 8, 0, 4] {
                header.extend_from_slice(&v.to_be_bytes());
            }
        }
        header.append(&mut store);
        let mut file = vec![0u8; LEAD_SIZE as usize];
        file.extend_from_slice(&header);
        let total = file.len() as u64;
        let err = check_header(&mut std::io::Cursor::new(&file), LEAD_SIZE, total, "main")
            .expect_err("overlap");
        assert!(err.to_string().contains("overlaps"), "{err}");
        // The same entries one after the other pass.
        let offset_at = LEAD_SIZE as usize + 16 + 16 + 8;
        file[offset_at..offset_at + 4].copy_from_slice(&4u32.to_be_bytes());
        assert!(check_header(&mut std::io::Cursor::new(&file), LEAD_SIZE, total, "main").is_ok());
    }

    #[test]
    fn unknown_types_are_refused() {
        assert!(check_entry(&entry(10, 0, 1), &[0u8; 4]).is_err());
        assert!(check_entry(&entry(0, 0, 0), &[]).is_ok());
        assert!(check_entry(&entry(0, 5, 0), &[0u8; 4]).is_err());
    }

    fn fixture() -> Vec<u8> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rpms");
        std::fs::read(dir.join("forklift-demo-1.0-1.x86_64.rpm")).expect("fixture")
    }

    fn layout(bytes: &[u8]) -> Result<Layout, RpmError> {
        check_layout(&mut std::io::Cursor::new(bytes), bytes.len() as u64)
    }

    #[test]
    fn real_package_passes_and_header_mutations_fail() {
        let good = fixture();
        let l = layout(&good).expect("fixture is sound");
        assert!(l.header_start > LEAD_SIZE && l.payload_start > l.header_start);
        // The reproduction: entry 0 of the signature header becomes
        // INT64 (type 5) with count 0xFFFFFFFF.
        let mut bomb = good.clone();
        bomb[116..120].copy_from_slice(&5u32.to_be_bytes());
        bomb[124..128].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(layout(&bomb), Err(RpmError::Malformed(_))));
        // Offset 5000 in a small data store.
        let mut far = good.clone();
        far[120..124].copy_from_slice(&5000u32.to_be_bytes());
        assert!(matches!(layout(&far), Err(RpmError::Malformed(_))));
        // Entry count and data size beyond the file.
        let mut many = good.clone();
        many[104..108].copy_from_slice(&0x10000u32.to_be_bytes());
        assert!(layout(&many).is_err());
        let mut big = good.clone();
        big[108..112].copy_from_slice(&(MAX_HEADER_DATA - 8).to_be_bytes());
        assert!(layout(&big).is_err());
        // Truncated anywhere inside the headers.
        for cut in [0, 50, 100, 120, l.header_start as usize + 20] {
            assert!(layout(&good[..cut]).is_err(), "cut at {cut}");
        }
    }
}
