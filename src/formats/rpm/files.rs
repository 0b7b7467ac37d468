//! The file list, bounded before it is built: primary files for primary.xml,
//! the rest for filelists.xml.

use std::collections::HashMap;

use rpm::{IndexTag, PackageMetadata};

use super::*;

/// createrepo_c's `cr_is_primary`: which files also go into primary.xml.
pub fn is_primary_file(path: &str) -> bool {
    path.starts_with("/etc/") || path.contains("bin/") || path == "/usr/lib/sendmail"
}

/// The longest file path accepted (Linux's PATH_MAX).
pub(super) const MAX_PATH: usize = 4096;

/// All file paths of one package together. Each path is a directory name plus
/// a base name, and many base names may share one directory: the total is
/// checked before any path is built, or one long directory name shared by a
/// million empty base names would ask for terabytes.
pub(super) const MAX_PATHS_TOTAL: usize = 256 * 1024 * 1024;

pub(super) fn read_files(
    meta: &PackageMetadata,
    strings: &HashMap<u32, Vec<String>>,
) -> Result<Vec<FileItem>, RpmError> {
    let h = &meta.header;
    let modes = h
        .get_entry_data_as_u16_array(IndexTag::RPMTAG_FILEMODES)
        .unwrap_or_default();
    let flags = h
        .get_entry_data_as_u32_array(IndexTag::RPMTAG_FILEFLAGS)
        .unwrap_or_default();
    let get = |t: IndexTag| strings.get(&(t as u32));
    // Modern packages split paths into dir + base; v3 packages list full paths.
    let paths: Vec<String> = match (
        get(IndexTag::RPMTAG_BASENAMES),
        get(IndexTag::RPMTAG_DIRNAMES),
        h.get_entry_data_as_u32_array(IndexTag::RPMTAG_DIRINDEXES),
    ) {
        (Some(bases), Some(dirs), Ok(idx)) => {
            let mut total = 0usize;
            for (i, base) in bases.iter().enumerate() {
                let dir = idx
                    .get(i)
                    .and_then(|&d| dirs.get(d as usize))
                    .map_or(0, String::len);
                let len = dir + base.len();
                total += len;
                if len > MAX_PATH || total > MAX_PATHS_TOTAL {
                    return Err(RpmError::Malformed(
                        "the file list is larger than any real package's".into(),
                    ));
                }
            }
            bases
                .iter()
                .enumerate()
                .map(|(i, base)| {
                    let dir = idx
                        .get(i)
                        .and_then(|&d| dirs.get(d as usize))
                        .map(String::as_str)
                        .unwrap_or("");
                    format!("{dir}{base}")
                })
                .collect()
        }
        _ => get(IndexTag::RPMTAG_OLDFILENAMES)
            .cloned()
            .unwrap_or_default(),
    };
    Ok(paths
        .into_iter()
        .enumerate()
        .map(|(i, path)| {
            let mode = modes.get(i).copied().unwrap_or(0);
            let flag = flags.get(i).copied().unwrap_or(0);
            let kind = if mode & S_IFMT == S_IFDIR {
                FileKind::Dir
            } else if flag & RPMFILE_GHOST != 0 {
                FileKind::Ghost
            } else {
                FileKind::File
            };
            FileItem { path, kind }
        })
        .collect())
}
