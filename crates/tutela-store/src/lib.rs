//! tutela-store: persistence behind one repository API, on SQLite (the embedded default)
//! or PostgreSQL (production), chosen by URL.
//!
//! Queries are written once, with `$n` placeholders that both engines accept, and run
//! through [`on_pool!`], which expands them for each backend so rows decode into concrete
//! types with no runtime `Any` layer. Everything that differs between the engines
//! (connection options, DDL, locking) lives in `sqlite.rs` and `postgres.rs`.

pub mod consents;
pub mod contact;
pub mod cookies;
pub mod deliveries;
pub mod erasure;
pub mod grants;
mod lease;
mod migrate;
mod postgres;
pub mod requests;
pub mod retention;
pub mod sharing;
mod sqlite;
pub mod subjects;
pub mod tenants;
pub mod tokens;
pub mod vault;

pub use lease::SealerLease;
pub use migrate::{MigrationStatus, SCHEMA_VERSION};

use std::path::Path;

/// Runs `$body` with `$pool` bound to the concrete pool of whichever backend is active.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Like [`on_pool!`], for statements that write. SQLite allows one writer at a time and
/// makes a second one wait in a busy handler that sleeps in millisecond steps; routing
/// every write through one dedicated connection turns that into a fair async queue.
/// PostgreSQL writes share the main pool.
macro_rules! on_writer {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.writer {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_writer;

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Errors from the store. Messages never include personal data.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database url: expected `sqlite:PATH` or `postgres://...`")]
    UnsupportedUrl,
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error(
        "the database schema is at version {found}, newer than this tutela binary supports \
         (version {supported}); run a tutela release that knows it, or restore a backup"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("database migration {version} ({description}) failed: {source}")]
    Migration {
        version: i64,
        description: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
    #[error("a row with this key already exists")]
    Conflict,
    /// Two sealers assigned tree indexes at once; the loser's batch was rolled back.
    #[error("audit entries were sealed concurrently by another sealer")]
    ConcurrentSeal,
    #[error("database error: {0}")]
    Db(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict,
            _ => StoreError::Db(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The repository. Cheap to clone (pools are shared).
#[derive(Debug, Clone)]
pub struct Store {
    /// Reads (SQLite: several connections; WAL lets them run beside the writer).
    pub(crate) pool: Pool,
    /// Writes (SQLite: one connection; PostgreSQL: the same pool as reads).
    pub(crate) writer: Pool,
}

impl Store {
    /// Opens a store. `url` is `postgres://...`, `postgresql://...`, or `sqlite:PATH`
    /// (a plain path is taken as SQLite). The SQLite file is created if missing.
    pub async fn connect(url: &str) -> Result<Self> {
        let path = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = Pool::Postgres(postgres::connect(url).await?);
            return Ok(Self {
                writer: pool.clone(),
                pool,
            });
        } else if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            path
        } else if url.contains("://") {
            return Err(StoreError::UnsupportedUrl);
        } else {
            url
        };
        let (readers, writer) = sqlite::connect(Path::new(path)).await?;
        Ok(Self {
            pool: Pool::Sqlite(readers),
            writer: Pool::Sqlite(writer),
        })
    }

    /// Opens the store and brings its schema to this binary's version (refusing a newer one).
    pub async fn open(url: &str, now: time::OffsetDateTime) -> Result<Self> {
        let store = Self::connect(url).await?;
        store.migrate(now).await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Is the database reachable? (for health checks)
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, |p| sqlx::query("SELECT 1")
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Closes every connection (on shutdown; flushes the SQLite WAL).
    pub async fn close(&self) {
        on_pool!(self, |p| p.close().await);
        on_writer!(self, |p| p.close().await);
    }

    /// Lists `(table, column)` pairs of tutela's own tables, sorted: lets a test check
    /// that both migration trees produce the same schema.
    pub async fn schema_columns(&self) -> Result<Vec<(String, String)>> {
        let mut cols = match &self.pool {
            Pool::Sqlite(p) => sqlite::schema_columns(p).await?,
            Pool::Postgres(p) => postgres::schema_columns(p).await?,
        };
        cols.sort();
        Ok(cols)
    }
}

/// Unix microseconds of a time, as stored.
pub(crate) fn to_micros(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// A stored Unix-microseconds value back to a time.
pub(crate) fn from_micros(us: i64) -> Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .map_err(|_| StoreError::Corrupt(format!("timestamp {us} out of range")))
}

/// Maps a stored vocabulary string back to its type, or reports corruption.
pub(crate) fn parse_col<T, E: std::fmt::Display>(
    column: &str,
    value: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T> {
    parse(value).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}
