//! The client: subcommands of the `forklift` binary that drive a running
//! server over its HTTP API, for pipelines and people. It owns argument
//! parsing for those commands, where the server and token come from
//! (`remote`), the HTTP calls (`api`), uploads (`push`), waiting for a build
//! (`wait`) and how answers are shown (`show`). It knows the server only
//! through its JSON, so it depends on nothing else in this crate.

mod api;
mod exit;
mod model;
mod push;
mod remote;
mod show;
mod wait;

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

pub use exit::{Exit, Failure};
pub use remote::{Profile, ProfileFile};

use api::Api;
use remote::RemoteArgs;

#[derive(Subcommand)]
pub enum Command {
    /// Upload builds (files, directories searched for .rpm/.deb, or globs).
    Push(PushArgs),
    /// Promote a build into a channel (the next one after a channel it is in).
    Promote(PromoteArgs),
    /// Take a build out of a channel and every later one; each falls back.
    Demote(DemoteArgs),
    /// Hold a build: it is never promoted automatically until released.
    Hold(HoldArgs),
    /// Lift a hold.
    Release(BuildArgs),
    /// Refuse every change to a channel's package set.
    Freeze(FreezeArgs),
    /// Lift a channel's freeze.
    Unfreeze(ChannelArgs),
    /// What each channel serves; with CHANNEL, that channel's packages.
    Status(StatusArgs),
    /// A build's channels and every event of it.
    History(BuildArgs),
    /// Packages added and removed between two revisions of a channel.
    Diff(DiffArgs),
    /// Builds that may move into CHANNEL now, and why the others wait.
    Candidates(ChannelArgs),
    /// Wait until a build is in a channel (exit 0), or times out (6), or is
    /// demoted or discarded on the way (7).
    Wait(WaitArgs),
    /// Report a check result (CI's evidence) for a build in a channel.
    Check(CheckArgs),
    /// Add a note to a build's history: the CI run, a ticket, the change log.
    Note(NoteArgs),
}

/// How read commands print their answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned tables for people.
    #[default]
    Text,
    /// The server's JSON, one document on stdout, for scripts.
    Json,
}

#[derive(Args)]
pub struct PushArgs {
    /// Files, directories (searched for *.rpm and *.deb) or quoted globs.
    #[arg(required = true, value_name = "FILE|DIR|GLOB")]
    pub paths: Vec<String>,
    /// Put each build into this channel (the first channel, or an upload
    /// channel of its policy) [default: stored, in no channel].
    #[arg(long)]
    pub channel: Option<String>,
    /// Uploads in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Attempts after the first on a server error or a broken connection.
    #[arg(long, default_value_t = 4)]
    pub retries: u32,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Args)]
pub struct BuildArgs {
    /// A build: its sha256, its file name, or the path of a local copy.
    pub build: String,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// The channel to promote into.
    #[arg(long, value_name = "CHANNEL")]
    pub to: String,
    /// Promote a held build anyway (admin only).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args)]
pub struct DemoteArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// The channel to take it out of (and every later one).
    #[arg(long, value_name = "CHANNEL")]
    pub from: String,
    /// Why; kept in the build's history.
    #[arg(long)]
    pub reason: String,
}

#[derive(Args)]
pub struct HoldArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Why; shown wherever the hold is.
    #[arg(long)]
    pub reason: String,
}

#[derive(Args)]
pub struct ChannelArgs {
    pub channel: String,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Args)]
pub struct FreezeArgs {
    #[command(flatten)]
    pub channel: ChannelArgs,
    /// Why; shown wherever the freeze is.
    #[arg(long)]
    pub reason: String,
}

#[derive(Args)]
pub struct StatusArgs {
    pub channel: Option<String>,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Args)]
pub struct DiffArgs {
    pub channel: String,
    /// The older revision number.
    pub from: i32,
    /// The newer revision number.
    pub to: i32,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Args)]
pub struct WaitArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// The channel to wait for.
    #[arg(long = "in", value_name = "CHANNEL")]
    pub channel: String,
    /// Give up after this long, e.g. 30m.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// How often to ask the server.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub interval: Duration,
}

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// The channel the check ran in (where the build is).
    #[arg(long, value_name = "CHANNEL")]
    pub channel: String,
    /// The check's name, as policies' `require_checks` say it.
    #[arg(long)]
    pub name: String,
    #[arg(long, value_parser = ["passed", "failed", "running"])]
    pub status: String,
    /// A link to the run (`--url` is the server's).
    #[arg(long, value_name = "URL")]
    pub link: Option<String>,
    /// One line on the result.
    #[arg(long)]
    pub summary: Option<String>,
}

