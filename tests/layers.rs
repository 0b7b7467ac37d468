//! Layers point down only: `http` → `service` → {`formats`, `db`, `store`,
//! `signing`}. This reads every `crate::…` path in the non-test code of
//! `src/` and fails on an arrow that points up or sideways across the rule.

use std::path::{Path, PathBuf};

/// Which top-level module a source file belongs to.
fn layer(file: &Path, src: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

/// What a layer may not name, and why.
fn forbidden(layer: &str) -> &'static [&'static str] {
    match layer {
        // Pure code and storage know nothing above them.
        "formats" | "store" | "signing" => &["service", "http", "app", "config", "db", "policy"],
        // The promotion rules are pure: they read settings' specs, nothing else.
        "policy" => &[
            "service", "http", "app", "db", "store", "formats", "signing",
        ],
        "db" => &[
            "service", "http", "app", "config", "formats", "store", "policy",
        ],
        // Handlers reach data only through services.
        "http" => &["db", "store", "app", "client"],
        "service" => &["http", "app", "client"],
        // Settings are read by services; they hold no service types.
        "config" => &["service", "http", "app", "db", "store"],
        // Counters know nothing of what they count.
        "metrics" => &[
            "service", "http", "app", "db", "store", "config", "formats", "policy",
        ],
        // The client knows the server only through its HTTP API.
        "client" => &[
            "service", "http", "app", "db", "store", "config", "formats", "policy", "signing",
            "metrics",
        ],
        _ => &[],
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The domains of `src/service/`, bottom first: a domain may name only those
/// of a lower rank (and the shared root: `Ctx`, `Actor`, errors, events).
const SERVICE_DOMAINS: &[(&str, u8)] = &[
    ("catalog", 0),
    ("access", 1),
    ("publish", 1),
    ("ingest", 2),
    ("promotion", 2),
    ("webhooks", 2),
    ("repo", 2),
    ("board", 3),
    ("observe", 1),
    ("ops", 2),
];

fn domain_rank(name: &str) -> Option<u8> {
    SERVICE_DOMAINS
        .iter()
        .find(|(d, _)| *d == name)
        .map(|(_, r)| *r)
}

/// The service domain a file under `src/service/` belongs to, if any.
fn domain_of(file: &Path, src: &Path) -> Option<String> {
    let rel = file.strip_prefix(src.join("service")).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_string();
    domain_rank(&name).map(|_| name)
}

/// `crate::service::x` names in `code`, outside tests.
fn service_refs(code: &str) -> Vec<String> {
    let code = code.split("#[cfg(test)]").next().unwrap_or("");
    code.match_indices("crate::service::")
        .map(|(i, m)| {
            code[i + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// `crate::x` names in `code`, outside `#[cfg(test)]` modules at the end.
fn crate_refs(code: &str) -> Vec<String> {
    let code = code.split("#[cfg(test)]").next().unwrap_or("");
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // `use crate::{a, b}` names several.
        if name.is_empty() && after.starts_with('{') {
            let group = &after[1..after.find('}').unwrap_or(after.len())];
            out.extend(
                group
                    .split(',')
                    .map(|s| s.trim().split("::").next().unwrap_or("").to_string()),
            );
        } else {
            out.push(name);
        }
        rest = &rest[i + "crate::".len()..];
    }
    out
}

#[test]
fn the_reader_sees_every_form() {
    let refs = crate_refs("use crate::db::x;\nuse crate::{store::S, formats};\nlet a = crate::http::f();\n#[cfg(test)]\nuse crate::app;");
    assert_eq!(refs, vec!["db", "store", "formats", "http"]);
}

#[test]
fn layers_point_down_only() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 30, "found only {} files", files.len());
    let mut wrong = Vec::new();
    for f in &files {
        let l = layer(f, &src);
        let text = std::fs::read_to_string(f).expect("read");
        for r in crate_refs(&text) {
            if forbidden(&l).contains(&r.as_str()) {
                wrong.push(format!("{} ({l}) uses crate::{r}", f.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "upward or sideways imports:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn service_domains_point_down_only() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src.join("service"), &mut files);
    let mut wrong = Vec::new();
    let mut seen = 0;
    for f in &files {
        let Some(d) = domain_of(f, &src) else {
            continue;
        };
        seen += 1;
        let rank = domain_rank(&d).unwrap_or(0);
        let text = std::fs::read_to_string(f).expect("read");
        for r in service_refs(&text) {
            if r != d && domain_rank(&r).is_some_and(|other| other >= rank) {
                wrong.push(format!("{} ({d}) uses crate::service::{r}", f.display()));
            }
        }
    }
    assert!(seen > 20, "found only {seen} files in service domains");
    assert!(
        wrong.is_empty(),
        "service domains must point down only:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_domain_reader_sees_paths() {
    let refs = service_refs("use crate::service::publish::commit;\nlet x = crate::service::catalog::queries::resolve(c);");
    assert_eq!(refs, vec!["publish", "catalog"]);
}
