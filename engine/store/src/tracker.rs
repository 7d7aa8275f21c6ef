//! The write side of run tracking, as the executor sees it: a small trait so that the executor does not
//! depend on SQL, implemented here for [`Store`].

use std::future::Future;

use sqlx::Row;
use voxflow_spec::ArtifactRef;

use crate::records::{NewAttempt, NewRun};
use crate::status::{RunStatus, StepStatus};
use crate::{now_ms, query_error, Store, StoreError};

/// The outputs of an earlier successful attempt with the same cache key.
#[derive(Debug, Clone)]
pub struct CachedOutputs {
    pub step_run_id: String,
    pub run_id: String,
    pub outputs: serde_json::Value,
}

/// What the executor records while it runs a workflow.
pub trait RunTracker: Send + Sync + 'static {
    /// Records a new run in state `running` and returns its id.
    fn create_run(&self, run: &NewRun) -> impl Future<Output = Result<String, StoreError>> + Send;

    fn finish_run(
        &self,
        run_id: &str,
        status: RunStatus,
        outputs: Option<&serde_json::Value>,
        error: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records an attempt in state `running` and returns the step run id.
    fn start_attempt(
        &self,
        attempt: &NewAttempt,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    fn finish_attempt(
        &self,
        step_run_id: &str,
        status: StepStatus,
        outputs: Option<&serde_json::Value>,
        error: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records a step that was not run (its `when` was false, or a step it needs was skipped or failed).
    fn record_skipped(
        &self,
        attempt: &NewAttempt,
        reason: &str,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// Records an attempt satisfied from the cache, as a finished, successful step run.
    fn record_cache_hit(
        &self,
        attempt: &NewAttempt,
        from: &CachedOutputs,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    fn record_artifact(
        &self,
        run_id: &str,
        step_run_id: Option<&str>,
        output_name: &str,
        artifact: &ArtifactRef,
        location: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The most recent successful attempt with this cache key, if any.
    fn find_cached(
        &self,
        cache_key: &str,
    ) -> impl Future<Output = Result<Option<CachedOutputs>, StoreError>> + Send;

    fn add_event(
        &self,
        run_id: &str,
        step_run_id: Option<&str>,
        step_id: Option<&str>,
        level: &str,
        message: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

fn json_text(v: &serde_json::Value) -> String {
    v.to_string()
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

const INSERT_STEP_RUN: &str = "INSERT INTO step_runs (id, run_id, step_id, fanout_key, attempt, status, plugin, \
     plugin_version, plugin_hash, cache_key, cache_hit, cached_from, inputs_json, outputs_json, error, started_at, finished_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";

/// How a step run row starts out (finished at once for skips and cache hits).
struct RowState<'a> {
    status: StepStatus,
    cached_from: Option<&'a str>,
    outputs: Option<&'a serde_json::Value>,
    error: Option<&'a str>,
    finished: bool,
}

impl Store {
    async fn insert_step_run(
        &self,
        a: &NewAttempt,
        state: RowState<'_>,
    ) -> Result<String, StoreError> {
        let id = new_id();
        let now = now_ms();
        sqlx::query(INSERT_STEP_RUN)
            .bind(&id)
            .bind(&a.run_id)
            .bind(&a.step_id)
            .bind(&a.fanout_key)
            .bind(i64::from(a.attempt))
            .bind(state.status.as_str())
            .bind(&a.plugin)
            .bind(a.plugin_version.as_deref())
            .bind(a.plugin_hash.as_deref())
            .bind(a.cache_key.as_deref())
            .bind(i64::from(state.cached_from.is_some()))
            .bind(state.cached_from)
            .bind(json_text(&a.inputs))
            .bind(state.outputs.map(json_text))
            .bind(state.error)
            .bind(now)
            .bind(state.finished.then_some(now))
            .execute(&self.pool)
            .await
            .map_err(query_error("recording a step attempt"))?;
        Ok(id)
    }
}

impl RunTracker for Store {
    async fn create_run(&self, run: &NewRun) -> Result<String, StoreError> {
        let id = new_id();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO runs (id, workflow_name, workflow_file, workflow_hash, workflow_text, inputs_json, \
             params_json, status, created_at, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&id)
        .bind(&run.workflow_name)
        .bind(&run.workflow_file)
        .bind(&run.workflow_hash)
        .bind(&run.workflow_text)
        .bind(json_text(&run.inputs))
        .bind(json_text(&run.params))
        .bind(RunStatus::Running.as_str())
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(query_error("creating a run"))?;
        Ok(id)
    }

    async fn finish_run(
        &self,
        run_id: &str,
        status: RunStatus,
        outputs: Option<&serde_json::Value>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE runs SET status = $1, outputs_json = $2, error = $3, finished_at = $4 WHERE id = $5")
            .bind(status.as_str())
            .bind(outputs.map(json_text))
            .bind(error)
            .bind(now_ms())
            .bind(run_id)
            .execute(&self.pool)
            .await
            .map_err(query_error("finishing a run"))?;
        Ok(())
    }

    async fn start_attempt(&self, attempt: &NewAttempt) -> Result<String, StoreError> {
        let state = RowState {
            status: StepStatus::Running,
            cached_from: None,
            outputs: None,
            error: None,
            finished: false,
        };
        self.insert_step_run(attempt, state).await
    }

    async fn finish_attempt(
        &self,
        step_run_id: &str,
        status: StepStatus,
        outputs: Option<&serde_json::Value>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE step_runs SET status = $1, outputs_json = $2, error = $3, finished_at = $4 WHERE id = $5")
            .bind(status.as_str())
            .bind(outputs.map(json_text))
            .bind(error)
            .bind(now_ms())
            .bind(step_run_id)
            .execute(&self.pool)
            .await
            .map_err(query_error("finishing a step attempt"))?;
        Ok(())
    }

    async fn record_skipped(
        &self,
        attempt: &NewAttempt,
        reason: &str,
    ) -> Result<String, StoreError> {
        let state = RowState {
            status: StepStatus::Skipped,
            cached_from: None,
            outputs: None,
            error: Some(reason),
            finished: true,
        };
        self.insert_step_run(attempt, state).await
    }

    async fn record_cache_hit(
        &self,
        attempt: &NewAttempt,
        from: &CachedOutputs,
    ) -> Result<String, StoreError> {
        let state = RowState {
            status: StepStatus::Succeeded,
            cached_from: Some(&from.step_run_id),
            outputs: Some(&from.outputs),
            error: None,
            finished: true,
        };
        self.insert_step_run(attempt, state).await
    }

    async fn record_artifact(
        &self,
        run_id: &str,
        step_run_id: Option<&str>,
        output_name: &str,
        artifact: &ArtifactRef,
        location: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO artifacts (hash, kind, media_type, size, location, name, run_id, step_run_id, \
             output_name, created_at, metadata_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&artifact.hash)
        .bind(artifact.kind.name())
        .bind(&artifact.media_type)
        .bind(artifact.size as i64)
        .bind(location)
        .bind(artifact.name.as_deref())
        .bind(run_id)
        .bind(step_run_id)
        .bind(output_name)
        .bind(now_ms())
        .bind(artifact.metadata.as_ref().map(|m| m.to_string()))
        .execute(&self.pool)
        .await
        .map_err(query_error("recording an artifact"))?;
        Ok(())
    }

    async fn find_cached(&self, cache_key: &str) -> Result<Option<CachedOutputs>, StoreError> {
        let row = sqlx::query(
            "SELECT id, run_id, outputs_json FROM step_runs \
             WHERE cache_key = $1 AND status = 'succeeded' AND outputs_json IS NOT NULL \
             ORDER BY finished_at DESC LIMIT 1",
        )
        .bind(cache_key)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error("looking up the step cache"))?;
        let Some(row) = row else { return Ok(None) };
        let text: String = row
            .try_get("outputs_json")
            .map_err(query_error("reading the step cache"))?;
        let outputs = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            what: "cached step outputs",
            detail: e.to_string(),
        })?;
        Ok(Some(CachedOutputs {
            step_run_id: row
                .try_get("id")
                .map_err(query_error("reading the step cache"))?,
            run_id: row
                .try_get("run_id")
                .map_err(query_error("reading the step cache"))?,
            outputs,
        }))
    }

    async fn add_event(
        &self,
        run_id: &str,
        step_run_id: Option<&str>,
        step_id: Option<&str>,
        level: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO events (run_id, step_run_id, step_id, at, level, message) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(run_id)
        .bind(step_run_id)
        .bind(step_id)
        .bind(now_ms())
        .bind(level)
        .bind(message)
        .execute(&self.pool)
        .await
        .map_err(query_error("recording an event"))?;
        Ok(())
    }
}
