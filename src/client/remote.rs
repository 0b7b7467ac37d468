//! Which server and which token: flags, then `FORKLIFT_URL`/`FORKLIFT_TOKEN`,
//! then a named profile in `~/.config/forklift/config.toml`. A token is
//! never printed; a profile file holding one must be private to its owner.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

use super::{Failure, Output};

pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

#[derive(Args, Clone, Debug, Default)]
pub struct RemoteArgs {
    /// Server URL (FORKLIFT_URL, or the profile's `url`) [default: http://127.0.0.1:8080].
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// API token (FORKLIFT_TOKEN, or the profile's `token`). Prefer the
    /// environment or a profile: a flag is visible to other users in `ps`.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// A profile of the client config file (FORKLIFT_PROFILE) [default: the file's `default`].
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// text: tables for people; json: the server's JSON for scripts.
    #[arg(long, value_enum, default_value_t, value_name = "FORMAT")]
    pub output: Output,
}

/// A token: kept out of every `Debug` and error message.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Where commands go, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub url: String,
    pub token: Option<Secret>,
}

/// `~/.config/forklift/config.toml`:
///
/// ```toml
/// default = "prod"
/// [profiles.prod]
/// url = "https://forklift.example.com"
/// token_file = "/run/secrets/forklift"   # or: token = "…"
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    pub default: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub url: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
}

/// The client config file: `$XDG_CONFIG_HOME/forklift/config.toml`, else
/// `$HOME/.config/forklift/config.toml`.
pub fn config_path(env: &HashMap<String, String>) -> Option<PathBuf> {
    let base = match env.get("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env.get("HOME")?).join(".config"),
    };
    Some(base.join("forklift").join("config.toml"))
}

/// Reads the profile file, refusing one that others may read while it
/// holds a token (as ssh does with private keys).
pub fn read_profiles(path: &Path) -> Result<Option<ProfileFile>, Failure> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Failure::usage(format!("{}: {e}", path.display()))),
    };
    let file: ProfileFile = toml::from_str(&text)
        .map_err(|e| Failure::usage(format!("{}: {}", path.display(), e.message())))?;
    if file.profiles.values().any(|p| p.token.is_some()) {
        check_private(path)?;
    }
    Ok(Some(file))
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(Failure::usage(format!(
            "{} holds a token but others may read it (mode {:o}): chmod 600 it",
            path.display(),
            mode & 0o777
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), Failure> {
    Ok(())
}

/// Flags, then the environment, then the chosen profile; each setting on
/// its own, so a profile may give the URL and the environment the token.
pub fn resolve(
    args: &RemoteArgs,
    env: &HashMap<String, String>,
    file: Option<&ProfileFile>,
) -> Result<Remote, Failure> {
    let wanted = args
        .profile
        .clone()
        .or_else(|| env.get("FORKLIFT_PROFILE").cloned());
    let profile = match (&wanted, file) {
        (Some(name), Some(f)) => Some(f.profiles.get(name).ok_or_else(|| {
            Failure::usage(format!("no profile {name:?} in the client config file"))
        })?),
        (Some(name), None) => {
            return Err(Failure::usage(format!(
                "profile {name:?} asked for, but there is no client config file"
            )))
        }
        (None, Some(f)) => match &f.default {
            Some(name) => Some(f.profiles.get(name).ok_or_else(|| {
                Failure::usage(format!("the default profile {name:?} is not defined"))
            })?),
            None => None,
        },
        (None, None) => None,
    };
    let url = args
        .url
        .clone()
        .or_else(|| env.get("FORKLIFT_URL").cloned())
        .or_else(|| profile.and_then(|p| p.url.clone()))
        .unwrap_or_else(|| DEFAULT_URL.to_string());
    let token = match args
        .token
        .clone()
        .or_else(|| env.get("FORKLIFT_TOKEN").cloned())
    {
        Some(t) => Some(t),
        None => profile_token(profile)?,
    };
    Ok(Remote {
        url: check_url(&url)?,
        token: token.filter(|t| !t.is_empty()).map(Secret),
    })
}

fn profile_token(profile: Option<&Profile>) -> Result<Option<String>, Failure> {
    let Some(p) = profile else { return Ok(None) };
    if let Some(t) = &p.token {
        return Ok(Some(t.clone()));
    }
    match &p.token_file {
        Some(path) => std::fs::read_to_string(path)
            .map(|t| Some(t.trim().to_string()))
            .map_err(|e| Failure::usage(format!("token_file {}: {e}", path.display()))),
        None => Ok(None),
    }
}

fn check_url(url: &str) -> Result<String, Failure> {
    let trimmed = url.trim_end_matches('/');
    if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
        return Err(Failure::usage(format!(
            "server URL {url:?} must start with http:// or https://"
        )));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file() -> ProfileFile {
        toml::from_str(
            r#"
            default = "staging"
            [profiles.staging]
            url = "http://staging.example:8080/"
            token = "s3cret"
            [profiles.prod]
            url = "https://prod.example"
            "#,
        )
        .expect("profile file parses")
    }

    #[test]
    fn flags_beat_environment_beat_profile() {
        let f = file();
        let args = RemoteArgs {
            url: Some("http://flag:1".into()),
            ..RemoteArgs::default()
        };
        let e = env(&[
            ("FORKLIFT_URL", "http://env:2"),
            ("FORKLIFT_TOKEN", "envtok"),
        ]);
        let r = resolve(&args, &e, Some(&f)).expect("resolves");
        assert_eq!(r.url, "http://flag:1");
        assert_eq!(r.token.as_ref().map(Secret::expose), Some("envtok"));
        let r = resolve(&RemoteArgs::default(), &env(&[]), Some(&f)).expect("resolves");
        assert_eq!(r.url, "http://staging.example:8080");
        assert_eq!(r.token.as_ref().map(Secret::expose), Some("s3cret"));
    }

    #[test]
    fn a_named_profile_is_used_and_an_unknown_one_refused() {
        let f = file();
        let e = env(&[("FORKLIFT_PROFILE", "prod")]);
        let r = resolve(&RemoteArgs::default(), &e, Some(&f)).expect("resolves");
        assert_eq!(r.url, "https://prod.example");
        assert_eq!(r.token, None);
        let args = RemoteArgs {
            profile: Some("dev".into()),
            ..RemoteArgs::default()
        };
        let err = resolve(&args, &env(&[]), Some(&f)).expect_err("unknown profile");
        assert!(err.message.contains("\"dev\""), "{}", err.message);
    }

    #[test]
    fn defaults_and_bad_urls() {
        let r = resolve(&RemoteArgs::default(), &env(&[]), None).expect("resolves");
        assert_eq!(r.url, DEFAULT_URL);
        let e = env(&[("FORKLIFT_URL", "ftp://x")]);
        assert!(resolve(&RemoteArgs::default(), &e, None).is_err());
    }

    #[test]
    fn a_token_never_shows_in_debug_output() {
        let r = Remote {
            url: DEFAULT_URL.into(),
            token: Some(Secret("hunter2".into())),
        };
        assert!(!format!("{r:?}").contains("hunter2"));
    }

    #[cfg(unix)]
    #[test]
    fn a_readable_file_with_a_token_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[profiles.a]\ntoken = \"t\"\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = read_profiles(&path).expect_err("mode 644 refused");
        assert!(err.message.contains("chmod 600"), "{}", err.message);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(read_profiles(&path).expect("mode 600 read").is_some());
    }
}
