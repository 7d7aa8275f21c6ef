//! A WebAssembly plugin as a voxflow step: inputs read from the artifact store into the contract's values,
//! one call in a fresh sandboxed store, outputs checked against the manifest and stored as artifacts. A
//! trap, a timeout or a plugin-reported error fails this step only, with the guest's stderr attached.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use sha2::{Digest, Sha256};
use voxflow_spec::types::ArtifactKind;
use voxflow_spec::{StepSignature, Value};
use voxflow_steps::builtin::{read_volume, store_volume};
use voxflow_steps::{PluginIdentity, Step, StepArgs, StepContext, StepError, StepOutputs};

use super::bindings::voxflow::plugin::types as wit;
use super::description::{DescribedPort, Description};
use super::host::{CallState, Stopped, WasmHost};
use super::{bindings, convert};
use crate::manifest::{port_kind, Manifest};
use crate::PluginError;

/// Bytes of guest stderr quoted in an error message.
const STDERR_QUOTED: usize = 4000;

/// A value a plugin returned from an in-memory call ([`WasmPlugin::call_volumes`]).
#[derive(Debug, Clone)]
pub enum CallOutput {
    Volume(voxflow_imaging::Volume),
    Volumes(Vec<voxflow_imaging::Volume>),
    Text(String),
    /// JSON text.
    Json(String),
}

/// What an in-memory call returned: named outputs, and the guest's log lines.
pub type CallResult = (Vec<(String, CallOutput)>, Vec<String>);

/// A loaded, compiled WebAssembly plugin.
pub struct WasmPlugin {
    manifest: Manifest,
    component_path: PathBuf,
    identity: PluginIdentity,
    signature: StepSignature,
    host: Arc<WasmHost>,
    /// The component's bytes, compiled on first use (a registry loads every plugin; a run uses few).
    wasm: Vec<u8>,
    pre: OnceLock<Result<bindings::StepPre<CallState>, String>>,
}

impl WasmPlugin {
    /// Loads the plugin in `dir`: its `plugin.yaml` and the component it names (compiled on first use).
    pub fn load(host: Arc<WasmHost>, dir: &Path) -> Result<WasmPlugin, PluginError> {
        let (manifest, dir) = Manifest::load(dir)?;
        let component_path = dir.join(manifest.component.as_deref().unwrap_or(Path::new("")));
        let wasm = std::fs::read(&component_path).map_err(|e| PluginError::Component {
            path: component_path.clone(),
            message: format!(
                "cannot read the component ({e}); build it with `voxflow plugin build {}`",
                dir.display()
            ),
        })?;
        let sha256 = hex::encode(Sha256::digest(&wasm));
        Ok(WasmPlugin {
            identity: PluginIdentity {
                name: manifest.step_name(),
                version: manifest.version.clone(),
                sha256,
                config_sha256: None,
            },
            signature: manifest.signature(),
            manifest,
            component_path,
            host,
            wasm,
            pre: OnceLock::new(),
        })
    }

    /// The compiled component, ready to instantiate (compiled, or loaded from the cache, once), after
    /// checking that what it says about itself agrees with its manifest.
    fn prepared(&self) -> Result<&bindings::StepPre<CallState>, StepError> {
        self.pre
            .get_or_init(|| {
                let pre = self
                    .host
                    .prepare(
                        &self.wasm,
                        &self.identity.sha256,
                        &self.component_path,
                        self.manifest.limits.fuel.is_some(),
                    )
                    .map_err(|e| e.to_string())?;
                let description = self.describe_with(&pre).map_err(|e| e.to_string())?;
                description.check_against(&self.manifest).map_err(|e| {
                    format!(
                        "plugin {}: {} disagrees with its plugin.yaml: {e}",
                        self.identity.name,
                        self.component_path.display()
                    )
                })?;
                Ok(pre)
            })
            .as_ref()
            .map_err(|e| StepError::Failed(e.clone()))
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn component_path(&self) -> &Path {
        &self.component_path
    }

    /// What the component says about itself (`describe`), in a store of its own.
    pub fn describe(&self) -> Result<Description, StepError> {
        self.describe_with(self.prepared()?)
    }

    fn describe_with(&self, pre: &bindings::StepPre<CallState>) -> Result<Description, StepError> {
        let (mut store, stderr) = self
            .host
            .store(
                tokio_util::sync::CancellationToken::new(),
                self.manifest.limits.memory_mb as usize * 1024 * 1024,
                self.manifest.limits.timeout,
                &[],
                self.manifest.limits.fuel,
            )
            .map_err(StepError::Failed)?;
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| self.trap_error("cannot start", &e, &store, &stderr))?;
        let d = instance
            .call_describe(&mut store)
            .map_err(|e| self.trap_error("describe failed", &e, &store, &stderr))?;
        let ports = |ports: Vec<wit::Port>| {
            ports
                .into_iter()
                .map(|p| DescribedPort {
                    name: p.name,
                    kind: p.kind,
                    optional: p.optional,
                    description: p.description,
                })
                .collect()
        };
        Ok(Description {
            name: d.name,
            version: d.version,
            inputs: ports(d.inputs),
            outputs: ports(d.outputs),
            params_schema: d.params_schema,
        })
    }

