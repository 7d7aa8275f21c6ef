//! `voxflow runs list` and `voxflow runs show RUN_ID`: what was run, every attempt, artifacts and errors.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use clap::Subcommand;
use voxflow_store::{RunRecord, StepRunRecord};

use crate::settings::GlobalArgs;

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// The most recent runs, newest first.
    List {
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON for machines.
        #[arg(long)]
        json: bool,
    },
    /// One run: its steps, attempts, durations, artifacts, errors and events.
    Show {
        /// The run id (a unique prefix is enough).
        run_id: String,
        #[arg(long)]
        json: bool,
    },
}

fn time(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn duration(start: Option<i64>, end: Option<i64>) -> String {
    match (start, end) {
        (Some(s), Some(e)) => {
            let d = (e - s).max(0);
            if d >= 10_000 {
                format!("{:.1}s", d as f64 / 1000.0)
            } else {
                format!("{d}ms")
            }
        }
        _ => "-".into(),
    }
}

pub async fn run(global: &GlobalArgs, cmd: RunsCommand) -> anyhow::Result<u8> {
    let store = global.open_store().await?;
    let code = match cmd {
        RunsCommand::List { limit, json } => {
            let runs = store.list_runs(limit).await?;
            if json {
                emit(&format!("{}\n", serde_json::to_string_pretty(&runs)?));
            } else {
                emit(&print_list(&runs));
            }
            0
        }
        RunsCommand::Show { run_id, json } => {
            let run = match store.get_run(&run_id).await {
                Ok(r) => r,
                Err(voxflow_store::StoreError::RunNotFound(id)) => {
                    eprintln!("error: no run with id `{id}` (or the prefix is ambiguous); see voxflow runs list");
                    store.close().await;
                    return Ok(crate::EXIT_FAILED);
                }
                Err(e) => return Err(e.into()),
            };
            let steps = store.step_runs(&run.id).await?;
            let artifacts = store.artifacts(&run.id).await?;
            let events = store.events(&run.id).await?;
            if json {
                let doc = serde_json::json!({ "run": run, "steps": steps, "artifacts": artifacts, "events": events });
                emit(&format!("{}\n", serde_json::to_string_pretty(&doc)?));
            } else {
                emit(&print_run(&run, &steps, &artifacts));
            }
            0
        }
    };
    store.close().await;
    Ok(code)
}

fn print_list(runs: &[RunRecord]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<36}  {:<24}  {:<10}  {:<20}  {:>9}",
        "RUN", "WORKFLOW", "STATUS", "STARTED", "DURATION"
    );
    for r in runs {
        let _ = writeln!(
            out,
            "{:<36}  {:<24}  {:<10}  {:<20}  {:>9}",
            r.id,
            r.workflow_name,
            r.status,
            time(r.created_at_ms),
            duration(r.started_at_ms, r.finished_at_ms)
        );
    }
    out
}

fn print_run(
    run: &RunRecord,
    steps: &[StepRunRecord],
    artifacts: &[voxflow_store::ArtifactRecord],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "run       {}", run.id);
    let _ = writeln!(
        out,
        "workflow  {} ({}, sha256 {})",
        run.workflow_name,
        run.workflow_file,
        &run.workflow_hash[..12.min(run.workflow_hash.len())]
    );
    let _ = writeln!(out, "status    {}", run.status);
    let _ = writeln!(
        out,
        "started   {}   duration {}",
        time(run.created_at_ms),
        duration(run.started_at_ms, run.finished_at_ms)
    );
    let _ = writeln!(out, "inputs    {}", run.inputs);
    let _ = writeln!(out, "params    {}", run.params);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<28} {:>6} {:>7}  {:<10} {:>9}  {:<6}  ERROR",
        "STEP", "ITEM", "ATTEMPT", "STATUS", "DURATION", "CACHE"
    );
    for s in steps {
        let _ = writeln!(
            out,
            "{:<28} {:>6} {:>7}  {:<10} {:>9}  {:<6}  {}",
            s.step_id,
            if s.fanout_key.is_empty() {
                "-"
            } else {
                &s.fanout_key
            },
            s.attempt,
            s.status.as_str(),
            duration(Some(s.started_at_ms), s.finished_at_ms),
            if s.cache_hit { "hit" } else { "" },
            s.error.as_deref().unwrap_or("")
        );
    }
    if !artifacts.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<16} {:<8} {:>10}  {:<16}  STEP RUN",
            "OUTPUT", "KIND", "BYTES", "SHA256"
        );
        for a in artifacts {
            let _ = writeln!(
                out,
                "{:<16} {:<8} {:>10}  {:<16}  {}",
                a.output_name,
                a.kind,
                a.size,
                &a.hash[..16.min(a.hash.len())],
                a.step_run_id.as_deref().unwrap_or("-")
            );
        }
    }
    if let Some(outputs) = &run.outputs {
        let _ = writeln!(out);
        let _ = writeln!(out, "outputs   {outputs}");
    }
    if let Some(err) = &run.error {
        let _ = writeln!(out, "error     {err}");
    }
    out
}

/// Writes to stdout; a closed pipe (`| head`) ends the output quietly instead of panicking.
fn emit(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
