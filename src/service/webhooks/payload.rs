//! What a delivery carries: the event, and for package events the build as
//! a pipeline needs it (identity, digests, download URL).

use diesel::prelude::*;

use crate::db::models::{EventRow, PackageSummary};
use crate::db::schema::*;
use crate::db::DbConnection;
use crate::service::catalog::packages::rpm_location;
use crate::service::catalog::views::rfc3339;
use crate::service::{Ctx, ServiceError};

fn package_json(
    ctx: &Ctx,
    p: &PackageSummary,
    channel: Option<&str>,
    pool: Option<&str>,
) -> serde_json::Value {
    let base = &ctx.config.base_url;
    let download_url = channel.map(|c| match pool {
        Some(path) => format!("{base}/deb/{path}"),
        None => format!("{base}/rpm/{c}/{}", rpm_location(&p.id, &p.filename)),
    });
    serde_json::json!({
        "id": p.id,
        "sha256": p.id,
        "kind": p.kind,
        "name": p.name,
        "epoch": p.epoch,
        "version": p.version,
        "release": p.release,
        "arch": p.arch,
        "filename": p.filename,
        "download_url": download_url,
    })
}

fn load_package(
    conn: &mut DbConnection,
    id: &str,
) -> Result<Option<(PackageSummary, Option<String>)>, ServiceError> {
    Ok(packages::table
        .find(id)
        .select((PackageSummary::as_select(), packages::pool_path))
        .first(conn)
        .optional()?)
}

/// The JSON body of one event (before any CloudEvents envelope).
pub fn payload(
    ctx: &Ctx,
    conn: &mut DbConnection,
    e: &EventRow,
    ty: &str,
) -> Result<serde_json::Value, ServiceError> {
    let detail: Option<serde_json::Value> = e
        .detail
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok());
    let package = match &e.package_id {
        Some(id) => load_package(conn, id)?
            .map(|(p, pool)| package_json(ctx, &p, e.channel.as_deref(), pool.as_deref())),
        None => None,
    };
    let fell_back_to = match detail
        .as_ref()
        .and_then(|d| d.get("fell_back_to"))
        .and_then(|v| v.as_str())
    {
        Some(id) => load_package(conn, id)?
            .map(|(p, pool)| package_json(ctx, &p, e.channel.as_deref(), pool.as_deref())),
        None => None,
    };
    // Every change moves a channel's head by exactly one revision.
    let revision = e
        .revision
        .map(|after| serde_json::json!({ "before": after - 1, "after": after }));
    Ok(serde_json::json!({
        "id": e.id.to_string(),
        "type": ty,
        "time": rfc3339(e.at),
        "actor": e.actor,
        "channel": e.channel,
        "revision": revision,
        "package": package,
        "fell_back_to": fell_back_to,
        "reason": e.reason,
        "detail": detail,
    }))
}

/// The body to send and its content type.
pub(super) fn body_for(
    ctx: &Ctx,
    format: &str,
    payload: serde_json::Value,
    ty: &str,
) -> (Vec<u8>, &'static str) {
    if format == "cloudevents" {
        let subject = payload["package"]["filename"]
            .as_str()
            .map(str::to_string)
            .or_else(|| payload["channel"].as_str().map(str::to_string));
        let envelope = serde_json::json!({
            "specversion": "1.0",
            "id": payload["id"],
            "source": ctx.config.base_url,
            "type": format!("io.forklift.{ty}"),
            "time": payload["time"],
            "subject": subject,
            "datacontenttype": "application/json",
            "data": payload,
        });
        (
            envelope.to_string().into_bytes(),
            "application/cloudevents+json",
        )
    } else {
        (payload.to_string().into_bytes(), "application/json")
    }
}
