//! `builtin/pass`: returns its `value` parameter unchanged. Useful to name or regroup values in a workflow,
//! and the no-op step that the engine-overhead benchmark runs.

use voxflow_spec::types::DataType;
use voxflow_spec::{PortSpec, Value};

use super::{Builtin, Ports};
use crate::{StepArgs, StepContext, StepError, StepOutputs};

pub fn step() -> Builtin {
    let ports = Ports {
        inputs: vec![],
        params: vec![PortSpec::required("value", DataType::Any, "any value")],
        outputs: vec![PortSpec::required("value", DataType::Any, "the same value")],
    };
    Builtin::new("pass", "Returns `value` unchanged", ports, run)
}

fn run(_ctx: &StepContext<'_>, args: &StepArgs) -> Result<StepOutputs, StepError> {
    let value = args.params.get("value").cloned().unwrap_or(Value::Null);
    Ok(StepOutputs::from([("value".to_string(), value)]))
}
