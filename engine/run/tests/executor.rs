//! The executor on real files, real step implementations and both real databases: every scenario runs on
//! SQLite and on PostgreSQL.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use voxflow_artifact::ArtifactStore;
use voxflow_run::{Executor, Plan, PlanError, RunOutcome, RunRequest};
use voxflow_spec::Value;
use voxflow_steps::StepRegistry;
use voxflow_store::{RunStatus, StepRunRecord, StepStatus, Store};
use voxflow_testkit::{testdata, TestDatabase};

/// A store, an artifact folder, and what must be cleaned up after.
struct Env {
    store: Arc<Store>,
    artifacts: ArtifactStore,
    dir: tempfile::TempDir,
    pg: Option<TestDatabase>,
}

impl Env {
    async fn new(postgres: bool) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let (store, pg) = if postgres {
            let db = TestDatabase::create().await;
            (Store::connect(&db.url).await.unwrap(), Some(db))
        } else {
            (
                Store::open_sqlite(&dir.path().join("voxflow.db"))
                    .await
                    .unwrap(),
                None,
            )
        };
        let artifacts = ArtifactStore::open(dir.path()).unwrap();
        Env {
            store: Arc::new(store),
            artifacts,
            dir,
            pg,
        }
    }

    async fn finish(self) {
        self.store.close().await;
        if let Some(db) = self.pg {
            db.drop_now().await;
        }
    }

    async fn run(
        &self,
        yaml: &str,
        inputs: &[(&str, &Path)],
        cancel: CancellationToken,
    ) -> RunOutcome {
        let plan = plan(yaml, inputs).unwrap();
        Executor::new(self.store.clone(), self.artifacts.clone())
            .with_jobs(2)
            .execute(plan, cancel)
            .await
            .unwrap()
    }

    async fn steps(&self, outcome: &RunOutcome) -> Vec<StepRunRecord> {
        self.store.step_runs(&outcome.run_id).await.unwrap()
    }
}

fn plan(yaml: &str, inputs: &[(&str, &Path)]) -> Result<Plan, PlanError> {
    let registry = StepRegistry::with_builtins();
    let wf = voxflow_spec::check_workflow(Path::new("test.yaml"), yaml, &registry)
        .unwrap_or_else(|d| panic!("invalid test workflow: {d:?}"));
    let request = RunRequest {
        inputs: inputs
            .iter()
            .map(|(k, v)| (k.to_string(), v.display().to_string()))
            .collect(),
        params: Default::default(),
    };
    Plan::new(Arc::new(wf), &registry, &request)
}

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(false).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(true).await })*
        }
    };
}

on_both_backends!(
    dag_demo_runs_retries_and_then_reuses_the_cache,
    timeout_fails_the_step_and_siblings_finish,
    cancellation_records_a_cancelled_run_and_no_partial_files,
    false_condition_skips_the_step_and_its_dependents,
    failed_items_are_tolerated_with_continue_on_error,
    failure_stops_the_run_and_names_the_step,
);

async fn dag_demo_runs_retries_and_then_reuses_the_cache(postgres: bool) {
    let Some(studies) = testdata("dicom/dicomdir") else {
        return;
    };
    let env = Env::new(postgres).await;
    let yaml = std::fs::read_to_string(repo_file("workflows/dag-demo.yaml")).unwrap();
    let files = walk(&studies);
    assert!(files > 4, "expected the DICOMDIR tree to hold files");

    let first = env
        .run(&yaml, &[("studies", &studies)], CancellationToken::new())
        .await;
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.error);
    let steps = env.steps(&first).await;
    let flaky: Vec<_> = steps.iter().filter(|s| s.step_id == "flaky").collect();
    assert_eq!(
        flaky.len(),
        2,
        "one failed attempt, then a successful retry"
    );
    assert_eq!((flaky[0].attempt, flaky[0].status), (1, StepStatus::Failed));
    assert!(flaky[0].error.as_deref().unwrap().contains("on purpose"));
    assert_eq!(
        (flaky[1].attempt, flaky[1].status),
        (2, StepStatus::Succeeded)
    );
    let described = steps
        .iter()
        .filter(|s| s.step_id == "per_file/describe")
        .count();
    assert_eq!(described, files);
    assert!(steps
        .iter()
        .all(|s| s.plugin_hash.as_deref().is_some_and(|h| h.len() == 64)));
    assert!(steps.iter().all(|s| !s.cache_hit));
    // The report is real: one entry per file, each a DICOM file or the DICOMDIR itself, hashes matching.
    let report = first.outputs["report"].as_artifact().unwrap().clone();
    let entries: Vec<serde_json::Value> =
        serde_json::from_slice(&env.artifacts.read(&report).unwrap()).unwrap();
    assert_eq!(entries.len(), files);
    for e in &entries {
        let readme = e["name"].as_str().unwrap().starts_with("README");
        let expected = if readme { "unknown" } else { "dicom" };
        assert_eq!(e["format"], expected, "{}", e["name"]);
    }
    let summary = env
        .artifacts
        .read(first.outputs["summary"].as_artifact().unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(summary).unwrap(),
        format!("{files} files described; hello from voxflow")
    );
    let artifacts = env.store.artifacts(&first.run_id).await.unwrap();
    assert!(artifacts
        .iter()
        .any(|a| a.hash == report.hash && a.output_name == "json"));

    let second = env
        .run(&yaml, &[("studies", &studies)], CancellationToken::new())
        .await;
    assert_eq!(second.status, RunStatus::Succeeded);
    assert_eq!(second.outputs["report"], first.outputs["report"]);
    let steps = env.steps(&second).await;
    let hits: Vec<_> = steps.iter().filter(|s| s.cache_hit).collect();
    assert_eq!(
        hits.len(),
        files + 1,
        "every describe and the report come from the cache"
    );
    assert!(hits
        .iter()
        .all(|s| s.cached_from.is_some() && s.status == StepStatus::Succeeded));
    let events = env.store.events(&second.run_id).await.unwrap();
    assert!(events.iter().any(|e| e
        .message
        .starts_with("cache hit: reused the outputs of step run")));
    env.finish().await;
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .map(|p| if p.is_dir() { walk(&p) } else { 1 })
        .sum()
}

