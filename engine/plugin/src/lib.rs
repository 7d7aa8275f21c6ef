//! Plugins for voxflow: manifests (`plugin.yaml`) and the sandboxed WebAssembly host, each plugin exposed
//! as a [`voxflow_steps::Step`] so the executor runs it like a built-in. Plugins see only the WIT contract
//! in `plugins/wit`; nothing here is linked into a plugin.

pub mod manifest;
pub mod wasm;

use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// The plugins under `dir` (one folder each with a `plugin.yaml`), loaded (compiled on first use), and the folders
/// that could not be loaded with why. ONNX plugins are left to the ONNX runner.
pub fn load_plugins(
    host: &Arc<WasmHost>,
    dir: &Path,
) -> (Vec<Arc<WasmPlugin>>, Vec<(PathBuf, String)>) {
    let mut loaded = Vec::new();
    let mut problems = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (loaded, problems);
    };
    let mut folders: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join(MANIFEST_FILE).is_file())
        .collect();
    folders.sort();
    for folder in folders {
        match Manifest::load(&folder) {
            Ok((m, _)) if m.kind != PluginKind::Wasm => continue,
            Ok(_) => match WasmPlugin::load(host.clone(), &folder) {
                Ok(p) => loaded.push(Arc::new(p)),
                Err(e) => problems.push((folder, e.to_string())),
            },
            Err(e) => problems.push((folder, e.to_string())),
        }
    }
    (loaded, problems)
}
