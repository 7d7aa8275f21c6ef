//! The registry of step implementations: resolves `uses:` references, checks versions and hash pins, and
//! serves as the validator's catalog.

use std::collections::BTreeMap;
use std::sync::Arc;

use voxflow_spec::model::PluginRef;
use voxflow_spec::{StepCatalog, StepSignature};

use crate::Step;

#[derive(Clone, Default)]
pub struct StepRegistry {
    steps: BTreeMap<String, Arc<dyn Step>>,
}

impl StepRegistry {
    /// A registry holding voxflow's built-in steps.
    pub fn with_builtins() -> Self {
        let mut r = StepRegistry::default();
        for step in crate::builtin::all() {
            r.register(step);
        }
        r
    }

    pub fn register(&mut self, step: Arc<dyn Step>) {
        self.steps.insert(step.identity().name.clone(), step);
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.steps.keys().map(String::as_str)
    }

    /// The implementation for a `uses:` reference, or why there is none.
    pub fn resolve(&self, plugin: &PluginRef) -> Result<Arc<dyn Step>, String> {
        let Some(step) = self.steps.get(&plugin.name) else {
            let names: Vec<&str> = self.names().collect();
            return Err(format!(
                "unknown plugin `{}`; available: {}",
                plugin.name,
                names.join(", ")
            ));
        };
        let id = step.identity();
        if let Some(v) = &plugin.version {
            if *v != id.version {
                return Err(format!(
                    "plugin `{}` is version {}, but the workflow asks for {v}",
                    plugin.name, id.version
                ));
            }
        }
        if let Some(h) = &plugin.sha256 {
            if *h != id.sha256 {
                return Err(format!(
                    "plugin `{}` has sha256 {}, but the workflow pins {h}; refusing to run a different plugin",
                    plugin.name, id.sha256
                ));
            }
        }
        Ok(step.clone())
    }
}

impl StepCatalog for StepRegistry {
    fn signature(&self, plugin: &PluginRef) -> Result<StepSignature, String> {
        self.resolve(plugin).map(|s| s.signature().clone())
    }
}
