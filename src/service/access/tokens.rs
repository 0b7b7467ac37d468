//! API tokens in the database: create, list, revoke, authenticate, bootstrap.
//!
//! Functions take a connection and the configuration rather than a `Ctx` so the
//! `forklift token` commands can use them without starting a server.

use std::path::{Path, PathBuf};

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::db::models::{NewEvent, NewToken, TokenRow};
use crate::db::schema::tokens;
use crate::db::{is_unique_violation, DbConnection};
use crate::service::access::{self, Grants, Permission};
use crate::service::catalog::views::rfc3339;
use crate::service::error::AccessError;
use crate::service::{events, Actor, ServiceError};

/// The token name `FORKLIFT_ADMIN_TOKEN` and the first start use.
pub const BOOTSTRAP_NAME: &str = "admin";
/// Where the first start writes the generated admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// last_used_at is refreshed at most this often, so hosts polling with a
/// token do not turn every read into a database write.
const LAST_USED_RESOLUTION_SECS: i64 = 60;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Role shortcuts (reader, uploader, promoter:<channel>, admin), added to `permissions`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Lifetime such as "30d"; absent = no expiry.
    pub expires_in: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenView {
    pub name: String,
    pub permissions: Vec<String>,
    pub created_at: String,
    pub created_by: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub last_used_from: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub view: TokenView,
    /// Shown once; only its hash is stored.
    pub token: String,
}

fn view(row: &TokenRow) -> TokenView {
    TokenView {
        name: row.name.clone(),
        permissions: row
            .permissions
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        created_at: rfc3339(row.created_at),
        created_by: row.created_by.clone(),
        expires_at: row.expires_at.map(rfc3339),
        last_used_at: row.last_used_at.map(rfc3339),
        last_used_from: row.last_used_from.clone(),
    }
}

fn valid_token_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// An audit event for an admin action (not sent to webhooks).
pub(crate) fn admin_event(
    conn: &mut DbConnection,
    now: i64,
    kind: &str,
    actor: &Actor,
    detail: serde_json::Value,
) -> Result<(), ServiceError> {
    let event = NewEvent {
        detail: Some(detail.to_string()),
        ..events::by(actor, now, kind)
    };
    events::append(conn, &[event])
}

/// Creates a token and returns its secret, which is never shown again.
/// `now` comes from the caller's clock: the server's injected one, or the
/// system clock for the `forklift token` command.
pub fn create(
    conn: &mut DbConnection,
    config: &Config,
    now: i64,
    req: &CreateToken,
    actor: &Actor,
) -> Result<CreatedToken, ServiceError> {
    let secret = access::generate_token();
    let row = insert(conn, config, now, req, &secret, actor)?;
    Ok(CreatedToken {
        view: view(&row),
        token: secret,
    })
}

fn insert(
    conn: &mut DbConnection,
    config: &Config,
    now: i64,
    req: &CreateToken,
    secret: &str,
    actor: &Actor,
) -> Result<TokenRow, ServiceError> {
    if !valid_token_name(&req.name) {
        return Err(ServiceError::BadRequest(format!(
            "token name {:?}: use 1-64 letters, digits, '-', '_' or '.'",
            req.name
        )));
    }
    let mut perms: Vec<String> = req.permissions.clone();
    for r in &req.roles {
        let expanded = access::role(r).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        perms.extend(expanded.iter().map(Permission::to_string));
    }
    let perms = access::parse_permissions(&perms, &config.channels)
        .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
    if perms.is_empty() {
        return Err(ServiceError::BadRequest(
            "a token needs at least one permission or role".into(),
        ));
    }
    let created_at = now;
    let expires_at = match &req.expires_in {
        Some(d) => {
            let d = humantime::parse_duration(d)
                .map_err(|e| ServiceError::BadRequest(format!("expires_in {d:?}: {e}")))?;
            if d.is_zero() {
                return Err(ServiceError::BadRequest(
                    "expires_in must be positive".into(),
                ));
            }
            Some(created_at.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)))
        }
        None => None,
    };
    let permissions = Grants::new(perms).to_strings().join(" ");
    let new = NewToken {
        name: req.name.clone(),
        token_hash: access::hash_token(secret),
        permissions: permissions.clone(),
        created_at,
        created_by: actor.name.clone(),
        expires_at,
    };
    let row = crate::db::write_transaction::<_, ServiceError, _>(conn, |conn| {
        match diesel::insert_into(tokens::table)
            .values(&new)
            .execute(conn)
        {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(AccessError::TokenExists(req.name.clone()).into());
            }
            Err(e) => return Err(e.into()),
        }
        let row: TokenRow = tokens::table
            .filter(tokens::token_hash.eq(&new.token_hash))
            .select(TokenRow::as_select())
            .first(conn)?;
        admin_event(
            conn,
            now,
            "token_created",
            actor,
            serde_json::json!({"token": req.name, "permissions": permissions, "expires_at": expires_at.map(rfc3339)}),
        )?;
        Ok(row)
    })?;
    Ok(row)
}