    /// One call in a fresh store: the returned values (or why there are none) and the guest's log lines.
    fn call(
        &self,
        cancel: tokio_util::sync::CancellationToken,
        memory_mb: u64,
        inputs: &[wit::NamedValue],
        params: &serde_json::Value,
    ) -> (Result<Vec<wit::NamedValue>, StepError>, Vec<String>) {
        let (params, grants) = match self.grants(params) {
            Ok(g) => g,
            Err(e) => return (Err(e), Vec::new()),
        };
        let store = self.host.store(
            cancel,
            memory_mb as usize * 1024 * 1024,
            self.manifest.limits.timeout,
            &grants,
            self.manifest.limits.fuel,
        );
        let (mut store, stderr) = match store {
            Ok(s) => s,
            Err(e) => return (Err(StepError::Failed(e)), Vec::new()),
        };
        let pre = match self.prepared() {
            Ok(p) => p,
            Err(e) => return (Err(e), Vec::new()),
        };
        let result = pre
            .instantiate(&mut store)
            .map_err(|e| self.trap_error("cannot start", &e, &store, &stderr))
            .and_then(|instance| {
                instance
                    .call_run(&mut store, inputs, &params.to_string())
                    .map_err(|e| self.trap_error("trapped", &e, &store, &stderr))
            })
            .and_then(|r| {
                r.map_err(|e| {
                    StepError::Failed(format!(
                        "plugin {} reported {}: {}",
                        self.identity.name, e.code, e.message
                    ))
                })
            });
        let mut log = std::mem::take(&mut store.data_mut().log);
        if let Some((done, total)) = store.data().progress {
            log.push(format!("progress: {done} of {total}"));
        }
        (result, log)
    }

    /// The folders the manifest's `reads` parameters name, checked and mapped to their sandbox paths; the
    /// parameters the guest sees then hold those paths.
    fn grants(
        &self,
        params: &serde_json::Value,
    ) -> Result<(serde_json::Value, Vec<(PathBuf, String)>), StepError> {
        let mut params = params.clone();
        let mut grants = Vec::new();
        for name in &self.manifest.reads {
            let host = params[name.as_str()]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if host.is_empty() {
                continue; // not granted this time
            }
            if !Path::new(&host).is_dir() {
                return Err(StepError::BadArgument {
                    field: name.clone(),
                    message: format!("`{host}` is not a folder this plugin can be granted"),
                });
            }
            let guest = crate::manifest::grant_path(name);
            params[name.as_str()] = serde_json::Value::String(guest.clone());
            grants.push((PathBuf::from(host), guest));
        }
        Ok((params, grants))
    }

