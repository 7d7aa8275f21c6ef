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
