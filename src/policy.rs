//! Promotion policies and the eligibility rule, as plain values and pure
//! functions: parsed from the config file or the admin API, unit-tested
//! without a server or a database.

use std::time::Duration;

use serde::Serialize;

pub use crate::config::PolicySpec;

pub const DEFAULT_RETAIN: u32 = 3;

#[derive(Debug, Clone)]
pub enum Schedule {
    Every(Duration),
    Cron {
        expr: String,
        tz: chrono_tz::Tz,
        cron: Box<croner::Cron>,
    },
}

/// A validated policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub channel: String,
    /// None for the first channel, which builds enter by upload.
    pub source: Option<String>,
    pub schedule: Option<Schedule>,
    pub soak: Duration,
    pub require_permission: bool,
    pub retain: u32,
    /// Checks that must have passed in the source channel.
    pub require_checks: Vec<String>,
    /// A failed required check holds the build.
    pub hold_on_failed_check: bool,
    pub spec: PolicySpec,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy for {channel:?}: {message}")]
pub struct PolicyError {
    pub channel: String,
    pub message: String,
}

impl Policy {
    /// The policy of a channel nobody configured: manual, restricted, retain 3.
    pub fn default_for(channel: &str, channels: &[String]) -> Policy {
        Policy {
            channel: channel.into(),
            source: previous(channel, channels),
            schedule: None,
            soak: Duration::ZERO,
            require_permission: true,
            retain: DEFAULT_RETAIN,
            require_checks: Vec::new(),
            hold_on_failed_check: false,
            spec: PolicySpec::default(),
        }
    }

    pub fn from_spec(
        channel: &str,
        spec: &PolicySpec,
        channels: &[String],
    ) -> Result<Policy, PolicyError> {
        let err = |message: String| PolicyError {
            channel: channel.into(),
            message,
        };
        if !channels.iter().any(|c| c == channel) {
            return Err(err("no such channel".into()));
        }
        let source = previous(channel, channels);
        if let Some(s) = &spec.source {
            if source.as_deref() != Some(s.as_str()) {
                return Err(err(format!(
                    "source must be the previous channel ({}); levels are never skipped",
                    source
                        .as_deref()
                        .unwrap_or("none: this is the first channel")
                )));
            }
        }
        let duration = |key: &str, v: &Option<String>| -> Result<Option<Duration>, PolicyError> {
            v.as_deref()
                .map(|s| humantime::parse_duration(s).map_err(|e| err(format!("{key} {s:?}: {e}"))))
                .transpose()
        };
        let schedule = match (&spec.every, &spec.cron) {
            (Some(_), Some(_)) => return Err(err("set either every or cron, not both".into())),
            (Some(_), None) => {
                let d = duration("every", &spec.every)?.unwrap_or_default();
                if d < Duration::from_secs(1) {
                    return Err(err("every must be at least 1s".into()));
                }
                Some(Schedule::Every(d))
            }
            (None, Some(expr)) => {
                let cron: croner::Cron = expr
                    .parse()
                    .map_err(|e| err(format!("cron {expr:?}: {e}")))?;
                let tz: chrono_tz::Tz = spec
                    .timezone
                    .as_deref()
                    .unwrap_or("UTC")
                    .parse()
                    .map_err(|_| err(format!("unknown time zone {:?}", spec.timezone)))?;
                Some(Schedule::Cron {
                    expr: expr.clone(),
                    tz,
                    cron: Box::new(cron),
                })
            }
            (None, None) => {
                if spec.timezone.is_some() {
                    return Err(err("timezone without cron".into()));
                }
                None
            }
        };
        if schedule.is_some() && source.is_none() {
            return Err(err(
                "the first channel has no source to promote from automatically".into(),
            ));
        }
        let retain = spec.retain.unwrap_or(DEFAULT_RETAIN);
        if retain == 0 {
            return Err(err("retain must be at least 1".into()));
        }
        let require_checks = spec.require_checks.clone().unwrap_or_default();
        for name in &require_checks {
            check_name(name).map_err(err)?;
        }
        if !require_checks.is_empty() && source.is_none() {
            return Err(err(
                "the first channel has no source channel where checks could pass".into(),
            ));
        }
        let hold_on_failed_check = match spec.on_failed_check.as_deref() {
            None => false,
            Some("hold") if !require_checks.is_empty() => true,
            Some("hold") => return Err(err("on_failed_check without require_checks".into())),
            Some(other) => {
                return Err(err(format!(
                    "on_failed_check {other:?}: the only action is \"hold\""
                )))
            }
        };
        Ok(Policy {
            channel: channel.into(),
            source,
            schedule,
            soak: duration("soak", &spec.soak)?.unwrap_or_default(),
            require_permission: spec.require_permission.unwrap_or(true),
            retain,
            require_checks,
            hold_on_failed_check,
            spec: spec.clone(),
        })
    }

