//! One execution of a plugin step in one frame: argument evaluation, the cache, attempts with retries and
//! backoff, the timeout, and recording everything in the store. Step code runs on the blocking pool.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use voxflow_spec::model::{Argument, StepAction};
use voxflow_spec::{PortSpec, Value};
use voxflow_steps::{Step, StepArgs, StepContext, StepError, StepOutputs};
use voxflow_store::{NewAttempt, RunTracker, StepStatus, StoreError};

use crate::cache_key::cache_key;
use crate::executor::RunCtx;
use crate::frame::{Frame, FrameScope, StepResult};
use crate::plan::PlanStep;
use crate::progress::ProgressEvent;

/// How long a step that was told to stop (timeout, cancellation) may take to notice before we stop waiting.
const STOP_GRACE: Duration = Duration::from_secs(10);

struct Failure {
    status: StepStatus,
    message: String,
}

fn evaluate(
    args: &[Argument],
    ports: &[PortSpec],
    scope: &FrameScope<'_>,
    what: &str,
) -> Result<BTreeMap<String, Value>, String> {
    let mut out = BTreeMap::new();
    for a in args {
        let v = a
            .value
            .eval(scope)
            .map_err(|e| format!("{what} `{}`: {e}", a.name.value))?;
        out.insert(a.name.value.clone(), v);
    }
    for p in ports {
        if !out.contains_key(&p.name) {
            if let Some(d) = &p.default {
                out.insert(p.name.clone(), d.clone());
            }
        }
    }
    Ok(out)
}

