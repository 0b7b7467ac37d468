//! The parts of the server's JSON the client shows. Fields it does not use
//! are ignored, so a newer server still talks to an older client.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Package {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub epoch: i32,
    pub version: String,
    pub release: String,
    pub arch: String,
    pub filename: String,
    #[serde(default)]
    pub channels: Vec<String>,
    pub held: Option<Marker>,
    pub discarded: Option<Marker>,
}

impl Package {
    /// `[epoch:]version-release`, as rpm and the board write it (a .deb's
    /// release may be empty).
    pub fn evr(&self) -> String {
        let epoch = if self.epoch > 0 {
            format!("{}:", self.epoch)
        } else {
            String::new()
        };
        if self.release.is_empty() {
            format!("{epoch}{}", self.version)
        } else {
            format!("{epoch}{}-{}", self.version, self.release)
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Marker {
    pub by: String,
    pub at: String,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub id: i64,
    pub at: String,
    pub kind: String,
    pub channel: Option<String>,
    pub revision: Option<i32>,
    pub actor: String,
    pub reason: Option<String>,
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PackageDetail {
    #[serde(flatten)]
    pub package: Package,
    #[serde(default)]
    pub history: Vec<Event>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Revision {
    pub number: i32,
    pub created_at: String,
    pub package_count: i32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Channel {
    pub name: String,
    pub position: usize,
    pub source: Option<String>,
    pub revision: Option<Revision>,
    pub frozen: Option<Marker>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChannelDetail {
    #[serde(flatten)]
    pub channel: Channel,
    pub packages: Vec<Package>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Diff {
    pub channel: String,
    pub from: i32,
    pub to: i32,
    pub added: Vec<Package>,
    pub removed: Vec<Package>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Candidate {
    #[serde(flatten)]
    pub package: Package,
    pub entered_source_at: String,
    #[serde(default)]
    pub blockers: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Candidates {
    pub channel: String,
    pub source: Option<String>,
    pub rule: String,
    pub frozen: Option<Marker>,
    pub eligible: Vec<Candidate>,
    pub blocked: Vec<Candidate>,
}

/// The answer to a promotion, demotion, hold or release.
#[derive(Debug, Clone, Deserialize)]
pub struct Change {
    pub package: Package,
    #[serde(default)]
    pub changed: bool,
    #[serde(default)]
    pub revisions: std::collections::BTreeMap<String, i32>,
    #[serde(default)]
    pub fell_back_to: std::collections::BTreeMap<String, Option<Package>>,
}
