//! dnf confined to an installroot, for tests that need the real client.

use std::path::PathBuf;
use std::process::Command;

use super::{require_root, require_tool, run};

pub fn dnf_available() -> bool {
    if !(require_tool("dnf") && require_tool("rpm") && require_tool("createrepo_c")) {
        return false;
    }
    require_root("dnf")
}

/// A dnf confined to an installroot and to the repos we give it; no plugins (the
/// host's "local" plugin would otherwise add its own repository).
pub struct Dnf {
    pub root: tempfile::TempDir,
    pub reposdir: PathBuf,
}

impl Dnf {
    pub fn new() -> Dnf {
        let root = tempfile::tempdir().expect("installroot");
        let reposdir = root.path().join("forklift-repos.d");
        std::fs::create_dir_all(&reposdir).expect("reposdir");
        Dnf { root, reposdir }
    }

    pub fn add_repo_file(&self, name: &str, text: &str) {
        std::fs::write(self.reposdir.join(format!("{name}.repo")), text).expect("repo file");
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new("dnf");
        // No --nogpgcheck: repositories with repo_gpgcheck=1 (the served .repo
        // files) verify repomd.xml.asc on every refresh.
        c.args(["-y", "--noplugins", "--refresh", "--releasever=12"])
            .arg(format!("--installroot={}", self.root.path().display()))
            .arg(format!("--setopt=reposdir={}", self.reposdir.display()))
            .args([
                "--setopt=install_weak_deps=False",
                "--setopt=skip_if_unavailable=False",
            ]);
        c
    }

    pub fn run(&self, args: &[&str]) -> String {
        run(self.cmd().args(args))
    }

    pub fn installed(&self, name: &str) -> String {
        let out = Command::new("rpm")
            .arg(format!("--root={}", self.root.path().display()))
            .args(["-q", name])
            .output()
            .expect("rpm -q");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}
