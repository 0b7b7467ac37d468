//! Who may do what: permissions, the grants of one caller, and API tokens as
//! values. Pure functions over plain data; storage lives in `tokens.rs`.

pub mod sessions;
pub mod tokens;

use std::collections::BTreeSet;
use std::fmt;

use sha2::{Digest, Sha256};

/// One right a token can hold.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// Read every channel (`read`) or one (`read:<channel>`).
    Read(Option<String>),
    /// Upload builds, optionally straight into the first channel.
    Upload,
    /// Promote into and demote from one channel.
    Promote(String),
    /// Report check results on builds in every channel (`report`) or one
    /// (`report:<channel>`), and add notes.
    Report(Option<String>),
    /// Everything, including tokens and configuration.
    Admin,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermissionError {
    #[error(
        "unknown permission {0:?}; use read, read:<channel>, upload, promote:<channel>, report, report:<channel> or admin"
    )]
    Unknown(String),
    #[error("unknown role {0:?}; use reader, uploader, promoter:<channel>, reporter, reporter:<channel> or admin")]
    UnknownRole(String),
    #[error("permission {0:?} names channel {1:?}, which is not configured")]
    NoSuchChannel(String, String),
}

impl Permission {
    pub fn parse(s: &str) -> Result<Permission, PermissionError> {
        let s = s.trim();
        match s.split_once(':') {
            None => match s {
                "read" => Ok(Permission::Read(None)),
                "upload" => Ok(Permission::Upload),
                "report" => Ok(Permission::Report(None)),
                "admin" => Ok(Permission::Admin),
                _ => Err(PermissionError::Unknown(s.into())),
            },
            Some(("read", ch)) if !ch.is_empty() => Ok(Permission::Read(Some(ch.into()))),
            Some(("promote", ch)) if !ch.is_empty() => Ok(Permission::Promote(ch.into())),
            Some(("report", ch)) if !ch.is_empty() => Ok(Permission::Report(Some(ch.into()))),
            _ => Err(PermissionError::Unknown(s.into())),
        }
    }

    /// The channel a permission is scoped to, if any.
    pub fn channel(&self) -> Option<&str> {
        match self {
            Permission::Read(Some(c)) | Permission::Promote(c) | Permission::Report(Some(c)) => {
                Some(c)
            }
            _ => None,
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Permission::Read(None) => f.write_str("read"),
            Permission::Read(Some(c)) => write!(f, "read:{c}"),
            Permission::Upload => f.write_str("upload"),
            Permission::Promote(c) => write!(f, "promote:{c}"),
            Permission::Report(None) => f.write_str("report"),
            Permission::Report(Some(c)) => write!(f, "report:{c}"),
            Permission::Admin => f.write_str("admin"),
        }
    }
}

/// Named bundles for `forklift token create --role`.
pub fn role(name: &str) -> Result<Vec<Permission>, PermissionError> {
    match name.split_once(':') {
        None => match name {
            "reader" => Ok(vec![Permission::Read(None)]),
            // CI pushes builds into the first channel and nothing else.
            "uploader" => Ok(vec![Permission::Upload]),
            // A test system that reports results and nothing else.
            "reporter" => Ok(vec![Permission::Report(None)]),
            "admin" => Ok(vec![Permission::Admin]),
            _ => Err(PermissionError::UnknownRole(name.into())),
        },
        Some(("promoter", ch)) if !ch.is_empty() => Ok(vec![Permission::Promote(ch.into())]),
        Some(("reporter", ch)) if !ch.is_empty() => Ok(vec![Permission::Report(Some(ch.into()))]),
        _ => Err(PermissionError::UnknownRole(name.into())),
    }
}

/// Parses a stored or requested permission list and checks its channels exist.
pub fn parse_permissions<S: AsRef<str>>(
    items: &[S],
    channels: &[String],
) -> Result<BTreeSet<Permission>, PermissionError> {
    let mut out = BTreeSet::new();
    for item in items {
        let p = Permission::parse(item.as_ref())?;
        if let Some(c) = p.channel() {
            if !channels.iter().any(|x| x == c) {
                return Err(PermissionError::NoSuchChannel(p.to_string(), c.into()));
            }
        }
        out.insert(p);
    }
    Ok(out)
}

/// What one caller holds. Anonymous callers hold nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants(BTreeSet<Permission>);

impl Grants {
    pub fn new(perms: impl IntoIterator<Item = Permission>) -> Grants {
        Grants(perms.into_iter().collect())
    }

    pub fn admin() -> Grants {
        Grants::new([Permission::Admin])
    }

    pub fn is_admin(&self) -> bool {
        self.0.contains(&Permission::Admin)
    }

    pub fn may_upload(&self) -> bool {
        self.is_admin() || self.0.contains(&Permission::Upload)
    }

    /// Reporting checks on builds in `channel`.
    pub fn may_report(&self, channel: &str) -> bool {
        self.is_admin()
            || self.0.contains(&Permission::Report(None))
            || self.0.contains(&Permission::Report(Some(channel.into())))
    }

    pub fn may_promote(&self, channel: &str) -> bool {
        self.is_admin() || self.0.contains(&Permission::Promote(channel.into()))
    }

    /// Reading a channel through a token: `read`, `read:<channel>`, or the right
    /// to change it (who may promote into a channel may see what is in it).
    pub fn may_read(&self, channel: &str) -> bool {
        self.is_admin()
            || self.0.contains(&Permission::Read(None))
            || self.0.contains(&Permission::Read(Some(channel.into())))
            || self.0.contains(&Permission::Promote(channel.into()))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Permission> {
        self.0.iter()
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|p| p.to_string()).collect()
    }
}

