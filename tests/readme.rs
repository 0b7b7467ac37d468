//! The README's tour, as a newcomer pastes it: every ```` ```sh tour ```` block
//! runs, in order, in one shell, against the real binary started the way the
//! Quick start starts it, and every status the README promises (`# → 201`)
//! must be the status printed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

struct Tour {
    script: String,
    expected: Vec<u16>,
}

/// The tour blocks of a README, and the statuses their comments promise.
fn tour(readme: &str) -> Tour {
    let mut script = String::new();
    let mut expected = Vec::new();
    let mut inside = false;
    for line in readme.lines() {
        if !inside {
            inside = line.trim() == "```sh tour";
            continue;
        }
        if line.trim() == "```" {
            inside = false;
            script.push('\n');
            continue;
        }
        if let Some((_, promised)) = line.rsplit_once("# → ") {
            expected.extend(promised.split_whitespace().map(|s| {
                s.parse::<u16>()
                    .unwrap_or_else(|_| panic!("bad status in {line:?}"))
            }));
        }
        script.push_str(line);
        script.push('\n');
    }
    Tour { script, expected }
}

fn link(from: &Path, to: &Path) {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).expect("dir");
    }
    std::os::unix::fs::symlink(from, to).expect("symlink");
}

#[test]
fn tour_parser_finds_the_promises() {
    let t = tour("text\n```sh tour\nA=1\ncurl x  # → 201\n```\n```sh\nnot run # → 500\n```\n```sh tour\nfor a in b c; do x; done  # → 200 403\n```\n");
    assert_eq!(t.expected, vec![201, 200, 403]);
    assert!(t.script.contains("A=1") && !t.script.contains("not run"));
}

#[test]
fn the_readme_tour_works_as_pasted() {
    for tool in ["curl", "python3", "openssl", "sha256sum"] {
        if !require_tool(tool) {
            return;
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    let t = tour(&readme);
    assert!(
        t.expected.len() >= 20,
        "the tour promises too little: {:?}",
        t.expected
    );
    // A working directory like the repository root: fixtures, examples and the
    // release binary the Quick start builds.
    let cwd = tempfile::tempdir().expect("cwd");
    link(&root.join("fixtures"), &cwd.path().join("fixtures"));
    link(&root.join("examples"), &cwd.path().join("examples"));
    link(
        Path::new(env!("CARGO_BIN_EXE_forklift")),
        &cwd.path().join("target/release/forklift"),
    );
    let (port, hook_port) = (free_port(), free_port());
    let _server = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_forklift"))
            .arg("serve")
            .current_dir(cwd.path())
            .env("FORKLIFT_LISTEN", format!("127.0.0.1:{port}"))
            .env("FORKLIFT_WEBHOOK_ALLOW_INTERNAL", "true")
            .env("FORKLIFT_LOG", "warn")
            .env_remove("FORKLIFT_CONFIG")
            .env_remove("FORKLIFT_DATA_DIR")
            .env_remove("FORKLIFT_ADMIN_TOKEN")
            .stdout(Stdio::null())
            .spawn()
            .expect("serve"),
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_healthy(&url);
    let script = format!(
        "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{}",
        t.script
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
            .replace("9000", &hook_port.to_string())
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(cwd.path())
        .env_remove("FORKLIFT_DATA_DIR")
        .env_remove("FORKLIFT_DATABASE_URL")
        .env_remove("FORKLIFT_CONFIG")
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the tour failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Vec<u16> = stdout
        .lines()
        .filter(|l| l.len() == 3 && l.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|l| l.parse().ok())
        .collect();
    assert_eq!(
        printed, t.expected,
        "statuses differ from the README:\n{stdout}"
    );
    // JSON answers end their line: no status is glued to a body.
    assert!(
        !stdout.contains("}200") && !stdout.contains("]200"),
        "{stdout}"
    );
}
