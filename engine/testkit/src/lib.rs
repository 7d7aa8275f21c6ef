//! Helpers for tests in this workspace: where the real third-party test data is (`VOXFLOW_TESTDATA`), and a
//! fresh PostgreSQL database per test on the server named by `VOXFLOW_TEST_POSTGRES_URL` (default: the
//! local trust-auth server that CI starts).

use std::path::{Path, PathBuf};

use sqlx::any::AnyPoolOptions;
use sqlx::Executor;

/// The administrative connection used to create and drop test databases.
pub fn admin_url() -> String {
    std::env::var("VOXFLOW_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A newly created, empty database; dropped (best effort) by [`TestDatabase::drop_now`].
pub struct TestDatabase {
    pub url: String,
    name: String,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        sqlx::any::install_default_drivers();
        let admin = admin_url();
        let name = format!("voxflow_test_{}", uuid::Uuid::now_v7().simple());
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL is needed for this test at {admin} (set VOXFLOW_TEST_POSTGRES_URL): {e}")
            });
        pool.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        pool.close().await;
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        TestDatabase {
            url: format!("{base}/{name}"),
            name,
        }
    }

    pub async fn drop_now(self) {
        let admin = admin_url();
        if let Ok(pool) = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&admin)
            .await
        {
            let _ = pool
                .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
                .await;
            pool.close().await;
        }
    }
}

/// The folder of real test data: `VOXFLOW_TESTDATA`, or `../shared/data` beside the repository.
pub fn testdata_dir() -> PathBuf {
    match std::env::var_os("VOXFLOW_TESTDATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
    }
}

/// A path inside the test data, or None (after saying why on stderr) when it is absent, so the calling
/// test can return early: `let Some(dir) = testdata("dicom/dicomdir") else { return };`
pub fn testdata(relative: &str) -> Option<PathBuf> {
    let path = testdata_dir().join(relative);
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: test data {} is absent (set VOXFLOW_TESTDATA to the shared data folder)",
            path.display()
        );
        None
    }
}

/// The sha256 a plugin's manifest (`plugin_dir`/plugin.yaml) pins for its model variant `variant`, or for
/// its first (default) model with `None`: what an ONNX step records as the file that ran.
pub fn pinned_model_sha256(plugin_dir: &Path, variant: Option<&str>) -> String {
    let path = plugin_dir.join("plugin.yaml");
    let manifest =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let from = match variant {
        Some(name) => manifest.find(&format!("name: {name}, file:")),
        None => manifest.find("\nmodel:"),
    }
    .unwrap_or_else(|| panic!("{}: no model {variant:?}", path.display()));
    let at = from + manifest[from..].find("sha256: ").expect("a pinned sha256") + 8;
    manifest[at..at + 64].to_string()
}
