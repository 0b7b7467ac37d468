//! The read commands and what every command prints: plain functions from the
//! server's answers to text, and `--output json` passing the JSON through.

use std::collections::BTreeMap;

use super::api::{self, segment, Api};
use super::model::{
    Candidate, Candidates, Change, Channel, ChannelDetail, Diff, Package, PackageDetail,
};
use super::{Exit, Failure, Output};

/// Columns padded to their widest cell; the last column is not padded.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| h.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                let cells = self.rows.iter().filter_map(|r| r.get(c));
                cells.map(|s| s.chars().count()).max().unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let pad = widths[c] - cell.chars().count();
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

fn print_json(value: &serde_json::Value) -> Result<Exit, Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new(Exit::Unavailable, e.to_string()))?;
    println!("{text}");
    Ok(Exit::Ok)
}

fn fetch(api: &Api, path: &str) -> Result<serde_json::Value, Failure> {
    api.get::<serde_json::Value>(path)
}

/// A read command of one answer: the server's JSON as it came, or `render`
/// of it as text.
fn show<T: serde::de::DeserializeOwned>(
    api: &Api,
    path: &str,
    render: fn(&T) -> String,
) -> Result<Exit, Failure> {
    let value = fetch(api, path)?;
    if api.output == Output::Json {
        return print_json(&value);
    }
    print!("{}", render(&api::decode(path, value)?));
    Ok(Exit::Ok)
}

/// `status [CHANNEL]`.
pub fn status(api: &Api, channel: Option<&str>) -> Result<Exit, Failure> {
    if let Some(name) = channel {
        let path = format!("/api/v1/channels/{}", segment(name));
        return show(api, &path, render_channel);
    }
    let channels: Vec<Channel> = api.get("/api/v1/channels")?;
    let mut values = Vec::new();
    for c in &channels {
        values.push(fetch(
            api,
            &format!("/api/v1/channels/{}", segment(&c.name)),
        )?);
    }
    if api.output == Output::Json {
        return print_json(&serde_json::json!({ "channels": values }));
    }
    let mut details = Vec::new();
    for v in values {
        details.push(api::decode::<ChannelDetail>("/api/v1/channels/{name}", v)?);
    }
    print!("{}", render_status(&details));
    Ok(Exit::Ok)
}

fn revision_cells(c: &Channel) -> [String; 3] {
    match &c.revision {
        Some(r) => [
            r.number.to_string(),
            r.package_count.to_string(),
            r.created_at.clone(),
        ],
        None => ["-".into(), "0".into(), "-".into()],
    }
}

fn frozen_cell(c: &Channel) -> String {
    match &c.frozen {
        Some(m) => format!("frozen by {}: {}", m.by, m.reason),
        None => String::new(),
    }
}

/// Every channel's head, then what each serves of each name and arch: the
/// newest build there, side by side in promotion order.
pub fn render_status(details: &[ChannelDetail]) -> String {
    let mut heads = Table::new(&["CHANNEL", "REVISION", "PACKAGES", "SINCE", "STATE"]);
    for d in details {
        let [rev, count, since] = revision_cells(&d.channel);
        heads.row(vec![
            d.channel.name.clone(),
            rev,
            count,
            since,
            frozen_cell(&d.channel),
        ]);
    }
    let mut serves: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (i, d) in details.iter().enumerate() {
        for p in &d.packages {
            let cells = serves
                .entry((p.name.clone(), p.arch.clone()))
                .or_insert_with(|| vec!["-".to_string(); details.len()]);
            // A channel lists each name's builds oldest first (by rpm's or
            // dpkg's version order): the last one is what hosts install.
            cells[i] = p.evr();
        }
    }
    let mut header = vec!["PACKAGE".to_string(), "ARCH".to_string()];
    header.extend(details.iter().map(|d| d.channel.name.to_uppercase()));
    let mut matrix = Table { rows: vec![header] };
    for ((name, arch), cells) in serves {
        let mut row = vec![name, arch];
        row.extend(cells);
        matrix.row(row);
    }
    format!("{}\n{}", heads.render(), matrix.render())
}

fn package_rows(table: &mut Table, packages: &[Package]) {
    for p in packages {
        table.row(vec![
            p.name.clone(),
            p.evr(),
            p.arch.clone(),
            p.id.chars().take(12).collect(),
            p.filename.clone(),
        ]);
    }
}

