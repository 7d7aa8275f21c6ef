//! The guest SDK for voxflow step plugins: implement [`Plugin`] (typed volumes and JSON parameters in,
//! typed volumes out), call [`export_plugin!`], and build for `wasm32-wasip2`. Bindings are generated from
//! `plugins/wit/plugin.wit`, the one definition of the contract the engine's host also generates from.
//!
//! ```ignore
//! use voxflow_plugin_sdk::{export_plugin, Description, Inputs, Outputs, Plugin, PluginError, Port};
//!
//! struct Invert;
//! impl Plugin for Invert {
//!     fn describe() -> Description {
//!         Description::new("invert", env!("CARGO_PKG_VERSION"))
//!             .input(Port::new("mask", "mask"))
//!             .output(Port::new("mask", "mask"))
//!     }
//!     fn run(mut inputs: Inputs, _params: serde_json::Value) -> Result<Outputs, PluginError> {
//!         let mask = inputs.volume("mask")?;
//!         let inverted: Vec<bool> = mask.nonzero().into_iter().map(|v| !v).collect();
//!         Ok(Outputs::new().volume("mask", mask.with_mask(inverted)))
//!     }
//! }
//! export_plugin!(Invert);
//! ```

mod volume;

pub use volume::{Geometry, Volume, VoxelData};

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "step",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_guest",
        default_bindings_module: "voxflow_plugin_sdk::bindings",
    });
}

use bindings::voxflow::plugin::types as wit;

/// A failure to report to the person running the workflow: a stable code and a message.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginError {
    pub code: String,
    pub message: String,
}

impl PluginError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_string(),
            message: message.into(),
        }
    }
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new("bad-input", message)
    }
    pub fn bad_params(message: impl Into<String>) -> Self {
        Self::new("bad-params", message)
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// One input or output port.
#[derive(Debug, Clone)]
pub struct Port {
    pub name: String,
    pub kind: String,
    pub optional: bool,
    pub description: String,
}

impl Port {
    /// A required port of a kind: `volume`, `mask`, `labels`, `volumes`, `text` or `json`.
    pub fn new(name: &str, kind: &str) -> Self {
        Self {
            name: name.to_string(),
            kind: kind.to_string(),
            optional: false,
            description: String::new(),
        }
    }
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
    pub fn describe(mut self, text: &str) -> Self {
        self.description = text.to_string();
        self
    }
}

/// What a plugin says about itself.
#[derive(Debug, Clone)]
pub struct Description {
    pub name: String,
    pub version: String,
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
    pub params_schema: serde_json::Value,
}

impl Description {
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.to_string(),
            version: version.to_string(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            params_schema: serde_json::json!({"type": "object"}),
        }
    }
    pub fn input(mut self, port: Port) -> Self {
        self.inputs.push(port);
        self
    }
    pub fn output(mut self, port: Port) -> Self {
        self.outputs.push(port);
        self
    }
    pub fn params(mut self, schema: serde_json::Value) -> Self {
        self.params_schema = schema;
        self
    }
}

/// A value on a port, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Volume(Volume),
    Volumes(Vec<Volume>),
    Text(String),
    Json(serde_json::Value),
}

/// The named inputs of one call.
#[derive(Debug, Clone, Default)]
pub struct Inputs(pub Vec<(String, Value)>);

impl Inputs {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
    /// Takes the value off a port (inputs are moved out, not copied: volumes are large).
    fn take(&mut self, name: &str) -> Option<Value> {
        let at = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.swap_remove(at).1)
    }
    /// The volume on a required port.
    pub fn volume(&mut self, name: &str) -> Result<Volume, PluginError> {
        self.optional_volume(name)?
            .ok_or_else(|| PluginError::bad_input(format!("input `{name}` is missing")))
    }
    /// The volume on an optional port.
    pub fn optional_volume(&mut self, name: &str) -> Result<Option<Volume>, PluginError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Volume(v)) => Ok(Some(v)),
            Some(other) => Err(PluginError::bad_input(format!(
                "input `{name}` must be a volume, got {}",
                kind_of(&other)
            ))),
        }
    }
    /// The volumes on a port that takes several (a single volume counts as one).
    pub fn volumes(&mut self, name: &str) -> Result<Vec<Volume>, PluginError> {
        match self.take(name) {
            None => Err(PluginError::bad_input(format!("input `{name}` is missing"))),
            Some(Value::Volumes(v)) => Ok(v),
            Some(Value::Volume(v)) => Ok(vec![v]),
            Some(other) => Err(PluginError::bad_input(format!(
                "input `{name}` must be volumes, got {}",
                kind_of(&other)
            ))),
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Volume(_) => "a volume",
        Value::Volumes(_) => "a list of volumes",
        Value::Text(_) => "text",
        Value::Json(_) => "JSON",
    }
}

/// The named outputs of one call.
#[derive(Debug, Clone, Default)]
pub struct Outputs(pub Vec<(String, Value)>);

