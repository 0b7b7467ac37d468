//! Header strings: decoding text that is not UTF-8 and the fixes createrepo_c
//! applies to summaries and descriptions.

use std::collections::HashMap;

use rpm::IndexTag;

use super::*;

/// Decodes bytes as UTF-8, or as ISO-8859-1 when they are not valid UTF-8.
pub fn decode_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| b as char).collect(),
    }
}

/// String-typed entries of a raw RPM header (the 16-byte intro, the index and the
/// data store), decoded with [`decode_text`]. Malformed entries are skipped.
pub fn header_strings(raw: &[u8]) -> HashMap<u32, Vec<String>> {
    let mut out = HashMap::new();
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    if raw.len() < 16 || raw[..3] != [0x8e, 0xad, 0xe8] {
        return out;
    }
    let n = be(&raw[8..12]) as usize;
    let index_end = 16 + n.saturating_mul(16);
    if index_end > raw.len() {
        return out;
    }
    let store = &raw[index_end..];
    for i in 0..n {
        let e = &raw[16 + i * 16..32 + i * 16];
        let (tag, kind, offset, count) = (
            be(&e[0..4]),
            be(&e[4..8]),
            be(&e[8..12]) as usize,
            be(&e[12..16]) as usize,
        );
        // 6 = STRING, 8 = STRING_ARRAY, 9 = I18NSTRING
        if !matches!(kind, 6 | 8 | 9) || offset >= store.len() {
            continue;
        }
        let count = if kind == 6 { 1 } else { count.min(store.len()) };
        let mut pos = offset;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            let Some(len) = store[pos..].iter().position(|&b| b == 0) else {
                break;
            };
            items.push(decode_text(&store[pos..pos + len]));
            pos += len + 1;
            if pos >= store.len() {
                break;
            }
        }
        out.insert(tag, items);
    }
    out
}

pub(super) fn apply_text_fixes(info: &mut RpmInfo, strings: &HashMap<u32, Vec<String>>) {
    let first = |tag: IndexTag| strings.get(&(tag as u32)).and_then(|v| v.first()).cloned();
    let fields: [(&mut String, IndexTag); 9] = [
        (&mut info.summary, IndexTag::RPMTAG_SUMMARY),
        (&mut info.description, IndexTag::RPMTAG_DESCRIPTION),
        (&mut info.packager, IndexTag::RPMTAG_PACKAGER),
        (&mut info.url, IndexTag::RPMTAG_URL),
        (&mut info.license, IndexTag::RPMTAG_LICENSE),
        (&mut info.vendor, IndexTag::RPMTAG_VENDOR),
        (&mut info.group, IndexTag::RPMTAG_GROUP),
        (&mut info.buildhost, IndexTag::RPMTAG_BUILDHOST),
        (&mut info.sourcerpm, IndexTag::RPMTAG_SOURCERPM),
    ];
    for (field, tag) in fields {
        if field.contains('\u{FFFD}') {
            if let Some(v) = first(tag) {
                *field = v;
            }
        }
    }
    if info
        .changelog
        .iter()
        .any(|c| c.author.contains('\u{FFFD}') || c.text.contains('\u{FFFD}'))
    {
        let names = strings.get(&(IndexTag::RPMTAG_CHANGELOGNAME as u32));
        let texts = strings.get(&(IndexTag::RPMTAG_CHANGELOGTEXT as u32));
        // info.changelog holds the newest entries reversed; header order is newest first.
        let n = info.changelog.len();
        for (i, c) in info.changelog.iter_mut().enumerate() {
            let h = n - 1 - i;
            if let Some(a) = names.and_then(|v| v.get(h)) {
                c.author = a.clone();
            }
            if let Some(t) = texts.and_then(|v| v.get(h)) {
                c.text = t.clone();
            }
        }
    }
}