pub fn render_channel(d: &ChannelDetail) -> String {
    let [rev, count, since] = revision_cells(&d.channel);
    let noun = if count == "1" { "package" } else { "packages" };
    let mut out = format!(
        "{}: revision {rev}, {count} {noun}, since {since}{}\n",
        d.channel.name,
        match &d.channel.frozen {
            Some(m) => format!(", frozen by {}: {}", m.by, m.reason),
            None => String::new(),
        }
    );
    if let Some(source) = &d.channel.source {
        out.push_str(&format!("promoted from {source}\n"));
    }
    let mut t = Table::new(&["NAME", "VERSION", "ARCH", "ID", "FILE"]);
    package_rows(&mut t, &d.packages);
    out.push('\n');
    out.push_str(&t.render());
    out
}

/// `history BUILD`.
pub fn history(api: &Api, build: &str) -> Result<Exit, Failure> {
    show(
        api,
        &format!("/api/v1/packages/{}", segment(build)),
        render_history,
    )
}

pub fn render_history(d: &PackageDetail) -> String {
    let p = &d.package;
    let mut out = format!("{} {} {}\nsha256 {}\n", p.name, p.evr(), p.arch, p.id);
    out.push_str(&format!(
        "in: {}\n",
        if p.channels.is_empty() {
            "no channel".to_string()
        } else {
            p.channels.join(", ")
        }
    ));
    if let Some(m) = &p.held {
        out.push_str(&format!("held by {} at {}: {}\n", m.by, m.at, m.reason));
    }
    if let Some(m) = &p.discarded {
        out.push_str(&format!(
            "discarded by {} at {}: {}\n",
            m.by, m.at, m.reason
        ));
    }
    let mut t = Table::new(&["AT", "EVENT", "CHANNEL", "REVISION", "ACTOR", "REASON"]);
    for e in &d.history {
        t.row(vec![
            e.at.clone(),
            event_words(e),
            e.channel.clone().unwrap_or_default(),
            e.revision.map(|r| r.to_string()).unwrap_or_default(),
            e.actor.clone(),
            reason_words(e),
        ]);
    }
    out.push('\n');
    out.push_str(&t.render());
    out
}

