//! The `forklift` command line.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use forklift::config::{Config, Layer};

#[derive(Parser)]
#[command(
    name = "forklift",
    version,
    about = "Package repository server: upload a build once, promote the same file qa → staging → prod",
    long_about = "Forklift stores each uploaded RPM or .deb once (addressed by its SHA-256) and \
                  publishes ordered channels (default qa → staging → prod) as signed yum/dnf \
                  repositories and apt suites. \
                  Builds move between channels by promotion and demotion over its HTTP API.\n\n\
                  Settings come from built-in defaults, then a TOML file (--config or \
                  FORKLIFT_CONFIG), then FORKLIFT_* environment variables, then flags."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text, or as JSON objects one per line (FORKLIFT_LOG_FORMAT).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "FORKLIFT_LOG_FORMAT"
    )]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Default, clap::ValueEnum)]
enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (SQLite and files under ./forklift-data unless configured).
    Serve(ServeArgs),
    /// Print the resolved configuration as TOML (valid as --config) and exit.
    Config(ServeArgs),
    /// Manage API tokens directly in the server's database (works while it runs).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
        #[command(flatten)]
        args: TokenArgs,
    },
    /// Back up a running server into DEST: a consistent database snapshot,
    /// the blobs it references (only those DEST lacks), signing keys, config.
    #[command(after_help = OPS_EXIT_CODES)]
    Backup {
        /// The backup directory (created; a previous backup there is updated).
        dest: PathBuf,
        #[command(flatten)]
        args: TokenArgs,
    },
    /// Restore a backup into the configured (stopped, empty) server.
    #[command(after_help = OPS_EXIT_CODES)]
    Restore {
        /// A directory written by `forklift backup`.
        src: PathBuf,
        /// Restore over a database, store or key that is not empty.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        args: TokenArgs,
    },
    /// Check every blob, head revision, signature and membership against the
    /// database (works while the server runs).
    #[command(after_help = FSCK_EXIT_CODES)]
    Fsck {
        /// Remove orphan blobs and republish damaged channel heads.
        #[arg(long)]
        repair: bool,
        #[command(flatten)]
        args: TokenArgs,
    },
    /// Print a shell completion script: `forklift completions bash > /etc/bash_completion.d/forklift`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    #[command(flatten)]
    Client(forklift::client::Command),
}

const OPS_EXIT_CODES: &str = "Exit codes: 0 done; 1 failed (I/O, a missing or damaged blob); \
                              2 could not run as asked (flags, configuration, a missing tool, \
                              a target that is not empty without --force).";
const FSCK_EXIT_CODES: &str = "Exit codes: 0 clean (with --repair: all repaired); 1 damage or \
                               orphans found (with --repair: some remain); 2 could not run \
                               (flags, configuration, no database where named).";

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token; the secret is printed once, on the last line of stdout.
    Create {
        /// Unique name, recorded as the actor of everything the token does.
        #[arg(long)]
        name: String,
        /// reader, uploader, promoter:<channel> or admin (repeatable).
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// read, read:<channel>, upload, promote:<channel> or admin (repeatable).
        #[arg(long = "permission", value_name = "PERMISSION")]
        permissions: Vec<String>,
        /// Lifetime such as 30d or 12h [default: no expiry].
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
    },
    /// List live tokens (never their secrets).
    List,
    /// Revoke a token by name; requests using it fail from then on.
    Revoke { name: String },
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// TOML configuration file (also FORKLIFT_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080] (FORKLIFT_LISTEN).
    #[arg(long, global = true, value_name = "ADDR")]
    listen: Option<String>,
    /// Directory for the database and the blob store [default: ./forklift-data] (FORKLIFT_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Public URL used in generated files [default: http://<listen>] (FORKLIFT_BASE_URL).
    #[arg(long, global = true, value_name = "URL")]
    base_url: Option<String>,
    /// sqlite://PATH or postgres://… [default: sqlite://<data-dir>/forklift.db] (FORKLIFT_DATABASE_URL).
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Ordered, comma-separated channel list [default: qa,staging,prod] (FORKLIFT_CHANNELS).
    #[arg(long, global = true, value_name = "LIST", value_delimiter = ',')]
    channels: Option<Vec<String>>,
    /// Largest accepted upload in bytes [default: 2 GiB] (FORKLIFT_MAX_UPLOAD_BYTES).
    #[arg(long, global = true, value_name = "BYTES")]
    max_upload_bytes: Option<u64>,
    /// How long superseded metadata and removed packages stay servable, e.g. 1h (FORKLIFT_GRACE_PERIOD).
    #[arg(long, global = true, value_name = "DURATION")]
    grace_period: Option<String>,
    /// Armored OpenPGP secret key to sign metadata with [default: generated under
    /// <data-dir>/keys] (FORKLIFT_SIGNING_KEY). Its passphrase comes from
    /// FORKLIFT_SIGNING_KEY_PASSPHRASE or signing_key_passphrase_file, never a flag.
    #[arg(long, global = true, value_name = "FILE")]
    signing_key: Option<PathBuf>,
}

