//! Evidence on builds: check results that CI reports against a build in a
//! channel, the gate they form for the next channel's policy
//! (`require_checks`), the automatic hold on a failed one
//! (`on_failed_check = "hold"`), and notes that link a build to its CI run,
//! ticket or change log. Every report and note is an event in the build's
//! history, and so a webhook delivery.

use std::collections::BTreeMap;

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::models::{CheckRow, NewEvent};
use crate::db::schema::check_results;
use crate::db::DbConnection;
use crate::policy::{check_blockers, check_name, Blocker, CheckFact, CheckStatus, Policy};
use crate::service::catalog::queries::{checks_at, current_channels, load_policy, resolve};
use crate::service::catalog::views::{rfc3339, CheckView};
use crate::service::error::PromotionError;
use crate::service::{events, Actor, ChannelName, Ctx, PackageRef, ServiceError};

const URL_MAX: usize = 2048;
const SUMMARY_MAX: usize = 4096;
const NOTE_MAX: usize = 8192;

/// `POST /api/v1/packages/{id}/checks`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportCheck {
    pub name: String,
    pub channel: String,
    pub status: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CheckReported {
    pub check: CheckView,
    /// True when this report held the build (`on_failed_check = "hold"`).
    pub held: bool,
}

/// `POST /api/v1/packages/{id}/notes`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddNote {
    pub text: String,
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct NoteView {
    pub package_id: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub at: String,
    pub by: String,
}

/// Reporting into a channel: `report`, `report:<channel>`, `upload`,
/// `promote:<channel>` or `admin`. CI's upload token may report; a QA
/// sign-off token may be limited to one channel.
fn may_report(actor: &Actor, channel: &str) -> bool {
    let g = &actor.grants;
    g.may_upload() || g.may_report(channel) || g.may_promote(channel)
}

fn check_url(url: Option<String>) -> Result<Option<String>, ServiceError> {
    let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
        return Ok(None);
    };
    let url = url.trim().to_string();
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    if !scheme_ok || url.len() > URL_MAX || url.chars().any(char::is_control) {
        return Err(ServiceError::BadRequest(format!(
            "url must be an http:// or https:// URL of at most {URL_MAX} bytes"
        )));
    }
    Ok(Some(url))
}

fn bounded(text: Option<String>, what: &str, max: usize) -> Result<Option<String>, ServiceError> {
    match text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()) {
        Some(t) if t.len() > max => Err(ServiceError::BadRequest(format!(
            "{what} is longer than {max} bytes"
        ))),
        other => Ok(other),
    }
}

/// Records a check result for a build in a channel it is in, and holds the
/// build when the next channel's policy says a failure of this check should.
pub fn report(
    ctx: &Ctx,
    id: &PackageRef,
    req: ReportCheck,
    actor: &Actor,
) -> Result<CheckReported, ServiceError> {
    let channel = ctx.channel(&req.channel)?;
    if !may_report(actor, &channel) {
        return Err(actor.denied(
            &format!("reporting a check in {:?}", channel.as_str()),
            &format!("report:{channel}, report, upload or promote:{channel}"),
        ));
    }
    check_name(&req.name).map_err(ServiceError::BadRequest)?;
    let status = CheckStatus::parse(&req.status).map_err(ServiceError::BadRequest)?;
    let url = check_url(req.url)?;
    let summary = bounded(req.summary, "summary", SUMMARY_MAX)?;
    let mut conn = ctx.conn()?;
    let p = resolve(&mut conn, id)?;
    if !current_channels(&mut conn, &p.id)?.contains(&channel.to_string()) {
        return Err(PromotionError::NotInChannel(format!(
            "{} is not in {:?}: checks are reported for a build in a channel that holds it",
            p.filename,
            channel.as_str()
        ))
        .into());
    }
    let row = CheckRow {
        package_id: p.id.clone(),
        channel: channel.to_string(),
        name: req.name,
        status: status.as_str().into(),
        url,
        summary,
        reported_at: ctx.clock.now(),
        reported_by: actor.name.clone(),
    };
    let hold = match status {
        CheckStatus::Failed => hold_reason(ctx, &mut conn, &channel, &row)?,
        _ => None,
    };
    let held = crate::db::write_transaction(&mut conn, |conn| {
        record(ctx, conn, &row, actor)?;
        match &hold {
            Some(reason) => super::gates::hold(ctx, conn, &p.id, reason, actor),
            None => Ok(false),
        }
    })?;
    Ok(CheckReported {
        check: row.into(),
        held,
    })
}

