//! Pure format code: package parsing, version ordering and metadata rendering.
//! Nothing here touches the database, the blob store or HTTP.

pub mod apt;
pub mod deb;
pub mod debver;
pub mod deps;
pub mod gzchain;
pub mod rpm;

pub mod yum;

use std::cmp::Ordering;

/// Runs a parser over untrusted bytes so that a panic inside it (in a
/// dependency's code: an index out of range, an overflow) becomes an error
/// message instead of taking the request, or the process, with it.
pub fn contain_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "parser failure".into())
    })
}

/// Orders two builds of one kind by epoch, version and release: dpkg's rules
/// for `.deb` (kind "deb"), rpmvercmp for RPMs.
pub fn compare_versions(kind: &str, a: (i32, &str, &str), b: (i32, &str, &str)) -> Ordering {
    if kind == "deb" {
        debver::compare(a, b)
    } else {
        compare_evr(a, b)
    }
}

/// Orders two RPM builds by epoch, version and release (rpmvercmp).
pub fn compare_evr(a: (i32, &str, &str), b: (i32, &str, &str)) -> Ordering {
    let ea = a.0.to_string();
    let eb = b.0.to_string();
    rpm_version::Evr::new(ea.as_str(), a.1, a.2).cmp(&rpm_version::Evr::new(eb.as_str(), b.1, b.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpmvercmp_ordering() {
        assert_eq!(
            compare_evr((0, "1.10", "1"), (0, "1.9", "1")),
            Ordering::Greater
        );
        assert_eq!(
            compare_evr((1, "1.0", "1"), (0, "9.9", "9")),
            Ordering::Greater
        );
        assert_eq!(
            compare_evr((0, "1.0~rc1", "1"), (0, "1.0", "1")),
            Ordering::Less
        );
        assert_eq!(
            compare_evr((0, "2.0", "1"), (0, "2.0", "1")),
            Ordering::Equal
        );
        assert_eq!(
            compare_evr((0, "2.0", "1.el9"), (0, "2.0", "1.el8")),
            Ordering::Greater
        );
    }
}
