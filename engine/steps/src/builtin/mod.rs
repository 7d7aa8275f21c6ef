//! voxflow's built-in steps (`uses: builtin/NAME`): loading files as artifacts, inspecting and collecting
//! them, writing them out, and `echo` for tests and demos. Imaging steps arrive with the imaging crate.

mod collect_json;
mod echo;
mod file_info;
mod load;
mod pass;
mod write_outputs;

use std::sync::Arc;

use sha2::{Digest, Sha256};
use voxflow_spec::{PortSpec, StepSignature};

use crate::{PluginIdentity, Step};

/// Every built-in step.
pub fn all() -> Vec<Arc<dyn Step>> {
    vec![
        Arc::new(echo::Echo::new()),
        Arc::new(load::LoadFile::new(load::Format::Bytes)),
        Arc::new(load::LoadFile::new(load::Format::Text)),
        Arc::new(load::LoadFile::new(load::Format::Json)),
        Arc::new(file_info::FileInfo::new()),
        Arc::new(pass::Pass::new()),
        Arc::new(collect_json::CollectJson::new()),
        Arc::new(write_outputs::WriteOutputs::new()),
    ]
}

/// Identity of a built-in: versioned with the engine, hashed over name and version so a cache entry made by
/// another engine version is not reused.
fn identity(name: &str) -> PluginIdentity {
    let version = env!("CARGO_PKG_VERSION").to_string();
    let sha256 = hex::encode(Sha256::digest(
        format!("voxflow-builtin:{name}@{version}").as_bytes(),
    ));
    PluginIdentity {
        name: format!("builtin/{name}"),
        version,
        sha256,
    }
}

fn signature(
    id: &PluginIdentity,
    description: &str,
    inputs: Vec<PortSpec>,
    params: Vec<PortSpec>,
    outputs: Vec<PortSpec>,
) -> StepSignature {
    StepSignature {
        plugin: id.name.clone(),
        version: id.version.clone(),
        description: description.to_string(),
        inputs,
        params,
        outputs,
    }
}
