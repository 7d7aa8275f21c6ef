//! What the end-to-end test binaries share: the `voxflow` binary under test, the repository root, and the
//! record of the last run in a data directory.
#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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

/// Builds the WebAssembly plugins once per test binary into a plugins folder of their own (with the
/// repository's ONNX plugins whose model files are present); `None` (with a message)
/// when the wasm32-wasip2 target is not installed.
pub fn plugins_dir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let targets = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output()
            .ok()?;
        if !String::from_utf8_lossy(&targets.stdout).contains("wasm32-wasip2") {
            eprintln!("SKIPPED: the wasm32-wasip2 target is not installed (rustup target add wasm32-wasip2)");
            return None;
        }
        let dir = repo().join("target/test-plugins");
        for plugin in [
            "label-fusion",
            "mask-cleanup",
            "intensity-normalize",
            "seg-metrics",
            "probability-fusion",
            "testing/hostile",
        ] {
            let source = repo().join("plugins").join(plugin);
            let out = voxflow().args(["plugin", "build"]).arg(&source).output().unwrap();
            assert!(
                out.status.success(),
                "building {plugin}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let name = source.file_name().unwrap();
            let to = dir.join(name);
            std::fs::create_dir_all(&to).unwrap();
            for entry in std::fs::read_dir(&source).unwrap().flatten() {
                let p = entry.path();
                if p.extension().is_some_and(|e| e == "wasm" || e == "yaml") {
                    std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
                }
            }
        }
        // The ONNX plugins shipped with their model files (voxflow's own models).
        for plugin in [
            "prostate-seg",
            "prostate-seg-sagittal",
            "prostate-seg-coronal",
        ] {
            let source = repo().join("plugins").join(plugin);
            let to = dir.join(plugin);
            std::fs::create_dir_all(&to).unwrap();
            for entry in std::fs::read_dir(&source).unwrap().flatten() {
                let p = entry.path();
                if p.extension().is_some_and(|e| e == "onnx" || e == "yaml") {
                    std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
                }
            }
        }
        Some(dir)
    })
    .as_deref()
}
