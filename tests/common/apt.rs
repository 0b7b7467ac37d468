//! apt confined to a private root, for tests that need the real client.

use std::path::PathBuf;
use std::process::Command;

use super::{require_root, require_tool, run};

pub fn apt_available() -> bool {
    if !(require_tool("apt-get") && require_tool("apt-ftparchive") && require_tool("gpgv")) {
        return false;
    }
    require_root("apt")
}

/// apt confined to a private root: its own sources, lists, cache, dpkg status
/// and preferences; nothing of the host's configuration.
pub struct Apt {
    pub root: tempfile::TempDir,
}

impl Apt {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Apt {
        let root = tempfile::tempdir().expect("apt root");
        for d in [
            "etc/apt/sources.list.d",
            "etc/apt/preferences.d",
            "etc/apt/apt.conf.d",
            "etc/apt/trusted.gpg.d",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "var/lib/dpkg",
            "download",
        ] {
            std::fs::create_dir_all(root.path().join(d)).expect("mkdir");
        }
        std::fs::write(root.path().join("var/lib/dpkg/status"), "").expect("status");
        let r = root.path().display();
        std::fs::write(
            root.path().join("apt.conf"),
            format!(
                "Dir \"{r}/\";\nDir::State::status \"{r}/var/lib/dpkg/status\";\n\
                 Debug::NoLocking \"true\";\nAPT::Architecture \"amd64\";\n\
                 APT::Architectures {{ \"amd64\"; }};\nAcquire::Languages \"none\";\n\
                 APT::Sandbox::User \"root\";\n"
            ),
        )
        .expect("apt.conf");
        Apt { root }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    pub fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        c.env("APT_CONFIG", self.path("apt.conf"))
            .current_dir(self.path("download"));
        c
    }

    pub fn set_sources(&self, line: &str) {
        std::fs::write(self.path("etc/apt/sources.list"), format!("{line}\n")).expect("sources");
    }

    /// `apt-get update`, returning (success, combined output).
    pub fn update(&self) -> (bool, String) {
        let out = self
            .cmd("apt-get")
            .args(["update", "-q"])
            .output()
            .expect("apt-get update");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // apt-get update exits 0 on some signature failures; errors start with "E:"
        // and rejected signatures also say "is not signed" / "NO_PUBKEY" / "BADSIG".
        let failed = !out.status.success()
            || text
                .lines()
                .any(|l| l.starts_with("E:") || l.starts_with("W: GPG error"));
        (!failed, text)
    }

    pub fn candidate(&self, pkg: &str) -> String {
        let out = run(self.cmd("apt-cache").args(["policy", pkg]));
        out.lines()
            .find_map(|l| l.trim().strip_prefix("Candidate: ").map(str::to_string))
            .unwrap_or_else(|| panic!("no candidate in:\n{out}"))
    }
}
