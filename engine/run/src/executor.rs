//! The executor: records the run, schedules each scope's steps as their dependencies finish, expands
//! `foreach` with bounded concurrency, evaluates `when`, and records how the run ended.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use voxflow_artifact::ArtifactStore;
use voxflow_spec::model::StepAction;
use voxflow_spec::Value;
use voxflow_store::{NewAttempt, NewRun, RunStatus, RunTracker, StoreError};

use crate::attempt::run_unit;
use crate::frame::{Frame, FrameScope, RunValues, StepResult};
use crate::plan::{Plan, PlanScope, PlanStep, PlanStepKind};
use crate::progress::{NoProgress, Progress, ProgressEvent};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The run database failed; the run could not be (fully) recorded.
    #[error("run tracking failed: {0}")]
    Store(#[from] StoreError),
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_id: String,
    pub status: RunStatus,
    pub outputs: BTreeMap<String, Value>,
    /// For a failed run: the failing step and the reason.
    pub error: Option<String>,
}

/// Runs plans, recording them through a [`RunTracker`].
pub struct Executor<T: RunTracker> {
    tracker: Arc<T>,
    artifacts: ArtifactStore,
    jobs: usize,
    progress: Arc<dyn Progress>,
}

/// Everything a running step can see of its run.
pub(crate) struct RunCtx<T: RunTracker> {
    pub run_id: String,
    pub tracker: Arc<T>,
    pub artifacts: ArtifactStore,
    pub values: RunValues,
    /// Bounds the plugin executions running at once across the whole run (`--jobs`).
    pub jobs: Arc<Semaphore>,
    pub jobs_count: usize,
    pub cancel: CancellationToken,
    pub progress: Arc<dyn Progress>,
}

impl<T: RunTracker> RunCtx<T> {
    pub async fn event(
        &self,
        step_run_id: Option<&str>,
        step: Option<&str>,
        level: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        self.tracker
            .add_event(&self.run_id, step_run_id, step, level, message)
            .await
    }
}

impl<T: RunTracker> Executor<T> {
    pub fn new(tracker: Arc<T>, artifacts: ArtifactStore) -> Self {
        Executor {
            tracker,
            artifacts,
            jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            progress: Arc::new(NoProgress),
        }
    }

