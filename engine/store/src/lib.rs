//! Run tracking: runs, step attempts, artifacts and events, in an embedded SQLite file by default or in
//! PostgreSQL, through sqlx. This crate is the only code in voxflow that writes SQL.
//!
//! Both back ends go through sqlx's `Any` driver with one set of queries (`$N` placeholders work on both),
//! so that every query is written once; the schema is in `migrations/sqlite` and `migrations/postgres`.
//! Values the `Any` driver cannot carry portably are stored simply: timestamps as epoch milliseconds,
//! JSON as text, flags as 0/1.

mod history;
mod records;
mod status;
mod tracker;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

pub use records::{ArtifactRecord, EventRecord, NewAttempt, NewRun, RunRecord, StepRunRecord};
pub use status::{RunStatus, StepStatus};
pub use tracker::{CachedOutputs, RunTracker};

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot apply database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error while {action}: {source}")]
    Query {
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("no run with id `{0}`")]
    RunNotFound(String),
    #[error("stored {what} is unreadable: {detail}")]
    Corrupt { what: &'static str, detail: String },
}

pub(crate) fn query_error(action: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { action, source }
}

/// A connection pool to the run database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) and applies pending migrations. An SQLite file
    /// that does not exist yet is created, with its folder, unless the URL sets its own `mode`.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(redact(url)));
        };
        let connect_error = |source| StoreError::Connect {
            url: redact(url),
            source,
        };
        let opened = match backend {
            Backend::Sqlite => {
                sqlite_creating(url).map_err(|e| connect_error(sqlx::Error::Io(e)))?
            }
            Backend::Postgres => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&opened).map_err(connect_error)?;
        // One direct attempt first: the pool would retry a refused connection until its acquire timeout,
        // while a user with a wrong URL or a stopped server deserves the reason at once.
        let probe = AnyConnection::connect_with(&options)
            .await
            .map_err(connect_error)?;
        let _ = probe.close().await;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers (`voxflow runs show`) work while a run writes; the busy timeout
                        // makes concurrent writers wait instead of failing.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                             PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(connect_error)?;
        let store = Store { pool, backend };
        store.migrate().await?;
        Ok(store)
    }

    /// Opens (creating if needed, with its folder) an SQLite database file.
    pub async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        Store::connect(&sqlite_url(path)).await
    }

    /// Applies the migrations that the database has not seen yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("../../migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("../../migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The URL of an SQLite file; `Store::connect` creates the file and its folder if missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// An `sqlite:` URL as sqlx should open it: a file that does not exist yet is created, and its folder, as
/// for the default database; a URL with its own `mode` (`?mode=ro`) or an in-memory database is left as
/// it is. Without this, sqlx opens an `sqlite://PATH` the user names read-write only and fails on a new
/// file with "unable to open database file".
fn sqlite_creating(url: &str) -> std::io::Result<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let sets_mode = query.is_some_and(|q| q.split('&').any(|pair| pair.starts_with("mode=")));
    if path.is_empty() || path.starts_with(":memory:") || sets_mode {
        return Ok(url.to_string());
    }
    // sqlx percent-decodes the path; the folder created must be the one it opens.
    let path = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    if let Some(parent) = Path::new(path.as_ref())
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)?;
    }
    let separator = if query.is_some() { '&' } else { '?' };
    Ok(format!("{url}{separator}mode=rwc"))
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }

    #[test]
    fn sqlite_urls_create_a_missing_file_unless_they_choose_a_mode() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("new/folder/runs.db");
        let url = format!("sqlite://{}", file.display());
        assert_eq!(sqlite_creating(&url).unwrap(), format!("{url}?mode=rwc"));
        assert!(dir.path().join("new/folder").is_dir());
        let with_query = format!("{url}?cache=shared");
        assert_eq!(
            sqlite_creating(&with_query).unwrap(),
            format!("{with_query}&mode=rwc")
        );
        let encoded = format!("sqlite://{}/a%20b/runs.db", dir.path().display());
        sqlite_creating(&encoded).unwrap();
        assert!(dir.path().join("a b").is_dir());
        assert_eq!(
            sqlite_creating("sqlite://relative.db").unwrap(),
            "sqlite://relative.db?mode=rwc"
        );
        for kept in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://?mode=memory",
            "sqlite://x.db?mode=ro",
            "sqlite://a.db?cache=shared&mode=rw",
        ] {
            assert_eq!(sqlite_creating(kept).unwrap(), kept);
        }
    }
}
