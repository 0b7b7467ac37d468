//! Dependencies: provides, requires, conflicts and the rest as createrepo_c
//! lists them (pre-requirements marked, rpmlib() and self-provided ones left out).

use std::collections::{HashMap, HashSet};

use rpm::{IndexTag, PackageMetadata};

use super::*;

pub(super) fn flag_str(flags: u32) -> Option<&'static str> {
    match flags & RPMSENSE_SENSEMASK {
        2 => Some("LT"),
        4 => Some("GT"),
        8 => Some("EQ"),
        10 => Some("LE"),
        12 => Some("GE"),
        _ => None,
    }
}

/// Splits `E:V-R` the way createrepo_c does: epoch "0" when absent, release optional.
pub fn split_evr(evr: &str) -> (Option<String>, Option<String>, Option<String>) {
    if evr.is_empty() {
        return (None, None, None);
    }
    let (epoch, rest) = match evr.split_once(':') {
        Some((e, r)) if !e.is_empty() && e.chars().all(|c| c.is_ascii_digit()) => (e, r),
        _ => ("0", evr),
    };
    let (ver, rel) = match rest.rsplit_once('-') {
        Some((v, r)) => (v.to_string(), Some(r.to_string())),
        None => (rest.to_string(), None),
    };
    (Some(epoch.to_string()), Some(ver), rel)
}

/// A dependency as stored in the header: name, RPMSENSE flags, EVR string.
pub(super) type RawDep = (String, u32, String);

/// Reads one dependency kind from the header's parallel arrays, with names and
/// versions decoded by [`decode_text`] (not lossily).
pub(super) fn raw_deps(
    meta: &PackageMetadata,
    strings: &HashMap<u32, Vec<String>>,
    name: IndexTag,
    flags: IndexTag,
    version: IndexTag,
) -> Vec<RawDep> {
    let Some(names) = strings.get(&(name as u32)) else {
        return Vec::new();
    };
    let flags = meta
        .header
        .get_entry_data_as_u32_array(flags)
        .unwrap_or_default();
    let versions = strings.get(&(version as u32));
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                n.clone(),
                flags.get(i).copied().unwrap_or(0),
                versions.and_then(|v| v.get(i)).cloned().unwrap_or_default(),
            )
        })
        .collect()
}

pub(super) fn to_dep(d: &RawDep) -> Dep {
    let bits = d.1;
    let (epoch, ver, rel) = split_evr(&d.2);
    Dep {
        name: d.0.clone(),
        flags: flag_str(bits),
        epoch,
        ver,
        rel,
        pre: bits
            & (RPMSENSE_PREREQ
                | RPMSENSE_SCRIPT_PRE
                | RPMSENSE_SCRIPT_POST
                | RPMSENSE_PRETRANS
                | RPMSENSE_POSTTRANS)
            != 0,
    }
}

/// Every dependency kind except requires: converted and de-duplicated, order kept.
pub(super) fn deps(list: Vec<RawDep>) -> Vec<Dep> {
    let mut seen = HashSet::new();
    list.iter()
        .map(to_dep)
        .map(|mut d| {
            d.pre = false;
            d
        })
        .filter(|d| seen.insert(dep_key(d)))
        .collect()
}

pub(super) fn dep_key(d: &Dep) -> Dep {
    d.clone()
}

/// createrepo_c's requires rules: drop `rpmlib(...)`, requires on the package's own
/// primary files, requires identical to one of its own provides, duplicates, and all
/// but the highest `libc.so.6(GLIBC_x)`.
pub(super) fn filter_requires(
    list: Vec<RawDep>,
    provides: &[Dep],
    primary_files: &HashSet<&str>,
) -> Vec<Dep> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut best_libc: Option<(String, Dep)> = None;
    for raw in &list {
        if raw.0.starts_with("rpmlib(") {
            continue;
        }
        if raw.0.starts_with('/') && primary_files.contains(raw.0.as_str()) {
            continue;
        }
        let d = to_dep(raw);
        if provides.iter().any(|p| {
            p.name == d.name
                && p.flags == d.flags
                && p.epoch == d.epoch
                && p.ver == d.ver
                && p.rel == d.rel
        }) {
            continue;
        }
        if d.name.starts_with("libc.so.6") {
            let v = glibc_version(&d.name).unwrap_or_default();
            let better = match &best_libc {
                None => true,
                Some((cur, _)) => {
                    rpm_version::Evr::new("0", v.as_str(), "")
                        > rpm_version::Evr::new("0", cur.as_str(), "")
                }
            };
            if better {
                best_libc = Some((v, d));
            }
            continue;
        }
        if seen.insert(dep_key(&d)) {
            out.push(d);
        }
    }
    if let Some((_, d)) = best_libc {
        out.push(d);
    }
    out
}

/// `libc.so.6(GLIBC_2.34)(64bit)` → `2.34`.
pub(super) fn glibc_version(name: &str) -> Option<String> {
    let rest = name.strip_prefix("libc.so.6(GLIBC_")?;
    let end = rest.find(')')?;
    Some(rest[..end].to_string())
}
