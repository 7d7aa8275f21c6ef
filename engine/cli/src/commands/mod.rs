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

/// The steps a workflow may use on this installation: the built-ins and the plugins under `--plugins`,
/// WebAssembly and ONNX (a plugin that cannot be loaded is reported on stderr and left out).
pub fn registry(global: &GlobalArgs) -> StepRegistry {
    let mut registry = StepRegistry::with_builtins();
    let mut wasm_host = None;
    for folder in voxflow_plugin::plugin_folders(&global.plugins) {
        match load_plugin(global, &folder, &mut wasm_host) {
            Ok(step) => registry.register(step),
            Err(why) => eprintln!("warning: plugin {} not loaded: {why:#}", folder.display()),
        }
    }
    registry
}

/// One plugin folder as a step, by its manifest's kind (the WebAssembly host is started on first need).
fn load_plugin(
    global: &GlobalArgs,
    folder: &std::path::Path,
    wasm_host: &mut Option<Arc<voxflow_plugin::WasmHost>>,
) -> anyhow::Result<Arc<dyn voxflow_steps::Step>> {
    let (manifest, _) = voxflow_plugin::Manifest::load(folder)?;
    Ok(match manifest.kind {
        voxflow_plugin::PluginKind::Wasm => {
            let host = match wasm_host {
                Some(h) => h.clone(),
                None => wasm_host
                    .insert(voxflow_plugin::WasmHost::shared(Some(
                        &global.component_cache(),
                    ))?)
                    .clone(),
            };
            Arc::new(voxflow_plugin::WasmPlugin::load(host, folder)?)
        }
        voxflow_plugin::PluginKind::Onnx => Arc::new(voxflow_onnx::OnnxPlugin::load(
            folder,
            global.onnx_config()?,
        )?),
    })
}
