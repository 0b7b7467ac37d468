//! JSON shapes returned by the API. Built from rows; no database access here.

use serde::Serialize;

use crate::db::models::{EventRow, PackageSummary, RevisionRow};

pub(crate) fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct PackageView {
    /// The file's sha256.
    pub id: String,
    pub kind: String,
    pub name: String,
    pub epoch: i32,
    pub version: String,
    pub release: String,
    pub arch: String,
    pub filename: String,
    pub size: i64,
    pub summary: String,
    pub uploaded_at: String,
    pub uploaded_by: String,
    /// Channels that currently hold this build, in promotion order.
    pub channels: Vec<String>,
    /// The panic button: never promoted automatically while set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Marker>,
    /// A discarded build: out of every channel, file deleted, history kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discarded: Option<Marker>,
}

/// `[epoch:]version-release`, as the board and pages show a build.
pub fn evr(epoch: i32, version: &str, release: &str) -> String {
    if epoch > 0 {
        format!("{epoch}:{version}-{release}")
    } else {
        format!("{version}-{release}")
    }
}

/// Who set a flag on a build, when and why.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Marker {
    pub by: String,
    pub at: String,
    pub reason: String,
}

/// A gate as a caller sees it: who set it, when, and why.
impl From<crate::policy::Note> for Marker {
    fn from(n: crate::policy::Note) -> Marker {
        Marker {
            by: n.by,
            at: rfc3339(n.at),
            reason: n.reason,
        }
    }
}

fn marker(at: Option<i64>, by: &Option<String>, reason: &Option<String>) -> Option<Marker> {
    at.map(|at| Marker {
        by: by.clone().unwrap_or_default(),
        at: rfc3339(at),
        reason: reason.clone().unwrap_or_default(),
    })
}

impl PackageView {
    pub fn new(p: PackageSummary, channels: Vec<String>) -> PackageView {
        let held = marker(p.held_at, &p.held_by, &p.held_reason);
        let discarded = marker(p.discarded_at, &p.discarded_by, &p.discard_reason);
        PackageView {
            held,
            discarded,
            id: p.id,
            kind: p.kind,
            name: p.name,
            epoch: p.epoch,
            version: p.version,
            release: p.release,
            arch: p.arch,
            filename: p.filename,
            size: p.size,
            summary: p.summary,
            uploaded_at: rfc3339(p.uploaded_at),
            uploaded_by: p.uploaded_by,
            channels,
        }
    }
}

/// The latest result of one check of a build in a channel.
#[derive(Debug, Clone, Serialize)]
pub struct CheckView {
    pub name: String,
    pub channel: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub reported_at: String,
    pub reported_by: String,
}

impl From<crate::db::models::CheckRow> for CheckView {
    fn from(c: crate::db::models::CheckRow) -> Self {
        CheckView {
            name: c.name,
            channel: c.channel,
            status: c.status,
            url: c.url,
            summary: c.summary,
            reported_at: rfc3339(c.reported_at),
            reported_by: c.reported_by,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    pub id: i64,
    pub at: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<i32>,
    pub actor: String,
    pub client: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

impl From<EventRow> for EventView {
    fn from(e: EventRow) -> Self {
        EventView {
            id: e.id,
            at: rfc3339(e.at),
            kind: e.kind,
            package_id: e.package_id,
            channel: e.channel,
            revision: e.revision,
            actor: e.actor,
            client: e.client,
            reason: e.reason,
            detail: e.detail.and_then(|d| serde_json::from_str(&d).ok()),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PackageDetail {
    #[serde(flatten)]
    pub package: PackageView,
    /// Download URL in each channel that holds it.
    pub downloads: std::collections::BTreeMap<String, String>,
    /// The latest result of each check, per channel (those the caller may read).
    pub checks: Vec<CheckView>,
    /// Every event of this build, oldest first.
    pub history: Vec<EventView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RevisionView {
    pub channel: String,
    pub number: i32,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superseded_at: Option<String>,
    pub actor: String,
    pub summary: String,
    pub package_count: i32,
}

impl From<RevisionRow> for RevisionView {
    fn from(r: RevisionRow) -> Self {
        RevisionView {
            channel: r.channel,
            number: r.number,
            created_at: rfc3339(r.created_at),
            superseded_at: r.superseded_at.map(rfc3339),
            actor: r.actor,
            summary: r.summary,
            package_count: r.package_count,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ChannelView {
    pub name: String,
    pub position: usize,
    /// The channel packages are promoted from, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub revision: Option<RevisionView>,
    pub repo_url: String,
    pub repo_file: String,
    pub apt_sources: String,
    /// Who froze the channel and why; absent when it is not frozen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frozen: Option<Marker>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChannelDetail {
    #[serde(flatten)]
    pub channel: ChannelView,
    pub packages: Vec<PackageView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RevisionDetail {
    #[serde(flatten)]
    pub revision: RevisionView,
    pub packages: Vec<PackageView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffView {
    pub channel: String,
    pub from: i32,
    pub to: i32,
    pub added: Vec<PackageView>,
    pub removed: Vec<PackageView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangeResult {
    pub package: PackageView,
    /// False when the request changed nothing (already there / already gone).
    pub changed: bool,
    /// New revision of each channel that changed.
    pub revisions: std::collections::BTreeMap<String, i32>,
    /// For a demotion: per channel, the build of the same name and arch the
    /// channel now serves instead (null when none is left).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub fell_back_to: std::collections::BTreeMap<String, Option<PackageView>>,
}
