//! What the end-to-end test binaries share: the `voxflow` binary under test, the repository root, and the
//! record of the last run in a data directory.
#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::process::Command;

/// The binary under test, with one compiled-component cache for every test (outside the data directories).
pub fn voxflow() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_voxflow"));
    c.env(
        "VOXFLOW_COMPONENT_CACHE",
        repo().join("target/test-components"),
    );
    c
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `voxflow --data-dir DATA --plugins PLUGINS run WORKFLOW`, ready for more arguments.
pub fn run_command(data: &Path, plugins: &Path, workflow: &Path) -> Command {
    let mut c = voxflow();
    c.arg("--data-dir")
        .arg(data)
        .arg("--plugins")
        .arg(plugins)
        .arg("run")
        .arg(workflow);
    c
}

/// `voxflow runs show --json` of the newest run recorded under `data`.
pub fn last_run(data: &Path) -> serde_json::Value {
    let list = voxflow()
        .arg("--data-dir")
        .arg(data)
        .args(["runs", "list", "--json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let id = runs[0]["id"].as_str().unwrap().to_string();
    let show = voxflow()
        .arg("--data-dir")
        .arg(data)
        .args(["runs", "show", &id, "--json"])
        .output()
        .unwrap();
    serde_json::from_slice(&show.stdout).unwrap()
}
