//! tutela-store: persistence behind one repository API, on SQLite (the embedded default)
//! or PostgreSQL (production), chosen by URL.
//!
//! Queries are written once, with `$n` placeholders that both engines accept, as closures
//! over a [`Db`] handle run by [`Store::read`] and [`Store::write`] (`db/mod.rs`).
//! Everything that differs between the engines (drivers, connection options, migration
//! trees, locking clauses, schema listing) lives in `db/sqlite.rs` and `db/postgres.rs`.

pub mod audit;
pub mod consents;
pub mod contact;
pub mod cookies;
pub mod db;
pub mod deliveries;
pub mod erasure;
pub mod grants;
pub mod keys;
mod lease;
mod migrate;
pub mod records;
pub mod requests;
pub mod retention;
pub mod sharing;
pub mod subjects;
pub mod tenants;
pub mod tokens;

pub use audit::{AuditEntry, HeadRow};
pub use db::{BoxFut, Db, FromRow, FromValue, Row, Value};
pub use keys::WrappedKeys;
pub use lease::SealerLease;
pub use migrate::{MigrationStatus, SCHEMA_VERSION};
pub use records::{RecordExtras, SealedRecord};

use db::{PgEngine, SqliteEngine};
use std::path::Path;
use std::sync::Arc;

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

/// A boxed error from a database driver (rusqlite or sqlx); never carries row values.
pub type DriverError = Box<dyn std::error::Error + Send + Sync>;

/// Errors from the store. Messages never include personal data.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database url: expected `sqlite:PATH` or `postgres://...`")]
    UnsupportedUrl,
    #[error("cannot open the database: {0}")]
    Connect(#[source] DriverError),
    #[error(
        "the database schema is at version {found}, newer than this tutela binary supports \
         (version {supported}); run a tutela release that knows it, or restore a backup"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error(
        "database migration {version} ({description}) was applied with different content than \
         this binary carries (checksum {applied} in the database, {embedded} here): a released \
         migration must never be edited; restore the original file or a backup"
    )]
    MigrationEdited {
        version: i64,
        description: String,
        applied: String,
        embedded: String,
    },
    #[error("database migration {version} ({description}) failed: {source}")]
    Migration {
        version: i64,
        description: &'static str,
        #[source]
        source: Box<StoreError>,
    },
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
    #[error("a row with this key already exists")]
    Conflict,
    /// Two sealers assigned tree indexes at once; the loser's batch was rolled back.
    #[error("audit entries were sealed concurrently by another sealer")]
    ConcurrentSeal,
    #[error("database error: {0}")]
    Db(#[source] DriverError),
    #[error("the store is closed")]
    Closed,
    /// A store closure awaited something other than the database on SQLite's writer
    /// thread, which runs each transaction to completion without waiting (`db/mod.rs`).
    #[error("a store transaction waited on something other than the database")]
    Yielded,
    /// Syncing to stable storage failed; the store refuses writes until restarted.
    #[error("the store cannot make writes durable: {0}")]
    Durability(std::sync::Arc<str>),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
enum Engine {
    Sqlite(Arc<SqliteEngine>),
    Postgres(PgEngine),
}

/// The repository. Cheap to clone (engines are shared).
///
/// Every method is a closure over a [`Db`] handle run by [`Store::read`],
/// [`Store::write`] or [`Store::scan`] (see `db/mod.rs`).
#[derive(Debug, Clone)]
pub struct Store {
    engine: Engine,
}

impl Store {
    /// Opens a store. `url` is `postgres://...`, `postgresql://...`, or `sqlite:PATH`
    /// (a plain path is taken as SQLite). The SQLite file is created if missing.
    pub async fn connect(url: &str) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self {
                engine: Engine::Postgres(PgEngine::connect(url).await?),
            });
        }
        let path = if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            path
        } else if url.contains("://") {
            return Err(StoreError::UnsupportedUrl);
        } else {
            url
        };
        if path.is_empty() || path == ":memory:" || path.starts_with("file:") {
            // Each connection to `:memory:` is its own database: readers would never see
            // what the writer wrote.
            return Err(StoreError::UnsupportedUrl);
        }
        let path = path.to_owned();
        let engine = tokio::task::spawn_blocking(move || SqliteEngine::open(Path::new(&path)))
            .await
            .map_err(|e| StoreError::Connect(Box::new(e)))??;
        Ok(Self {
            engine: Engine::Sqlite(Arc::new(engine)),
        })
    }

    /// Opens the store and brings its schema to this binary's version (refusing a newer one).
    pub async fn open(url: &str, now: time::OffsetDateTime) -> Result<Self> {
        let store = Self::connect(url).await?;
        store.migrate(now).await?;
        Ok(store)
    }

    /// Runs `f` in one write transaction: committed if it returns `Ok` (and durable when
    /// this returns), rolled back if it returns `Err`. On SQLite `f` runs on the writer
    /// thread and must not await anything but `db` (see `db/mod.rs`).
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Db<'static>) -> BoxFut<'c, T> + Send + 'static,
    {
        match &self.engine {
            Engine::Sqlite(e) => e.write(f).await,
            Engine::Postgres(e) => e.write(f).await,
        }
    }

    /// Runs `f` on a reader connection: for short, indexed reads (on SQLite it runs in
    /// place on the calling task).
    pub async fn read<'a, T, F>(&self, f: F) -> Result<T>
    where
        F: for<'c> FnOnce(&'c mut Db<'a>) -> BoxFut<'c, T> + Send + 'a,
    {
        match &self.engine {
            Engine::Sqlite(e) => e.read(f).await,
            Engine::Postgres(e) => e.read(f).await,
        }
    }

    /// Like [`Store::read`], for reads that may run for milliseconds (exports, scans of
    /// the audit log): on SQLite they run on the blocking pool, off the runtime workers.
    pub async fn scan<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Db<'static>) -> BoxFut<'c, T> + Send + 'static,
    {
        match &self.engine {
            Engine::Sqlite(e) => e.scan(f).await,
            Engine::Postgres(e) => e.read(f).await,
        }
    }

    /// WAL syncs performed by SQLite's group commit (0 on PostgreSQL): each covers every
    /// write committed before it started.
    pub fn durable_syncs(&self) -> u64 {
        match &self.engine {
            Engine::Sqlite(e) => e.durable_syncs(),
            Engine::Postgres(_) => 0,
        }
    }

    pub fn backend(&self) -> Backend {
        match self.engine {
            Engine::Sqlite(_) => Backend::Sqlite,
            Engine::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite database file (`None` on PostgreSQL).
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.engine {
            Engine::Sqlite(e) => Some(e.path()),
            Engine::Postgres(_) => None,
        }
    }

    pub(crate) fn pg_pool(&self) -> Option<&sqlx::PgPool> {
        match &self.engine {
            Engine::Sqlite(_) => None,
            Engine::Postgres(e) => Some(&e.pool),
        }
    }

    /// Is the database reachable? (for health checks)
    pub async fn ping(&self) -> Result<()> {
        self.read(|db| {
            Box::pin(async move {
                let _: (i64,) = db.fetch_one("SELECT 1", &[]).await?;
                Ok(())
            })
        })
        .await
    }

    /// Closes every connection (on shutdown; SQLite: queued writes finish first and the
    /// WAL is checkpointed).
    pub async fn close(&self) {
        match &self.engine {
            Engine::Sqlite(e) => e.close().await,
            Engine::Postgres(e) => e.close().await,
        }
    }

    /// The shape of tutela's tables (columns with normalized types and nullability,
    /// indexes with their columns and uniqueness): lets a test check that both migration
    /// trees produce the same schema.
    pub async fn schema_shape(&self) -> Result<SchemaShape> {
        let dialect = db::dialect(self.backend());
        let (columns, indexes) = self
            .read(|db| {
                Box::pin(async move {
                    let columns: Vec<(String, String, String, bool)> =
                        db.fetch_all(dialect.schema_columns, &[]).await?;
                    let indexes: Vec<(String, bool, String)> =
                        db.fetch_all(dialect.schema_indexes, &[]).await?;
                    Ok((columns, indexes))
                })
            })
            .await?;
        let mut shape = SchemaShape {
            columns: columns
                .into_iter()
                .filter(|(t, ..)| t != "tutela_schema")
                .map(|(t, c, ty, not_null)| (t, c, (dialect.normalize_type)(&ty), not_null))
                .collect(),
            indexes: indexes
                .into_iter()
                .filter(|(t, ..)| t != "tutela_schema")
                .collect(),
        };
        shape.columns.sort();
        shape.indexes.sort();
        Ok(shape)
    }
}

