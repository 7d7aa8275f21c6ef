//! `builtin/pass`: returns its `value` parameter unchanged. Useful to name or regroup values in a workflow,
//! and the no-op step that the engine-overhead benchmark runs.

use voxflow_spec::types::DataType;
use voxflow_spec::{PortSpec, StepSignature, Value};

use crate::{PluginIdentity, Step, StepArgs, StepContext, StepError, StepOutputs};

pub struct Pass {
    id: PluginIdentity,
    sig: StepSignature,
}

impl Pass {
    pub fn new() -> Self {
        let id = super::identity("pass");
        let sig = super::signature(
            &id,
            "Returns `value` unchanged",
            vec![],
            vec![PortSpec::required("value", DataType::Any, "any value")],
            vec![PortSpec::required("value", DataType::Any, "the same value")],
        );
        Pass { id, sig }
    }
}

impl Step for Pass {
    fn signature(&self) -> &StepSignature {
        &self.sig
    }

    fn identity(&self) -> &PluginIdentity {
        &self.id
    }

    fn run(&self, _ctx: &StepContext<'_>, args: &StepArgs) -> Result<StepOutputs, StepError> {
        let value = args.params.get("value").cloned().unwrap_or(Value::Null);
        Ok(StepOutputs::from([("value".to_string(), value)]))
    }
}