/// Which channels anonymous callers may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnonymousRead {
    pub all: bool,
    pub private: BTreeSet<String>,
}

impl AnonymousRead {
    /// What the configuration lets anonymous callers read.
    pub fn of(config: &crate::config::Config) -> AnonymousRead {
        AnonymousRead {
            all: config.anonymous_read,
            private: config.private_channels.iter().cloned().collect(),
        }
    }

    pub fn allows(&self, channel: &str) -> bool {
        self.all && !self.private.contains(channel)
    }
}

/// The prefix makes a leaked token recognisable to secret scanners.
pub const TOKEN_PREFIX: &str = "fkl_";

/// A new random token: 32 bytes from the OS generator, hex-encoded.
pub fn generate_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// Tokens carry 256 random bits, so one round of SHA-256 is the right storage
/// hash: a slow password hash would add latency to every request and no safety.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two hashes without an early exit.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Credentials as they arrive: `Bearer <token>` or HTTP Basic with the token
/// as password (any user name). Anything else is malformed.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    None,
    Token(String),
    Malformed,
}

pub fn parse_authorization(header: Option<&str>) -> Presented {
    use base64::Engine;
    let Some(h) = header else {
        return Presented::None;
    };
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return Presented::Token(rest.to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
            return Presented::Malformed;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return Presented::Malformed;
        };
        return match text.split_once(':') {
            Some((_, pw)) if !pw.is_empty() => Presented::Token(pw.to_string()),
            _ => Presented::Malformed,
        };
    }
    Presented::Malformed
}

pub use crate::config::acceptable_supplied_token;

#[cfg(test)]
mod tests {
    use super::*;

    fn chans() -> Vec<String> {
        vec!["qa".into(), "staging".into(), "prod".into()]
    }

    #[test]
    fn permissions_parse_and_print() {
        for s in [
            "read",
            "read:prod",
            "upload",
            "promote:staging",
            "report",
            "report:staging",
            "admin",
        ] {
            assert_eq!(Permission::parse(s).expect(s).to_string(), s);
        }
        for bad in [
            "", "write", "promote", "promote:", "read:", "report:", "admin:x",
        ] {
            assert!(Permission::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_permissions(&["promote:nope"], &chans()),
            Err(PermissionError::NoSuchChannel(
                "promote:nope".into(),
                "nope".into()
            ))
        );
    }

    #[test]
    fn roles_expand() {
        assert_eq!(role("uploader"), Ok(vec![Permission::Upload]));
        assert_eq!(
            role("reporter:staging"),
            Ok(vec![Permission::Report(Some("staging".into()))])
        );
        assert_eq!(
            role("promoter:prod"),
            Ok(vec![Permission::Promote("prod".into())])
        );
        assert!(role("root").is_err());
    }

    #[test]
    fn grants_boundaries() {
        let ci = Grants::new([Permission::Upload]);
        assert!(ci.may_upload());
        assert!(!ci.may_promote("staging"));
        assert!(!ci.may_read("prod"));
        let qa_lead = Grants::new([Permission::Promote("staging".into())]);
        assert!(qa_lead.may_promote("staging"));
        assert!(!qa_lead.may_promote("prod"));
        assert!(qa_lead.may_read("staging"));
        assert!(!qa_lead.may_read("prod"));
        assert!(!qa_lead.may_upload());
        let host = Grants::new([Permission::Read(Some("prod".into()))]);
        assert!(host.may_read("prod") && !host.may_read("qa"));
        let uat = Grants::new([Permission::Report(Some("staging".into()))]);
        assert!(uat.may_report("staging") && !uat.may_report("qa"));
        assert!(!uat.may_promote("staging") && !uat.may_upload() && !uat.may_read("staging"));
        assert!(Grants::new([Permission::Report(None)]).may_report("qa"));
        let admin = Grants::admin();
        assert!(admin.may_promote("prod") && admin.may_upload() && admin.may_read("x"));
        assert!(!Grants::default().may_read("qa"));
    }

    #[test]
    fn anonymous_read() {
        let a = AnonymousRead {
            all: true,
            private: ["prod".to_string()].into(),
        };
        assert!(a.allows("qa") && !a.allows("prod"));
        let closed = AnonymousRead {
            all: false,
            private: Default::default(),
        };
        assert!(!closed.allows("qa"));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (generate_token(), generate_token());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
        assert!(constant_time_eq(&hash_token(&a), &hash_token(&a)));
        assert!(!constant_time_eq(&hash_token(&a), &hash_token(&b)));
        assert!(!constant_time_eq("ab", "abc"));
    }

    #[test]
    fn authorization_header() {
        assert_eq!(parse_authorization(None), Presented::None);
        assert_eq!(
            parse_authorization(Some("Bearer fkl_x")),
            Presented::Token("fkl_x".into())
        );
        // "host:fkl_y"
        assert_eq!(
            parse_authorization(Some("Basic aG9zdDpma2xfeQ==")),
            Presented::Token("fkl_y".into())
        );
        assert_eq!(parse_authorization(Some("Basic !!")), Presented::Malformed);
        // "host:" (empty password)
        assert_eq!(
            parse_authorization(Some("Basic aG9zdDo=")),
            Presented::Malformed
        );
        assert_eq!(parse_authorization(Some("Digest x")), Presented::Malformed);
    }
}
