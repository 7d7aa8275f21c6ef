//! Model sessions: created once per (model sha256, provider, threads) and shared by every step and study in
//! the process; what a model's graph takes and returns (for manifests and `voxflow plugin inspect`); one
//! inference with its input checked against the graph first, so a wrong shape names the tensor.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::{TensorRef, ValueType};
use sha2::{Digest, Sha256};

use crate::cores::CoreBudget;
use crate::runtime::{environment, Provider, RuntimeConfig};
use crate::stop::RunStop;
use crate::tiling::Tensor;
use crate::OnnxError;

/// A graph input or output: name, element type and shape (`-1` where the dimension is symbolic).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<i64>,
    /// The symbolic names of the dynamic dimensions (empty where fixed).
    pub symbols: Vec<String>,
}

/// What a model file holds, as ONNX Runtime reads it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelInfo {
    pub inputs: Vec<TensorInfo>,
    pub outputs: Vec<TensorInfo>,
    /// (domain, version) of the operator sets it imports ("" is the default ONNX domain).
    pub opsets: Vec<(String, u32)>,
    pub producer: Option<String>,
    /// Of the file's bytes.
    pub sha256: String,
}

/// One loaded model, shareable across threads (inference takes turns: ONNX Runtime already uses the
/// configured threads inside each run).
pub struct ModelSession {
    session: Mutex<Session>,
    /// The turn to run, in arrival order, taken before the lock: a stopped run waiting for it leaves
    /// (fan-out instances of one step share the session, so a timed-out attempt may queue behind many runs).
    pub(crate) turn: CoreBudget,
    pub info: ModelInfo,
    pub provider: Provider,
    pub intra_threads: usize,
}

type Key = (String, Provider, usize);

/// The session for a model pinned to `sha256`, from the process cache or created now: the file is read
/// once, its hash checked against the pin, and the session built from those same bytes.
pub fn shared_session(
    model: &Path,
    sha256: &str,
    config: &RuntimeConfig,
) -> Result<Arc<ModelSession>, OnnxError> {
    static CACHE: Mutex<Option<HashMap<Key, Arc<ModelSession>>>> = Mutex::new(None);
    let key = (sha256.to_string(), config.provider, config.intra_threads);
    {
        let cache = CACHE.lock().map_err(|_| OnnxError::Poisoned)?;
        if let Some(found) = cache.as_ref().and_then(|c| c.get(&key)) {
            return Ok(found.clone());
        }
    }
    let created = Arc::new(open(model, Some(sha256), config)?);
    let mut cache = CACHE.lock().map_err(|_| OnnxError::Poisoned)?;
    Ok(cache
        .get_or_insert_with(HashMap::new)
        .entry(key)
        .or_insert(created)
        .clone())
}

/// Opens a model file in a session of its own, refusing it when `pinned` names another sha256.
pub fn open(
    model: &Path,
    pinned: Option<&str>,
    config: &RuntimeConfig,
) -> Result<ModelSession, OnnxError> {
    let bad = |e: &dyn std::fmt::Display| OnnxError::Model {
        path: model.to_path_buf(),
        message: e.to_string(),
    };
    let bytes = std::fs::read(model).map_err(|e| bad(&format!("cannot read it: {e}")))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    if let Some(pin) = pinned.filter(|pin| *pin != sha256) {
        return Err(bad(&format!(
            "has sha256 {sha256}, but plugin.yaml pins {pin}"
        )));
    }
    let env = environment(config.library.as_deref())?;
    let mut builder = Session::builder(env)
        .map_err(|e| bad(&e))?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| bad(&e))?
        .with_intra_threads(config.intra_threads.max(1))
        .map_err(|e| bad(&e))?
        // Idle pool threads sleep instead of spinning: a workflow runs several sessions side by side,
        // and one session's spinning threads would take the cores another session's run needs.
        .with_intra_op_spinning(false)
        .map_err(|e| bad(&e))?;
    if config.provider == Provider::Cuda {
        builder = builder
            .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
            .map_err(|e| OnnxError::Provider(format!("CUDA could not be used: {e}")))?;
    }
    let session = builder.commit_from_memory(&bytes).map_err(|e| bad(&e))?;
    let info = describe(&session, sha256);
    Ok(ModelSession {
        session: Mutex::new(session),
        turn: CoreBudget::new(1),
        info,
        provider: config.provider,
        intra_threads: config.intra_threads.max(1),
    })
}

