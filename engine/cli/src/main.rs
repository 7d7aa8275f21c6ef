//! The `voxflow` command: parses arguments, sets up logging, and hands off to one module per command.

mod commands;
mod progress_view;
mod settings;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::settings::GlobalArgs;

// mimalloc keeps freed pages for reuse: loading volume after volume, glibc's malloc hands large blocks back
// to the kernel and faults fresh zeroed pages in each time (measured: 13 ms instead of 1 ms to read a
// 5.6 MB NIfTI file after another load; bench/imaging_vs_peers.py).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status when the workflow is invalid or the run failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit status when the environment failed (database, files), not the workflow.
pub const EXIT_ENVIRONMENT: u8 = 3;
/// Exit status when the run was cancelled (Ctrl-C), as shells report SIGINT.
pub const EXIT_CANCELLED: u8 = 130;

#[derive(Parser)]
#[command(
    name = "voxflow",
    version,
    about = "Medical-imaging workflow engine: validate and run YAML workflows, and inspect recorded runs"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check workflow files without running them; every problem is printed as FILE:LINE:COLUMN: message.
    Validate(commands::validate::ValidateArgs),
    /// Run a workflow and record it.
    Run(commands::run::RunArgs),
    /// List and show recorded runs.
    #[command(subcommand)]
    Runs(commands::runs::RunsCommand),
    /// Describe a DICOM file or folder (series, size, spacing, orientation, transfer syntax, problems) or a NIfTI file.
    Inspect(commands::imaging::InspectArgs),
    /// Convert a DICOM series (or a NIfTI file) to NIfTI.
    Convert(commands::imaging::ConvertArgs),
    /// Create, build, inspect and try out plugins.
    #[command(subcommand)]
    Plugin(commands::plugin::PluginCommand),
    /// Database maintenance.
    #[command(subcommand)]
    Db(commands::db::DbCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    settings::init_logging(cli.global.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ENVIRONMENT);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Validate(args) => commands::validate::run(&cli.global, &args),
            Command::Plugin(cmd) => commands::plugin::run(&cli.global, cmd),
            Command::Run(args) => commands::run::run(&cli.global, args).await,
            Command::Runs(cmd) => commands::runs::run(&cli.global, cmd).await,
            Command::Db(cmd) => commands::db::run(&cli.global, cmd).await,
            Command::Inspect(args) => commands::imaging::inspect_command(&args),
            Command::Convert(args) => commands::imaging::convert_command(&args),
        }
    });
    // Do not wait for blocking tasks that ignored cancellation (a step past its grace period).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ENVIRONMENT)
        }
    }
}
