//! `push`: uploads many files in parallel, retrying what a server failure or
//! a broken connection interrupted (an upload is idempotent: the same bytes
//! twice are stored once), and reporting each file's outcome with the
//! server's own message.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::api::{segment, with_retries, Api, CallError};
use super::{Exit, Failure, Output, PushArgs};

/// How one file went.
#[derive(Debug, Serialize)]
pub struct Pushed {
    pub file: String,
    /// `stored`, `present` (the same bytes were there), `refused` or `failed`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip)]
    exit: Exit,
}

pub fn run(api: &Api, args: &PushArgs) -> Result<Exit, Failure> {
    let files = expand(&args.paths)?;
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let bar = progress(total, files.len(), api.output);
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Pushed)>> = Mutex::new(Vec::new());
    let workers = usize::from(args.jobs).min(files.len());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(file) = files.get(i) else { break };
                let pushed = push_one(api, args, file, &bar);
                if api.output == Output::Text {
                    // Above the bar on a terminal; a hidden bar prints nothing itself.
                    bar.suspend(|| println!("{}", line(&pushed)));
                }
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                bar.set_message(format!("{n}/{} files", files.len()));
                if let Ok(mut r) = results.lock() {
                    r.push((i, pushed));
                }
            });
        }
    });
    bar.finish_and_clear();
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);
    let results: Vec<Pushed> = results.into_iter().map(|(_, p)| p).collect();
    if api.output == Output::Json {
        let text = serde_json::to_string_pretty(&results)
            .map_err(|e| Failure::new(Exit::Unavailable, e.to_string()))?;
        println!("{text}");
    }
    eprintln!("{}", summary(&results, total, started.elapsed()));
    Ok(results.iter().map(|p| p.exit).max().unwrap_or(Exit::Ok))
}

/// A bar of bytes and files on a terminal; nothing otherwise (each file's
/// line and the summary say it all in a log).
fn progress(total: u64, files: usize, output: Output) -> ProgressBar {
    let target = if output == Output::Text && std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg} (eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar.set_message(format!("0/{files} files"));
    bar
}

fn line(p: &Pushed) -> String {
    match (p.outcome, &p.id) {
        ("stored" | "present", Some(id)) => format!("{:<8} {}  {id}", p.outcome, p.file),
        _ => format!(
            "{:<8} {}: {}",
            p.outcome,
            p.file,
            match (&p.error, &p.message) {
                (Some(code), Some(m)) if !code.is_empty() => format!("{code}: {m}"),
                (_, Some(m)) => m.clone(),
                _ => String::new(),
            }
        ),
    }
}

fn summary(results: &[Pushed], bytes: u64, took: std::time::Duration) -> String {
    let count = |o: &str| results.iter().filter(|p| p.outcome == o).count();
    format!(
        "pushed {} files, {} in {:.1} s: {} stored, {} already present, {} refused, {} failed",
        results.len(),
        HumanBytes(bytes),
        took.as_secs_f64(),
        count("stored"),
        count("present"),
        count("refused"),
        count("failed"),
    )
}

