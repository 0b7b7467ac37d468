//! Dependency closure as plain functions: what a build provides and requires
//! (read from the metadata Forklift already renders, so dnf, apt and the gate
//! see the same lists), and whether a requirement is satisfied by a set of
//! providers plus the host's base system. No database, no HTTP.
//!
//! RPM: versioned ranges compared with rpmvercmp (release ignored when either
//! side has none, as rpm does), file requirements, `rpmlib(...)` always
//! satisfied, rich dependencies as far as [`rich`] understands them.
//! .deb: `a | b` alternatives, `<< <= = >= >>` with dpkg ordering, virtual
//! packages through Provides (a versioned requirement needs a versioned
//! provide), `:any`/`:native` arch qualifiers.

pub mod extract;
pub mod rich;

use std::cmp::Ordering;
use std::collections::HashMap;

pub use extract::{from_primary, from_stanza, BuildDeps};
use rich::Expr;

/// Which packaging rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Rpm,
    Deb,
}

impl Kind {
    pub fn of(kind: &str) -> Kind {
        if kind == "deb" {
            Kind::Deb
        } else {
            Kind::Rpm
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Op {
    /// rpm's spellings (`<`, `<=`, `=`, `>=`, `>`), primary.xml's flags and
    /// dpkg's (`<<`, `<=`, `=`, `>=`, `>>`; the obsolete `<` and `>` mean `<=`/`>=`).
    pub fn parse(s: &str, kind: Kind) -> Option<Op> {
        Some(match (s, kind) {
            ("<<", _) | ("LT", _) | ("<", Kind::Rpm) => Op::Lt,
            ("<=", _) | ("LE", _) | ("=<", _) | ("<", Kind::Deb) => Op::Le,
            ("=", _) | ("==", _) | ("EQ", _) => Op::Eq,
            (">=", _) | ("GE", _) | ("=>", _) | (">", Kind::Deb) => Op::Ge,
            (">>", _) | ("GT", _) | (">", Kind::Rpm) => Op::Gt,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">",
        }
    }

    fn has(self, o: Ordering) -> bool {
        match o {
            Ordering::Less => matches!(self, Op::Lt | Op::Le),
            Ordering::Equal => matches!(self, Op::Le | Op::Eq | Op::Ge),
            Ordering::Greater => matches!(self, Op::Gt | Op::Ge),
        }
    }
}

/// One capability: a name, optionally with a version relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cap {
    pub name: String,
    pub rel: Option<(Op, String)>,
}

/// What one build offers: its provides (including, for a .deb, its own name
/// at its own version) and, for an RPM, the file paths requirements may name.
#[derive(Debug, Clone)]
pub struct Provider {
    pub id: String,
    pub arch: String,
    pub rel: Option<(Op, String)>,
}

/// The host's base system: capability name patterns, plus what base
/// repositories provide.
#[derive(Debug, Default)]
pub struct External {
    pub patterns: Vec<glob::Pattern>,
    pub provides: HashMap<String, Vec<Option<(Op, String)>>>,
    pub files: std::collections::HashSet<String>,
}

impl External {
    pub fn new(patterns: &[String]) -> Result<External, String> {
        let patterns = patterns
            .iter()
            .map(|p| glob::Pattern::new(p).map_err(|e| format!("pattern {p:?}: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(External {
            patterns,
            ..External::default()
        })
    }

    /// Adds what a base repository's metadata provides.
    pub fn add(&mut self, b: BuildDeps) {
        for p in b.provides {
            self.provides.entry(p.name).or_default().push(p.rel);
        }
        self.files.extend(b.files);
    }

    pub fn len(&self) -> usize {
        self.provides.values().map(Vec::len).sum::<usize>() + self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn satisfies(&self, kind: Kind, c: &Cap) -> bool {
        if self.patterns.iter().any(|p| p.matches(&c.name)) || self.files.contains(&c.name) {
            return true;
        }
        self.provides.get(&c.name).is_some_and(|v| {
            v.iter()
                .any(|r| rel_overlaps(kind, r.as_ref(), c.rel.as_ref()))
        })
    }
}

/// Everything a check may use: providers by capability name and by file
/// path, among the builds the channel will hold, and the base system.
pub struct Universe<'a> {
    pub kind: Kind,
    pub provides: &'a HashMap<String, Vec<Provider>>,
    pub files: &'a HashMap<String, Vec<String>>,
    pub external: &'a External,
}

/// The verdict on one requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Satisfied,
    /// Taken as satisfied, with why (a construct the matcher does not judge).
    Assumed(String),
    Missing,
}

impl Universe<'_> {
    /// Whether the requirement text `req` (an RPM dependency, possibly rich,
    /// or one comma item of a Depends field) of a build of `arch` is met.
    pub fn check(&self, req: &str, arch: &str) -> Verdict {
        match self.kind {
            Kind::Deb => {
                let alts = extract::deb_alternatives(req);
                if alts
                    .iter()
                    .any(|(c, q)| self.deb_atom(c, q.as_deref(), arch))
                {
                    Verdict::Satisfied
                } else {
                    Verdict::Missing
                }
            }
            Kind::Rpm => match rich::parse(req) {
                Ok(e) => match rich::eval(&e, &|c| self.rpm_atom(c), &|a, b| self.with(a, b)) {
                    Some(true) => Verdict::Satisfied,
                    Some(false) => Verdict::Missing,
                    None => {
                        Verdict::Assumed(format!("{req}: not judged (unusual rich dependency)"))
                    }
                },
                Err(e) => Verdict::Assumed(format!("{req}: not judged ({e})")),
            },
        }
    }

    /// The capability names `req` refers to (where its providers are looked up).
    pub fn names(kind: Kind, req: &str) -> Vec<String> {
        match kind {
            Kind::Deb => extract::deb_alternatives(req)
                .into_iter()
                .map(|(c, _)| c.name)
                .collect(),
            Kind::Rpm => match rich::parse(req) {
                Ok(e) => e.atoms().into_iter().map(|c| c.name.clone()).collect(),
                Err(_) => Vec::new(),
            },
        }
    }

    fn rpm_atom(&self, c: &Cap) -> bool {
        if c.name.starts_with("rpmlib(") || self.external.satisfies(Kind::Rpm, c) {
            return true;
        }
        if c.name.starts_with('/') && self.files.get(&c.name).is_some_and(|v| !v.is_empty()) {
            return true;
        }
        self.provides.get(&c.name).is_some_and(|v| {
            v.iter()
                .any(|p| rel_overlaps(Kind::Rpm, p.rel.as_ref(), c.rel.as_ref()))
        })
    }

    /// `(A with B)`: one build provides both.
    fn with(&self, a: &Cap, b: &Cap) -> Option<bool> {
        let ids = |c: &Cap| -> Vec<&str> {
            self.provides
                .get(&c.name)
                .into_iter()
                .flatten()
                .filter(|p| rel_overlaps(Kind::Rpm, p.rel.as_ref(), c.rel.as_ref()))
                .map(|p| p.id.as_str())
                .chain(
                    self.files
                        .get(&c.name)
                        .into_iter()
                        .flatten()
                        .map(String::as_str),
                )
                .collect()
        };
        let (ia, ib) = (ids(a), ids(b));
        if ia.iter().any(|i| ib.contains(i)) {
            return Some(true);
        }
        // The base system's packages are not told apart: trust it.
        let ext = self.external.satisfies(Kind::Rpm, a) && self.external.satisfies(Kind::Rpm, b);
        Some(ext)
    }

    fn deb_atom(&self, c: &Cap, qualifier: Option<&str>, arch: &str) -> bool {
        if self.external.satisfies(Kind::Deb, c) {
            return true;
        }
        let arch_ok = |p: &Provider| match qualifier {
            Some("any") => true,
            Some("native") | None => arch == "all" || p.arch == "all" || p.arch == arch,
            Some(q) => p.arch == q,
        };
        self.provides.get(&c.name).is_some_and(|v| {
            v.iter().any(|p| {
                arch_ok(p)
                    && match (&c.rel, &p.rel) {
                        (None, _) => true,
                        // dpkg: an unversioned provide never meets a versioned depends.
                        (Some(_), None) => false,
                        (Some(_), Some(_)) => {
                            rel_overlaps(Kind::Deb, p.rel.as_ref(), c.rel.as_ref())
                        }
                    }
            })
        })
    }
}

/// Whether a provide's relation and a requirement's relation can both hold
/// (rpm's rpmdsCompare). A side without a version matches anything.
pub fn rel_overlaps(
    kind: Kind,
    provide: Option<&(Op, String)>,
    req: Option<&(Op, String)>,
) -> bool {
    let (Some((pop, pv)), Some((rop, rv))) = (provide, req) else {
        return true;
    };
    let sense = compare(kind, pv, rv);
    match sense {
        Ordering::Less => pop.has(Ordering::Greater) || rop.has(Ordering::Less),
        Ordering::Greater => pop.has(Ordering::Less) || rop.has(Ordering::Greater),
        Ordering::Equal => {
            (pop.has(Ordering::Equal) && rop.has(Ordering::Equal))
                || (pop.has(Ordering::Less) && rop.has(Ordering::Less))
                || (pop.has(Ordering::Greater) && rop.has(Ordering::Greater))
        }
    }
}

/// Orders two version strings by the format's rules: `[E:]V[-R]` for both;
/// for RPM the release is left out when either side has none.
pub fn compare(kind: Kind, a: &str, b: &str) -> Ordering {
    match kind {
        Kind::Deb => crate::formats::debver::compare(
            crate::formats::debver::split(a),
            crate::formats::debver::split(b),
        ),
        Kind::Rpm => {
            let (ea, va, ra) = split_rpm(a);
            let (eb, vb, rb) = split_rpm(b);
            let (ra, rb) = match (ra, rb) {
                (Some(x), Some(y)) => (x, y),
                _ => ("", ""),
            };
            rpm_version::Evr::new(ea, va, ra).cmp(&rpm_version::Evr::new(eb, vb, rb))
        }
    }
}

fn split_rpm(evr: &str) -> (&str, &str, Option<&str>) {
    let (e, rest) = match evr.split_once(':') {
        Some((e, r)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => (e, r),
        _ => ("0", evr),
    };
    match rest.rsplit_once('-') {
        Some((v, r)) => (e, v, Some(r)),
        None => (e, rest, None),
    }
}

/// The build ids among `providers` that would meet `req` (what a refusal
/// offers to take along): every provider of a name `req` mentions whose
/// version fits, checked against a universe holding just it.
pub fn offers(kind: Kind, req: &str, arch: &str, candidates: &Universe<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in Universe::names(kind, req) {
        let ids = candidates
            .provides
            .get(&name)
            .into_iter()
            .flatten()
            .map(|p| p.id.clone())
            .chain(candidates.files.get(&name).into_iter().flatten().cloned());
        for id in ids {
            if out.contains(&id) {
                continue;
            }
            let only = |m: &HashMap<String, Vec<Provider>>| -> HashMap<String, Vec<Provider>> {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.iter().filter(|p| p.id == id).cloned().collect(),
                        )
                    })
                    .collect()
            };
            let provides = only(candidates.provides);
            let files: HashMap<String, Vec<String>> = candidates
                .files
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().filter(|i| **i == id).cloned().collect()))
                .collect();
            let u = Universe {
                kind,
                provides: &provides,
                files: &files,
                external: candidates.external,
            };
            if u.check(req, arch) == Verdict::Satisfied {
                out.push(id);
            }
        }
    }
    out
}

impl Expr {
    fn atoms(&self) -> Vec<&Cap> {
        match self {
            Expr::Atom(c) => vec![c],
            Expr::Op(_, parts) => parts.iter().flat_map(|p| p.atoms()).collect(),
        }
    }
}

#[cfg(test)]
mod tests;
