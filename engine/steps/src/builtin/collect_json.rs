//! `builtin/collect-json`: gathers JSON artifacts (typically the outputs of a `foreach`) into one JSON array,
//! keeping the fan-out order; failed items (null) are kept as null so positions still match.

use voxflow_spec::types::{ArtifactKind, DataType};
use voxflow_spec::{PortSpec, Value};

use super::{Builtin, Ports};
use crate::{StepArgs, StepContext, StepError, StepOutputs};

pub fn step() -> Builtin {
    let ports = Ports {
        inputs: vec![PortSpec::required(
            "items",
            DataType::List(Box::new(DataType::Any)),
            "the items",
        )],
        params: vec![],
        outputs: vec![
            PortSpec::required("json", DataType::Artifact(ArtifactKind::Json), "the array"),
            PortSpec::required("count", DataType::Integer, "how many items are not null"),
        ],
    };
    Builtin::new(
        "collect-json",
        "Collects a list of JSON artifacts or values into one JSON array",
        ports,
        run,
    )
}

/// The items of list input `port` as JSON: artifacts read and parsed, other values as they are (null for a
/// failed fan-out item). Shared with `metrics-table`.
pub(super) fn json_items(
    ctx: &StepContext<'_>,
    args: &StepArgs,
    port: &str,
) -> Result<Vec<serde_json::Value>, StepError> {
    let Value::List(items) = args.input(port)? else {
        return Err(StepError::BadArgument {
            field: format!("input `{port}`"),
            message: "expected a list".into(),
        });
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        ctx.check_cancelled()?;
        out.push(match item.as_artifact() {
            Some(a) => {
                let bytes = ctx.artifacts.read(a)?;
                serde_json::from_slice(&bytes).map_err(|e| {
                    StepError::Failed(format!(
                        "{port} item {i} (sha256:{}) is not JSON: {e}",
                        a.hash
                    ))
                })?
            }
            None => item.to_json(),
        });
    }
    Ok(out)
}

fn run(ctx: &StepContext<'_>, args: &StepArgs) -> Result<StepOutputs, StepError> {
    let out = json_items(ctx, args, "items")?;
    let count = out.iter().filter(|v| !v.is_null()).count();
    let bytes = serde_json::to_vec_pretty(&out).map_err(|e| StepError::Failed(e.to_string()))?;
    let artifact =
        ctx.artifacts
            .put_bytes(&bytes, ArtifactKind::Json, None, Some("collected.json"))?;
    Ok(StepOutputs::from([
        ("json".to_string(), Value::artifact(artifact)),
        ("count".to_string(), Value::Number(count as f64)),
    ]))
}
