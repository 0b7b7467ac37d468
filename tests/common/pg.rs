//! A throwaway PostgreSQL cluster for the tests: `DATABASE_URL` when set, else one
//! started from the installed `initdb`/`postgres` in a temp dir on a loopback port.
//! A watchdog stops the cluster when the test process exits.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};

static BASE: OnceLock<Option<String>> = OnceLock::new();

fn find_bin(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(PathBuf::from)
        .collect();
    for v in ["17", "16", "15", "14", "13"] {
        dirs.push(PathBuf::from(format!("/usr/lib/postgresql/{v}/bin")));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL binary, as the `postgres` user when we are root
/// (PostgreSQL refuses to run as root).
fn pg_command(bin: &PathBuf, as_postgres: bool) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

fn start_cluster() -> Result<String, String> {
    let initdb = find_bin("initdb").ok_or("initdb not found")?;
    let postgres = find_bin("postgres").ok_or("postgres not found")?;
    let root = is_root();
    // Kept for the life of the process; the watchdog removes it afterwards.
    let dir = tempfile::Builder::new()
        .prefix("forklift-pg-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    let data = dir.join("data");
    if root {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .map_err(|e| e.to_string())?;
        if !ok.success() {
            return Err("chown to postgres failed".into());
        }
    }
    let out = pg_command(&initdb, root)
        .args(["-D"])
        .arg(&data)
        .args(["-U", "forklift", "--auth=trust", "-E", "UTF8", "--no-sync"])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = super::free_port();
    let mut server = pg_command(&postgres, root);
    server
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", dir.display()))
        .args(["-c", "fsync=off", "-c", "max_connections=200"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = server.spawn().map_err(|e| e.to_string())?;
    // Watchdog: when this test process is gone, stop the cluster and delete it.
    let me = std::process::id();
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "while kill -0 {me} 2>/dev/null; do sleep 1; done; kill {pid} 2>/dev/null; sleep 2; rm -rf '{dir}'",
            pid = child.id(),
            dir = dir.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let url = format!("postgres://forklift@127.0.0.1:{port}/postgres");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if PgConnection::establish(&url).is_ok() {
            return Ok(url);
        }
        if Instant::now() > deadline {
            return Err("PostgreSQL did not start within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn base_url() -> Option<String> {
    BASE.get_or_init(|| {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            if !url.is_empty() {
                return Some(url);
            }
        }
        match start_cluster() {
            Ok(url) => Some(url),
            Err(e) if super::in_ci() => panic!("PostgreSQL is required in CI: {e}"),
            Err(e) => {
                eprintln!("SKIPPED: PostgreSQL tests: {e}");
                None
            }
        }
    })
    .clone()
}

/// Creates an empty database and returns its URL; None when PostgreSQL is
/// unavailable locally.
pub fn fresh_database(name: &str) -> Option<String> {
    let base = base_url()?;
    let mut conn = PgConnection::establish(&base).expect("connect to test cluster");
    conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .expect("drop old test database");
    conn.batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create test database");
    let (prefix, _) = base.rsplit_once('/').expect("url has a path");
    Some(format!("{prefix}/{name}"))
}
