//! `voxflow validate FILE...`: reports every problem of every file, exits 1 if any file is invalid.

use std::path::PathBuf;

use clap::Args;

use crate::EXIT_FAILED;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Workflow files to check.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(global: &crate::settings::GlobalArgs, args: &ValidateArgs) -> anyhow::Result<u8> {
    let registry = super::registry(global);
    let mut invalid = 0;
    for file in &args.files {
        match voxflow_spec::load_workflow(file, &registry) {
            Ok(_) => println!("{}: ok", file.display()),
            Err(diagnostics) => {
                invalid += 1;
                for d in &diagnostics {
                    println!("{d}");
                }
                println!(
                    "{}: {} problem{}",
                    file.display(),
                    diagnostics.len(),
                    if diagnostics.len() == 1 { "" } else { "s" }
                );
            }
        }
    }
    Ok(if invalid > 0 { EXIT_FAILED } else { 0 })
}
