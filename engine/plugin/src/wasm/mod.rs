//! WebAssembly plugins: the host (wasmtime, sandbox and limits) and the plugin as a step. Bindings are
//! generated from `plugins/wit`, the same package the guest SDK generates from.

mod convert;
mod host;
mod step;

pub use host::WasmHost;
pub use step::{CallOutput, Description, WasmPlugin};

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        world: "step",
        path: "../../plugins/wit",
    });
}