/// Why a failed check holds the build, if the next channel's policy wants it.
fn hold_reason(
    ctx: &Ctx,
    conn: &mut DbConnection,
    channel: &ChannelName,
    row: &CheckRow,
) -> Result<Option<String>, ServiceError> {
    let Some(next) = ctx.config.channels.get(channel.position() + 1) else {
        return Ok(None);
    };
    let next = ctx.channel(next)?;
    let policy = load_policy(conn, &ctx.config.channels, &next)?;
    if !(policy.hold_on_failed_check && policy.require_checks.contains(&row.name)) {
        return Ok(None);
    }
    Ok(Some(format!(
        "check {} failed in {}{}",
        row.name,
        row.channel,
        row.url
            .as_deref()
            .map(|u| format!(": {u}"))
            .unwrap_or_default()
    )))
}

/// The latest result replaces the previous one; the report stays in history.
fn record(
    ctx: &Ctx,
    conn: &mut DbConnection,
    row: &CheckRow,
    actor: &Actor,
) -> Result<(), ServiceError> {
    diesel::delete(
        check_results::table
            .filter(check_results::package_id.eq(&row.package_id))
            .filter(check_results::channel.eq(&row.channel))
            .filter(check_results::name.eq(&row.name)),
    )
    .execute(conn)?;
    diesel::insert_into(check_results::table)
        .values(row)
        .execute(conn)?;
    let event = NewEvent {
        package_id: Some(row.package_id.clone()),
        channel: Some(row.channel.clone()),
        reason: row.summary.clone(),
        detail: Some(
            serde_json::json!({ "name": row.name, "status": row.status, "url": row.url })
                .to_string(),
        ),
        ..events::by(actor, ctx.clock.now(), "check")
    };
    events::append(conn, &[event])
}

/// A note in a build's history: who may hold a build or report on it may
/// also annotate it.
pub fn add_note(
    ctx: &Ctx,
    id: &PackageRef,
    req: AddNote,
    actor: &Actor,
) -> Result<NoteView, ServiceError> {
    let channels = &ctx.config.channels;
    if !(actor.grants.may_upload() || channels.iter().any(|c| may_report(actor, c))) {
        return Err(actor.denied(
            "adding a note to a build",
            "upload, report, promote or admin rights",
        ));
    }
    let text = bounded(Some(req.text), "text", NOTE_MAX)?
        .ok_or_else(|| ServiceError::BadRequest("a note needs \"text\"".into()))?;
    let url = check_url(req.url)?;
    let mut conn = ctx.conn()?;
    let p = resolve(&mut conn, id)?;
    let at = ctx.clock.now();
    let event = NewEvent {
        package_id: Some(p.id.clone()),
        reason: Some(text.clone()),
        detail: url
            .as_ref()
            .map(|u| serde_json::json!({ "url": u }).to_string()),
        ..events::by(actor, at, "note")
    };
    events::append(&mut conn, &[event])?;
    Ok(NoteView {
        package_id: p.id,
        text,
        url,
        at: rfc3339(at),
        by: actor.name.clone(),
    })
}

/// The manual gate of `require_checks`: the blockers a promotion into
/// `policy.channel` must overcome (by an admin's force) and the evidence it
/// carries into the promoted event.
pub fn gate(
    conn: &mut DbConnection,
    policy: &Policy,
    package_id: &str,
) -> Result<(Vec<Blocker>, Vec<serde_json::Value>), ServiceError> {
    let Some(source) = policy.source.as_deref() else {
        return Ok((Vec::new(), Vec::new()));
    };
    if policy.require_checks.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let checks = checks_at(conn, package_id, source)?;
    Ok((
        check_blockers(&policy.require_checks, &checks),
        evidence(policy, &checks),
    ))
}

/// The required checks as they stood when a build was promoted, for the
/// promoted event (and so the `package.promoted` webhook).
pub fn evidence(policy: &Policy, checks: &BTreeMap<String, CheckFact>) -> Vec<serde_json::Value> {
    policy
        .require_checks
        .iter()
        .map(|name| match checks.get(name) {
            Some(c) => serde_json::json!({
                "name": name, "status": c.status, "url": c.url, "by": c.by, "at": rfc3339(c.at),
            }),
            None => serde_json::json!({ "name": name, "status": "missing" }),
        })
        .collect()
}

/// Blockers in words, for a refusal message.
pub fn describe(blockers: &[Blocker]) -> String {
    let words: Vec<String> = blockers
        .iter()
        .map(|b| match b {
            Blocker::FailedCheck { check, url, .. } => match url {
                Some(u) => format!("{check} failed ({u})"),
                None => format!("{check} failed"),
            },
            Blocker::MissingCheck {
                check,
                status: Some(s),
            } => format!("{check} is {}", s.as_str()),
            Blocker::MissingCheck { check, .. } => format!("{check} was not reported"),
            _ => String::new(),
        })
        .filter(|w| !w.is_empty())
        .collect();
    words.join(", ")
}
