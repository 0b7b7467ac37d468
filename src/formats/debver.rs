//! Debian version ordering, as dpkg defines it (deb-version(7)): epochs as
//! numbers, then the upstream version, then the revision, each compared by
//! dpkg's `verrevcmp`. It differs from rpmvercmp where it matters for
//! retention and fall-back: `~` sorts before everything, even the end of the
//! string; letters sort before other characters; `1.0-1ubuntu1` < `1.0-1+deb12u1`;
//! `2.0` < `2.0+`.

use std::cmp::Ordering;

/// `[epoch:]upstream[-revision]` → (epoch, upstream, revision); a missing
/// epoch is 0 and a missing revision empty, as dpkg reads them.
pub fn split(version: &str) -> (i32, &str, &str) {
    let (epoch, rest) = match version.split_once(':') {
        Some((e, r)) => (e.parse().unwrap_or(0), r),
        None => (0, version),
    };
    match rest.rsplit_once('-') {
        Some((u, r)) => (epoch, u, r),
        None => (epoch, rest, ""),
    }
}

/// Orders two versions given as (epoch, upstream, revision).
pub fn compare(a: (i32, &str, &str), b: (i32, &str, &str)) -> Ordering {
    a.0.cmp(&b.0)
        .then_with(|| verrevcmp(a.1.as_bytes(), b.1.as_bytes()))
        .then_with(|| verrevcmp(a.2.as_bytes(), b.2.as_bytes()))
}

/// dpkg's weight of a non-digit character: `~` lowest (below the end of the
/// string), then the end, then letters, then everything else.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// Alternating runs: non-digits compared by [`weight`], digits as numbers.
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    let at = |s: &[u8], k: usize| s.get(k).copied();
    let digit = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_digit());
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(at(a, i))) || (j < b.len() && !digit(at(b, j))) {
            let (wa, wb) = (weight(at(a, i)), weight(at(b, j)));
            if wa != wb {
                return wa.cmp(&wb);
            }
            i += 1;
            j += 1;
        }
        while at(a, i) == Some(b'0') {
            i += 1;
        }
        while at(b, j) == Some(b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(at(a, i)) && digit(at(b, j)) {
            if first_diff == Ordering::Equal {
                first_diff = at(a, i).cmp(&at(b, j));
            }
            i += 1;
            j += 1;
        }
        if digit(at(a, i)) {
            return Ordering::Greater;
        }
        if digit(at(b, j)) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        compare(split(a), split(b))
    }

    #[test]
    fn where_dpkg_and_rpm_disagree() {
        assert_eq!(cmp("1.0-1ubuntu1", "1.0-1+deb12u1"), Ordering::Less);
        assert_eq!(cmp("2.0", "2.0+"), Ordering::Less);
        assert_eq!(cmp("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(cmp("1.0", "1.0a"), Ordering::Less);
        assert_eq!(cmp("1.0a", "1.0+"), Ordering::Less);
        assert_eq!(cmp("1.0~~", "1.0~"), Ordering::Less);
    }

    #[test]
    fn numbers_epochs_and_revisions() {
        assert_eq!(cmp("1.10", "1.9"), Ordering::Greater);
        assert_eq!(cmp("1:0.1", "9.9"), Ordering::Greater);
        assert_eq!(cmp("1.001", "1.1"), Ordering::Equal);
        assert_eq!(cmp("1.0", "1.0-0"), Ordering::Equal);
        assert_eq!(cmp("1.0-2", "1.0-10"), Ordering::Less);
        assert_eq!(cmp("0:1.0", "1.0"), Ordering::Equal);
        assert_eq!(cmp("1.2-3-4", "1.2-3-5"), Ordering::Less);
        assert_eq!(split("2:1.2-3-4"), (2, "1.2-3", "4"));
    }
}
