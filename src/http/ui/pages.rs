//! The UI's HTML: plain functions from views to markup (maud, compiled in).
//! Every state is written out in words; colour only repeats it.

use maud::{html, Markup, DOCTYPE};

use crate::service::board::{Board, Cell, Next};

/// What every page needs to know about its reader.
pub struct Reader {
    /// The signed-in token's name; None for anonymous readers.
    pub name: Option<String>,
    /// The session's CSRF token, for forms.
    pub csrf: Option<String>,
}

pub fn layout(reader: &Reader, title: &str, body: Markup) -> Markup {
    page(reader, title, None, body)
}

/// `base`: where the page's relative links point (the board's cells link
/// builds relatively, to stay small); every other link is absolute.
fn page(reader: &Reader, title: &str, base: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(b) = base { base href=(b); }
                title { (title) " · Forklift" }
                link rel="stylesheet" href="/ui/static/forklift.css";
            }
            body {
                header.top {
                    a.brand href="/ui/" { "Forklift" }
                    nav aria-label="Main" {
                        a href="/ui/" { "Board" }
                        a href="/api/v1/channels" { "API" }
                    }
                    div.who {
                        @if let Some(name) = &reader.name {
                            span { "Signed in as " strong { (name) } }
                            form.inline method="post" action="/ui/logout" {
                                (csrf_field(reader))
                                button type="submit" { "Sign out" }
                            }
                        } @else {
                            a href="/ui/login" { "Sign in" }
                        }
                    }
                }
                main id="main" { (body) }
            }
        }
    }
}

pub fn csrf_field(reader: &Reader) -> Markup {
    html! {
        @if let Some(t) = &reader.csrf {
            input type="hidden" name="csrf" value=(t);
        }
    }
}

/// "3 d 4 h", "5 h 12 min", "40 s": how long ago or how long left.
pub fn span(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

pub fn utc(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

pub struct BoardPage<'a> {
    pub board: &'a Board,
    pub name: &'a str,
    pub differs: bool,
    pub etag: &'a str,
    /// The fragment URL the live script polls.
    pub live: &'a str,
}

pub fn board_page(reader: &Reader, p: &BoardPage<'_>) -> Markup {
    let b = p.board;
    let body = html! {
        h1 { "Promotion board" }
        form.filters method="get" action="/ui/" role="search" {
            label { "Name contains " input type="search" name="name" value=(p.name); }
            label { input type="checkbox" name="differs" value="1" checked[p.differs]; " only names that differ between channels" }
            button type="submit" { "Filter" }
            span.live id="live" aria-live="polite" { "Updates by itself" }
        }
        p.muted { (b.matching) " names" @if b.pages > 1 { ", page " (b.page) " of " (b.pages) } }
        div.table-wrap {
            table id="board" data-etag=(p.etag) data-live=(p.live) { (board_table(b)) }
        }
        @if b.pages > 1 {
            nav.pager aria-label="Pages" {
                @if b.page > 1 { a href=(page_link(p, b.page - 1)) { "← Previous" } }
                @if b.page < b.pages { a href=(page_link(p, b.page + 1)) { "Next →" } }
            }
        }
        script src="/ui/static/board.js" defer {}
    };
    page(reader, "Board", Some("/ui/builds/"), body)
}

fn page_link(p: &BoardPage<'_>, page: usize) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if !p.name.is_empty() {
        q.append_pair("name", p.name);
    }
    if p.differs {
        q.append_pair("differs", "1");
    }
    q.append_pair("page", &page.to_string());
    format!("/ui/?{}", q.finish())
}

