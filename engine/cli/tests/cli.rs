//! The `voxflow` binary end to end: runs on SQLite (default) and PostgreSQL, `runs show`, cache reuse, a
//! failing run's last lines, Ctrl-C, and the deployment file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use voxflow_testkit::{testdata, TestDatabase};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn voxflow(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_voxflow"));
    c.current_dir(repo_root())
        .env_remove("VOXFLOW_DATABASE_URL")
        .arg("--data-dir")
        .arg(data_dir);
    c
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run_id(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("run "))
        .expect("a `run ID STATUS` line");
    line.split_whitespace().nth(1).unwrap().to_string()
}

fn run_and_show(database: Option<&str>) {
    let Some(studies) = testdata("dicom/dicomdir") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let with_db = |c: &mut Command| {
        if let Some(url) = database {
            c.arg("--database").arg(url);
        }
    };
    let out_dir = dir.path().join("out");
    let mut cmd = voxflow(dir.path());
    with_db(&mut cmd);
    let out = cmd
        .args(["run", "workflows/dag-demo.yaml", "--input"])
        .arg(format!("studies={}", studies.display()))
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = run_id(&out);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    assert!(report.as_array().unwrap().len() > 4);
    assert!(std::fs::read_to_string(out_dir.join("summary.txt"))
        .unwrap()
        .ends_with("hello from voxflow"));

    let mut cmd = voxflow(dir.path());
    with_db(&mut cmd);
    let show = cmd.args(["runs", "show", &id]).output().unwrap();
    let shown = text(&show);
    assert_eq!(show.status.code(), Some(0), "{shown}");
    assert!(shown.contains("status    succeeded"), "{shown}");
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("flaky") && l.contains(" 1  failed")),
        "{shown}"
    );
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("flaky") && l.contains(" 2  succeeded")),
        "{shown}"
    );

    let mut cmd = voxflow(dir.path());
    with_db(&mut cmd);
    let again = cmd
        .args(["run", "workflows/dag-demo.yaml", "--input"])
        .arg(format!("studies={}", studies.display()))
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("reused from cache"));
    let mut cmd = voxflow(dir.path());
    with_db(&mut cmd);
    let json = cmd
        .args(["runs", "show", &run_id(&again), "--json"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let hits = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["cache_hit"] == true)
        .count();
    assert!(hits > 4, "{hits} cache hits");
    assert!(doc["artifacts"].as_array().unwrap().len() > 4);

    let mut cmd = voxflow(dir.path());
    with_db(&mut cmd);
    let list = cmd.args(["runs", "list"]).output().unwrap();
    assert_eq!(text(&list).matches("dag-demo").count(), 2);
}

#[test]
fn run_show_and_cache_on_sqlite() {
    run_and_show(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_show_and_cache_on_postgres() {
    let db = TestDatabase::create().await;
    let url = db.url.clone();
    tokio::task::spawn_blocking(move || run_and_show(Some(&url)))
        .await
        .unwrap();
    db.drop_now().await;
}

#[test]
fn failed_run_names_the_step_and_reason_last() {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join("fail.yaml");
    std::fs::write(
        &wf,
        "apiVersion: voxflow/v1\nname: fail\nsteps:\n  - id: doomed\n    uses: builtin/echo\n    with: { message: x, fail_attempts: 9 }\n",
    )
    .unwrap();
    let out = voxflow(dir.path()).arg("run").arg(&wf).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last: Vec<&str> = stderr.lines().rev().take(3).collect();
    assert!(
        last.iter()
            .any(|l| l.starts_with("error: step `doomed`: failing attempt 1")),
        "{stderr}"
    );
    let missing = voxflow(dir.path())
        .args(["runs", "show", "no-such-run"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn sigint_cancels_the_run_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join("slow.yaml");
    std::fs::write(
        &wf,
        "apiVersion: voxflow/v1\nname: slow\nsteps:\n  - id: quick\n    uses: builtin/echo\n    with: { message: done }\n  - id: wait\n    uses: builtin/echo\n    needs: [quick]\n    with: { message: late, sleep: 60s }\n",
    )
    .unwrap();
    let child = voxflow(dir.path())
        .args(["run", "--plain"])
        .arg(&wf)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the slow step is recorded as running (read through the CLI, as an operator would), then
    // interrupt as a terminal would.
    let started = std::time::Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the slow step never started"
        );
        std::thread::sleep(Duration::from_millis(100));
        let list = voxflow(dir.path())
            .args(["runs", "list", "--json"])
            .output()
            .unwrap();
        let Ok(serde_json::Value::Array(runs)) = serde_json::from_slice(&list.stdout) else {
            continue;
        };
        let Some(id) = runs.first().and_then(|r| r["id"].as_str()) else {
            continue;
        };
        let show = voxflow(dir.path())
            .args(["runs", "show", id, "--json"])
            .output()
            .unwrap();
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&show.stdout) else {
            continue;
        };
        let running = doc["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["step_id"] == "wait" && s["status"] == "running");
        if running {
            break;
        }
    }
    let status = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let list = voxflow(dir.path())
        .args(["runs", "list", "--json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(runs[0]["status"], "cancelled", "{runs}");
    assert!(runs[0]["finished_at_ms"].is_i64());
    assert_eq!(
        std::fs::read_dir(dir.path().join("artifacts/tmp"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn docker_compose_wires_the_database_url() {
    let text = std::fs::read_to_string(repo_root().join("docker-compose.yml")).unwrap();
    let (root, duplicates) =
        voxflow_spec::yaml::parse_document(&text).expect("docker-compose.yml parses");
    assert!(duplicates.is_empty());
    let get = |node: &voxflow_spec::yaml::Node, key: &str| {
        node.as_mapping()
            .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some(key)))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("missing `{key}`"))
    };
    let services = get(&root, "services");
    let postgres = get(&services, "postgres");
    assert!(get(&postgres, "image")
        .as_str()
        .unwrap()
        .starts_with("postgres:"));
    let pg_env = get(&postgres, "environment");
    let engine = get(&services, "voxflow");
    let url = get(&get(&engine, "environment"), "VOXFLOW_DATABASE_URL");
    let url = url.as_str().unwrap();
    let user = get(&pg_env, "POSTGRES_USER");
    let db = get(&pg_env, "POSTGRES_DB");
    assert!(
        url.starts_with(&format!("postgres://{}:", user.as_str().unwrap())),
        "{url}"
    );
    assert!(
        url.ends_with(&format!("@postgres:5432/{}", db.as_str().unwrap())),
        "{url}"
    );
    assert!(
        !text.contains("POSTGRES_PASSWORD: \""),
        "no literal password"
    );
    let dockerfile = get(&get(&engine, "build"), "dockerfile");
    assert!(repo_root().join(dockerfile.as_str().unwrap()).is_file());
    assert!(get(&engine, "depends_on").as_mapping().is_some());
}
