//! `builtin/echo`: returns its message as a value and a text artifact. Its `fail_attempts` and `sleep`
//! parameters make retries, timeouts and cancellation testable with a real step.

use std::time::{Duration, Instant};

use voxflow_spec::types::{ArtifactKind, DataType};
use voxflow_spec::{PortSpec, Value};

use super::{Builtin, Ports};
use crate::{StepArgs, StepContext, StepError, StepOutputs};

pub fn step() -> Builtin {
    let ports = Ports {
        inputs: vec![],
        params: vec![
            PortSpec::required("message", DataType::String, "the text to return"),
            PortSpec::optional(
                "fail_attempts",
                DataType::Integer,
                Some(Value::Number(0.0)),
                "fail attempts 1..=N with an error, succeed afterwards",
            ),
            PortSpec::optional(
                "sleep",
                DataType::String,
                None,
                "wait this long first (e.g. 2s), cancellably",
            ),
        ],
        outputs: vec![
            PortSpec::required("message", DataType::String, "the message"),
            PortSpec::required(
                "text",
                DataType::Artifact(ArtifactKind::Text),
                "the message as a text artifact",
            ),
        ],
    };
    Builtin::new(
        "echo",
        "Returns `message`; can fail its first attempts or wait, to exercise retries and timeouts",
        ports,
        run,
    )
}

fn run(ctx: &StepContext<'_>, args: &StepArgs) -> Result<StepOutputs, StepError> {
    let message = args.param_str("message")?.unwrap_or_default().to_string();
    if let Some(wait) = args.param_duration("sleep")? {
        ctx.log(format!("sleeping {wait:?}"));
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            ctx.check_cancelled()?;
            std::thread::sleep(left.min(Duration::from_millis(10)));
        }
    }
    let fail = args.param_u64("fail_attempts")?.unwrap_or(0);
    if u64::from(ctx.attempt) <= fail {
        return Err(StepError::Failed(format!(
            "failing attempt {} of the first {fail} on purpose (fail_attempts)",
            ctx.attempt
        )));
    }
    let text = ctx.artifacts.put_bytes(
        message.as_bytes(),
        ArtifactKind::Text,
        None,
        Some("message.txt"),
    )?;
    Ok(StepOutputs::from([
        ("message".to_string(), Value::String(message)),
        ("text".to_string(), Value::artifact(text)),
    ]))
}