async fn timeout_fails_the_step_and_siblings_finish(postgres: bool) {
    let env = Env::new(postgres).await;
    let yaml = r#"
apiVersion: voxflow/v1
name: timeout
steps:
  - id: slow
    uses: builtin/echo
    with: { message: late, sleep: 20s }
    timeout: 1500ms
  - id: sibling
    uses: builtin/echo
    with: { message: fine }
"#;
    let out = env.run(yaml, &[], CancellationToken::new()).await;
    assert_eq!(out.status, RunStatus::Failed);
    assert!(
        out.error
            .as_deref()
            .unwrap()
            .contains("step `slow`: timed out after 1s 500ms"),
        "{:?}",
        out.error
    );
    let steps = env.steps(&out).await;
    let slow = steps.iter().find(|s| s.step_id == "slow").unwrap();
    assert_eq!(slow.status, StepStatus::TimedOut);
    assert!(
        slow.duration_ms().unwrap() < 5_000,
        "the step was stopped, not waited for"
    );
    let sibling = steps.iter().find(|s| s.step_id == "sibling").unwrap();
    assert_eq!(sibling.status, StepStatus::Succeeded);
    env.finish().await;
}

async fn cancellation_records_a_cancelled_run_and_no_partial_files(postgres: bool) {
    let env = Env::new(postgres).await;
    let yaml = r#"
apiVersion: voxflow/v1
name: cancel
steps:
  - id: first
    uses: builtin/echo
    with: { message: quick }
  - id: slow
    uses: builtin/echo
    needs: [first]
    with: { message: never, sleep: 30s }
  - id: after
    uses: builtin/echo
    with: { message: "${{ steps.slow.outputs.message }}" }
"#;
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        trigger.cancel();
    });
    let out = env.run(yaml, &[], cancel).await;
    assert_eq!(out.status, RunStatus::Cancelled);
    let run = env.store.get_run(&out.run_id).await.unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    assert!(run.finished_at_ms.is_some());
    let steps = env.steps(&out).await;
    assert_eq!(
        steps.iter().find(|s| s.step_id == "first").unwrap().status,
        StepStatus::Succeeded
    );
    assert_eq!(
        steps.iter().find(|s| s.step_id == "slow").unwrap().status,
        StepStatus::Cancelled
    );
    assert!(
        steps.iter().all(|s| s.step_id != "after"),
        "nothing starts after cancellation"
    );
    let leftovers = std::fs::read_dir(env.dir.path().join("artifacts/tmp"))
        .unwrap()
        .count();
    assert_eq!(leftovers, 0);
    env.finish().await;
}