fn tensor_info(name: &str, dtype: &ValueType) -> TensorInfo {
    match dtype {
        ValueType::Tensor {
            ty,
            shape,
            dimension_symbols,
        } => TensorInfo {
            name: name.to_string(),
            dtype: ty.to_string(),
            shape: shape.iter().copied().collect(),
            symbols: dimension_symbols.iter().map(|s| s.to_string()).collect(),
        },
        other => TensorInfo {
            name: name.to_string(),
            dtype: other.to_string(),
            shape: Vec::new(),
            symbols: Vec::new(),
        },
    }
}

fn describe(session: &Session, sha256: String) -> ModelInfo {
    let opsets = ["", "ai.onnx.ml"]
        .iter()
        .filter_map(|d| {
            session
                .opset_for_domain(d)
                .filter(|&v| v > 0)
                .map(|v| (d.to_string(), v))
        })
        .collect();
    ModelInfo {
        inputs: session
            .inputs()
            .iter()
            .map(|o| tensor_info(o.name(), o.dtype()))
            .collect(),
        outputs: session
            .outputs()
            .iter()
            .map(|o| tensor_info(o.name(), o.dtype()))
            .collect(),
        opsets,
        producer: session.metadata().ok().and_then(|m| m.producer()),
        sha256,
    }
}

impl ModelSession {
    /// Whether a float32 tensor of this shape fits the graph input `name`; the error says how not.
    pub fn check_input(&self, name: &str, shape: &[usize]) -> Result<(), String> {
        let Some(input) = self.info.inputs.iter().find(|i| i.name == name) else {
            return Err(format!(
                "the model has no input tensor `{name}` (it has {})",
                names(&self.info.inputs)
            ));
        };
        if input.dtype != "f32" {
            return Err(format!(
                "input tensor `{name}` is {}, and voxflow feeds float32",
                input.dtype
            ));
        }
        let fits = input.shape.len() == shape.len()
            && input
                .shape
                .iter()
                .zip(shape)
                .all(|(&want, &got)| want < 0 || want as usize == got);
        if !fits {
            return Err(format!(
                "input tensor `{name}` takes shape {:?} (-1: any), but the manifest's processing makes {shape:?}",
                input.shape
            ));
        }
        Ok(())
    }

    /// Runs the model on one float32 input under `stop` (which may refuse it, end it while waiting for
    /// cores, or terminate it in flight); returns the named outputs as float32 tensors.
    pub fn run(
        &self,
        input: &str,
        tensor: &Tensor,
        outputs: &[String],
        stop: &RunStop,
    ) -> Result<Vec<Tensor>, String> {
        self.check_input(input, &tensor.shape)?;
        let value = TensorRef::from_array_view((tensor.shape.clone(), tensor.data.as_slice()))
            .map_err(|e| format!("input tensor `{input}`: {e}"))?;
        let stopped = || stop.is_stopped();
        let _turn = self
            .turn
            .acquire(1, &stopped)
            .ok_or("stopped while waiting for its turn on the model's session")?;
        // Only the turn's holder locks it, so this does not wait.
        let mut session = self
            .session
            .lock()
            .map_err(|_| "the session lock is poisoned".to_string())?;
        // On the CPU a run takes its threads' worth of the process's cores, in turn with other sessions'
        // runs (on a GPU the device queues them). Taken with the session's turn held, so that a run waiting
        // for this session holds no cores; a stopped run leaves either queue.
        let _cores = match self.provider {
            Provider::Cpu => Some(
                crate::cores::process_budget()
                    .acquire(self.intra_threads, &stopped)
                    .ok_or("stopped while waiting for cores")?,
            ),
            _ if stopped() => return Err("stopped before it ran".into()),
            _ => None,
        };
        let returned = session
            .run_with_options(ort::inputs![input => value], stop.options())
            .map_err(|e| {
                if stop.is_stopped() {
                    format!("stopped while running: {e}")
                } else {
                    format!("inference failed: {e}")
                }
            })?;
        outputs
            .iter()
            .map(|name| {
                let value = returned.get(name).ok_or_else(|| {
                    format!(
                        "the model has no output tensor `{name}` (it has {})",
                        names(&self.info.outputs)
                    )
                })?;
                let (shape, data) = value
                    .try_extract_tensor::<f32>()
                    .map_err(|e| format!("output tensor `{name}` is not float32: {e}"))?;
                Ok(Tensor {
                    shape: shape.iter().map(|&d| d.max(0) as usize).collect(),
                    data: data.to_vec(),
                })
            })
            .collect()
    }
}

fn names(tensors: &[TensorInfo]) -> String {
    tensors
        .iter()
        .map(|t| format!("`{}`", t.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a model file takes and returns (and its sha256), for `voxflow plugin inspect model.onnx`.
pub fn inspect_model(model: &Path, config: &RuntimeConfig) -> Result<ModelInfo, OnnxError> {
    Ok(open(model, None, config)?.info)
}
