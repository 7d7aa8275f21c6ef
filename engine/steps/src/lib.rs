//! The step interface that every kind of plugin implements (built-in, and later WebAssembly and ONNX), the
//! registry that resolves `uses:` to an implementation, and voxflow's built-in steps.
//!
//! A step is synchronous: the executor calls [`Step::run`] on a blocking thread pool, never on the async
//! runtime. A step writes artifacts only through [`StepContext::artifacts`], which writes to a temporary
//! name and renames, and it checks [`StepContext::cancel`] in long loops.

pub mod builtin;
mod context;
mod registry;

use std::collections::BTreeMap;

use voxflow_spec::{StepSignature, Value};

pub use context::{StepArgs, StepContext};
pub use registry::StepRegistry;

/// What a step produced: output name to value (artifacts are `Value::Artifact`).
pub type StepOutputs = BTreeMap<String, Value>;

/// Who a step implementation is, as recorded on every step run and used in cache keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginIdentity {
    pub name: String,
    pub version: String,
    /// sha256 of the plugin's code or model (for built-ins: of their name and the engine version).
    pub sha256: String,
    /// sha256 of what else decides the outputs, where the plugin has such a thing: an ONNX plugin's
    /// `model:` section (its pre- and post-processing), so that editing it changes the cache key.
    pub config_sha256: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The step ran and failed; the message says why in the user's terms.
    #[error("{0}")]
    Failed(String),
    /// An input or parameter has the wrong type or value at run time.
    #[error("{field}: {message}")]
    BadArgument { field: String, message: String },
    /// The step saw the cancellation token and stopped.
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Artifact(#[from] voxflow_artifact::ArtifactError),
}

/// One kind of step.
pub trait Step: Send + Sync {
    fn signature(&self) -> &StepSignature;
    fn identity(&self) -> &PluginIdentity;
    fn run(&self, ctx: &StepContext<'_>, args: &StepArgs) -> Result<StepOutputs, StepError>;
}
