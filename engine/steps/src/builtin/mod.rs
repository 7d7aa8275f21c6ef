//! voxflow's built-in steps (`uses: builtin/NAME`): loading files as artifacts, inspecting and collecting
//! them, writing them out, and `echo` for tests and demos. Imaging steps arrive with the imaging crate.

mod cases;
mod collect_json;
mod echo;
mod file_info;
mod load;
mod metrics_table;
mod pass;
mod volume;

pub use volume::{read_volume, store_volume};
mod write_outputs;

use std::sync::Arc;

use sha2::{Digest, Sha256};
use voxflow_spec::{PortSpec, StepSignature};

use crate::{PluginIdentity, Step, StepArgs, StepContext, StepError, StepOutputs};

/// Every built-in step.
pub fn all() -> Vec<Arc<dyn Step>> {
    [
        echo::step(),
        load::step(load::Format::Bytes),
        load::step(load::Format::Text),
        load::step(load::Format::Json),
        file_info::step(),
        pass::step(),
        collect_json::step(),
        cases::step(),
        metrics_table::step(),
        write_outputs::step(),
        volume::load_volume(),
        volume::write_nifti(),
        volume::write_png(),
        volume::write_dicom_seg(),
        volume::threshold(),
    ]
    .into_iter()
    .map(|b| Arc::new(b) as Arc<dyn Step>)
    .collect()
}

/// The body of a built-in step.
type RunFn = fn(&StepContext<'_>, &StepArgs) -> Result<StepOutputs, StepError>;

/// A built-in step: its identity and signature, and the function that runs it.
pub struct Builtin {
    id: PluginIdentity,
    sig: StepSignature,
    run: RunFn,
}

impl Builtin {
    fn new(name: &str, description: &str, ports: Ports, run: RunFn) -> Self {
        let id = identity(name);
        let sig = StepSignature {
            plugin: id.name.clone(),
            version: id.version.clone(),
            description: description.to_string(),
            inputs: ports.inputs,
            params: ports.params,
            outputs: ports.outputs,
        };
        Builtin { id, sig, run }
    }
}

/// The inputs, parameters and outputs of a built-in step.
struct Ports {
    inputs: Vec<PortSpec>,
    params: Vec<PortSpec>,
    outputs: Vec<PortSpec>,
}

impl Step for Builtin {
    fn signature(&self) -> &StepSignature {
        &self.sig
    }

    fn identity(&self) -> &PluginIdentity {
        &self.id
    }

    fn run(&self, ctx: &StepContext<'_>, args: &StepArgs) -> Result<StepOutputs, StepError> {
        (self.run)(ctx, args)
    }
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
        config_sha256: None,
    }
}
