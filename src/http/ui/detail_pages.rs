//! The build page and the channel page.

use maud::{html, Markup};

use super::pages::{csrf_field, layout, utc, Reader};
use crate::service::board::build::BuildPage;
use crate::service::board::channel::ChannelPageData;
use crate::service::catalog::views::{CheckView, EventView, PackageView};

fn evr(p: &PackageView) -> String {
    crate::service::catalog::views::evr(p.epoch, &p.version, &p.release)
}

/// A check reads "check integration passed"; other events by their kind.
fn event_words(e: &EventView) -> String {
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
        kind => kind.replace('_', " "),
    }
}

/// The link a check or a note carries (validated as http(s) on the way in).
fn event_link(e: &EventView) -> Option<&str> {
    e.detail.as_ref()?.get("url")?.as_str()
}

fn checks_table(checks: &[CheckView]) -> Markup {
    html! {
        @if !checks.is_empty() {
            section aria-label="Checks" {
                h2 { "Checks" }
                table {
                    thead { tr { th { "Channel" } th { "Check" } th { "Result" } th { "Reported" } } }
                    tbody {
                        @for c in checks {
                            tr {
                                td { (c.channel) }
                                td { (c.name) }
                                td class=(format!("check-{}", c.status)) {
                                    @if let Some(u) = &c.url { a href=(u) rel="noreferrer" { (c.status) } }
                                    @else { (c.status) }
                                    @if let Some(s) = &c.summary { " · " (s) }
                                }
                                td { (c.reported_at) " by " (c.reported_by) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn event_line(e: &EventView) -> Markup {
    html! {
        li {
            span.kind { (event_words(e)) }
            @if let Some(c) = &e.channel { " · " a href=(format!("/ui/channels/{c}")) { (c) } }
            @if let Some(r) = e.revision { " (revision " (r) ")" }
            br;
            span.muted { time datetime=(e.at) { (e.at) } " by " (e.actor) " from " (e.client) }
            @if let Some(r) = &e.reason { br; "Reason: " (r) }
            @if let Some(u) = event_link(e) { br; a href=(u) rel="noreferrer" { (u) } }
        }
    }
}

pub fn build_page(reader: &Reader, b: &BuildPage) -> Markup {
    let p = &b.detail.package;
    let title = format!("{} {} ({})", p.name, evr(p), p.arch);
    let body = html! {
        h1 { (title) }
        p { (p.summary) }
        @if let Some(h) = &p.held { div.notice.error role="status" { "Held by " (h.by) " at " (h.at) ": " (h.reason) } }
        @if let Some(d) = &p.discarded { div.notice.error role="status" { "Discarded by " (d.by) " at " (d.at) ": " (d.reason) } }
        @if reader.name.is_some() { (build_actions(reader, b)) }
        h2 { "Channels" }
        @if b.detail.downloads.is_empty() { p.muted { "In no channel." } }
        ul {
            @for (channel, url) in &b.detail.downloads {
                li { a href=(format!("/ui/channels/{channel}")) { (channel) } ": " a href=(url) { "download" } }
            }
        }
        h2 { "Metadata" }
        dl.facts {
            dt { "File" } dd { (p.filename) }
            dt { "Kind" } dd { (p.kind) }
            dt { "Size" } dd { (p.size) " bytes" }
            dt { "SHA-256" } dd.evr { (p.id) }
            dt { "Files" } dd { (b.file_count) }
            dt { "Uploaded" } dd { (p.uploaded_at) " by " (p.uploaded_by) }
            dt { "Repositories signed by" } dd.evr { @for f in &b.signed_by { (f) br; } }
            dt { "Dependencies" } dd {
                @if b.depends.is_empty() { span.muted { "none" } }
                @for d in &b.depends { code { (d) } " " }
            }
        }
        (checks_table(&b.detail.checks))
        h2 { "History" }
        ol.timeline { @for e in &b.detail.history { (event_line(e)) } }
    };
    layout(reader, &title, body)
}

fn build_actions(reader: &Reader, b: &BuildPage) -> Markup {
    let id = &b.detail.package.id;
    let held = b.detail.package.held.is_some();
    html! {
        section.actions aria-label="Actions" {
            @for to in &b.may.promote_to {
                form method="post" action=(format!("/ui/builds/{id}/promote")) {
                    (csrf_field(reader))
                    input type="hidden" name="to" value=(to);
                    button.primary type="submit" { "Promote to " (to) }
                }
            }
            @for from in &b.may.demote_from {
                form method="post" action=(format!("/ui/builds/{id}/demote")) {
                    (csrf_field(reader))
                    input type="hidden" name="from" value=(from);
                    label { "Reason " input type="text" name="reason" required; }
                    button.danger type="submit" { "Demote from " (from) }
                }
            }
            @if b.may.hold && !held {
                form method="post" action=(format!("/ui/builds/{id}/hold")) {
                    (csrf_field(reader))
                    label { "Reason " input type="text" name="reason" required; }
                    button type="submit" { "Hold" }
                }
            }
            @if b.may.hold && held {
                form method="post" action=(format!("/ui/builds/{id}/release")) {
                    (csrf_field(reader))
                    button type="submit" { "Release the hold" }
                }
            }
            @if b.may.discard {
                form method="post" action=(format!("/ui/builds/{id}/discard")) {
                    (csrf_field(reader))
                    label { "Reason " input type="text" name="reason" required; }
                    button.danger type="submit" { "Discard" }
                }
            }
        }
    }
}

fn package_list(ps: &[PackageView]) -> Markup {
    html! {
        ul { @for p in ps { li { a href=(format!("/ui/builds/{}", p.id)) { (p.name) " " span.evr { (evr(p)) } } " " span.muted { (p.arch) } } } }
    }
}

pub fn channel_page(reader: &Reader, c: &ChannelPageData) -> Markup {
    let body = html! {
        h1 { "Channel " (c.name) }
        p { strong { "Policy: " } (c.rule) }
        @if let Some(t) = c.next_run { p { "Next automatic run: " (utc(t)) } }
        @if let Some(f) = &c.frozen { div.notice.error role="status" { "Frozen by " (f.by) " at " (f.at) ": " (f.reason) } }
        @if c.may_freeze && reader.name.is_some() { (freeze_form(reader, c)) }
        h2 { "Candidates" }
        @if let Some(src) = &c.candidates.source {
            p.muted { "Builds of " a href=(format!("/ui/channels/{src}")) { (src) } " and whether each may come here." }
        } @else { p.muted { "Builds enter this channel by upload." } }
        ul {
            @for e in &c.candidates.eligible {
                li { a href=(format!("/ui/builds/{}", e.package.id)) { (e.package.name) " " span.evr { (evr(&e.package)) } } " — " strong { "may go on now" } }
            }
            @for e in &c.candidates.blocked {
                li {
                    a href=(format!("/ui/builds/{}", e.package.id)) { (e.package.name) " " span.evr { (evr(&e.package)) } } " — waits: "
                    @for b in &e.blockers { span.badge { (blocker_words(b)) } }
                }
            }
        }
        h2 { "What did it hold at a given time?" }
        form.filters method="get" action=(format!("/ui/channels/{}", c.name)) {
            label { "Time (RFC 3339) " input type="text" name="at" placeholder="2026-12-01T12:00:00Z" value=(c.at.as_ref().map(|a| a.0.as_str()).unwrap_or("")); }
            button type="submit" { "Show" }
        }
        @if let Some((t, rev)) = &c.at {
            @match rev {
                Some(r) => { p { "At " (t) ": revision " (r.revision.number) " (" (r.revision.created_at) "), " (r.packages.len()) " builds" } (package_list(&r.packages)) }
                None => p.muted { "No revision was in force at " (t) "." },
            }
        }
        h2 { "Revisions" }
        form.filters method="get" action=(format!("/ui/channels/{}", c.name)) {
            label { "Compare revision " input type="text" name="from" size="4" inputmode="numeric"; }
            label { " with " input type="text" name="to" size="4" inputmode="numeric"; }
            button type="submit" { "Diff" }
        }
        @if let Some(d) = &c.diff {
            h2 { "Revision " (d.from) " → " (d.to) }
            p { strong { "Added" } } (package_list(&d.added))
            p { strong { "Removed" } } (package_list(&d.removed))
        }
        div.table-wrap {
            table {
                thead { tr { th scope="col" { "Revision" } th scope="col" { "Made" } th scope="col" { "By" } th scope="col" { "Builds" } th scope="col" { "What changed" } } }
                tbody {
                    @for r in &c.revisions {
                        tr { td { (r.number) } td { (r.created_at) } td { (r.actor) } td { (r.package_count) } td { (r.summary) } }
                    }
                }
            }
        }
    };
    layout(reader, &format!("Channel {}", c.name), body)
}

fn blocker_words(b: &crate::policy::Blocker) -> String {
    use crate::policy::Blocker::*;
    match b {
        AlreadyPresent => "already here".into(),
        Held { by, why, .. } => format!("held by {by}: {why}"),
        Rejected { by, why, .. } => format!("rejected by {by}: {why}"),
        Soaking { until } => format!("soaking until {}", utc(*until)),
        MissingCheck {
            check,
            status: Some(s),
        } => format!("check {check} {}", s.as_str()),
        MissingCheck { check, .. } => format!("waiting for check {check}"),
        FailedCheck { check, by, .. } => format!("check {check} failed (reported by {by})"),
        UnsatisfiedDependencies { missing } => {
            format!("dependencies not met there: {}", missing.join(", "))
        }
        Frozen { by, why, .. } => format!("channel frozen by {by}: {why}"),
    }
}

fn freeze_form(reader: &Reader, c: &ChannelPageData) -> Markup {
    html! {
        section.actions aria-label="Actions" {
            @if c.frozen.is_some() {
                form method="post" action=(format!("/ui/channels/{}/unfreeze", c.name)) {
                    (csrf_field(reader))
                    button type="submit" { "Unfreeze" }
                }
            } @else {
                form method="post" action=(format!("/ui/channels/{}/freeze", c.name)) {
                    (csrf_field(reader))
                    label { "Reason " input type="text" name="reason" required; }
                    button.danger type="submit" { "Freeze" }
                }
            }
        }
    }
}
