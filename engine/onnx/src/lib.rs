//! ONNX model steps: ONNX Runtime through the `ort` crate (loaded at run time from a configured library),
//! one shared session per model, provider and thread count, and the processing around a network (tiling,
//! resampling, normalization, activations, masks and class scores) declared in the plugin's manifest.

pub mod binary;
pub mod cores;
pub mod mirror;
pub mod regions;
pub mod runtime;
pub mod session;
pub mod spec;
pub mod step;
pub mod stop;
pub mod tiling;
pub mod values;

use std::path::PathBuf;

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