/// Live (not revoked) tokens, newest first.
pub fn list(conn: &mut DbConnection) -> Result<Vec<TokenView>, ServiceError> {
    let rows: Vec<TokenRow> = tokens::table
        .filter(tokens::revoked_at.is_null())
        .order(tokens::id.desc())
        .select(TokenRow::as_select())
        .load(conn)?;
    Ok(rows.iter().map(view).collect())
}

pub fn revoke(
    conn: &mut DbConnection,
    now: i64,
    name: &str,
    actor: &Actor,
) -> Result<(), ServiceError> {
    crate::db::write_transaction(conn, |conn| {
        let n = diesel::update(
            tokens::table
                .filter(tokens::name.eq(name))
                .filter(tokens::revoked_at.is_null()),
        )
        .set(tokens::revoked_at.eq(Some(now)))
        .execute(conn)?;
        if n == 0 {
            return Err(AccessError::TokenNotFound(name.to_string()).into());
        }
        admin_event(
            conn,
            now,
            "token_revoked",
            actor,
            serde_json::json!({ "token": name }),
        )
    })
}

/// The caller a presented token stands for. Unknown, revoked and expired
/// tokens are all 401; the message says which without echoing the token.
pub fn authenticate(
    conn: &mut DbConnection,
    now: i64,
    token: &str,
    client: &str,
) -> Result<Actor, ServiceError> {
    let hash = access::hash_token(token);
    let row: Option<TokenRow> = tokens::table
        .filter(tokens::token_hash.eq(&hash))
        .select(TokenRow::as_select())
        .first(conn)
        .optional()?;
    // The lookup is by hash, so timing reveals nothing about the secret; the
    // comparison is constant-time all the same.
    let Some(row) = row.filter(|r| access::constant_time_eq(&r.token_hash, &hash)) else {
        return Err(AccessError::Unauthenticated("unknown token".into()).into());
    };
    let row = live(row, now)?;
    note_use(conn, &row, now, client);
    Ok(actor_of(row, client))
}

/// The caller a web UI session stands for: its token, checked as at sign-in
/// (a revoked or expired token ends its sessions too).
pub fn authenticate_id(
    conn: &mut DbConnection,
    now: i64,
    id: i64,
    client: &str,
) -> Result<Actor, ServiceError> {
    let row: Option<TokenRow> = tokens::table
        .find(id)
        .select(TokenRow::as_select())
        .first(conn)
        .optional()?;
    let Some(row) = row else {
        return Err(AccessError::Unauthenticated("the session's token is gone".into()).into());
    };
    let row = live(row, now)?;
    note_use(conn, &row, now, client);
    Ok(actor_of(row, client))
}

/// The token's id, by its exact secret (sign-in keeps the id, never the secret).
pub fn id_of(conn: &mut DbConnection, token: &str) -> Result<Option<i64>, ServiceError> {
    Ok(tokens::table
        .filter(tokens::token_hash.eq(access::hash_token(token)))
        .select(tokens::id)
        .first(conn)
        .optional()?)
}

fn live(row: TokenRow, now: i64) -> Result<TokenRow, ServiceError> {
    if row.revoked_at.is_some() {
        return Err(
            AccessError::Unauthenticated(format!("token {:?} has been revoked", row.name)).into(),
        );
    }
    if row.expires_at.is_some_and(|e| e <= now) {
        return Err(
            AccessError::Unauthenticated(format!("token {:?} has expired", row.name)).into(),
        );
    }
    Ok(row)
}

/// Bookkeeping only: a failed write (a full disk) must not turn away a valid
/// token, or readers of private channels would lose access.
fn note_use(conn: &mut DbConnection, row: &TokenRow, now: i64, client: &str) {
    if row
        .last_used_at
        .is_none_or(|u| now - u >= LAST_USED_RESOLUTION_SECS)
        || row.last_used_from.as_deref() != Some(client)
    {
        let noted = diesel::update(tokens::table.filter(tokens::id.eq(row.id)))
            .set((
                tokens::last_used_at.eq(Some(now)),
                tokens::last_used_from.eq(Some(client)),
            ))
            .execute(conn);
        if let Err(e) = noted {
            tracing::warn!(token = %row.name, error = %e, "could not record token use");
        }
    }
}