    /// How many plugin executions may run at once (default: the number of cores).
    pub fn with_jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self
    }

    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// Runs a plan to the end. Cancelling `cancel` stops the run cleanly: running steps are told to stop,
    /// no new step starts, and the run is recorded as cancelled.
    pub async fn execute(
        &self,
        plan: Plan,
        cancel: CancellationToken,
    ) -> Result<RunOutcome, RunError> {
        let wf = &plan.workflow;
        let run_id = self
            .tracker
            .create_run(&NewRun {
                workflow_name: wf.name.value.clone(),
                workflow_file: wf.file.display().to_string(),
                workflow_hash: wf.source_hash.clone(),
                workflow_text: wf.source.clone(),
                inputs: Value::Map(plan.inputs.clone()).to_json(),
                params: Value::Map(plan.params.clone()).to_json(),
            })
            .await?;
        let ctx = Arc::new(RunCtx {
            run_id: run_id.clone(),
            tracker: self.tracker.clone(),
            artifacts: self.artifacts.clone(),
            values: RunValues::new(plan.inputs.clone(), plan.params.clone()),
            jobs: Arc::new(Semaphore::new(self.jobs)),
            jobs_count: self.jobs,
            cancel,
            progress: self.progress.clone(),
        });
        self.progress.event(&ProgressEvent::RunStarted {
            run_id: run_id.clone(),
            steps: plan.root.step_count(),
        });
        ctx.event(
            None,
            None,
            "info",
            &format!("run of workflow `{}` started", wf.name.value),
        )
        .await?;
        let frame = Frame::root();
        let result = run_scope(ctx.clone(), plan.root.clone(), frame.clone()).await;
        let failure = match result {
            Ok(f) => f,
            Err(e) => {
                // Best effort: the database may be what failed.
                let _ = self
                    .tracker
                    .finish_run(
                        &run_id,
                        RunStatus::Failed,
                        None,
                        Some(&format!("run tracking failed: {e}")),
                    )
                    .await;
                return Err(e.into());
            }
        };
        let mut outputs = BTreeMap::new();
        let mut error = failure;
        if error.is_none() && !ctx.cancel.is_cancelled() {
            let scope = FrameScope {
                values: &ctx.values,
                frame: &frame,
            };
            for out in &wf.outputs {
                match out.value.eval(&scope) {
                    Ok(v) => {
                        outputs.insert(out.name.value.clone(), v);
                    }
                    Err(e) => {
                        error = Some(format!("workflow output `{}`: {e}", out.name.value));
                        break;
                    }
                }
            }
        }
        let status = if ctx.cancel.is_cancelled() {
            error = Some("cancelled".into());
            RunStatus::Cancelled
        } else if error.is_some() {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        let outputs_json = Value::Map(outputs.clone()).to_json();
        self.tracker
            .finish_run(&run_id, status, Some(&outputs_json), error.as_deref())
            .await?;
        ctx.event(None, None, "info", &format!("run {status}"))
            .await?;
        self.progress.event(&ProgressEvent::RunFinished {
            run_id: run_id.clone(),
            status,
        });
        Ok(RunOutcome {
            run_id,
            status,
            outputs,
            error,
        })
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Slot {
    Pending,
    Running,
    Finished,
}

/// Runs the steps of one scope in dependency order; returns the first failure, if any.
fn run_scope<T: RunTracker>(
    ctx: Arc<RunCtx<T>>,
    scope: Arc<PlanScope>,
    frame: Arc<Frame>,
) -> BoxFuture<'static, Result<Option<String>, StoreError>> {
    Box::pin(async move {
        let n = scope.steps.len();
        let mut slots = vec![Slot::Pending; n];
        let mut results: Vec<Option<StepResult>> = vec![None; n];
        let mut running = JoinSet::new();
        let mut failure: Option<String> = None;
        loop {
            let mut changed = true;
            while changed && failure.is_none() && !ctx.cancel.is_cancelled() {
                changed = false;
                for i in 0..n {
                    if slots[i] != Slot::Pending
                        || scope.deps[i].iter().any(|&d| slots[d] != Slot::Finished)
                    {
                        continue;
                    }
                    let pstep = scope.steps[i].clone();
                    let blocker = scope.deps[i].iter().find_map(|&d| match &results[d] {
                        Some(StepResult::Skipped) => {
                            Some(format!("`{}` was skipped", scope.steps[d].step.id.value))
                        }
                        Some(StepResult::Cancelled) => {
                            Some(format!("`{}` was cancelled", scope.steps[d].step.id.value))
                        }
                        _ => None,
                    });
                    if let Some(reason) = blocker {
                        record_skip(&ctx, &pstep, &frame, &reason).await?;
                        frame.set(&pstep.step.id.value, StepResult::Skipped);
                        results[i] = Some(StepResult::Skipped);
                        slots[i] = Slot::Finished;
                        changed = true;
                        continue;
                    }
                    slots[i] = Slot::Running;
                    let (ctx, frame) = (ctx.clone(), frame.clone());
                    running.spawn(async move { (i, run_step(ctx, pstep, frame).await) });
                }
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let (i, result) = match joined {
                Ok((i, Ok(r))) => (i, r),
                Ok((_, Err(store_error))) => {
                    running.abort_all();
                    return Err(store_error);
                }
                Err(e) => {
                    failure.get_or_insert_with(|| format!("internal error in the executor: {e}"));
                    continue;
                }
            };
            if let StepResult::Failed {
                message,
                tolerated: false,
            } = &result
            {
                failure.get_or_insert_with(|| message.clone());
            }
            frame.set(&scope.steps[i].step.id.value, result.clone());
            results[i] = Some(result);
            slots[i] = Slot::Finished;
        }
        Ok(failure)
    })
}

async fn record_skip<T: RunTracker>(
    ctx: &RunCtx<T>,
    pstep: &PlanStep,
    frame: &Frame,
    reason: &str,
) -> Result<(), StoreError> {
    let plugin = match &pstep.step.action {
        StepAction::Uses { plugin, .. } => plugin.value.to_string(),
        StepAction::Group { .. } => "group".to_string(),
    };
    let record = NewAttempt {
        run_id: ctx.run_id.clone(),
        step_id: pstep.path.clone(),
        fanout_key: frame.key.clone(),
        attempt: 1,
        plugin,
        plugin_version: None,
        plugin_hash: None,
        cache_key: None,
        inputs: serde_json::Value::Null,
    };
    let id = ctx.tracker.record_skipped(&record, reason).await?;
    ctx.event(
        Some(&id),
        Some(&pstep.path),
        "info",
        &format!("skipped: {reason}"),
    )
    .await
}

/// A step that failed before any attempt (its `when` or `foreach` could not be evaluated): recorded as an
/// event, since there is no attempt row to hold the error.
async fn step_error<T: RunTracker>(
    ctx: &RunCtx<T>,
    pstep: &PlanStep,
    reason: String,
) -> Result<StepResult, StoreError> {
    let message = format!("step `{}`: {reason}", pstep.path);
    tracing::warn!(run_id = %ctx.run_id, step = %pstep.path, "{reason}");
    ctx.event(None, Some(&pstep.path), "error", &message)
        .await?;
    Ok(StepResult::Failed {
        message,
        tolerated: pstep.step.continue_on_error,
    })
}

/// Runs one step of a scope: its `when`, then its body once or once per `foreach` item.
async fn run_step<T: RunTracker>(
    ctx: Arc<RunCtx<T>>,
    pstep: Arc<PlanStep>,
    frame: Arc<Frame>,
) -> Result<StepResult, StoreError> {
    let step = &pstep.step;
    let scope = FrameScope {
        values: &ctx.values,
        frame: &frame,
    };
    if let Some(when) = &step.when {
        match when.value.eval(&scope) {
            Ok(v) if !v.is_truthy() => {
                let reason = "its `when` condition is false".to_string();
                record_skip(&ctx, &pstep, &frame, &reason).await?;
                return Ok(StepResult::Skipped);
            }
            Ok(_) => {}
            Err(e) => return step_error(&ctx, &pstep, format!("when: {e}")).await,
        }
    }
    let Some(foreach) = &step.foreach else {
        return run_body(&ctx, &pstep, &frame, frame.key.clone(), None).await;
    };
    let items = match foreach.value.eval(&scope) {
        Ok(Value::List(items)) => items,
        Ok(other) => {
            let message = format!("foreach needs a list, got a {}", other.type_name());
            return step_error(&ctx, &pstep, message).await;
        }
        Err(e) => return step_error(&ctx, &pstep, format!("foreach: {e}")).await,
    };
    ctx.progress.event(&ProgressEvent::FanOut {
        step: pstep.path.clone(),
        items: items.len(),
    });
    let limit = step.max_parallel.unwrap_or(ctx.jobs_count).max(1);
    let stop = Arc::new(AtomicBool::new(false));
    let item_results: Vec<Result<Option<StepResult>, StoreError>> =
        stream::iter(items.into_iter().enumerate())
            .map(|(i, item)| {
                let (ctx, pstep, frame, stop) =
                    (ctx.clone(), pstep.clone(), frame.clone(), stop.clone());
                async move {
                    if stop.load(Ordering::Relaxed) || ctx.cancel.is_cancelled() {
                        return Ok(None);
                    }
                    let key = if frame.key.is_empty() {
                        i.to_string()
                    } else {
                        format!("{}/{i}", frame.key)
                    };
                    let r = run_body(&ctx, &pstep, &frame, key, Some((item, i))).await?;
                    if matches!(
                        r,
                        StepResult::Failed {
                            tolerated: false,
                            ..
                        }
                    ) {
                        stop.store(true, Ordering::Relaxed);
                    }
                    Ok(Some(r))
                }
            })
            .buffered(limit)
            .collect()
            .await;
    let mut per_item = Vec::with_capacity(item_results.len());
    for r in item_results {
        per_item.push(r?);
    }
    Ok(combine_items(&pstep, per_item))
}

/// The outputs of a fan-out step: each output becomes the list of the items' values (null for items that
/// failed with `continue_on_error` or were skipped).
fn combine_items(pstep: &PlanStep, items: Vec<Option<StepResult>>) -> StepResult {
    let names: Vec<String> = match &pstep.kind {
        PlanStepKind::Uses(s) => s
            .signature()
            .outputs
            .iter()
            .map(|p| p.name.clone())
            .collect(),
        PlanStepKind::Group(_) => match &pstep.step.action {
            StepAction::Group { outputs, .. } => {
                outputs.iter().map(|o| o.name.value.clone()).collect()
            }
            StepAction::Uses { .. } => Vec::new(),
        },
    };
    let mut lists: BTreeMap<String, Vec<Value>> =
        names.iter().map(|n| (n.clone(), Vec::new())).collect();
    for item in &items {
        match item {
            Some(StepResult::Failed {
                message,
                tolerated: false,
            }) => {
                return StepResult::Failed {
                    message: message.clone(),
                    tolerated: false,
                }
            }
            Some(StepResult::Cancelled) | None => return StepResult::Cancelled,
            Some(StepResult::Done(outputs)) => {
                for n in &names {
                    if let Some(list) = lists.get_mut(n) {
                        list.push(outputs.get(n).cloned().unwrap_or(Value::Null));
                    }
                }
            }
            Some(StepResult::Skipped) | Some(StepResult::Failed { .. }) => {
                lists.values_mut().for_each(|l| l.push(Value::Null));
            }
        }
    }
    StepResult::Done(
        lists
            .into_iter()
            .map(|(k, v)| (k, Value::List(v)))
            .collect(),
    )
}

/// Runs a step's body once: a plugin call, or a group's steps in a frame of their own.
async fn run_body<T: RunTracker>(
    ctx: &Arc<RunCtx<T>>,
    pstep: &Arc<PlanStep>,
    parent: &Arc<Frame>,
    key: String,
    item: Option<(Value, usize)>,
) -> Result<StepResult, StoreError> {
    let has_own_frame = item.is_some() || matches!(pstep.kind, PlanStepKind::Group(_));
    let frame = if has_own_frame {
        Frame::child(parent, item, key)
    } else {
        parent.clone()
    };
    match &pstep.kind {
        PlanStepKind::Uses(step_impl) => run_unit(ctx, pstep, step_impl, &frame).await,
        PlanStepKind::Group(scope) => {
            if let Some(message) = run_scope(ctx.clone(), scope.clone(), frame.clone()).await? {
                return Ok(StepResult::Failed {
                    message,
                    tolerated: pstep.step.continue_on_error,
                });
            }
            if ctx.cancel.is_cancelled() {
                return Ok(StepResult::Cancelled);
            }
            let StepAction::Group { outputs, .. } = &pstep.step.action else {
                return Ok(StepResult::Done(BTreeMap::new()));
            };
            let scope = FrameScope {
                values: &ctx.values,
                frame: &frame,
            };
            let mut values = BTreeMap::new();
            for o in outputs {
                match o.value.eval(&scope) {
                    Ok(v) => {
                        values.insert(o.name.value.clone(), v);
                    }
                    Err(e) => {
                        return Ok(StepResult::Failed {
                            message: format!(
                                "group `{}` output `{}`: {e}",
                                pstep.path, o.name.value
                            ),
                            tolerated: pstep.step.continue_on_error,
                        })
                    }
                }
            }
            Ok(StepResult::Done(values))
        }
    }
}