/// Where the token and operator commands (backup, restore, fsck) find the
/// server's data: the same settings the server was started with.
#[derive(Args, Clone)]
struct TokenArgs {
    /// The server's TOML configuration file (also FORKLIFT_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The server's data directory [default: ./forklift-data] (FORKLIFT_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The server's database [default: sqlite://<data-dir>/forklift.db] (FORKLIFT_DATABASE_URL).
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
}

fn resolve_token(args: &TokenArgs) -> anyhow::Result<Config> {
    let flags = Layer {
        data_dir: args.data_dir.clone(),
        database_url: args.database_url.clone(),
        ..Layer::default()
    };
    resolve_layers(args.config.clone(), flags)
}

fn resolve_layers(config: Option<PathBuf>, flags: Layer) -> anyhow::Result<Config> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let file_path = config.or_else(|| env.get("FORKLIFT_CONFIG").map(PathBuf::from));
    let file = match file_path {
        Some(p) => Layer::from_file(&p)?,
        None => Layer::default(),
    };
    Ok(Config::resolve(file, Layer::from_env(&env)?, flags)?)
}

fn resolve(args: &ServeArgs) -> anyhow::Result<Config> {
    let flags = Layer {
        listen: args.listen.clone(),
        data_dir: args.data_dir.clone(),
        base_url: args.base_url.clone(),
        database_url: args.database_url.clone(),
        channels: args.channels.clone(),
        max_upload_bytes: args.max_upload_bytes,
        grace_period: args.grace_period.clone(),
        signing_key: args.signing_key.clone(),
        ..Layer::default()
    };
    resolve_layers(args.config.clone(), flags)
}