    /// One line describing the automatic rule, recorded on what it promotes.
    pub fn rule(&self) -> String {
        let when = match &self.schedule {
            Some(Schedule::Every(d)) => format!("every {}", humantime::format_duration(*d)),
            Some(Schedule::Cron { expr, tz, .. }) => format!("cron \"{expr}\" {tz}"),
            None => "manual".into(),
        };
        let checks = if self.require_checks.is_empty() {
            String::new()
        } else {
            format!(", with {} passed there", self.require_checks.join(" and "))
        };
        format!(
            "{when}: newest eligible build of each name from {} after soaking {}{checks}",
            self.source.as_deref().unwrap_or("-"),
            humantime::format_duration(self.soak)
        )
    }
}

fn previous(channel: &str, channels: &[String]) -> Option<String> {
    let i = channels.iter().position(|c| c == channel)?;
    i.checked_sub(1).map(|j| channels[j].clone())
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        self.key() == other.key()
    }
}

impl Schedule {
    /// The schedule's identity, stored with its state: a changed rule restarts it.
    pub fn key(&self) -> String {
        match self {
            Schedule::Every(d) => format!("every {}s", d.as_secs()),
            Schedule::Cron { expr, tz, .. } => format!("cron {expr} {tz}"),
        }
    }

    /// The first run strictly after `now`, given the previously due run. After
    /// downtime this skips every missed slot, so a missed run happens once.
    pub fn next_after(&self, now: i64, previous_due: Option<i64>) -> i64 {
        match self {
            Schedule::Every(d) => {
                let step = d.as_secs().max(1) as i64;
                match previous_due {
                    // Stay on the original cadence.
                    Some(p) if p <= now => p + ((now - p) / step + 1) * step,
                    Some(p) => p,
                    None => now + step,
                }
            }
            Schedule::Cron { tz, cron, .. } => {
                let at = chrono::DateTime::from_timestamp(now, 0)
                    .unwrap_or_default()
                    .with_timezone(tz);
                cron.find_next_occurrence(&at, false)
                    .map(|t| t.timestamp())
                    // An expression that never fires again (e.g. Feb 30): far future.
                    .unwrap_or(i64::MAX / 2)
            }
        }
    }
}

/// What the eligibility rule knows about one build in the source channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildFacts {
    /// When it entered the source channel (its current stay).
    pub entered_source_at: i64,
    pub held: Option<Note>,
    /// Rejected for the target channel by a demotion.
    pub rejected: Option<Note>,
    /// Already in the target channel.
    pub present: bool,
    /// Its checks in the source channel: the latest result of each by name.
    pub checks: std::collections::BTreeMap<String, CheckFact>,
}

/// What a check reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Passed,
    Failed,
    Running,
}

