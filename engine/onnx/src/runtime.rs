//! ONNX Runtime's shared library, found and loaded once per process: from configuration (`--onnxruntime`),
//! the `VOXFLOW_ONNXRUNTIME` variable, or beside the voxflow binary, in that order. The `ort` crate loads it
//! at run time, so nothing is downloaded at build time; when it is missing, ONNX steps fail with how to get
//! it and every other step still runs.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::OnnxError;

/// The variable that names the library.
pub const LIBRARY_ENV: &str = "VOXFLOW_ONNXRUNTIME";

/// The library's file name on this platform.
pub const LIBRARY_FILE: &str = if cfg!(target_os = "windows") {
    "onnxruntime.dll"
} else if cfg!(target_os = "macos") {
    "libonnxruntime.dylib"
} else {
    "libonnxruntime.so"
};

const HOW_TO_GET: &str =
    "get it with `scripts/fetch-onnxruntime.sh` (ONNX Runtime 1.31 from its PyPI wheel) \
     and name it with --onnxruntime or VOXFLOW_ONNXRUNTIME, or put it beside the voxflow binary";

/// Where to run models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Cpu,
    /// NVIDIA GPUs; needs the GPU build of the library (`onnxruntime-gpu`).
    Cuda,
}

impl Provider {
    pub fn parse(name: &str) -> Option<Provider> {
        match name {
            "cpu" => Some(Provider::Cpu),
            "cuda" => Some(Provider::Cuda),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
        }
    }
}

/// The site's choices for ONNX steps; a step may override provider and threads.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeConfig {
    /// The library, when configured; else the variable, else beside the binary.
    pub library: Option<PathBuf>,
    pub provider: Provider,
    /// Threads inside one operator; default: the machine's cores.
    pub intra_threads: usize,
    /// The model variant the site prefers (e.g. `int8`) where a plugin lists one by that name; plugins
    /// without it run their default.
    pub variant: Option<String>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            library: None,
            provider: Provider::Cpu,
            intra_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            variant: None,
        }
    }
}

/// The library to load: the configured path, the variable's, or the file beside the running binary (or in
/// the build tree's `target/onnxruntime/`).
pub fn locate(configured: Option<&Path>) -> Result<PathBuf, OnnxError> {
    let named = configured
        .map(|p| (p.to_path_buf(), "--onnxruntime"))
        .or_else(|| std::env::var_os(LIBRARY_ENV).map(|p| (PathBuf::from(p), LIBRARY_ENV)));
    if let Some((path, from)) = named {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(OnnxError::RuntimeMissing(format!(
                "{from} names {}, which does not exist; {HOW_TO_GET}",
                path.display()
            )))
        };
    }
    let exe = std::env::current_exe().ok();
    // Beside the binary; and, in a build tree (target/release/voxflow, target/debug/deps/TEST), where
    // scripts/fetch-onnxruntime.sh puts it (target/onnxruntime/).
    let beside = exe
        .as_deref()
        .and_then(Path::parent)
        .into_iter()
        .flat_map(|dir| {
            [
                dir.join(LIBRARY_FILE),
                dir.join("../onnxruntime").join(LIBRARY_FILE),
                dir.join("../../onnxruntime").join(LIBRARY_FILE),
            ]
        });
    for candidate in beside {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(OnnxError::RuntimeMissing(format!(
        "no {LIBRARY_FILE} is configured, in {LIBRARY_ENV}, or beside {}; {HOW_TO_GET}",
        exe.as_deref()
            .map_or("the binary".into(), |e| e.display().to_string())
    )))
}

static ENVIRONMENT: OnceLock<Result<(PathBuf, ort::environment::Environment), String>> =
    OnceLock::new();

/// The process's ONNX Runtime environment, loading the library on first use. The first library loaded stays
/// for the life of the process.
pub fn environment(
    configured: Option<&Path>,
) -> Result<&'static ort::environment::Environment, OnnxError> {
    let loaded = ENVIRONMENT.get_or_init(|| {
        let path = locate(configured).map_err(|e| match e {
            OnnxError::RuntimeMissing(why) => why,
            other => other.to_string(),
        })?;
        let builder = ort::init_from(&path).map_err(|e| {
            format!(
                "ONNX Runtime could not be loaded from {}: {e}; {HOW_TO_GET}",
                path.display()
            )
        })?;
        let environment = builder
            .with_name("voxflow")
            .build()
            .map_err(|e| format!("ONNX Runtime from {} did not start: {e}", path.display()))?;
        Ok((path, environment))
    });
    match loaded {
        Ok((_, environment)) => Ok(environment),
        Err(message) => Err(OnnxError::RuntimeMissing(message.clone())),
    }
}

/// The library this process loaded, once it has.
pub fn loaded_library() -> Option<&'static Path> {
    match ENVIRONMENT.get() {
        Some(Ok((path, _))) => Some(path),
        _ => None,
    }
}