/// A check reads `check integration passed`; other events by their kind.
fn event_words(e: &super::model::Event) -> String {
    let detail = |k: &str| {
        e.detail
            .as_ref()
            .and_then(|d| d.get(k))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    match e.kind.as_str() {
        "check" => format!("check {} {}", detail("name"), detail("status")),
        _ => e.kind.clone(),
    }
}

/// The reason, with the link a check or note carries.
fn reason_words(e: &super::model::Event) -> String {
    let reason = e.reason.clone().unwrap_or_default();
    let url = e
        .detail
        .as_ref()
        .and_then(|d| d.get("url"))
        .and_then(|v| v.as_str());
    match url {
        Some(u) if reason.is_empty() => u.to_string(),
        Some(u) => format!("{reason} {u}"),
        None => reason,
    }
}

/// `diff CHANNEL FROM TO`.
pub fn diff(api: &Api, channel: &str, from: i32, to: i32) -> Result<Exit, Failure> {
    let path = format!(
        "/api/v1/channels/{}/diff?from={from}&to={to}",
        segment(channel)
    );
    show(api, &path, render_diff)
}

pub fn render_diff(d: &Diff) -> String {
    let mut t = Table::default();
    let mut signs = Vec::new();
    for (sign, list) in [("-", &d.removed), ("+", &d.added)] {
        for p in list {
            t.row(vec![p.name.clone(), p.evr(), p.arch.clone()]);
            signs.push(sign);
        }
    }
    let mut out = format!(
        "{} revision {} → {}: {} added, {} removed\n",
        d.channel,
        d.from,
        d.to,
        d.added.len(),
        d.removed.len()
    );
    for (sign, line) in signs.iter().zip(t.render().lines()) {
        out.push_str(&format!("{sign} {line}\n"));
    }
    out
}

/// `candidates CHANNEL`.
pub fn candidates(api: &Api, channel: &str) -> Result<Exit, Failure> {
    let path = format!("/api/v1/channels/{}/candidates", segment(channel));
    show(api, &path, render_candidates)
}

/// One blocker in words: `soaking until …`, `held by …: …`.
fn blocker_words(b: &serde_json::Value) -> String {
    let text = |k: &str| b.get(k).and_then(|v| v.as_str()).unwrap_or("");
    match text("reason") {
        "soaking" => format!("soaking until {}", text("until")),
        "already_present" => "already there".into(),
        "missing_check" if !text("status").is_empty() => {
            format!("check {} {}", text("check"), text("status"))
        }
        "missing_check" => format!("waiting for check {}", text("check")),
        "failed_check" => format!("check {} failed {}", text("check"), text("url"))
            .trim_end()
            .to_string(),
        kind @ ("held" | "rejected" | "frozen") => {
            format!("{kind} by {}: {}", text("by"), text("why"))
        }
        other => other.replace('_', " "),
    }
}

fn candidate_table(list: &[Candidate], with_blockers: bool) -> String {
    let mut header = vec!["NAME", "VERSION", "ARCH", "ID", "ENTERED"];
    if with_blockers {
        header.push("WAITING ON");
    }
    let mut t = Table::new(&header);
    for c in list {
        let p = &c.package;
        let mut row = vec![
            p.name.clone(),
            p.evr(),
            p.arch.clone(),
            p.id.chars().take(12).collect(),
            c.entered_source_at.clone(),
        ];
        if with_blockers {
            let words: Vec<String> = c.blockers.iter().map(blocker_words).collect();
            row.push(words.join("; "));
        }
        t.row(row);
    }
    t.render()
}

pub fn render_candidates(c: &Candidates) -> String {
    let mut out = match &c.source {
        Some(source) => format!("{} ← {}: {}\n", c.channel, source, c.rule),
        None => format!("{}: {}\n", c.channel, c.rule),
    };
    if let Some(m) = &c.frozen {
        out.push_str(&format!("frozen by {}: {}\n", m.by, m.reason));
    }
    out.push_str(&format!("\neligible now: {}\n", c.eligible.len()));
    if !c.eligible.is_empty() {
        out.push_str(&candidate_table(&c.eligible, false));
    }
    out.push_str(&format!("\nwaiting: {}\n", c.blocked.len()));
    if !c.blocked.is_empty() {
        out.push_str(&candidate_table(&c.blocked, true));
    }
    out
}

/// What promote, demote, hold and release print.
pub fn changed(
    api: &Api,
    action: &str,
    channel: &str,
    answer: &serde_json::Value,
) -> Result<Exit, Failure> {
    if api.output == Output::Json {
        return print_json(answer);
    }
    // Hold and release answer with the build alone, the others with a change.
    let text = match api::decode::<Change>(action, answer.clone()) {
        Ok(change) => render_change(action, channel, &change),
        Err(_) => {
            let p: Package = api::decode(action, answer.clone())?;
            match &p.held {
                Some(m) => format!("{} held by {}: {}\n", p.filename, m.by, m.reason),
                None => format!("{} is not held\n", p.filename),
            }
        }
    };
    print!("{text}");
    Ok(Exit::Ok)
}

pub fn render_change(action: &str, channel: &str, c: &Change) -> String {
    let p = &c.package;
    if !c.changed {
        let already = if action == "promote" {
            "already in"
        } else {
            "was not in"
        };
        return format!("{} {already} {channel}: nothing changed\n", p.filename);
    }
    let mut out = String::new();
    for (channel, rev) in &c.revisions {
        let verb = if action == "promote" {
            "into"
        } else {
            "out of"
        };
        out.push_str(&format!(
            "{} {verb} {channel} (revision {rev})\n",
            p.filename
        ));
    }
    for (channel, fallback) in &c.fell_back_to {
        match fallback {
            Some(f) => out.push_str(&format!("{channel} serves {} again\n", f.filename)),
            None => out.push_str(&format!("{channel} serves no {} any more\n", p.name)),
        }
    }
    out
}

/// What freeze and unfreeze print.
pub fn frozen(
    api: &Api,
    action: &str,
    channel: &str,
    answer: &serde_json::Value,
) -> Result<Exit, Failure> {
    if api.output == Output::Json {
        return print_json(answer);
    }
    let marker = answer.get("frozen").filter(|m| !m.is_null());
    match marker {
        Some(m) => println!(
            "{channel} frozen by {}: {}",
            m.get("by").and_then(|v| v.as_str()).unwrap_or(""),
            m.get("reason").and_then(|v| v.as_str()).unwrap_or("")
        ),
        None if action == "unfreeze" => println!("{channel} unfrozen"),
        None => println!("{channel} is not frozen"),
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
#[path = "show_tests.rs"]
mod tests;

/// What `check` prints.
pub fn reported(api: &Api, build: &str, answer: &serde_json::Value) -> Result<Exit, Failure> {
    if api.output == Output::Json {
        return print_json(answer);
    }
    let text = |v: &serde_json::Value, k: &str| {
        v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string()
    };
    let check = answer.get("check").cloned().unwrap_or_default();
    println!(
        "{} {} for {build} in {}",
        text(&check, "name"),
        text(&check, "status"),
        text(&check, "channel")
    );
    if answer.get("held").and_then(|h| h.as_bool()) == Some(true) {
        println!("{build} is now held: a required check failed");
    }
    Ok(Exit::Ok)
}

/// What `note` prints.
pub fn noted(api: &Api, build: &str, answer: &serde_json::Value) -> Result<Exit, Failure> {
    if api.output == Output::Json {
        return print_json(answer);
    }
    println!("noted on {build}");
    Ok(Exit::Ok)
}