pub(crate) async fn run_unit<T: RunTracker>(
    ctx: &Arc<RunCtx<T>>,
    pstep: &PlanStep,
    step_impl: &Arc<dyn Step>,
    frame: &Arc<Frame>,
) -> Result<StepResult, StoreError> {
    let step = &pstep.step;
    let identity = step_impl.identity();
    let sig = step_impl.signature();
    let mut record = NewAttempt {
        run_id: ctx.run_id.clone(),
        step_id: pstep.path.clone(),
        fanout_key: frame.key.clone(),
        attempt: 1,
        plugin: identity.name.clone(),
        plugin_version: Some(identity.version.clone()),
        plugin_hash: Some(identity.sha256.clone()),
        cache_key: None,
        inputs: serde_json::Value::Null,
    };
    let StepAction::Uses { inputs, with, .. } = &step.action else {
        return Ok(StepResult::Failed {
            message: format!("step `{}` is not a plugin step", pstep.path),
            tolerated: false,
        });
    };
    let scope = FrameScope {
        values: &ctx.values,
        frame,
    };
    let evaluated = evaluate(inputs, &sig.inputs, &scope, "input")
        .and_then(|i| Ok((i, evaluate(with, &sig.params, &scope, "parameter")?)));
    let args = match evaluated {
        Ok((inputs, params)) => StepArgs {
            inputs,
            params,
            wanted_outputs: wanted_outputs(&sig.outputs, &pstep.read_outputs),
        },
        Err(message) => {
            let id = ctx.tracker.start_attempt(&record).await?;
            let message = format!("step `{}`: {message}", pstep.path);
            ctx.tracker
                .finish_attempt(&id, StepStatus::Failed, None, Some(&message))
                .await?;
            ctx.event(Some(&id), Some(&pstep.path), "error", &message)
                .await?;
            return Ok(StepResult::Failed {
                message,
                tolerated: step.continue_on_error,
            });
        }
    };
    record.inputs = serde_json::json!({
        "inputs": Value::Map(args.inputs.clone()).to_json(),
        "params": Value::Map(args.params.clone()).to_json(),
    });
    if let Some(wanted) = &args.wanted_outputs {
        record.inputs["wanted_outputs"] = serde_json::json!(wanted);
    }
    // What decides the outputs besides the plugin's code or model (an ONNX plugin's processing).
    if let Some(config) = &identity.config_sha256 {
        record.inputs["plugin_config_sha256"] = serde_json::json!(config);
    }
    // The key fingerprints folders the inputs name: file-system work, kept off the async threads. If
    // computing it fails (it cannot panic short of a bug), the step simply runs uncached.
    let key = if step.cache {
        let (key_identity, key_args) = (identity.clone(), args.clone());
        tokio::task::spawn_blocking(move || cache_key(&key_identity, &key_args))
            .await
            .ok()
    } else {
        None
    };
    if let Some(key) = key {
        record.cache_key = Some(key.clone());
        if let Some(hit) = ctx.tracker.find_cached(&key).await? {
            let outputs = Value::from_json(hit.outputs.clone());
            let complete = outputs
                .artifacts()
                .iter()
                .all(|a| ctx.artifacts.contains(&a.hash));
            if let (Value::Map(map), true) = (outputs, complete) {
                let id = ctx.tracker.record_cache_hit(&record, &hit).await?;
                record_artifacts(ctx, &id, &map).await?;
                ctx.event(
                    Some(&id),
                    Some(&pstep.path),
                    "info",
                    &format!(
                        "cache hit: reused the outputs of step run {} (run {})",
                        hit.step_run_id, hit.run_id
                    ),
                )
                .await?;
                ctx.progress.event(&ProgressEvent::StepFinished {
                    step: pstep.path.clone(),
                    key: frame.key.clone(),
                    attempt: 1,
                    status: StepStatus::Succeeded,
                    cache_hit: true,
                    duration: Duration::ZERO,
                    error: None,
                });
                return Ok(StepResult::Done(map));
            }
        }
    }
    let max_attempts = step.retry.max_attempts.max(1);
    for attempt in 1..=max_attempts {
        if ctx.cancel.is_cancelled() {
            return Ok(StepResult::Cancelled);
        }
        let permit = tokio::select! {
            p = ctx.jobs.clone().acquire_owned() => p.ok(),
            _ = ctx.cancel.cancelled() => return Ok(StepResult::Cancelled),
        };
        record.attempt = attempt;
        let id = ctx.tracker.start_attempt(&record).await?;
        ctx.progress.event(&ProgressEvent::AttemptStarted {
            step: pstep.path.clone(),
            key: frame.key.clone(),
            attempt,
        });
        let started = Instant::now();
        tracing::debug!(run_id = %ctx.run_id, step = %pstep.path, key = %frame.key, attempt, "attempt started");
        let (result, log) = execute_blocking(
            ctx,
            step_impl,
            &args,
            pstep,
            &frame.key,
            attempt,
            step.timeout,
        )
        .await;
        drop(permit);
        for line in log {
            ctx.event(Some(&id), Some(&pstep.path), "info", &line)
                .await?;
        }
        let result = result.and_then(|outputs| {
            check_outputs(
                sig.outputs.as_slice(),
                args.wanted_outputs.as_ref(),
                outputs,
            )
        });
        match result {
            Ok(outputs) => {
                record_artifacts(ctx, &id, &outputs).await?;
                let json = Value::Map(outputs.clone()).to_json();
                ctx.tracker
                    .finish_attempt(&id, StepStatus::Succeeded, Some(&json), None)
                    .await?;
                ctx.progress.event(&ProgressEvent::StepFinished {
                    step: pstep.path.clone(),
                    key: frame.key.clone(),
                    attempt,
                    status: StepStatus::Succeeded,
                    cache_hit: false,
                    duration: started.elapsed(),
                    error: None,
                });
                return Ok(StepResult::Done(outputs));
            }
            Err(f) => {
                tracing::info!(run_id = %ctx.run_id, step = %pstep.path, key = %frame.key, attempt, status = %f.status, "{}", f.message);
                ctx.tracker
                    .finish_attempt(&id, f.status, None, Some(&f.message))
                    .await?;
                ctx.event(
                    Some(&id),
                    Some(&pstep.path),
                    "error",
                    &format!("attempt {attempt}: {}", f.message),
                )
                .await?;
                ctx.progress.event(&ProgressEvent::StepFinished {
                    step: pstep.path.clone(),
                    key: frame.key.clone(),
                    attempt,
                    status: f.status,
                    cache_hit: false,
                    duration: started.elapsed(),
                    error: Some(f.message.clone()),
                });
                if f.status == StepStatus::Cancelled {
                    return Ok(StepResult::Cancelled);
                }
                if attempt == max_attempts {
                    let tries = if max_attempts > 1 {
                        format!(" (after {max_attempts} attempts)")
                    } else {
                        String::new()
                    };
                    return Ok(StepResult::Failed {
                        message: format!(
                            "step `{}`{}{tries}: {}",
                            pstep.path,
                            key_suffix(&frame.key),
                            f.message
                        ),
                        tolerated: step.continue_on_error,
                    });
                }
                let delay = step.retry.delay_before(attempt + 1);
                ctx.progress.event(&ProgressEvent::RetryScheduled {
                    step: pstep.path.clone(),
                    key: frame.key.clone(),
                    next_attempt: attempt + 1,
                    delay,
                });
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = ctx.cancel.cancelled() => return Ok(StepResult::Cancelled),
                }
            }
        }
    }
    Ok(StepResult::Cancelled)
}

fn key_suffix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!(" [item {key}]")
    }
}

/// The outputs to ask a step for: those the workflow reads, unless that is all of them, or none (a step
/// whose outputs nothing reads runs for its record, so it keeps them all).
fn wanted_outputs(declared: &[PortSpec], read: &BTreeSet<String>) -> Option<BTreeSet<String>> {
    let wanted: BTreeSet<String> = declared
        .iter()
        .filter(|p| read.contains(&p.name))
        .map(|p| p.name.clone())
        .collect();
    (!wanted.is_empty() && wanted.len() < declared.len()).then_some(wanted)
}

/// A plugin must produce every output it declares that was wanted.
fn check_outputs(
    declared: &[PortSpec],
    wanted: Option<&BTreeSet<String>>,
    outputs: StepOutputs,
) -> Result<StepOutputs, Failure> {
    let missing: Vec<&str> = declared
        .iter()
        .filter(|p| wanted.is_none_or(|w| w.contains(&p.name)) && !outputs.contains_key(&p.name))
        .map(|p| p.name.as_str())
        .collect();
    if missing.is_empty() {
        Ok(outputs)
    } else {
        Err(Failure {
            status: StepStatus::Failed,
            message: format!(
                "the plugin did not produce its declared output(s): {}",
                missing.join(", ")
            ),
        })
    }
}

