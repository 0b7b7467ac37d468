//! Web UI sessions: an API token presented once at sign-in becomes a
//! server-side session. The browser holds only a random secret (in an
//! HttpOnly cookie); the database holds its hash, the token's id, the CSRF
//! token of the session's forms and when it ends. Every request through a
//! session re-checks its token, so revoking the token ends the session.

use diesel::prelude::*;

use super::{constant_time_eq, generate_token, hash_token, tokens};
use crate::db::schema::ui_sessions;
use crate::service::error::AccessError;
use crate::service::{Actor, Ctx, ServiceError};

/// How long a session lasts from sign-in.
pub const SESSION_SECS: i64 = 8 * 3600;

/// What the browser gets at sign-in.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The cookie's value.
    pub secret: String,
    pub expires_at: i64,
}

/// A request's session: who, and the token its forms must carry.
#[derive(Debug, Clone)]
pub struct Session {
    pub actor: Actor,
    pub csrf: String,
}

impl Session {
    /// A form's CSRF field, compared in constant time.
    pub fn check_csrf(&self, presented: &str) -> Result<(), ServiceError> {
        if !presented.is_empty() && constant_time_eq(&self.csrf, presented) {
            return Ok(());
        }
        Err(AccessError::Forbidden(
            "the form's CSRF token is missing or wrong; reload the page and try again".into(),
        )
        .into())
    }
}

/// Signs in with an API token: 401 for a token that would be refused in an
/// Authorization header; otherwise a new session of that token.
pub fn sign_in(ctx: &Ctx, token: &str, client: &str) -> Result<NewSession, ServiceError> {
    let mut conn = ctx.conn()?;
    let now = ctx.clock.now();
    tokens::authenticate(&mut conn, now, token.trim(), client)?;
    let id = tokens::id_of(&mut conn, token.trim())?
        .ok_or_else(|| AccessError::Unauthenticated("unknown token".into()))?;
    // Ended sessions go whenever someone signs in: the table stays small.
    diesel::delete(ui_sessions::table.filter(ui_sessions::expires_at.le(now)))
        .execute(&mut conn)?;
    let secret = generate_token();
    let expires_at = now + SESSION_SECS;
    diesel::insert_into(ui_sessions::table)
        .values((
            ui_sessions::secret_hash.eq(hash_token(&secret)),
            ui_sessions::token_id.eq(id),
            ui_sessions::csrf.eq(generate_token()),
            ui_sessions::created_at.eq(now),
            ui_sessions::expires_at.eq(expires_at),
        ))
        .execute(&mut conn)?;
    Ok(NewSession { secret, expires_at })
}

/// The session a cookie names: None when unknown or ended; 401 when its
/// token has been revoked or has expired meanwhile.
pub fn resume(ctx: &Ctx, secret: &str, client: &str) -> Result<Option<Session>, ServiceError> {
    let mut conn = ctx.conn()?;
    let now = ctx.clock.now();
    let row: Option<(i64, String)> = ui_sessions::table
        .find(hash_token(secret))
        .filter(ui_sessions::expires_at.gt(now))
        .select((ui_sessions::token_id, ui_sessions::csrf))
        .first(&mut conn)
        .optional()?;
    let Some((token_id, csrf)) = row else {
        return Ok(None);
    };
    let actor = tokens::authenticate_id(&mut conn, now, token_id, client)?;
    Ok(Some(Session { actor, csrf }))
}

/// Ends the session a cookie names (nothing when there is none).
pub fn sign_out(ctx: &Ctx, secret: &str) -> Result<(), ServiceError> {
    diesel::delete(ui_sessions::table.find(hash_token(secret))).execute(&mut *ctx.conn()?)?;
    Ok(())
}
