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
        Ok(Policy {
            channel: channel.into(),
            source,
            schedule,
            soak: duration("soak", &spec.soak)?.unwrap_or_default(),
            require_permission: spec.require_permission.unwrap_or(true),
            retain,
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
        format!(
            "{when}: newest eligible build of each name from {} after soaking {}",
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
/// at least the soak time, not held, not rejected, target not frozen.
pub fn blockers(
    facts: &BuildFacts,
    soak: Duration,
    frozen: Option<&Note>,
    now: i64,
) -> Vec<Blocker> {
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
mod tests {
    use super::*;

    fn chans() -> Vec<String> {
        vec!["qa".into(), "staging".into(), "prod".into()]
    }

    fn spec(toml_text: &str) -> PolicySpec {
        toml::from_str(toml_text).expect("toml")
    }

    #[test]
    fn policies_parse_and_validate() {
        let p = Policy::from_spec("prod", &spec("every = \"1h\"\nsoak = \"1h\""), &chans())
            .expect("ok");
        assert_eq!(p.source.as_deref(), Some("staging"));
        assert_eq!(p.schedule, Some(Schedule::Every(Duration::from_secs(3600))));
        assert_eq!(p.soak, Duration::from_secs(3600));
        assert_eq!(p.retain, 3);
        assert!(p.require_permission);
        let bad = |c: &str, t: &str| Policy::from_spec(c, &spec(t), &chans()).is_err();
        assert!(
            bad("qa", "every = \"1h\""),
            "first channel cannot be automatic"
        );
        assert!(bad("prod", "source = \"qa\""), "no skipping");
        assert!(bad("prod", "every = \"1h\"\ncron = \"* * * * *\""));
        assert!(bad("prod", "cron = \"61 * * * *\""));
        assert!(bad(
            "prod",
            "cron = \"0 * * * *\"\ntimezone = \"Mars/Olympus\""
        ));
        assert!(bad("prod", "retain = 0"));
        assert!(bad("prod", "every = \"soon\""));
        assert!(bad("nope", "every = \"1h\""));
        assert!(toml::from_str::<PolicySpec>("evry = \"1h\"").is_err());
    }

    #[test]
    fn interval_schedules_run_a_missed_slot_once() {
        let s = Schedule::Every(Duration::from_secs(3600));
        assert_eq!(s.next_after(1000, None), 4600);
        assert_eq!(s.next_after(4600, Some(4600)), 8200);
        // Down for five hours: one run now, then back on the cadence.
        assert_eq!(
            s.next_after(4600 + 5 * 3600 + 10, Some(4600)),
            4600 + 6 * 3600
        );
    }

    #[test]
    fn cron_follows_the_time_zone() {
        let p = Policy::from_spec(
            "staging",
            &spec("cron = \"15 10 * * *\"\ntimezone = \"Europe/Madrid\""),
            &chans(),
        )
        .expect("ok");
        let s = p.schedule.expect("schedule");
        // 2026-11-22 00:00:00 UTC; Madrid is UTC+1 in November → 09:15 UTC.
        let midnight = 1_795_305_600;
        assert_eq!(s.next_after(midnight, None), midnight + 9 * 3600 + 15 * 60);
        // In July (UTC+2) the same rule fires at 08:15 UTC. 2026-07-01 00:00 UTC:
        let july = 1_782_864_000;
        assert_eq!(s.next_after(july, None), july + 8 * 3600 + 15 * 60);
        // Strictly after: at the firing second, the next is a day later.
        let fire = midnight + 9 * 3600 + 15 * 60;
        assert_eq!(s.next_after(fire, Some(fire)), fire + 86_400);
    }

    #[test]
    fn eligibility_rule() {
        let note = |r: &str| Note {
            by: "alice".into(),
            at: 5,
            reason: r.into(),
        };
        let fresh = BuildFacts {
            entered_source_at: 1000,
            held: None,
            rejected: None,
            present: false,
        };
        let soak = Duration::from_secs(1800);
        assert_eq!(
            blockers(&fresh, soak, None, 2000),
            vec![Blocker::Soaking { until: 2800 }]
        );
        assert!(blockers(&fresh, soak, None, 2800).is_empty());
        let held = BuildFacts {
            held: Some(note("panic")),
            ..fresh.clone()
        };
        assert!(matches!(
            blockers(&held, soak, None, 9999)[..],
            [Blocker::Held { .. }]
        ));
        let rejected = BuildFacts {
            rejected: Some(note("bad")),
            ..fresh.clone()
        };
        assert!(matches!(
            blockers(&rejected, soak, None, 9999)[..],
            [Blocker::Rejected { .. }]
        ));
        assert!(matches!(
            blockers(&fresh, soak, Some(&note("release")), 9999)[..],
            [Blocker::Frozen { .. }]
        ));
    }
}
