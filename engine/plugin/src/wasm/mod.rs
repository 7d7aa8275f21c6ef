//! WebAssembly plugins: the host (wasmtime, sandbox and limits) and the plugin as a step. Bindings are
//! generated from `plugins/wit`, the same package the guest SDK generates from.

mod convert;
mod description;
mod host;
mod step;

pub use description::{DescribedPort, Description};
pub use host::WasmHost;
pub use step::{CallOutput, WasmPlugin};

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        world: "step",
        path: "../../plugins/wit",
    });
}
