//! One module per `voxflow` subcommand.

pub mod db;
pub mod imaging;
pub mod run;
pub mod runs;
pub mod validate;

use voxflow_steps::StepRegistry;

/// The steps a workflow may use on this installation.
pub fn registry() -> StepRegistry {
    StepRegistry::with_builtins()
}