fn push_one(api: &Api, args: &PushArgs, file: &Path, bar: &ProgressBar) -> Pushed {
    let shown = file.display().to_string();
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut path = format!("/api/v1/packages/{}", segment(&name));
    if let Some(channel) = &args.channel {
        path.push_str(&format!("?channel={}", segment(channel)));
    }
    let note = |attempt: u32, e: &CallError| {
        bar.suspend(|| {
            eprintln!(
                "retrying {shown} ({attempt}/{}): {}",
                args.retries,
                e.describe()
            )
        });
    };
    let attempt = || {
        let f = std::fs::File::open(file).map_err(|e| CallError::Transport(e.to_string()))?;
        let len = f
            .metadata()
            .map_err(|e| CallError::Transport(e.to_string()))?
            .len();
        let mut counted = Counted {
            inner: f,
            bar,
            sent: 0,
        };
        let result = api.put(&path, &mut counted, len);
        // Bytes of a failed attempt are sent again by the next one.
        if result.is_err() {
            bar.dec(counted.sent);
        }
        result
    };
    match with_retries(args.retries, note, attempt) {
        Ok((status, answer)) => Pushed {
            file: shown,
            outcome: if status == 201 { "stored" } else { "present" },
            id: answer
                .get("id")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            status: Some(status),
            error: None,
            message: None,
            exit: Exit::Ok,
        },
        Err(e) => {
            let exit = e.exit();
            let (status, error, message) = match e {
                CallError::Status {
                    status,
                    code,
                    message,
                } => (Some(status), Some(code), message),
                CallError::Transport(m) => (None, None, m),
            };
            Pushed {
                file: shown,
                outcome: if exit == Exit::Unavailable {
                    "failed"
                } else {
                    "refused"
                },
                id: None,
                status,
                error,
                message: Some(message),
                exit,
            }
        }
    }
}

/// A file read for upload, counted into the progress bar.
struct Counted<'a> {
    inner: std::fs::File,
    bar: &'a ProgressBar,
    sent: u64,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent += n as u64;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// Files named, files under directories (`*.rpm`, `*.deb`, recursively,
/// not following links to directories), and quoted globs; in order, each once.
pub fn expand(args: &[String]) -> Result<Vec<PathBuf>, Failure> {
    let mut files = Vec::new();
    for arg in args {
        let path = Path::new(arg);
        if path.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found).map_err(|e| Failure::usage(format!("{arg}: {e}")))?;
            found.sort();
            files.extend(found);
        } else if path.is_file() {
            files.push(path.to_path_buf());
        } else if arg.contains(['*', '?', '[']) {
            let matches = glob::glob(arg).map_err(|e| Failure::usage(format!("{arg}: {e}")))?;
            let before = files.len();
            files.extend(matches.filter_map(Result::ok).filter(|p| p.is_file()));
            if files.len() == before {
                return Err(Failure::usage(format!("{arg}: matches no file")));
            }
        } else {
            return Err(Failure::usage(format!("{arg}: no such file or directory")));
        }
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(f.clone()));
    if files.is_empty() {
        return Err(Failure::usage("no .rpm or .deb file to push"));
    }
    Ok(files)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, found)?;
        } else if path.is_file()
            && matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("rpm" | "deb")
            )
        {
            found.push(path);
        }
    }
    Ok(())
}

/// The id the server gives a file: its sha256.
pub fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut f, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_searched_and_duplicates_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).expect("mkdir");
        for f in ["b.rpm", "a.deb", "notes.txt"] {
            std::fs::write(dir.path().join(f), b"x").expect("write");
        }
        std::fs::write(sub.join("c.rpm"), b"x").expect("write");
        let d = dir.path().display().to_string();
        let again = dir.path().join("b.rpm").display().to_string();
        let files = expand(&[d, again]).expect("expands");
        let names: Vec<String> = files
            .iter()
            .map(|f| {
                f.strip_prefix(dir.path())
                    .expect("inside")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["a.deb", "b.rpm", "sub/c.rpm"]);
    }

    #[test]
    fn globs_expand_and_missing_paths_are_usage_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("x-1.rpm"), b"x").expect("write");
        std::fs::write(dir.path().join("x-2.rpm"), b"x").expect("write");
        let pattern = format!("{}/x-*.rpm", dir.path().display());
        assert_eq!(expand(&[pattern]).expect("expands").len(), 2);
        let none = format!("{}/y-*.rpm", dir.path().display());
        assert_eq!(expand(&[none]).map_err(|f| f.exit).err(), Some(Exit::Usage));
        let missing = format!("{}/nope.rpm", dir.path().display());
        assert_eq!(
            expand(&[missing]).map_err(|f| f.exit).err(),
            Some(Exit::Usage)
        );
    }
}
