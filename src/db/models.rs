//! Row types. Plain data; the services decide what they mean.

use diesel::prelude::*;

use super::schema::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = packages)]
pub struct PackageRow {
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
    pub uploaded_at: i64,
    pub uploaded_by: String,
    pub primary_xml: String,
    pub filelists_xml: String,
    pub other_xml: String,
    pub apt_stanza: Option<String>,
    pub pool_path: Option<String>,
}

/// A package without its (large) metadata fragments.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = packages)]
pub struct PackageSummary {
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
    pub uploaded_at: i64,
    pub uploaded_by: String,
    pub held_at: Option<i64>,
    pub held_by: Option<String>,
    pub held_reason: Option<String>,
    pub discarded_at: Option<i64>,
    pub discarded_by: Option<String>,
    pub discard_reason: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = channels)]
pub struct ChannelRow {
    pub name: String,
    pub position: i32,
    pub head: i32,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = revisions)]
pub struct RevisionRow {
    pub channel: String,
    pub number: i32,
    pub created_at: i64,
    pub superseded_at: Option<i64>,
    pub actor: String,
    pub summary: String,
    pub package_count: i32,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = revision_files)]
pub struct RevisionFileRow {
    pub channel: String,
    pub number: i32,
    pub path: String,
    pub blob: String,
    pub size: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = memberships)]
pub struct MembershipRow {
    pub channel: String,
    pub package_id: String,
    pub added_in: i32,
    pub removed_in: Option<i32>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct EventRow {
    pub id: i64,
    pub at: i64,
    pub kind: String,
    pub package_id: Option<String>,
    pub channel: Option<String>,
    pub revision: Option<i32>,
    pub actor: String,
    pub client: String,
    pub reason: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = events)]
pub struct NewEvent {
    pub at: i64,
    pub kind: String,
    pub package_id: Option<String>,
    pub channel: Option<String>,
    pub revision: Option<i32>,
    pub actor: String,
    pub client: String,
    pub reason: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tokens)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub token_hash: String,
    pub permissions: String,
    pub created_at: i64,
    pub created_by: String,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub last_used_from: Option<String>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = tokens)]
pub struct NewToken {
    pub name: String,
    pub token_hash: String,
    pub permissions: String,
    pub created_at: i64,
    pub created_by: String,
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhooks)]
pub struct WebhookRow {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub secret: String,
    pub channels: String,
    pub packages: String,
    pub event_types: String,
    pub format: String,
    pub active: bool,
    pub cursor: i64,
    pub attempts: i32,
    pub first_attempt_at: Option<i64>,
    pub next_attempt_at: Option<i64>,
    pub failures: i32,
    pub lease_until: Option<i64>,
    pub disabled_reason: Option<String>,
    pub created_at: i64,
    pub created_by: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_attempts)]
pub struct AttemptRow {
    #[diesel(skip_insertion)]
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: i64,
    pub at: i64,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub success: bool,
    pub manual: bool,
}

/// One dependency fact of a build (`package_deps`).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = package_deps)]
pub struct DepRow {
    pub package_id: String,
    pub role: String,
    pub name: String,
    pub op: Option<String>,
    pub version: Option<String>,
    pub expr: Option<String>,
}

/// The latest result of one named check for a build in a channel.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = check_results)]
pub struct CheckRow {
    pub package_id: String,
    pub channel: String,
    pub name: String,
    pub status: String,
    pub url: Option<String>,
    pub summary: Option<String>,
    pub reported_at: i64,
    pub reported_by: String,
}
