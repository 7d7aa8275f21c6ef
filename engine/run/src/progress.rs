//! Progress notifications from the executor to whoever shows them (a terminal bar, plain log lines, and
//! later the HTTP API). The executor only emits; it does not know how they are shown.

use std::time::Duration;

use voxflow_store::{RunStatus, StepStatus};

#[derive(Debug, Clone)]
pub enum ProgressEvent {
    RunStarted {
        run_id: String,
        steps: usize,
    },
    /// A `foreach` step expanded to `items` executions.
    FanOut {
        step: String,
        items: usize,
    },
    AttemptStarted {
        step: String,
        key: String,
        attempt: u32,
    },
    StepFinished {
        step: String,
        key: String,
        attempt: u32,
        status: StepStatus,
        cache_hit: bool,
        duration: Duration,
        error: Option<String>,
    },
    RetryScheduled {
        step: String,
        key: String,
        next_attempt: u32,
        delay: Duration,
    },
    RunFinished {
        run_id: String,
        status: RunStatus,
    },
}

pub trait Progress: Send + Sync {
    fn event(&self, event: &ProgressEvent);
}

/// Shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _: &ProgressEvent) {}
}
