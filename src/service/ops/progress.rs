//! Progress of a long operator command: a bar with bytes and files when
//! stderr is a terminal, one plain line per phase otherwise (logs, CI).

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What a command reports while it works.
pub trait Progress {
    /// A phase of `files` items totalling `bytes` begins.
    fn begin(&self, what: &str, files: u64, bytes: u64);
    /// Bytes of the current item done.
    fn advance(&self, bytes: u64);
    /// One item done.
    fn file_done(&self);
    /// The phase is over.
    fn end(&self);
}

/// Reports nothing (tests, library callers).
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _: &str, _: u64, _: u64) {}
    fn advance(&self, _: u64) {}
    fn file_done(&self) {}
    fn end(&self) {}
}

/// On stderr: a bar on a terminal, a line per phase elsewhere.
pub struct Stderr {
    terminal: bool,
    bar: Mutex<Option<ProgressBar>>,
    what: Mutex<String>,
    files: AtomicU64,
    done: AtomicU64,
}

impl Stderr {
    pub fn new() -> Stderr {
        Stderr {
            terminal: std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
            what: Mutex::new(String::new()),
            files: AtomicU64::new(0),
            done: AtomicU64::new(0),
        }
    }

    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            f(bar);
        }
    }
}

impl Default for Stderr {
    fn default() -> Self {
        Stderr::new()
    }
}

impl Progress for Stderr {
    fn begin(&self, what: &str, files: u64, bytes: u64) {
        self.files.store(files, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        *self.what.lock().unwrap_or_else(|p| p.into_inner()) = what.to_string();
        if !self.terminal {
            eprintln!("{what}: {files} files, {}", super::human_bytes(bytes));
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(format!("{what} 0/{files}"));
        *self.bar.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar);
    }

    fn advance(&self, bytes: u64) {
        self.with_bar(|b| b.inc(bytes));
    }

    fn file_done(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let files = self.files.load(Ordering::Relaxed);
        let what = self.what.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.with_bar(|b| b.set_message(format!("{what} {done}/{files}")));
    }

    fn end(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}
