//! The `forklift` command line.

use std::collections::HashMap;
use std::path::PathBuf;

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
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (SQLite and files under ./forklift-data unless configured).
    Serve(ServeArgs),
    /// Print the resolved configuration and exit.
    Config(ServeArgs),
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// TOML configuration file (also FORKLIFT_CONFIG).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080] (FORKLIFT_LISTEN).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Directory for the database and the blob store [default: ./forklift-data] (FORKLIFT_DATA_DIR).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Public URL used in generated files [default: http://<listen>] (FORKLIFT_BASE_URL).
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// sqlite://PATH or postgres://… [default: sqlite://<data-dir>/forklift.db] (FORKLIFT_DATABASE_URL).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Ordered, comma-separated channel list [default: qa,staging,prod] (FORKLIFT_CHANNELS).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    channels: Option<Vec<String>>,
    /// Largest accepted upload in bytes [default: 2 GiB] (FORKLIFT_MAX_UPLOAD_BYTES).
    #[arg(long, value_name = "BYTES")]
    max_upload_bytes: Option<u64>,
    /// How long superseded metadata and removed packages stay servable, e.g. 1h (FORKLIFT_GRACE_PERIOD).
    #[arg(long, value_name = "DURATION")]
    grace_period: Option<String>,
    /// Armored OpenPGP secret key to sign metadata with [default: generated under
    /// <data-dir>/keys] (FORKLIFT_SIGNING_KEY). Its passphrase comes from
    /// FORKLIFT_SIGNING_KEY_PASSPHRASE or signing_key_passphrase_file, never a flag.
    #[arg(long, value_name = "FILE")]
    signing_key: Option<PathBuf>,
}

fn resolve(args: &ServeArgs) -> anyhow::Result<Config> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let file_path = args
        .config
        .clone()
        .or_else(|| env.get("FORKLIFT_CONFIG").map(PathBuf::from));
    let file = match file_path {
        Some(p) => Layer::from_file(&p)?,
        None => Layer::default(),
    };
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
    Ok(Config::resolve(file, Layer::from_env(&env)?, flags)?)
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].find(':') {
            Some(c) => format!("{}:***{}", &url[..s + 3 + c], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FORKLIFT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Config(args) => {
            let mut c = resolve(&args)?;
            c.database_url = redact_password(&c.database_url);
            if c.signing_key_passphrase.is_some() {
                c.signing_key_passphrase = Some("***".into());
            }
            if c.signing_key_next_passphrase.is_some() {
                c.signing_key_next_passphrase = Some("***".into());
            }
            println!("{c:#?}");
            Ok(())
        }
        Command::Serve(args) => {
            let config = resolve(&args)?;
            let listen = config.listen.clone();
            let base = config.base_url.clone();
            let ctx = forklift::app::init(config).context("starting forklift")?;
            let listener = std::net::TcpListener::bind(&listen)
                .with_context(|| format!("binding {listen}"))?;
            tracing::info!(%listen, %base, "forklift listening");
            actix_web::rt::System::new().block_on(async move {
                forklift::app::server(ctx, listener)?.await?;
                Ok(())
            })
        }
    }
}