/// The observable shape of the schema (see [`Store::schema_shape`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaShape {
    /// `(table, column, type, not null)`; types normalized to
    /// `integer`/`text`/`blob`/`boolean`/`real`.
    pub columns: Vec<(String, String, String, bool)>,
    /// `(table, unique, comma-separated columns)` of every secondary index and unique
    /// constraint (names differ between the trees; what they cover must not).
    pub indexes: Vec<(String, bool, String)>,
}

impl SchemaShape {
    /// What differs from `other`, as readable lines (empty when the shapes match). A
    /// column typed `integer` on one side matches `boolean` on the other: SQLite has no
    /// boolean type and stores booleans as 0 and 1.
    pub fn differences(&self, other: &SchemaShape) -> Vec<String> {
        let same_type = |a: &str, b: &str| {
            a == b || matches!((a, b), ("integer", "boolean") | ("boolean", "integer"))
        };
        let mut out = Vec::new();
        for (side, a, b) in [
            ("only in the first", self, other),
            ("only in the second", other, self),
        ] {
            for (t, c, ty, nn) in &a.columns {
                let matched = b.columns.iter().any(|(t2, c2, ty2, nn2)| {
                    t == t2 && c == c2 && nn == nn2 && same_type(ty, ty2)
                });
                if !matched {
                    out.push(format!("column {side}: {t}.{c} {ty} not_null={nn}"));
                }
            }
            for (t, unique, cols) in &a.indexes {
                if !b.indexes.contains(&(t.clone(), *unique, cols.clone())) {
                    out.push(format!("index {side}: {t} ({cols}) unique={unique}"));
                }
            }
        }
        out
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

#[cfg(test)]
#[cfg(test)]
mod tests;