/// Logs go to stderr so stdout carries only results (token secrets, config).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FORKLIFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    run(cli.command)
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Client(command) => Ok(client_command(command)),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "forklift",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        cmd @ (Command::Backup { .. } | Command::Restore { .. } | Command::Fsck { .. }) => {
            Ok(ops_command(cmd))
        }
        Command::Config(args) => {
            print!("{}", resolve(&args)?.to_toml()?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Token { command, args } => {
            token_command(command, &resolve_token(&args)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            serve(&args)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The client prints its own lines; its exit code is the answer (docs/cli.md).
fn client_command(command: forklift::client::Command) -> ExitCode {
    ExitCode::from(match forklift::client::run(command) {
        Ok(exit) => exit.code(),
        Err(failure) => {
            eprintln!("forklift: {failure}");
            failure.exit.code()
        }
    })
}

fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let config = resolve(args)?;
    let listen = config.listen.clone();
    let base = config.base_url.clone();
    // Before anything is created on disk: a port in use must not leave
    // a fresh data directory, key and admin token behind.
    let listener = std::net::TcpListener::bind(&listen)
        .with_context(|| format!("cannot listen on {listen}"))?;
    let ctx = forklift::app::init(config).context("starting forklift")?;
    tracing::info!(%listen, %base, "forklift listening");
    actix_web::rt::System::new().block_on(async move {
        forklift::app::server(ctx, listener)?.await?;
        Ok(())
    })
}

fn token_command(cmd: TokenCommand, config: &Config) -> anyhow::Result<()> {
    use forklift::service::access::tokens;
    use forklift::service::Actor;
    // A token written into a database no server reads is worse than an error:
    // the server would answer `unknown token`.
    if let Some(path) = config.database_url.strip_prefix("sqlite://") {
        if !std::path::Path::new(path).exists() {
            anyhow::bail!(
                "no Forklift database at {path} (data directory {}): run this where the \
                 server keeps its data, or give the server's --config, --data-dir or \
                 --database-url (or FORKLIFT_CONFIG, FORKLIFT_DATA_DIR, FORKLIFT_DATABASE_URL)",
                config.data_dir.display()
            );
        }
    }
    let pool = forklift::db::connect(&config.database_url).context("opening the database")?;
    let mut conn = pool.get().context("database connection")?;
    let mut actor = Actor::system();
    actor.name = "cli".into();
    match cmd {
        TokenCommand::Create {
            name,
            roles,
            permissions,
            expires_in,
        } => {
            let req = tokens::CreateToken {
                name,
                permissions,
                roles,
                expires_in,
            };
            let created =
                tokens::create(&mut conn, config, forklift::service::now(), &req, &actor)?;
            println!(
                "created token {:?} with {}{}",
                created.view.name,
                created.view.permissions.join(" "),
                created
                    .view
                    .expires_at
                    .as_deref()
                    .map(|e| format!(", expires {e}"))
                    .unwrap_or_default()
            );
            println!("{}", created.token);
        }
        TokenCommand::List => {
            for t in tokens::list(&mut conn)? {
                println!(
                    "{}\t{}\tcreated {} by {}\texpires {}\tlast used {}",
                    t.name,
                    t.permissions.join(" "),
                    t.created_at,
                    t.created_by,
                    t.expires_at.as_deref().unwrap_or("never"),
                    t.last_used_at.as_deref().unwrap_or("never"),
                );
            }
        }
        TokenCommand::Revoke { name } => {
            tokens::revoke(&mut conn, forklift::service::now(), &name, &actor)?;
            println!("revoked token {name:?}");
        }
    }
    Ok(())
}

/// `backup`, `restore` and `fsck`: the work is in `service::ops`; this prints
/// its report and turns the outcome into the documented exit code.
fn ops_command(cmd: Command) -> ExitCode {
    use forklift::service::ops::{self, progress::Stderr, OpsError};
    use std::io::Write as _;
    let progress = Stderr::new();
    let config = |args: &TokenArgs| resolve_token(args).map_err(|e| (2, format!("{e:#}")));
    let ops_err = |e: OpsError| (e.exit_code(), e.to_string());
    let open =
        |config: Config| forklift::app::open_existing(config).map_err(|e| (2, e.to_string()));
    let outcome: Result<u8, (u8, String)> = (|| match cmd {
        Command::Backup { dest, args } => {
            let ctx = open(config(&args)?)?;
            let report = ops::backup::backup(&ctx, &dest, &progress).map_err(ops_err)?;
            println!("{report}");
            Ok(0)
        }
        Command::Restore { src, force, args } => {
            let config = config(&args)?;
            let store = forklift::app::open_store(&config).map_err(|e| (2, e.to_string()))?;
            let report = ops::restore::restore(&config, store.as_ref(), &src, force, &progress)
                .map_err(ops_err)?;
            println!("{report}");
            Ok(0)
        }
        Command::Fsck { repair, args } => {
            let ctx = open(config(&args)?)?;
            let report = ops::fsck::fsck(&ctx, repair, &progress).map_err(ops_err)?;
            println!("{report}");
            Ok(if report.is_clean() { 0 } else { 1 })
        }
        _ => Err((2, "not an operator command".into())),
    })();
    let code = match outcome {
        Ok(code) => code,
        Err((code, message)) => {
            eprintln!("forklift: {message}");
            code
        }
    };
    let _ = std::io::stdout().flush();
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap checks a command's arguments only when it is first parsed; this
    /// checks every subcommand at once (e.g. two `--url` in one command).
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
