//! Planning and executing workflow runs: the DAG of each scope, `when` conditions, `foreach` fan-out with
//! bounded concurrency, retries with backoff, per-step timeouts, cancellation, and the step cache.
//!
//! The run's state lives in the store (through [`voxflow_store::RunTracker`]): every attempt, its inputs,
//! outputs, artifacts and log lines are recorded as they happen, so a later worker process can pick up
//! where this one left off. The executor never writes SQL and never runs step code on the async threads.

mod attempt;
mod cache_key;
mod executor;
mod export;
mod frame;
mod plan;
mod progress;
mod request;

pub use executor::{Executor, RunError, RunOutcome};
pub use export::{export_outputs, ExportError};
pub use plan::{Plan, PlanError, PlanScope, PlanStep, PlanStepKind};
pub use progress::{NoProgress, Progress, ProgressEvent};
pub use request::{parse_assignment, RunRequest};
