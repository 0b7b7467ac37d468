//! Names a request gives, checked once where they enter: a channel of the
//! configured path, and a build named by its SHA-256 or its file name.
//! Services take these types, so they never re-validate strings.

use std::fmt;
use std::ops::Deref;

use super::error::LookupError;
use crate::config::Config;

/// A channel of the configured promotion path, and its place on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelName {
    name: String,
    position: usize,
}

impl ChannelName {
    /// `404 channel_not_found` unless `raw` is a configured channel.
    pub fn parse(config: &Config, raw: &str) -> Result<ChannelName, LookupError> {
        config
            .channels
            .iter()
            .position(|c| c == raw)
            .map(|position| ChannelName {
                name: raw.to_string(),
                position,
            })
            .ok_or_else(|| LookupError::ChannelNotFound(raw.to_string()))
    }

    /// Where the channel stands on the path (0: the entry channel).
    pub fn position(&self) -> usize {
        self.position
    }

    /// The first channel: the one uploads go into.
    pub fn is_entry(&self) -> bool {
        self.position == 0
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }
}

impl Deref for ChannelName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl PartialEq<ChannelName> for String {
    fn eq(&self, other: &ChannelName) -> bool {
        *self == other.name
    }
}

impl serde::Serialize for ChannelName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl From<&ChannelName> for String {
    fn from(c: &ChannelName) -> String {
        c.name.clone()
    }
}

/// Queries take a channel name as they take its text.
impl<'a> diesel::expression::AsExpression<diesel::sql_types::Text> for &'a ChannelName {
    type Expression =
        <&'a str as diesel::expression::AsExpression<diesel::sql_types::Text>>::Expression;
    fn as_expression(self) -> Self::Expression {
        <&'a str as diesel::expression::AsExpression<diesel::sql_types::Text>>::as_expression(
            &self.name,
        )
    }
}

/// How a URL's `{id}` names a build: its SHA-256 (the package id), or its
/// canonical file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageRef {
    Sha256(String),
    FileName(String),
}

impl PackageRef {
    /// 64 lowercase hex digits are an id; anything else must look like a
    /// file name (no `/`, at most 255 bytes) or names nothing.
    pub fn parse(raw: &str) -> Result<PackageRef, LookupError> {
        if raw.len() == 64 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Ok(PackageRef::Sha256(raw.to_string()));
        }
        if raw.is_empty()
            || raw.len() > 255
            || raw.contains('/')
            || raw.chars().any(char::is_control)
        {
            return Err(LookupError::PackageNotFound(raw.to_string()));
        }
        Ok(PackageRef::FileName(raw.to_string()))
    }

    /// The text the caller gave.
    pub fn as_str(&self) -> &str {
        match self {
            PackageRef::Sha256(s) | PackageRef::FileName(s) => s,
        }
    }
}

impl fmt::Display for PackageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Layer;

    #[test]
    fn channel_names_are_those_of_the_path() {
        let config = Config::resolve(Layer::default(), Layer::default(), Layer::default())
            .expect("defaults");
        let first = &config.channels[0];
        let c = ChannelName::parse(&config, first).expect("configured");
        assert!(c.is_entry());
        assert_eq!(c.as_str(), first.as_str());
        let last = config.channels.last().expect("channels");
        let l = ChannelName::parse(&config, last).expect("configured");
        assert_eq!(l.position(), config.channels.len() - 1);
        assert!(matches!(
            ChannelName::parse(&config, "nowhere"),
            Err(LookupError::ChannelNotFound(_))
        ));
    }

    #[test]
    fn package_refs() {
        let sha = "a".repeat(64);
        assert_eq!(
            PackageRef::parse(&sha).expect("id"),
            PackageRef::Sha256(sha)
        );
        // Upper case is not an id (ids are lowercase); it may still be a name.
        assert!(matches!(
            PackageRef::parse(&"A".repeat(64)),
            Ok(PackageRef::FileName(_))
        ));
        assert!(matches!(
            PackageRef::parse("demo-1.0-1.x86_64.rpm"),
            Ok(PackageRef::FileName(_))
        ));
        for bad in ["", "a/b.rpm", "x\n.rpm"] {
            assert!(PackageRef::parse(bad).is_err(), "{bad:?}");
        }
        assert!(PackageRef::parse(&"x".repeat(256)).is_err());
    }
}