async fn record_artifacts<T: RunTracker>(
    ctx: &RunCtx<T>,
    step_run_id: &str,
    outputs: &BTreeMap<String, Value>,
) -> Result<(), StoreError> {
    for (name, value) in outputs {
        for a in value.artifacts() {
            let location = ctx
                .artifacts
                .path_of(&a.hash)
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            ctx.tracker
                .record_artifact(&ctx.run_id, Some(step_run_id), name, a, &location)
                .await?;
        }
    }
    Ok(())
}

/// Runs the step on the blocking pool, bounded by the timeout and the run's cancellation.
async fn execute_blocking<T: RunTracker>(
    ctx: &Arc<RunCtx<T>>,
    step_impl: &Arc<dyn Step>,
    args: &StepArgs,
    pstep: &PlanStep,
    key: &str,
    attempt: u32,
    timeout: Option<Duration>,
) -> (Result<StepOutputs, Failure>, Vec<String>) {
    let token = ctx.cancel.child_token();
    let (step, args, artifacts) = (step_impl.clone(), args.clone(), ctx.artifacts.clone());
    let (run_id, step_id, key_owned, inner_token) = (
        ctx.run_id.clone(),
        pstep.path.clone(),
        key.to_string(),
        token.clone(),
    );
    let memory_limit_mb = pstep.step.memory_mb;
    let mut handle = tokio::task::spawn_blocking(move || {
        let mut sctx = StepContext::new(
            &run_id,
            &step_id,
            &key_owned,
            attempt,
            &artifacts,
            inner_token,
        );
        sctx.memory_limit_mb = memory_limit_mb;
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| step.run(&sctx, &args)));
        (result, sctx.take_log())
    });
    let deadline = async {
        match timeout {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let stopped = |status: StepStatus, message: String| Failure { status, message };
    let joined = tokio::select! {
        j = &mut handle => j,
        _ = deadline => {
            token.cancel();
            let log = tokio::time::timeout(STOP_GRACE, handle).await.ok().and_then(|j| j.ok()).map(|(_, l)| l);
            let d = timeout.unwrap_or_default();
            return (Err(stopped(StepStatus::TimedOut, format!("timed out after {}", humantime::format_duration(d)))), log.unwrap_or_default());
        }
        _ = ctx.cancel.cancelled() => {
            let log = tokio::time::timeout(STOP_GRACE, handle).await.ok().and_then(|j| j.ok()).map(|(_, l)| l);
            return (Err(stopped(StepStatus::Cancelled, "cancelled".into())), log.unwrap_or_default());
        }
    };
    match joined {
        Ok((Ok(Ok(outputs)), log)) => (Ok(outputs), log),
        Ok((Ok(Err(StepError::Cancelled)), log)) => {
            (Err(stopped(StepStatus::Cancelled, "cancelled".into())), log)
        }
        Ok((Ok(Err(e)), log)) => (Err(stopped(StepStatus::Failed, e.to_string())), log),
        Ok((Err(panic), log)) => (
            Err(stopped(
                StepStatus::Failed,
                format!("the step panicked: {}", panic_text(&panic)),
            )),
            log,
        ),
        Err(e) => (
            Err(stopped(
                StepStatus::Failed,
                format!("the step's task failed: {e}"),
            )),
            Vec::new(),
        ),
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use voxflow_spec::types::DataType;

    fn ports(names: &[&str]) -> Vec<PortSpec> {
        names
            .iter()
            .map(|n| PortSpec::optional(n, DataType::String, None, ""))
            .collect()
    }

    fn names(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn only_some_read_outputs_narrow_what_a_step_is_asked_for() {
        let declared = ports(&["mask", "probability"]);
        assert_eq!(
            wanted_outputs(&declared, &names(&["mask", "other"])),
            Some(names(&["mask"]))
        );
        assert_eq!(
            wanted_outputs(&declared, &names(&["mask", "probability"])),
            None
        );
        // Nothing reads the step: it runs for its record, with every output.
        assert_eq!(wanted_outputs(&declared, &names(&["other"])), None);
    }

    #[test]
    fn a_left_out_output_may_be_missing_a_wanted_one_may_not() {
        let declared = ports(&["mask", "probability"]);
        let mask_only = StepOutputs::from([("mask".to_string(), Value::Bool(true))]);
        let wanted = names(&["mask"]);
        assert!(check_outputs(&declared, Some(&wanted), mask_only.clone()).is_ok());
        let failure = check_outputs(&declared, None, mask_only).err().unwrap();
        assert!(
            failure.message.contains("probability"),
            "{}",
            failure.message
        );
        let wanted = names(&["probability"]);
        let probability_missing = StepOutputs::new();
        assert!(check_outputs(&declared, Some(&wanted), probability_missing).is_err());
    }
}