    /// Calls the plugin on in-memory volumes (a port with several volumes takes a list), without the
    /// artifact store: what `voxflow plugin test` and the benchmarks use. Parameters are checked against
    /// the manifest; the volume outputs come back by name, with the guest's log lines.
    pub fn call_volumes(
        &self,
        inputs: &[(String, Vec<voxflow_imaging::Volume>)],
        params: &std::collections::BTreeMap<String, Value>,
    ) -> Result<CallResult, StepError> {
        let params =
            self.manifest
                .checked_params(params)
                .map_err(|message| StepError::BadArgument {
                    field: "with".into(),
                    message,
                })?;
        let inputs: Vec<wit::NamedValue> = inputs
            .iter()
            .map(|(name, volumes)| {
                let list = self
                    .manifest
                    .inputs
                    .iter()
                    .any(|p| &p.name == name && p.list);
                let value = match volumes.as_slice() {
                    [one] if !list => wit::Value::Volume(convert::to_wit(one)),
                    many => wit::Value::Volumes(many.iter().map(convert::to_wit).collect()),
                };
                wit::NamedValue {
                    name: name.clone(),
                    value,
                }
            })
            .collect();
        let (returned, log) = self.call(
            tokio_util::sync::CancellationToken::new(),
            self.manifest.limits.memory_mb,
            &inputs,
            &params,
        );
        let outputs = returned?
            .into_iter()
            .map(|nv| {
                let value = match nv.value {
                    wit::Value::Volume(v) => CallOutput::Volume(
                        convert::from_wit(v)
                            .map_err(|e| StepError::Failed(format!("output `{}`: {e}", nv.name)))?,
                    ),
                    wit::Value::Volumes(vs) => CallOutput::Volumes(
                        vs.into_iter()
                            .map(convert::from_wit)
                            .collect::<Result<_, _>>()
                            .map_err(|e| StepError::Failed(format!("output `{}`: {e}", nv.name)))?,
                    ),
                    wit::Value::Text(t) => CallOutput::Text(t),
                    wit::Value::Json(j) => CallOutput::Json(j),
                };
                Ok((nv.name, value))
            })
            .collect::<Result<_, StepError>>()?;
        Ok((outputs, log))
    }

    fn inputs(
        &self,
        ctx: &StepContext<'_>,
        args: &StepArgs,
    ) -> Result<Vec<wit::NamedValue>, StepError> {
        let mut out = Vec::new();
        for port in &self.manifest.inputs {
            let Some(value) = args.inputs.get(&port.name) else {
                if port.optional {
                    continue;
                }
                return Err(StepError::BadArgument {
                    field: port.name.clone(),
                    message: "required input is missing".into(),
                });
            };
            let one = |v: &Value| -> Result<wit::Value, StepError> {
                let Value::Artifact(env) = v else {
                    return Err(StepError::BadArgument {
                        field: port.name.clone(),
                        message: format!("expected an artifact, got {}", v.type_name()),
                    });
                };
                let a = &env.artifact;
                Ok(match port_kind(&port.ty) {
                    Some(ArtifactKind::Text) => {
                        wit::Value::Text(String::from_utf8(ctx.artifacts.read(a)?).map_err(
                            |_| StepError::BadArgument {
                                field: port.name.clone(),
                                message: "the text artifact is not UTF-8".into(),
                            },
                        )?)
                    }
                    Some(ArtifactKind::Json) => wit::Value::Json(
                        String::from_utf8_lossy(&ctx.artifacts.read(a)?).into_owned(),
                    ),
                    _ => wit::Value::Volume(convert::to_wit(&read_volume(ctx, a, &port.name)?)),
                })
            };
            let value = match (value, port.list) {
                (Value::List(items), true) => {
                    let mut volumes = Vec::with_capacity(items.len());
                    for item in items {
                        match one(item)? {
                            wit::Value::Volume(v) => volumes.push(v),
                            _ => {
                                return Err(StepError::BadArgument {
                                    field: port.name.clone(),
                                    message: "lists are only of volumes".into(),
                                })
                            }
                        }
                    }
                    wit::Value::Volumes(volumes)
                }
                (v, _) => one(v)?,
            };
            out.push(wit::NamedValue {
                name: port.name.clone(),
                value,
            });
        }
        Ok(out)
    }

