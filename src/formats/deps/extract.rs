//! What builds provide and require, read from yum primary.xml (a package's
//! fragment or a base repository's whole file) and apt Packages stanzas.

use std::io::BufRead;

use quick_xml::events::Event;

use super::{Cap, Kind, Op};

/// One build's dependency facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildDeps {
    pub name: String,
    pub arch: String,
    /// Provides, the build's own name at its own version included.
    pub provides: Vec<Cap>,
    /// Requirement texts: an RPM dependency (rich ones as written), or one
    /// comma item of a .deb's Pre-Depends or Depends (`a (>= 1) | b`).
    pub requires: Vec<String>,
    /// RPM file paths listed in primary.xml (what requirements on paths
    /// are matched against, as dnf matches them).
    pub files: Vec<String>,
}

/// An RPM requirement as text: `name`, or `name op [E:]V[-R]`.
pub fn rpm_text(c: &Cap) -> String {
    match &c.rel {
        Some((op, v)) => format!("{} {} {v}", c.name, op.as_str()),
        None => c.name.clone(),
    }
}

/// Reads every `<package>` of primary.xml text (one fragment or a file).
pub fn from_primary<R: BufRead>(r: R, limit: usize) -> Result<Vec<BuildDeps>, String> {
    let mut reader = quick_xml::Reader::from_reader(r);
    let mut buf = Vec::new();
    let mut out: Vec<BuildDeps> = Vec::new();
    let mut cur: Option<BuildDeps> = None;
    let mut evr: Option<String> = None;
    let mut section = String::new();
    let mut text_of: Option<String> = None;
    let mut text = String::new();
    let mut entries = 0usize;
    loop {
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("primary.xml: {e}"))?;
        match ev {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let attr = |k: &str| -> Option<String> {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.local_name().as_ref() == k.as_bytes())
                        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
                };
                match local.as_str() {
                    "package" => {
                        cur = Some(BuildDeps::default());
                        evr = None;
                    }
                    "name" | "arch" | "file" => {
                        text_of = Some(local.clone());
                        text.clear();
                    }
                    "version" if section.is_empty() => {
                        evr = attr("ver").map(|v| join_evr(attr("epoch"), v, attr("rel")));
                    }
                    "provides" | "requires" | "conflicts" | "obsoletes" | "recommends"
                    | "suggests" | "supplements" | "enhances" => section = local.clone(),
                    "entry" => {
                        entries += 1;
                        if entries > limit {
                            return Err(format!("more than {limit} dependency entries"));
                        }
                        let (Some(b), Some(name)) = (cur.as_mut(), attr("name")) else {
                            continue;
                        };
                        let rel = attr("flags")
                            .and_then(|f| Op::parse(&f, Kind::Rpm))
                            .zip(attr("ver"))
                            .map(|(op, v)| (op, join_evr(attr("epoch"), v, attr("rel"))));
                        let c = Cap { name, rel };
                        match section.as_str() {
                            "provides" => b.provides.push(c),
                            "requires" => b.requires.push(rpm_text(&c)),
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(t) if text_of.is_some() => {
                text.push_str(&t.decode().map_err(|e| e.to_string())?);
            }
            Event::GeneralRef(r) if text_of.is_some() => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    text.push(c);
                } else {
                    text.push_str(match r.decode().map_err(|e| e.to_string())?.as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    });
                }
            }
            Event::End(e) => {
                let local = e.local_name();
                let local = local.as_ref();
                if local == b"package" {
                    if let Some(mut b) = cur.take() {
                        self_provide(&mut b, evr.take());
                        out.push(b);
                    }
                } else if local == section.as_bytes() {
                    section.clear();
                } else if let (Some(what), Some(b)) = (text_of.take(), cur.as_mut()) {
                    let t = std::mem::take(&mut text);
                    match what.as_str() {
                        "name" if section.is_empty() => b.name = t,
                        "arch" if section.is_empty() => b.arch = t,
                        "file" => {
                            entries += 1;
                            if entries > limit {
                                return Err(format!("more than {limit} dependency entries"));
                            }
                            b.files.push(t)
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        buf.clear();
    }
    Ok(out)
}

/// rpm gives every package `name = E:V-R`; so does libsolv reading primary.xml.
fn self_provide(b: &mut BuildDeps, evr: Option<String>) {
    if !b.provides.iter().any(|p| p.name == b.name) {
        b.provides.push(Cap {
            name: b.name.clone(),
            rel: evr.map(|v| (Op::Eq, v)),
        });
    }
}

fn join_evr(epoch: Option<String>, ver: String, rel: Option<String>) -> String {
    let mut s = match epoch.filter(|e| !e.is_empty() && e != "0") {
        Some(e) => format!("{e}:{ver}"),
        None => ver,
    };
    if let Some(r) = rel.filter(|r| !r.is_empty()) {
        s.push('-');
        s.push_str(&r);
    }
    s
}

/// Reads apt Packages stanzas (one, or a whole file separated by blank lines).
pub fn from_stanza(text: &str) -> Vec<BuildDeps> {
    let mut out = Vec::new();
    for para in text.split("\n\n") {
        let mut b = BuildDeps::default();
        let mut version = None;
        let mut field: Option<String> = None;
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in para.lines() {
            if line.starts_with([' ', '\t']) {
                if let (Some(_), Some((_, v))) = (&field, fields.last_mut()) {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if let Some((k, v)) = line.split_once(':') {
                field = Some(k.to_string());
                fields.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        for (k, v) in &fields {
            match k.as_str() {
                "package" => b.name = v.clone(),
                "version" => version = Some(v.clone()),
                "architecture" => b.arch = v.clone(),
                "provides" => b
                    .provides
                    .extend(split_list(v).filter_map(|p| deb_cap(p).map(|(c, _)| c))),
                "depends" | "pre-depends" => {
                    b.requires.extend(split_list(v).map(str::to_string));
                }
                _ => {}
            }
        }
        if b.name.is_empty() {
            continue;
        }
        b.provides.push(Cap {
            name: b.name.clone(),
            rel: version.map(|v| (Op::Eq, v)),
        });
        out.push(b);
    }
    out
}

fn split_list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// `a (>= 1) | b:any` → each alternative with its arch qualifier.
pub fn deb_alternatives(req: &str) -> Vec<(Cap, Option<String>)> {
    req.split('|').filter_map(deb_cap).collect()
}

/// `name[:qualifier] [(op version)] [arch list] [<profiles>]`.
fn deb_cap(text: &str) -> Option<(Cap, Option<String>)> {
    // Architecture restrictions and build profiles belong to source packages.
    let mut depth = 0;
    let end = text
        .char_indices()
        .find(|&(_, c)| {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            depth == 0 && matches!(c, '[' | '<')
        })
        .map_or(text.len(), |(i, _)| i);
    let text = text[..end].trim();
    let (head, rel) = match text.split_once('(') {
        Some((h, r)) => {
            let r = r.trim_end().trim_end_matches(')').trim();
            let split = r
                .find(|c: char| !matches!(c, '<' | '>' | '='))
                .unwrap_or(r.len());
            let (op, ver) = r.split_at(split);
            let rel = Op::parse(op.trim(), Kind::Deb).map(|o| (o, ver.trim().to_string()));
            (h.trim(), rel)
        }
        None => (text, None),
    };
    if head.is_empty() {
        return None;
    }
    let (name, q) = match head.split_once(':') {
        Some((n, q)) => (n, Some(q.to_string())),
        None => (head, None),
    };
    Some((
        Cap {
            name: name.to_string(),
            rel,
        },
        q,
    ))
}
