//! Rows as the rest of voxflow writes and reads them.

use serde::Serialize;

use crate::status::{RunStatus, StepStatus};

/// What is known about a run when it starts.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub workflow_name: String,
    pub workflow_file: String,
    pub workflow_hash: String,
    pub workflow_text: String,
    pub inputs: serde_json::Value,
    pub params: serde_json::Value,
}

/// One attempt of one step (of one fan-out item) as it starts.
#[derive(Debug, Clone)]
pub struct NewAttempt {
    pub run_id: String,
    pub step_id: String,
    pub fanout_key: String,
    pub attempt: u32,
    pub plugin: String,
    pub plugin_version: Option<String>,
    pub plugin_hash: Option<String>,
    pub cache_key: Option<String>,
    pub inputs: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: String,
    pub workflow_name: String,
    pub workflow_file: String,
    pub workflow_hash: String,
    #[serde(skip)]
    pub workflow_text: String,
    pub inputs: serde_json::Value,
    pub params: serde_json::Value,
    pub outputs: Option<serde_json::Value>,
    pub status: RunStatus,
    pub error: Option<String>,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRunRecord {
    pub id: String,
    pub run_id: String,
    pub step_id: String,
    pub fanout_key: String,
    pub attempt: u32,
    pub status: StepStatus,
    pub plugin: String,
    pub plugin_version: Option<String>,
    pub plugin_hash: Option<String>,
    pub cache_key: Option<String>,
    pub cache_hit: bool,
    pub cached_from: Option<String>,
    pub inputs: Option<serde_json::Value>,
    pub outputs: Option<serde_json::Value>,
    pub error: Option<String>,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
}

impl StepRunRecord {
    pub fn duration_ms(&self) -> Option<i64> {
        self.finished_at_ms.map(|f| f - self.started_at_ms)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ArtifactRecord {
    pub hash: String,
    pub kind: String,
    pub media_type: String,
    pub size: i64,
    pub location: String,
    pub name: Option<String>,
    pub run_id: String,
    pub step_run_id: Option<String>,
    pub output_name: String,
    pub created_at_ms: i64,
    /// What the artifact carries besides its bytes (DICOM UIDs, modality, geometry, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventRecord {
    pub id: i64,
    pub step_run_id: Option<String>,
    pub step_id: Option<String>,
    pub fanout_key: Option<String>,
    pub at_ms: i64,
    pub level: String,
    pub message: String,
}
