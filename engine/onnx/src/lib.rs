//! ONNX model steps: ONNX Runtime through the `ort` crate (loaded at run time from a configured library),
//! one shared session per model, provider and thread count, and the processing around a network (tiling,
//! resampling, normalization, activations, masks and class scores) declared in the plugin's manifest.

pub mod regions;
pub mod runtime;
pub mod session;
pub mod spec;
pub mod step;
pub mod tiling;
pub mod values;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use runtime::{Provider, RuntimeConfig};
pub use session::{inspect_model, ModelInfo, TensorInfo};
pub use step::{OnnxPlugin, Produced, Provenance};

/// What goes wrong around a model.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The ONNX Runtime library cannot be found or loaded; the message says how to get it.
    #[error("ONNX Runtime is not available: {0}")]
    RuntimeMissing(String),
    #[error("model {path}: {message}")]
    Model { path: PathBuf, message: String },
    #[error("{0}")]
    Provider(String),
    #[error("plugin manifest: {0}")]
    Manifest(String),
    #[error("the session cache lock is poisoned")]
    Poisoned,
}

/// The ONNX plugins in `dir` (one folder each with a `plugin.yaml` of kind `onnx`), and the folders that
/// could not be loaded with why. The runtime library is not needed to load them, only to run them.
pub fn load_onnx_plugins(
    dir: &Path,
    config: &RuntimeConfig,
) -> (Vec<Arc<OnnxPlugin>>, Vec<(PathBuf, String)>) {
    let mut loaded = Vec::new();
    let mut problems = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (loaded, problems);
    };
    let mut folders: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join(voxflow_plugin::MANIFEST_FILE).is_file())
        .collect();
    folders.sort();
    for folder in folders {
        match voxflow_plugin::Manifest::load(&folder) {
            Ok((m, _)) if m.kind != voxflow_plugin::PluginKind::Onnx => continue,
            Ok(_) => match OnnxPlugin::load(&folder, config.clone()) {
                Ok(p) => loaded.push(Arc::new(p)),
                Err(e) => problems.push((folder, e.to_string())),
            },
            Err(e) => problems.push((folder, e.to_string())),
        }
    }
    (loaded, problems)
}
