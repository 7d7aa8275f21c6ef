//! `voxflow db migrate`: applies the schema migrations (they also run automatically on connect).

use clap::Subcommand;

use crate::settings::GlobalArgs;

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply pending migrations to the database.
    Migrate,
}

pub async fn run(global: &GlobalArgs, cmd: DbCommand) -> anyhow::Result<u8> {
    match cmd {
        DbCommand::Migrate => {
            let store = global.open_store().await?;
            store.migrate().await?;
            println!(
                "database at {} is up to date",
                voxflow_store::redact(&global.database_url())
            );
            store.close().await;
            Ok(0)
        }
    }
}
