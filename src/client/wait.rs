//! `wait BUILD --in CHANNEL`: what a pipeline stage runs before it deploys.
//! It polls the build's record until the build is in the channel, until it
//! can no longer get there (demoted on the way, discarded), or until the
//! timeout; a server that is briefly away (a restart) is waited out.

use std::collections::HashMap;
use std::time::Instant;

use super::api::{self, segment, Api};
use super::model::{Channel, PackageDetail};
use super::{build_ref, Exit, Failure, Output, WaitArgs};

/// Where a build stands with respect to the channel waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Arrived,
    /// It will not get there without someone promoting it again.
    Rejected(String),
    /// Still on its way; where it is now.
    Waiting(String),
}

/// Decides from the build's record alone. The newest promotion or demotion
/// touching the channel or one before it tells whether the build is still
/// on its way: a demotion takes it out of that channel and every later one,
/// and no schedule brings it back.
pub fn verdict(d: &PackageDetail, channel: &str, positions: &HashMap<String, usize>) -> Verdict {
    let p = &d.package;
    if p.channels.iter().any(|c| c == channel) {
        return Verdict::Arrived;
    }
    if let Some(m) = &p.discarded {
        return Verdict::Rejected(format!("discarded by {} at {}: {}", m.by, m.at, m.reason));
    }
    let target = positions.get(channel).copied().unwrap_or(usize::MAX);
    let last_move = d
        .history
        .iter()
        .filter(|e| matches!(e.kind.as_str(), "promoted" | "added" | "demoted"))
        .filter(|e| {
            e.channel
                .as_ref()
                .and_then(|c| positions.get(c))
                .is_some_and(|&pos| pos <= target)
        })
        .max_by_key(|e| e.id);
    if let Some(e) = last_move.filter(|e| e.kind == "demoted") {
        return Verdict::Rejected(format!(
            "demoted from {} by {} at {}: {}",
            e.channel.as_deref().unwrap_or("?"),
            e.actor,
            e.at,
            e.reason.as_deref().unwrap_or("")
        ));
    }
    let mut state = if p.channels.is_empty() {
        "in no channel".to_string()
    } else {
        format!("in {}", p.channels.join(", "))
    };
    if let Some(m) = &p.held {
        state.push_str(&format!("; held by {}: {}", m.by, m.reason));
    }
    Verdict::Waiting(state)
}

pub fn run(api: &Api, args: &WaitArgs) -> Result<Exit, Failure> {
    let id = build_ref(&args.build.build)?;
    let channels: Vec<Channel> = api.get("/api/v1/channels")?;
    if !channels.iter().any(|c| c.name == args.channel) {
        return Err(Failure::new(
            Exit::NotFound,
            format!(
                "no channel {:?} (or not readable with this token)",
                args.channel
            ),
        ));
    }
    let positions: HashMap<String, usize> =
        channels.into_iter().map(|c| (c.name, c.position)).collect();
    let path = format!("/api/v1/packages/{}", segment(&id));
    let started = Instant::now();
    let deadline = started + args.timeout;
    let mut last_state = String::new();
    let mut last_value = serde_json::Value::Null;
    loop {
        match api.get_once(&path) {
            Ok(value) => {
                let d: PackageDetail = api::decode(&path, value.clone())?;
                last_value = value;
                match verdict(&d, &args.channel, &positions) {
                    Verdict::Arrived => {
                        let words = format!(
                            "{} is in {} (after {} s)",
                            d.package.filename,
                            args.channel,
                            started.elapsed().as_secs()
                        );
                        return finish(api, Exit::Ok, "arrived", &words, &last_value);
                    }
                    Verdict::Rejected(why) => {
                        let words = format!("{} will not reach {}: {why}", id, args.channel);
                        return finish(api, Exit::Rejected, "rejected", &words, &last_value);
                    }
                    Verdict::Waiting(state) if state != last_state => {
                        eprintln!(
                            "waiting for {} in {}: {state}",
                            d.package.filename, args.channel
                        );
                        last_state = state;
                    }
                    Verdict::Waiting(_) => {}
                }
            }
            // A restarting server is waited out; a refusal is final.
            Err(e) if e.is_transient() => {
                eprintln!("server unavailable ({}), still waiting", e.describe())
            }
            Err(e) => return Err(e.into()),
        }
        let now = Instant::now();
        if now >= deadline {
            let words = format!(
                "timed out after {} waiting for {id} in {}{}",
                humantime::format_duration(args.timeout),
                args.channel,
                if last_state.is_empty() {
                    String::new()
                } else {
                    format!(": {last_state}")
                }
            );
            return finish(api, Exit::TimedOut, "timed_out", &words, &last_value);
        }
        std::thread::sleep(args.interval.min(deadline - now));
    }
}

fn finish(
    api: &Api,
    exit: Exit,
    result: &str,
    words: &str,
    detail: &serde_json::Value,
) -> Result<Exit, Failure> {
    if api.output == Output::Json {
        let doc = serde_json::json!({ "result": result, "message": words, "build": detail });
        println!("{doc:#}");
    } else if exit == Exit::Ok {
        println!("{words}");
    } else {
        eprintln!("forklift: {words}");
    }
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(channels: &[&str], events: &[(i64, &str, &str)]) -> PackageDetail {
        let history: Vec<serde_json::Value> = events
            .iter()
            .map(|(id, kind, ch)| {
                serde_json::json!({"id": id, "at": "t", "kind": kind, "channel": ch,
                    "revision": 1, "actor": "ann", "reason": "bad"})
            })
            .collect();
        // The server's shape: the build's fields, its downloads and history.
        serde_json::from_value(serde_json::json!({
            "id": "ab", "name": "demo", "version": "2.0", "release": "1",
            "arch": "x86_64", "filename": "demo-2.0-1.x86_64.rpm", "channels": channels,
            "held": null, "discarded": null, "downloads": {},
            "history": history,
        }))
        .expect("detail")
    }

    fn order() -> HashMap<String, usize> {
        [("qa", 0), ("staging", 1), ("prod", 2)]
            .into_iter()
            .map(|(c, p)| (c.to_string(), p))
            .collect()
    }

    #[test]
    fn arrived_when_in_the_channel() {
        let d = detail(
            &["qa", "staging"],
            &[(1, "uploaded", "qa"), (2, "promoted", "staging")],
        );
        assert_eq!(verdict(&d, "staging", &order()), Verdict::Arrived);
        assert_eq!(
            verdict(&d, "prod", &order()),
            Verdict::Waiting("in qa, staging".into())
        );
    }

    #[test]
    fn a_demotion_on_the_way_ends_the_wait() {
        let d = detail(
            &["qa"],
            &[(2, "promoted", "staging"), (3, "demoted", "staging")],
        );
        let Verdict::Rejected(why) = verdict(&d, "prod", &order()) else {
            panic!("a build demoted from staging cannot reach prod");
        };
        assert!(why.starts_with("demoted from staging by ann"), "{why}");
    }

    #[test]
    fn a_demotion_after_the_channel_or_undone_does_not() {
        // Demoted from prod, waiting for staging: not in its way.
        let d = detail(&["qa"], &[(3, "demoted", "prod")]);
        assert!(matches!(
            verdict(&d, "staging", &order()),
            Verdict::Waiting(_)
        ));
        // Demoted, then promoted again by hand: on its way once more.
        let d = detail(
            &["qa", "staging"],
            &[(3, "demoted", "staging"), (4, "promoted", "staging")],
        );
        assert!(matches!(verdict(&d, "prod", &order()), Verdict::Waiting(_)));
    }
}
