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
/// (WebAssembly and ONNX; a plugin that cannot be loaded is reported on stderr and left out).
pub fn registry(global: &GlobalArgs) -> StepRegistry {
    let mut registry = StepRegistry::with_builtins();
    if !global.plugins.is_dir() {
        return registry;
    }
    match global.onnx_config() {
        Ok(config) => {
            let (models, problems) = voxflow_onnx::load_onnx_plugins(&global.plugins, &config);
            for (folder, why) in problems {
                eprintln!("warning: plugin {} not loaded: {why}", folder.display());
            }
            for p in models {
                registry.register(p as Arc<dyn voxflow_steps::Step>);
            }
        }
        Err(e) => eprintln!("warning: ONNX plugins are unavailable: {e:#}"),
    }
    let host = match voxflow_plugin::WasmHost::shared(Some(&global.component_cache())) {
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