fn actor_of(row: TokenRow, client: &str) -> Actor {
    let perms = row
        .permissions
        .split_whitespace()
        .filter_map(|p| Permission::parse(p).ok());
    Actor {
        name: row.name,
        client: client.to_string(),
        grants: Grants::new(perms),
        authenticated: true,
    }
}

/// What the first start did about an admin token.
#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// FORKLIFT_ADMIN_TOKEN (or admin_token_file) is the live "admin" token.
    Supplied,
    /// No admin token existed: one was generated and written here (mode 0600).
    Generated(PathBuf),
    /// An admin token exists already; nothing to do.
    Existing,
}

pub fn bootstrap(
    conn: &mut DbConnection,
    config: &Config,
    now: i64,
) -> Result<Bootstrap, ServiceError> {
    let system = Actor::system();
    if let Some(secret) = &config.admin_token {
        let hash = access::hash_token(secret);
        let revoked: Option<String> = tokens::table
            .filter(tokens::token_hash.eq(&hash))
            .filter(tokens::revoked_at.is_not_null())
            .select(tokens::name)
            .first(conn)
            .optional()?;
        if revoked.is_some() {
            // Never resurrect a revoked secret: it was revoked for a reason.
            return Err(ServiceError::BadRequest(
                "the configured admin token (FORKLIFT_ADMIN_TOKEN / admin_token_file) was revoked; supply a new one".into(),
            ));
        }
        let current: Option<TokenRow> = tokens::table
            .filter(tokens::name.eq(BOOTSTRAP_NAME))
            .filter(tokens::revoked_at.is_null())
            .select(TokenRow::as_select())
            .first(conn)
            .optional()?;
        match current {
            Some(row) if row.token_hash == hash => {}
            Some(_) => {
                // The configured secret wins: automation owns it.
                revoke(conn, now, BOOTSTRAP_NAME, &system)?;
                insert(conn, config, now, &bootstrap_request(), secret, &system)?;
            }
            None => {
                insert(conn, config, now, &bootstrap_request(), secret, &system)?;
            }
        }
        return Ok(Bootstrap::Supplied);
    }
    let live: Vec<String> = tokens::table
        .filter(tokens::revoked_at.is_null())
        .select(tokens::permissions)
        .load(conn)?;
    if live
        .iter()
        .any(|p| p.split_whitespace().any(|x| x == "admin"))
    {
        return Ok(Bootstrap::Existing);
    }
    let path = config.data_dir.join(ADMIN_TOKEN_FILE);
    let secret = access::generate_token();
    // File first: a token nobody can read would lock the operator out.
    write_secret_file(&path, &secret)?;
    if let Err(e) = insert(conn, config, now, &bootstrap_request(), &secret, &system) {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(Bootstrap::Generated(path))
}

fn bootstrap_request() -> CreateToken {
    CreateToken {
        name: BOOTSTRAP_NAME.into(),
        permissions: vec!["admin".into()],
        roles: vec![],
        expires_in: None,
    }
}

/// Writes `secret` to `path` readable by the owner only.
fn write_secret_file(path: &Path, secret: &str) -> Result<(), ServiceError> {
    use std::io::Write;
    let _ = std::fs::remove_file(path);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(())
}

/// The same operations on the server's pool, for request handlers.
pub mod pooled {
    use super::*;
    use crate::service::Ctx;

    pub fn authenticate(ctx: &Ctx, token: &str, client: &str) -> Result<Actor, ServiceError> {
        super::authenticate(&mut *ctx.conn()?, ctx.clock.now(), token, client)
    }

    pub fn create(
        ctx: &Ctx,
        req: &CreateToken,
        actor: &Actor,
    ) -> Result<CreatedToken, ServiceError> {
        actor.require_admin()?;
        super::create(&mut *ctx.conn()?, &ctx.config, ctx.clock.now(), req, actor)
    }

    pub fn list(ctx: &Ctx, actor: &Actor) -> Result<Vec<TokenView>, ServiceError> {
        actor.require_admin()?;
        super::list(&mut *ctx.conn()?)
    }

    pub fn revoke(ctx: &Ctx, name: &str, actor: &Actor) -> Result<(), ServiceError> {
        actor.require_admin()?;
        super::revoke(&mut *ctx.conn()?, ctx.clock.now(), name, actor)
    }
}
