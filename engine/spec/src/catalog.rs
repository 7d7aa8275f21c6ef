//! What the validator needs to know about plugins: the ports and parameters of each step kind. The engine
//! supplies the catalog (built-in steps, WebAssembly and ONNX plugins); this crate only defines its shape.

use crate::model::PluginRef;
use crate::types::DataType;
use crate::value::Value;

/// One input, output or parameter of a step kind.
#[derive(Debug, Clone, PartialEq)]
pub struct PortSpec {
    pub name: String,
    pub ty: DataType,
    pub required: bool,
    pub default: Option<Value>,
    pub description: String,
}

impl PortSpec {
    pub fn required(name: &str, ty: DataType, description: &str) -> Self {
        PortSpec {
            name: name.into(),
            ty,
            required: true,
            default: None,
            description: description.into(),
        }
    }

    pub fn optional(name: &str, ty: DataType, default: Option<Value>, description: &str) -> Self {
        PortSpec {
            name: name.into(),
            ty,
            required: false,
            default,
            description: description.into(),
        }
    }
}

/// The interface of a step kind, as the validator and the executor see it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSignature {
    pub plugin: String,
    pub version: String,
    pub description: String,
    pub inputs: Vec<PortSpec>,
    pub params: Vec<PortSpec>,
    pub outputs: Vec<PortSpec>,
}

impl StepSignature {
    pub fn output(&self, name: &str) -> Option<&PortSpec> {
        self.outputs.iter().find(|p| p.name == name)
    }
}

/// Resolves `uses:` references to step signatures.
pub trait StepCatalog: Send + Sync {
    /// The signature of a plugin, or a message saying why it cannot be used (unknown, wrong version...).
    fn signature(&self, plugin: &PluginRef) -> Result<StepSignature, String>;
}