    fn outputs(
        &self,
        ctx: &StepContext<'_>,
        returned: Vec<wit::NamedValue>,
    ) -> Result<StepOutputs, StepError> {
        let mut outputs = StepOutputs::new();
        let name = &self.identity.name;
        for value in returned {
            let Some(port) = self.manifest.outputs.iter().find(|p| p.name == value.name) else {
                return Err(StepError::Failed(format!(
                    "plugin {name} returned output `{}`, which its manifest does not declare",
                    value.name
                )));
            };
            let kind = port_kind(&port.ty).unwrap_or(ArtifactKind::File);
            let stored = match value.value {
                wit::Value::Volume(v) => {
                    let volume = convert::from_wit(v).map_err(|e| {
                        StepError::Failed(format!("plugin {name}: output `{}`: {e}", port.name))
                    })?;
                    store_volume(ctx, &volume, kind, &format!("{}.nii.gz", port.name))?
                }
                wit::Value::Text(t) => ctx.artifacts.put_bytes(
                    t.as_bytes(),
                    ArtifactKind::Text,
                    None,
                    Some(&format!("{}.txt", port.name)),
                )?,
                wit::Value::Json(j) => {
                    serde_json::from_str::<serde_json::Value>(&j).map_err(|e| {
                        StepError::Failed(format!(
                            "plugin {name}: output `{}` is not JSON: {e}",
                            port.name
                        ))
                    })?;
                    ctx.artifacts.put_bytes(
                        j.as_bytes(),
                        ArtifactKind::Json,
                        None,
                        Some(&format!("{}.json", port.name)),
                    )?
                }
                wit::Value::Volumes(_) => {
                    return Err(StepError::Failed(format!(
                    "plugin {name}: output `{}` is a list of volumes; outputs are single values",
                    port.name
                )))
                }
            };
            outputs.insert(port.name.clone(), Value::artifact(stored));
        }
        if let Some(missing) = self
            .manifest
            .outputs
            .iter()
            .find(|p| !outputs.contains_key(&p.name))
        {
            return Err(StepError::Failed(format!(
                "plugin {name} did not return its declared output `{}`",
                missing.name
            )));
        }
        Ok(outputs)
    }

    fn trap_error(
        &self,
        what: &str,
        error: &wasmtime::Error,
        store: &wasmtime::Store<CallState>,
        stderr: &wasmtime_wasi::p2::pipe::MemoryOutputPipe,
    ) -> StepError {
        let name = &self.identity.name;
        match store.data().why_stopped {
            Some(Stopped::Cancelled) => return StepError::Cancelled,
            Some(Stopped::Timeout) => {
                return StepError::Failed(format!(
                    "plugin {name} exceeded its time limit of {:?} and was stopped",
                    self.manifest.limits.timeout
                ))
            }
            None => {}
        }
        let bytes = stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let tail: String = {
            let t = text.trim();
            let start = t.len().saturating_sub(STDERR_QUOTED);
            let start = (start..t.len())
                .find(|&i| t.is_char_boundary(i))
                .unwrap_or(t.len());
            t[start..].to_string()
        };
        let cause = error.root_cause().to_string();
        if cause.contains("all fuel consumed") {
            return StepError::Failed(format!(
                "plugin {name} used up its instruction budget (fuel {}) and was stopped",
                self.manifest.limits.fuel.unwrap_or_default()
            ));
        }
        let hint = if cause.contains("out of bounds memory access") && tail.is_empty() {
            " (a stack overflow shows as this)"
        } else {
            ""
        };
        let mut message = format!("plugin {name} {what}: {cause}{hint}");
        if !tail.is_empty() {
            message.push_str(&format!("; its stderr: {tail}"));
        }
        StepError::Failed(message)
    }
}

impl Step for WasmPlugin {
    fn signature(&self) -> &StepSignature {
        &self.signature
    }

    fn identity(&self) -> &PluginIdentity {
        &self.identity
    }

    fn run(&self, ctx: &StepContext<'_>, args: &StepArgs) -> Result<StepOutputs, StepError> {
        let params = self
            .manifest
            .checked_params(&args.params)
            .map_err(|message| StepError::BadArgument {
                field: "with".into(),
                message,
            })?;
        let inputs = self.inputs(ctx, args)?;
        ctx.check_cancelled()?;
        let memory_mb = ctx
            .memory_limit_mb
            .map_or(self.manifest.limits.memory_mb, |m| {
                m.min(self.manifest.limits.memory_mb)
            });
        let (returned, log) = self.call(ctx.cancel.clone(), memory_mb, &inputs, &params);
        for line in log {
            ctx.log(line);
        }
        self.outputs(ctx, returned?)
    }
}
