//! Options shared by every command (where the database and the data live, how logs look) and the setup
//! that follows from them.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use voxflow_artifact::ArtifactStore;
use voxflow_store::Store;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Database URL (sqlite://PATH or postgres://USER@HOST/DB); default: an SQLite file in the data directory.
    #[arg(long, global = true, env = "VOXFLOW_DATABASE_URL")]
    pub database: Option<String>,
    /// Where artifacts (and the default SQLite database) are kept.
    #[arg(
        long,
        global = true,
        env = "VOXFLOW_DATA_DIR",
        default_value = ".voxflow"
    )]
    pub data_dir: PathBuf,
    /// Folder of plugins (one folder each with a plugin.yaml); workflows use them as `wasm/NAME`.
    #[arg(
        long,
        global = true,
        env = "VOXFLOW_PLUGINS",
        default_value = "plugins"
    )]
    pub plugins: PathBuf,
    /// ONNX Runtime's shared library (libonnxruntime.so); default: VOXFLOW_ONNXRUNTIME, else beside the
    /// voxflow binary. `scripts/fetch-onnxruntime.sh` fetches it.
    #[arg(long, global = true)]
    pub onnxruntime: Option<PathBuf>,
    /// Where ONNX models run unless a step says otherwise: cpu or cuda (needs the GPU build of the library).
    #[arg(
        long,
        global = true,
        env = "VOXFLOW_ONNX_PROVIDER",
        default_value = "cpu"
    )]
    pub onnx_provider: String,
    /// Threads inside each ONNX operator; default: the machine's cores.
    #[arg(long, global = true, env = "VOXFLOW_ONNX_THREADS")]
    pub onnx_threads: Option<usize>,
    /// Cores that ONNX runs on the CPU share: a run takes as many as it has threads and waits its turn
    /// when they are held, so steps running side by side do not crowd the cores; default: the machine's.
    #[arg(long, global = true, env = "VOXFLOW_ONNX_CORES")]
    pub onnx_cores: Option<usize>,
    /// The model variant (e.g. int8) ONNX plugins run where they list one by that name; a step's
    /// `with: {variant: ...}` overrides it; plugins without it run their first.
    #[arg(long, global = true, env = "VOXFLOW_ONNX_VARIANT")]
    pub onnx_variant: Option<String>,
    /// Log line format on stderr (levels from RUST_LOG, default warn).
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl GlobalArgs {
    pub fn database_url(&self) -> String {
        self.database
            .clone()
            .unwrap_or_else(|| voxflow_store::sqlite_url(&self.data_dir.join("voxflow.db")))
    }

    pub async fn open_store(&self) -> anyhow::Result<Store> {
        std::fs::create_dir_all(&self.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                self.data_dir.display()
            )
        })?;
        let url = self.database_url();
        Store::connect(&url)
            .await
            .context("cannot open the run database")
    }

    /// Where compiled WebAssembly components are cached: VOXFLOW_COMPONENT_CACHE (one cache shared between
    /// data directories, as the tests do), else DATA_DIR/components.
    pub fn component_cache(&self) -> PathBuf {
        std::env::var_os("VOXFLOW_COMPONENT_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.data_dir.join("components"))
    }

    /// The site's ONNX Runtime choices.
    pub fn onnx_config(&self) -> anyhow::Result<voxflow_onnx::RuntimeConfig> {
        let mut config = voxflow_onnx::RuntimeConfig {
            library: self.onnxruntime.clone(),
            variant: self.onnx_variant.clone().filter(|v| !v.is_empty()),
            ..Default::default()
        };
        config.provider =
            voxflow_onnx::Provider::parse(&self.onnx_provider).with_context(|| {
                format!("--onnx-provider `{}`: use cpu or cuda", self.onnx_provider)
            })?;
        if let Some(threads) = self.onnx_threads.filter(|&t| t > 0) {
            config.intra_threads = threads;
        }
        if let Some(cores) = self.onnx_cores.filter(|&c| c > 0) {
            // Process-wide, like the library: set while the plugins are loaded, before any step runs.
            match voxflow_onnx::cores::configure_process_cores(cores) {
                Err(in_use) if in_use != cores => tracing::warn!(
                    "--onnx-cores {cores} comes after ONNX runs started with {in_use} cores; those stay"
                ),
                _ => {}
            }
        }
        Ok(config)
    }

    pub fn open_artifacts(&self) -> anyhow::Result<ArtifactStore> {
        ArtifactStore::open(&self.data_dir).context("cannot open the artifact store")
    }
}

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
