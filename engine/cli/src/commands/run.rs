//! `voxflow run WORKFLOW`: validates, plans and executes a workflow, shows progress, writes the declared
//! outputs to `--out`, and turns Ctrl-C into a clean cancellation.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;
use voxflow_run::{export_outputs, parse_assignment, Executor, Plan, RunRequest};
use voxflow_store::RunStatus;

use crate::progress_view::{PlainLines, TerminalBars};
use crate::settings::GlobalArgs;
use crate::{EXIT_CANCELLED, EXIT_FAILED};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workflow file.
    pub workflow: PathBuf,
    /// A workflow input, NAME=PATH (repeatable).
    #[arg(long = "input", short = 'i', value_parser = parse_assignment)]
    pub inputs: Vec<(String, String)>,
    /// A workflow parameter, NAME=VALUE (repeatable).
    #[arg(long = "param", short = 'p', value_parser = parse_assignment)]
    pub params: Vec<(String, String)>,
    /// Write the workflow's declared outputs to this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// How many steps may run at once (default: the number of cores).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Print plain progress lines even on a terminal.
    #[arg(long)]
    pub plain: bool,
}

pub async fn run(global: &GlobalArgs, args: RunArgs) -> anyhow::Result<u8> {
    let registry = super::registry(global);
    let workflow = match voxflow_spec::load_workflow(&args.workflow, &registry) {
        Ok(wf) => Arc::new(wf),
        Err(diagnostics) => {
            for d in &diagnostics {
                eprintln!("{d}");
            }
            eprintln!(
                "error: {} is not a valid workflow; nothing was run",
                args.workflow.display()
            );
            return Ok(EXIT_FAILED);
        }
    };
    let request = RunRequest {
        inputs: args.inputs.into_iter().collect(),
        params: args.params.into_iter().collect(),
    };
    let plan = match Plan::new(workflow, &registry, &request) {
        Ok(p) => p,
        Err(e) => {
            for line in e.to_string().lines() {
                eprintln!("error: {line}");
            }
            return Ok(EXIT_FAILED);
        }
    };
    let store = Arc::new(global.open_store().await?);
    let artifacts = global.open_artifacts()?;
    let progress: Arc<dyn voxflow_run::Progress> = if std::io::stderr().is_terminal() && !args.plain
    {
        Arc::new(TerminalBars::new())
    } else {
        Arc::new(PlainLines)
    };
    let mut executor = Executor::new(store.clone(), artifacts.clone()).with_progress(progress);
    if let Some(j) = args.jobs {
        executor = executor.with_jobs(j);
    }
    let cancel = CancellationToken::new();
    let watcher = tokio::spawn(cancel_on_ctrl_c(cancel.clone()));
    let outcome = executor
        .execute(plan, cancel)
        .await
        .context("the run could not be recorded")?;
    watcher.abort();
    println!("run {} {}", outcome.run_id, outcome.status);
    match outcome.status {
        RunStatus::Succeeded => {
            if let Some(dir) = &args.out {
                let written = export_outputs(&artifacts, &outcome.outputs, dir)
                    .with_context(|| format!("cannot write the outputs to {}", dir.display()))?;
                for path in written {
                    println!("wrote {}", path.display());
                }
            } else {
                let json = voxflow_spec::Value::Map(outcome.outputs.clone()).to_json();
                println!("outputs: {json}");
            }
            store.close().await;
            Ok(0)
        }
        RunStatus::Cancelled => {
            eprintln!(
                "run {} was cancelled; completed steps are recorded",
                outcome.run_id
            );
            store.close().await;
            Ok(EXIT_CANCELLED)
        }
        _ => {
            // The status line above already says "run ID failed" (and the progress view, in plain mode).
            eprintln!(
                "error: {}",
                outcome.error.as_deref().unwrap_or("unknown error")
            );
            eprintln!("details: voxflow runs show {}", outcome.run_id);
            store.close().await;
            Ok(EXIT_FAILED)
        }
    }
}

/// First Ctrl-C: cancel the run cleanly. Second: leave at once.
async fn cancel_on_ctrl_c(cancel: CancellationToken) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    eprintln!("cancelling: waiting for running steps to stop (Ctrl-C again to quit at once)");
    cancel.cancel();
    if tokio::signal::ctrl_c().await.is_ok() {
        std::process::exit(i32::from(EXIT_CANCELLED));
    }
}
