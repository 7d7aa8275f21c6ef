//! One module per `voxflow` subcommand.

pub mod db;
pub mod imaging;
pub mod plugin;
pub mod run;
pub mod runs;
pub mod validate;

use std::sync::Arc;

use voxflow_steps::StepRegistry;

use crate::settings::GlobalArgs;

/// The steps a workflow may use on this installation: the built-ins and the plugins under `--plugins`
/// (a plugin that cannot be loaded is reported on stderr and left out).
pub fn registry(global: &GlobalArgs) -> StepRegistry {
    let mut registry = StepRegistry::with_builtins();
    if !global.plugins.is_dir() {
        return registry;
    }
    // Compiled components are cached per engine build; VOXFLOW_COMPONENT_CACHE shares one cache between
    // data directories (the tests do).
    let cache = std::env::var_os("VOXFLOW_COMPONENT_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| global.data_dir.join("components"));
    let host = match voxflow_plugin::WasmHost::shared(Some(&cache)) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("warning: WebAssembly plugins are unavailable: {e}");
            return registry;
        }
    };
    let (plugins, problems) = voxflow_plugin::load_plugins(&host, &global.plugins);
    for (folder, why) in problems {
        eprintln!("warning: plugin {} not loaded: {why}", folder.display());
    }
    for p in plugins {
        registry.register(p as Arc<dyn voxflow_steps::Step>);
    }
    registry
}