async fn false_condition_skips_the_step_and_its_dependents(postgres: bool) {
    let env = Env::new(postgres).await;
    let yaml = r#"
apiVersion: voxflow/v1
name: condition
params:
  enabled: { type: boolean, default: false }
steps:
  - id: gated
    uses: builtin/echo
    when: "${{ params.enabled }}"
    with: { message: gated }
  - id: dependent
    uses: builtin/echo
    with: { message: "${{ steps.gated.outputs.message }}" }
  - id: independent
    uses: builtin/echo
    with: { message: runs }
outputs:
  gated: "${{ steps.gated.outputs.message }}"
  independent: "${{ steps.independent.outputs.message }}"
"#;
    let out = env.run(yaml, &[], CancellationToken::new()).await;
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    assert_eq!(out.outputs["gated"], Value::Null);
    assert_eq!(out.outputs["independent"], Value::String("runs".into()));
    let steps = env.steps(&out).await;
    let gated = steps.iter().find(|s| s.step_id == "gated").unwrap();
    assert_eq!(gated.status, StepStatus::Skipped);
    assert_eq!(
        gated.error.as_deref(),
        Some("its `when` condition is false")
    );
    let dependent = steps.iter().find(|s| s.step_id == "dependent").unwrap();
    assert_eq!(dependent.status, StepStatus::Skipped);
    assert_eq!(dependent.error.as_deref(), Some("`gated` was skipped"));
    env.finish().await;
}

async fn failed_items_are_tolerated_with_continue_on_error(postgres: bool) {
    let Some(nifti) = testdata("nifti/nibabel") else {
        return;
    };
    let env = Env::new(postgres).await;
    // Only some of nibabel's files are JSON-free binary; load-json fails on every one of them, and the run
    // still succeeds with nulls because failures are tolerated.
    let yaml = r#"
apiVersion: voxflow/v1
name: tolerate
inputs:
  files: { type: path }
steps:
  - id: each
    foreach: "${{ inputs.files.files }}"
    continue_on_error: true
    uses: builtin/load-json
    inputs: { path: "${{ item }}" }
  - id: collect
    uses: builtin/collect-json
    inputs: { items: "${{ steps.each.outputs.json }}" }
outputs:
  count: "${{ steps.collect.outputs.count }}"
"#;
    let out = env
        .run(yaml, &[("files", &nifti)], CancellationToken::new())
        .await;
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    let steps = env.steps(&out).await;
    let failed: Vec<_> = steps
        .iter()
        .filter(|s| s.step_id == "each" && s.status == StepStatus::Failed)
        .collect();
    assert!(!failed.is_empty());
    let json_files = steps
        .iter()
        .filter(|s| s.step_id == "each" && s.status == StepStatus::Succeeded)
        .count();
    assert_eq!(out.outputs["count"], Value::Number(json_files as f64));
    assert!(failed
        .iter()
        .all(|s| s.error.as_deref().unwrap().contains("not UTF-8 text")
            || s.error.as_deref().unwrap().contains("not valid JSON")));
    env.finish().await;
}

async fn failure_stops_the_run_and_names_the_step(postgres: bool) {
    let env = Env::new(postgres).await;
    let yaml = r#"
apiVersion: voxflow/v1
name: failure
steps:
  - id: broken
    uses: builtin/echo
    with: { message: x, fail_attempts: 5 }
    retry: { max_attempts: 2, backoff: fixed, initial_delay: 10ms }
  - id: downstream
    uses: builtin/echo
    with: { message: "${{ steps.broken.outputs.message }}" }
"#;
    let out = env.run(yaml, &[], CancellationToken::new()).await;
    assert_eq!(out.status, RunStatus::Failed);
    let err = out.error.clone().unwrap();
    assert!(
        err.starts_with("step `broken` (after 2 attempts): failing attempt 2"),
        "{err}"
    );
    let run = env.store.get_run(&out.run_id).await.unwrap();
    assert_eq!(run.error.as_deref(), Some(err.as_str()));
    let steps = env.steps(&out).await;
    assert_eq!(
        steps.len(),
        2,
        "two attempts of `broken`, `downstream` never started"
    );
    env.finish().await;
}

#[test]
fn bad_requests_list_every_problem() {
    let yaml = r#"
apiVersion: voxflow/v1
name: request
inputs:
  scan: { type: nifti }
  notes: { type: text, required: false }
params:
  level: { type: integer, min: 1, max: 3 }
steps:
  - id: hello
    uses: builtin/echo
    with: { message: "level ${{ params.level }}" }
"#;
    let registry = StepRegistry::with_builtins();
    let wf = voxflow_spec::check_workflow(Path::new("request.yaml"), yaml, &registry).unwrap();
    let request = RunRequest {
        inputs: [
            ("notes".to_string(), "/nonexistent/notes.txt".to_string()),
            ("extra".to_string(), "x".to_string()),
        ]
        .into(),
        params: [("level".to_string(), "7".to_string())].into(),
    };
    let err = Plan::new(Arc::new(wf), &registry, &request)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("input `extra` is not declared"), "{err}");
    assert!(err.contains("input `scan` (nifti) is required"), "{err}");
    assert!(
        err.contains("input `notes`: /nonexistent/notes.txt"),
        "{err}"
    );
    assert!(
        err.contains("parameter `level`: 7 is above the maximum 3"),
        "{err}"
    );
}
