//! The read side of run tracking: what `voxflow runs list` and `runs show` (and later the HTTP API) report.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::records::{ArtifactRecord, EventRecord, RunRecord, StepRunRecord};
use crate::status::{RunStatus, StepStatus};
use crate::{query_error, Store, StoreError};

fn get<'r, T>(row: &'r AnyRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(column).map_err(query_error("reading a row"))
}

fn json(row: &AnyRow, column: &str) -> Result<Option<serde_json::Value>, StoreError> {
    let text: Option<String> = get(row, column)?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| StoreError::Corrupt {
            what: "JSON column",
            detail: format!("{column}: {e}"),
        })
    })
    .transpose()
}

const RUN_COLUMNS: &str =
    "id, workflow_name, workflow_file, workflow_hash, workflow_text, inputs_json, params_json, \
     outputs_json, status, error, created_at, started_at, finished_at";

fn run_from_row(row: &AnyRow) -> Result<RunRecord, StoreError> {
    Ok(RunRecord {
        id: get(row, "id")?,
        workflow_name: get(row, "workflow_name")?,
        workflow_file: get(row, "workflow_file")?,
        workflow_hash: get(row, "workflow_hash")?,
        workflow_text: get(row, "workflow_text")?,
        inputs: json(row, "inputs_json")?.unwrap_or_default(),
        params: json(row, "params_json")?.unwrap_or_default(),
        outputs: json(row, "outputs_json")?,
        status: RunStatus::parse(&get::<String>(row, "status")?)?,
        error: get(row, "error")?,
        created_at_ms: get(row, "created_at")?,
        started_at_ms: get(row, "started_at")?,
        finished_at_ms: get(row, "finished_at")?,
    })
}

impl Store {
    /// The most recent runs, newest first.
    pub async fn list_runs(&self, limit: u32) -> Result<Vec<RunRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs ORDER BY created_at DESC, id DESC LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("listing runs"))?;
        rows.iter().map(run_from_row).collect()
    }

    /// A run by id, or by a unique prefix of its id.
    pub async fn get_run(&self, id_or_prefix: &str) -> Result<RunRecord, StoreError> {
        let pattern = format!("{}%", id_or_prefix.replace(['%', '_'], ""));
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE id LIKE $1 LIMIT 2"
        ))
        .bind(pattern)
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("reading a run"))?;
        match rows.as_slice() {
            [row] => run_from_row(row),
            _ => Err(StoreError::RunNotFound(id_or_prefix.to_string())),
        }
    }

    /// Every step attempt of a run, in the order they started.
    pub async fn step_runs(&self, run_id: &str) -> Result<Vec<StepRunRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, run_id, step_id, fanout_key, attempt, status, plugin, plugin_version, plugin_hash, \
             cache_key, cache_hit, cached_from, inputs_json, outputs_json, error, started_at, finished_at \
             FROM step_runs WHERE run_id = $1 ORDER BY started_at, id",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("reading step attempts"))?;
        rows.iter()
            .map(|row| {
                Ok(StepRunRecord {
                    id: get(row, "id")?,
                    run_id: get(row, "run_id")?,
                    step_id: get(row, "step_id")?,
                    fanout_key: get(row, "fanout_key")?,
                    attempt: get::<i64>(row, "attempt")? as u32,
                    status: StepStatus::parse(&get::<String>(row, "status")?)?,
                    plugin: get(row, "plugin")?,
                    plugin_version: get(row, "plugin_version")?,
                    plugin_hash: get(row, "plugin_hash")?,
                    cache_key: get(row, "cache_key")?,
                    cache_hit: get::<i64>(row, "cache_hit")? != 0,
                    cached_from: get(row, "cached_from")?,
                    inputs: json(row, "inputs_json")?,
                    outputs: json(row, "outputs_json")?,
                    error: get(row, "error")?,
                    started_at_ms: get(row, "started_at")?,
                    finished_at_ms: get(row, "finished_at")?,
                })
            })
            .collect()
    }

    pub async fn artifacts(&self, run_id: &str) -> Result<Vec<ArtifactRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT hash, kind, media_type, size, location, name, run_id, step_run_id, output_name, created_at, \
             metadata_json FROM artifacts WHERE run_id = $1 ORDER BY id",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("reading artifacts"))?;
        rows.iter()
            .map(|row| {
                Ok(ArtifactRecord {
                    hash: get(row, "hash")?,
                    kind: get(row, "kind")?,
                    media_type: get(row, "media_type")?,
                    size: get(row, "size")?,
                    location: get(row, "location")?,
                    name: get(row, "name")?,
                    run_id: get(row, "run_id")?,
                    step_run_id: get(row, "step_run_id")?,
                    output_name: get(row, "output_name")?,
                    created_at_ms: get(row, "created_at")?,
                    metadata: json(row, "metadata_json")?,
                })
            })
            .collect()
    }

    pub async fn events(&self, run_id: &str) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, step_run_id, step_id, fanout_key, at, level, message FROM events WHERE run_id = $1 ORDER BY id",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("reading events"))?;
        rows.iter()
            .map(|row| {
                Ok(EventRecord {
                    id: get(row, "id")?,
                    step_run_id: get(row, "step_run_id")?,
                    step_id: get(row, "step_id")?,
                    fanout_key: get(row, "fanout_key")?,
                    at_ms: get(row, "at")?,
                    level: get(row, "level")?,
                    message: get(row, "message")?,
                })
            })
            .collect()
    }
}