/// The board's table (also what the live updates replace).
pub fn board_table(b: &Board) -> Markup {
    html! {
        caption.muted { "Which build each channel serves, in promotion order" }
        thead {
            tr {
                th scope="col" { "Package" }
                @for c in &b.channels {
                    th scope="col" {
                        a href=(format!("/ui/channels/{}", c.name)) { (c.name) }
                        @if let Some(f) = &c.frozen {
                            br;
                            span.b.held title=(format!("frozen by {} at {}", f.by, utc(f.at))) {
                                "Frozen: " (f.reason) " (" (f.by) ")"
                            }
                        }
                        br;
                        span.since { (c.rule) }
                    }
                }
            }
        }
        tbody {
            @for row in &b.rows {
                tr {
                    th scope="row" {
                        (row.name) " " small { (row.arch) }
                        @if row.differs { span.b.diff { "Differs" } }
                    }
                    @for (i, cell) in row.cells.iter().enumerate() {
                        @match cell {
                            Some(c) => {
                                @let same = |j: usize| row.cells.get(j).and_then(|n| n.as_ref()).is_some_and(|n| n.id == c.id);
                                td { (cell_markup(c, b.now, i == 0 || !same(i - 1), !same(i + 1))) }
                            }
                            None => td.e { "— none" },
                        }
                    }
                }
            }
        }
    }
}

/// One cell, kept small (a 1,000-name board stays under 300 KB before
/// compression): the build links by file name, relative to the page's base
/// (/ui/builds/), once per row (a channel serving the build its left
/// neighbour serves shows the version unlinked); a held build says so where
/// it stops, not in every channel holding it.
fn cell_markup(c: &Cell, now: i64, linked: bool, show_held: bool) -> Markup {
    let file: String = form_urlencoded::byte_serialize(c.file.as_bytes()).collect();
    html! {
        @if linked { a href=(file) { (c.evr) } } @else { (c.evr) }
        small { "for " (span(now - c.since)) }
        @if let (true, Some(h)) = (show_held, &c.held) {
            span.b.held { "Held by " (h.by) ": " (h.reason) }
        }
        @match &c.next {
            Some(Next::Candidate { to, at: Some(at) }) => {
                span.b.cand { "Candidate for " (to) ", next run " (utc(*at)) }
            }
            Some(Next::Candidate { to, at: None }) => {
                span.b.cand { "Ready for " (to) " (manual)" }
            }
            Some(Next::Soaking { to, until }) => {
                span.b.soak { "Soaking for " (to) ": " (span(until - now)) " left" }
            }
            Some(Next::Rejected { to, note }) => {
                span.b.rej { "Rejected from " (to) " by " (note.by) ": " (note.reason) }
            }
            Some(Next::CheckFailed { to, check, url }) => {
                span.b.rej {
                    "Check " (check) " failed: not going to " (to)
                    @if let Some(u) = url { " " a href=(u) rel="noreferrer" { "(run)" } }
                }
            }
            Some(Next::AwaitingChecks { to, checks }) => {
                span.b.soak { "Waiting for " (checks.join(", ")) " before " (to) }
            }
            None => {}
        }
    }
}

pub fn message_page(reader: &Reader, title: &str, message: &str, error: bool) -> Markup {
    let body = html! {
        h1 { (title) }
        div.notice.error[error] role=(if error { "alert" } else { "status" }) { p { (message) } }
        p { a href="/ui/" { "Back to the board" } }
    };
    layout(reader, title, body)
}

pub fn login_page(reader: &Reader, error: Option<&str>, next: &str) -> Markup {
    let body = html! {
        h1 { "Sign in" }
        p { "Sign in with an API token (" code { "forklift token create" } "). The token stays on the server: your browser gets a session that ends after 8 hours, at sign-out, or when the token is revoked." }
        @if let Some(e) = error {
            div.notice.error role="alert" { p { (e) } }
        }
        form method="post" action="/ui/login" {
            input type="hidden" name="next" value=(next);
            p { label { "API token " input type="password" name="token" autocomplete="off" required autofocus; } }
            p { button.primary type="submit" { "Sign in" } }
        }
    };
    layout(reader, "Sign in", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span(5), "5 s");
        assert_eq!(span(125), "2 min");
        assert_eq!(span(3 * 3600 + 7 * 60), "3 h 7 min");
        assert_eq!(span(2 * 86_400 + 5 * 3600), "2 d 5 h");
        assert_eq!(span(-3), "0 s");
    }

    #[test]
    fn markup_escapes_what_it_shows() {
        let reader = Reader {
            name: Some("<script>".into()),
            csrf: None,
        };
        let page = message_page(&reader, "t", "<b>x</b>", true).into_string();
        assert!(!page.contains("<script>") && page.contains("&lt;script&gt;"));
        assert!(page.contains("&lt;b&gt;x&lt;/b&gt;"));
    }
}
