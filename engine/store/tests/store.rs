//! The store on both real databases: migrations are idempotent, runs are found by id prefix, the cache
//! lookup returns the latest successful attempt, and unknown runs are a typed error.

use voxflow_spec::types::ArtifactKind;
use voxflow_spec::ArtifactRef;
use voxflow_store::{NewAttempt, NewRun, RunStatus, RunTracker, StepStatus, Store, StoreError};
use voxflow_testkit::TestDatabase;

async fn exercise(store: &Store) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let run = NewRun {
        workflow_name: "w".into(),
        workflow_file: "w.yaml".into(),
        workflow_hash: "0".repeat(64),
        workflow_text: "apiVersion: voxflow/v1".into(),
        inputs: serde_json::json!({"scan": "/data/scan.nii.gz"}),
        params: serde_json::json!({"threshold": 0.5}),
    };
    let id = store.create_run(&run).await.unwrap();
    let attempt = |n: u32| NewAttempt {
        run_id: id.clone(),
        step_id: "seg".into(),
        fanout_key: "3".into(),
        attempt: n,
        plugin: "builtin/echo".into(),
        plugin_version: Some("0.1.0".into()),
        plugin_hash: Some("a".repeat(64)),
        cache_key: Some("key-1".into()),
        inputs: serde_json::json!({"params": {"message": "x"}}),
    };
    assert!(store.find_cached("key-1").await.unwrap().is_none());
    let first = store.start_attempt(&attempt(1)).await.unwrap();
    store
        .finish_attempt(&first, StepStatus::Failed, None, Some("boom"))
        .await
        .unwrap();
    assert!(
        store.find_cached("key-1").await.unwrap().is_none(),
        "failed attempts are never reused"
    );
    let second = store.start_attempt(&attempt(2)).await.unwrap();
    let outputs = serde_json::json!({"message": "x"});
    store
        .finish_attempt(&second, StepStatus::Succeeded, Some(&outputs), None)
        .await
        .unwrap();
    let hit = store.find_cached("key-1").await.unwrap().unwrap();
    assert_eq!(
        (hit.step_run_id.as_str(), hit.outputs.clone()),
        (second.as_str(), outputs.clone())
    );
    let artifact = ArtifactRef {
        hash: "b".repeat(64),
        kind: ArtifactKind::Mask,
        media_type: "application/octet-stream".into(),
        size: 12,
        name: Some("mask.nii.gz".into()),
        metadata: Some(serde_json::json!({"Modality": "MR", "dims": [4, 3, 1]})),
    };
    store
        .record_artifact(&id, Some(&second), "mask", &artifact, "/x")
        .await
        .unwrap();
    store
        .add_event(&id, Some(&second), Some("seg"), "info", "hello")
        .await
        .unwrap();
    store
        .finish_run(&id, RunStatus::Succeeded, Some(&outputs), None)
        .await
        .unwrap();

    let found = store.get_run(&id[..13]).await.unwrap();
    assert_eq!(found.id, id);
    assert_eq!(found.status, RunStatus::Succeeded);
    assert_eq!(found.params["threshold"], 0.5);
    let steps = store.step_runs(&id).await.unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[1].fanout_key, "3");
    assert_eq!(steps[0].error.as_deref(), Some("boom"));
    let artifacts = store.artifacts(&id).await.unwrap();
    assert_eq!(
        (artifacts[0].kind.as_str(), artifacts[0].size),
        ("mask", 12)
    );
    assert_eq!(
        artifacts[0].metadata.as_ref().unwrap()["dims"],
        serde_json::json!([4, 3, 1])
    );
    assert_eq!(store.events(&id).await.unwrap()[0].message, "hello");
    assert!(matches!(
        store.get_run("nope").await,
        Err(StoreError::RunNotFound(_))
    ));
    assert_eq!(store.list_runs(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("nested/voxflow.db"))
        .await
        .unwrap();
    exercise(&store).await;
    store.close().await;
}

#[tokio::test]
async fn an_sqlite_url_naming_a_new_file_in_a_new_folder_creates_both() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("site/runs.db");
    let store = Store::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    assert!(file.is_file());
    store.close().await;
    // sqlx percent-decodes the path: the folder made is the one it opens.
    let encoded = format!("sqlite://{}/new%20site/runs.db", dir.path().display());
    let store = Store::connect(&encoded).await.unwrap();
    assert!(dir.path().join("new site/runs.db").is_file());
    assert!(store.list_runs(10).await.unwrap().is_empty());
    store.close().await;
}

#[tokio::test]
async fn postgres_store() {
    let db = TestDatabase::create().await;
    let store = Store::connect(&db.url).await.unwrap();
    exercise(&store).await;
    store.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn bad_urls_are_typed_errors() {
    assert!(matches!(
        Store::connect("mysql://x").await,
        Err(StoreError::UnsupportedUrl(_))
    ));
    let err = Store::connect("postgres://nobody:secret@127.0.0.1:1/none")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }));
    assert!(!err.to_string().contains("secret"), "{err}");
}