#[derive(Args)]
pub struct NoteArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    #[arg(long)]
    pub text: String,
    /// A link: the CI run, the ticket, the change log.
    #[arg(long, value_name = "URL")]
    pub link: Option<String>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. 90s, 30m or 2h)"))
}

/// Runs one client command; what it printed is done, the exit code is left.
pub fn run(command: Command) -> Result<Exit, Failure> {
    match command {
        Command::Push(a) => push::run(&Api::connect(&a.remote)?, &a),
        Command::Promote(a) => {
            let api = Api::connect(&a.build.remote)?;
            let body = serde_json::json!({ "to": a.to, "force": a.force });
            change(&api, &a.build, "promote", &a.to, &body)
        }
        Command::Demote(a) => {
            let api = Api::connect(&a.build.remote)?;
            let body = serde_json::json!({ "from": a.from, "reason": a.reason });
            change(&api, &a.build, "demote", &a.from, &body)
        }
        Command::Hold(a) => {
            let api = Api::connect(&a.build.remote)?;
            let body = serde_json::json!({ "reason": a.reason });
            change(&api, &a.build, "hold", "", &body)
        }
        Command::Release(a) => {
            let api = Api::connect(&a.remote)?;
            change(&api, &a, "release", "", &serde_json::json!({}))
        }
        Command::Freeze(a) => {
            let api = Api::connect(&a.channel.remote)?;
            let body = serde_json::json!({ "reason": a.reason });
            freeze(&api, &a.channel.channel, "freeze", &body)
        }
        Command::Unfreeze(a) => {
            let api = Api::connect(&a.remote)?;
            freeze(&api, &a.channel, "unfreeze", &serde_json::json!({}))
        }
        Command::Status(a) => show::status(&Api::connect(&a.remote)?, a.channel.as_deref()),
        Command::History(a) => {
            let api = Api::connect(&a.remote)?;
            show::history(&api, &build_ref(&a.build)?)
        }
        Command::Diff(a) => show::diff(&Api::connect(&a.remote)?, &a.channel, a.from, a.to),
        Command::Candidates(a) => show::candidates(&Api::connect(&a.remote)?, &a.channel),
        Command::Wait(a) => wait::run(&Api::connect(&a.build.remote)?, &a),
        Command::Check(a) => {
            let api = Api::connect(&a.build.remote)?;
            let body = serde_json::json!({
                "name": a.name, "channel": a.channel, "status": a.status,
                "url": a.link, "summary": a.summary,
            });
            let id = build_ref(&a.build.build)?;
            let answer = api.post_json(
                &format!("/api/v1/packages/{}/checks", api::segment(&id)),
                &body,
            )?;
            show::reported(&api, &a.build.build, &answer)
        }
        Command::Note(a) => {
            let api = Api::connect(&a.build.remote)?;
            let body = serde_json::json!({ "text": a.text, "url": a.link });
            let id = build_ref(&a.build.build)?;
            let answer = api.post_json(
                &format!("/api/v1/packages/{}/notes", api::segment(&id)),
                &body,
            )?;
            show::noted(&api, &a.build.build, &answer)
        }
    }
}

/// A build named on the command line: a local file stands for its sha256,
/// anything else goes to the server as written (sha256 or file name).
fn build_ref(build: &str) -> Result<String, Failure> {
    let path = std::path::Path::new(build);
    if path.is_file() {
        return push::sha256_of(path).map_err(|e| Failure::usage(format!("{build}: {e}")));
    }
    Ok(build.to_string())
}

fn change(
    api: &Api,
    build: &BuildArgs,
    action: &str,
    channel: &str,
    body: &serde_json::Value,
) -> Result<Exit, Failure> {
    let id = build_ref(&build.build)?;
    let path = format!("/api/v1/packages/{}/{action}", api::segment(&id));
    let answer = api.post_json(&path, body)?;
    show::changed(api, action, channel, &answer)
}

fn freeze(
    api: &Api,
    channel: &str,
    action: &str,
    body: &serde_json::Value,
) -> Result<Exit, Failure> {
    let path = format!("/api/v1/channels/{}/{action}", api::segment(channel));
    let answer = api.post_json(&path, body)?;
    show::frozen(api, action, channel, &answer)
}