impl CheckStatus {
    pub fn parse(s: &str) -> Result<CheckStatus, String> {
        match s {
            "passed" => Ok(CheckStatus::Passed),
            "failed" => Ok(CheckStatus::Failed),
            "running" => Ok(CheckStatus::Running),
            _ => Err(format!(
                "check status {s:?}: use \"passed\", \"failed\" or \"running\""
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Passed => "passed",
            CheckStatus::Failed => "failed",
            CheckStatus::Running => "running",
        }
    }
}

/// The latest result of one check of a build in a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFact {
    pub status: CheckStatus,
    pub by: String,
    pub at: i64,
    pub url: Option<String>,
}

/// A check's name: what CI and policies agree on, e.g. `integration`.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "check name {name:?}: 1 to 64 letters, digits, '-', '_' or '.'"
        ))
    }
}

/// Which required checks a build has not passed: a failed one with its
/// report, a missing or running one with what is known.
pub fn check_blockers(
    required: &[String],
    checks: &std::collections::BTreeMap<String, CheckFact>,
) -> Vec<Blocker> {
    let mut out = Vec::new();
    for name in required {
        match checks.get(name) {
            Some(c) if c.status == CheckStatus::Passed => {}
            Some(c) if c.status == CheckStatus::Failed => out.push(Blocker::FailedCheck {
                check: name.clone(),
                by: c.by.clone(),
                at: c.at,
                url: c.url.clone(),
            }),
            other => out.push(Blocker::MissingCheck {
                check: name.clone(),
                status: other.map(|c| c.status),
            }),
        }
    }
    out
}

/// Who did something, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub by: String,
    pub at: i64,
    pub reason: String,
}

/// Why a build may not go on (yet). Times go out as RFC 3339, like every
/// other time in the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Blocker {
    AlreadyPresent,
    Held {
        by: String,
        #[serde(serialize_with = "as_rfc3339")]
        at: i64,
        why: String,
    },
    Rejected {
        by: String,
        #[serde(serialize_with = "as_rfc3339")]
        at: i64,
        why: String,
    },
    Soaking {
        #[serde(serialize_with = "as_rfc3339")]
        until: i64,
    },
    /// A required check has not passed yet (never reported, or running).
    MissingCheck {
        check: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<CheckStatus>,
    },
    /// A required check failed: CI's report, with its link.
    FailedCheck {
        check: String,
        by: String,
        #[serde(serialize_with = "as_rfc3339")]
        at: i64,
        url: Option<String>,
    },
    /// The target channel, with the hosts' base system, would not meet
    /// these requirements of the build (its policy checks dependencies).
    UnsatisfiedDependencies {
        missing: Vec<String>,
    },
    Frozen {
        by: String,
        #[serde(serialize_with = "as_rfc3339")]
        at: i64,
        why: String,
    },
}

fn as_rfc3339<S: serde::Serializer>(t: &i64, s: S) -> Result<S::Ok, S::Error> {
    let at = chrono::DateTime::from_timestamp(*t, 0).unwrap_or_default();
    s.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// THE eligibility rule, used by the candidates list and by automatic
/// promotion alike: in the source channel (the caller passes only those), for
/// at least the soak time, not held, not rejected, required checks passed
/// there, target not frozen.
pub fn blockers(
    facts: &BuildFacts,
    policy: &Policy,
    frozen: Option<&Note>,
    now: i64,
) -> Vec<Blocker> {
    let soak = policy.soak;
    let mut out = Vec::new();
    if facts.present {
        out.push(Blocker::AlreadyPresent);
    }
    if let Some(h) = &facts.held {
        out.push(Blocker::Held {
            by: h.by.clone(),
            at: h.at,
            why: h.reason.clone(),
        });
    }
    if let Some(r) = &facts.rejected {
        out.push(Blocker::Rejected {
            by: r.by.clone(),
            at: r.at,
            why: r.reason.clone(),
        });
    }
    let until = facts
        .entered_source_at
        .saturating_add(soak.as_secs() as i64);
    if now < until {
        out.push(Blocker::Soaking { until });
    }
    out.extend(check_blockers(&policy.require_checks, &facts.checks));
    if let Some(f) = frozen {
        out.push(Blocker::Frozen {
            by: f.by.clone(),
            at: f.at,
            why: f.reason.clone(),
        });
    }
    out
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