impl Outputs {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn volume(mut self, name: &str, volume: Volume) -> Self {
        self.0.push((name.to_string(), Value::Volume(volume)));
        self
    }
    pub fn json(mut self, name: &str, value: serde_json::Value) -> Self {
        self.0.push((name.to_string(), Value::Json(value)));
        self
    }
    pub fn text(mut self, name: &str, text: impl Into<String>) -> Self {
        self.0.push((name.to_string(), Value::Text(text.into())));
        self
    }
}

/// A step plugin: describe its ports, and run once per call.
pub trait Plugin {
    fn describe() -> Description;
    fn run(inputs: Inputs, params: serde_json::Value) -> Result<Outputs, PluginError>;
}

/// Messages into the run's events. On a native debug build (unit tests) they go to stderr.
pub mod log {
    #[cfg(target_arch = "wasm32")]
    fn emit(level: super::bindings::voxflow::plugin::host::Level, message: &str) {
        super::bindings::voxflow::plugin::host::log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    fn emit<L>(_level: L, message: &str) {
        // Native debug builds are unit tests: show the lines. Native release builds are benchmarks: quiet.
        if cfg!(debug_assertions) {
            eprintln!("{message}");
        }
    }
    pub fn info(message: &str) {
        emit(super::bindings::voxflow::plugin::host::Level::Info, message);
    }
    pub fn warn(message: &str) {
        emit(super::bindings::voxflow::plugin::host::Level::Warn, message);
    }
}

/// Whether the step has been cancelled (always `false` on a native build).
pub fn cancelled() -> bool {
    #[cfg(target_arch = "wasm32")]
    {
        bindings::voxflow::plugin::host::cancelled()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        false
    }
}

/// Progress in the plugin's own units (ignored on a native build).
pub fn progress(done: u64, total: u64) {
    #[cfg(target_arch = "wasm32")]
    bindings::voxflow::plugin::host::progress(done, total);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (done, total);
}

#[doc(hidden)]
pub fn describe_for<P: Plugin>() -> wit::Description {
    let d = P::describe();
    let port = |p: Port| wit::Port {
        name: p.name,
        kind: p.kind,
        optional: p.optional,
        description: p.description,
    };
    wit::Description {
        name: d.name,
        version: d.version,
        inputs: d.inputs.into_iter().map(port).collect(),
        outputs: d.outputs.into_iter().map(port).collect(),
        params_schema: d.params_schema.to_string(),
    }
}

#[doc(hidden)]
pub fn run_for<P: Plugin>(
    inputs: Vec<wit::NamedValue>,
    params: String,
) -> Result<Vec<wit::NamedValue>, wit::PluginError> {
    let to_wit = |e: PluginError| wit::PluginError {
        code: e.code,
        message: e.message,
    };
    let mut typed = Vec::with_capacity(inputs.len());
    for input in inputs {
        let value = match input.value {
            wit::Value::Volume(v) => Value::Volume(Volume::from_wit(v).map_err(to_wit)?),
            wit::Value::Volumes(vs) => Value::Volumes(
                vs.into_iter()
                    .map(Volume::from_wit)
                    .collect::<Result<_, _>>()
                    .map_err(to_wit)?,
            ),
            wit::Value::Text(t) => Value::Text(t),
            wit::Value::Json(j) => Value::Json(serde_json::from_str(&j).map_err(|e| {
                to_wit(PluginError::bad_input(format!(
                    "input `{}` is not JSON: {e}",
                    input.name
                )))
            })?),
        };
        typed.push((input.name, value));
    }
    let params: serde_json::Value = serde_json::from_str(&params)
        .map_err(|e| to_wit(PluginError::bad_params(format!("not JSON: {e}"))))?;
    let outputs = P::run(Inputs(typed), params).map_err(to_wit)?;
    Ok(outputs
        .0
        .into_iter()
        .map(|(name, value)| wit::NamedValue {
            name,
            value: match value {
                Value::Volume(v) => wit::Value::Volume(v.into_wit()),
                Value::Volumes(vs) => {
                    wit::Value::Volumes(vs.into_iter().map(Volume::into_wit).collect())
                }
                Value::Text(t) => wit::Value::Text(t),
                Value::Json(j) => wit::Value::Json(j.to_string()),
            },
        })
        .collect())
}

/// Exports a [`Plugin`] as the component's `describe` and `run`. Only on wasm32: a native build (unit
/// tests, benchmarks linking several plugins) exports nothing, so plugins link side by side.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        mod __voxflow_export {
            #[allow(unused_imports)]
            use super::*;
            struct VoxflowGuest;
            impl $crate::bindings::Guest for VoxflowGuest {
                fn describe() -> $crate::bindings::voxflow::plugin::types::Description {
                    $crate::describe_for::<$plugin>()
                }
                fn run(
                    inputs: ::std::vec::Vec<$crate::bindings::voxflow::plugin::types::NamedValue>,
                    params: ::std::string::String,
                ) -> ::std::result::Result<
                    ::std::vec::Vec<$crate::bindings::voxflow::plugin::types::NamedValue>,
                    $crate::bindings::voxflow::plugin::types::PluginError,
                > {
                    $crate::run_for::<$plugin>(inputs, params)
                }
            }
            $crate::bindings::export_guest!(VoxflowGuest with_types_in $crate::bindings);
        }
    };
}
