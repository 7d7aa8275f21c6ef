//! Plugins for voxflow: manifests (`plugin.yaml`) and the sandboxed WebAssembly host, each plugin exposed
//! as a [`voxflow_steps::Step`] so the executor runs it like a built-in. Plugins see only the WIT contract
//! in `plugins/wit`; nothing here is linked into a plugin.

pub mod manifest;
pub mod wasm;

use std::path::{Path, PathBuf};

pub use manifest::{Manifest, PluginKind, MANIFEST_FILE};
pub use wasm::{CallOutput, WasmHost, WasmPlugin};

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{path}: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Component { path: PathBuf, message: String },
    #[error("the WebAssembly host: {0}")]
    Host(String),
}

/// The plugin folders directly under `dir` (each holding a `plugin.yaml`), in name order; none when `dir`
/// cannot be read.
pub fn plugin_folders(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut folders: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join(MANIFEST_FILE).is_file())
        .collect();
    folders.sort();
    folders
}
