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
mod group_sync;
mod lease;
mod migrate;
mod postgres;
pub mod requests;
pub mod retention;
mod script;
pub mod sharing;
mod sqlite;
pub mod subjects;
pub mod tenants;
pub mod tokens;
pub mod vault;

pub use lease::SealerLease;
pub use migrate::{MigrationStatus, SCHEMA_VERSION};

use std::path::Path;

/// Runs `$body` with `$pool` bound to a reader of whichever backend is active: on SQLite a
/// lent `&mut SqliteConnection` (see `sqlite::Readers`), on PostgreSQL the `&PgPool`.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite(readers) => {
                let mut lent = readers.lend().await?;
                let $pool: &mut sqlx::SqliteConnection = lent.conn()?;
                $body
            }
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Like [`on_pool!`], for statements that write. SQLite allows one writer at a time and
/// makes a second one wait in a busy handler that sleeps in millisecond steps, so every
/// SQLite write goes through one dedicated connection, handed from writer to writer by a
/// fair async mutex: `$pool` is then `&mut SqliteConnection`. (It is not a one-connection
/// pool: sqlx's pool pings a connection on every release, from a spawned task, which put
/// a worker-thread round trip and a task hop between every two write transactions.)
/// PostgreSQL writes share the main pool; `$pool` is `&PgPool`.
///
/// On SQLite, `$body` must finish its transaction, and the write is made durable after it
/// by a group-commit barrier (see `group_sync.rs`): when a store method returns, what it
/// wrote is on stable storage, as with `synchronous=FULL`, at a fraction of the syncs.
macro_rules! on_writer {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.writer {
            $crate::Writer::Sqlite { conn, sync } => {
                let out = {
                    #[allow(
                        unused_imports,
                        reason = "bodies that begin a transaction need the trait"
                    )]
                    use sqlx::Connection as _;
                    let mut guard = conn.lock().await;
                    let $pool: &mut sqlx::SqliteConnection =
                        guard.as_mut().ok_or($crate::StoreError::Closed)?;
                    $body
                };
                sync.barrier().await?;
                out
            }
            $crate::Writer::Postgres($pool) => $body,
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
    Sqlite(std::sync::Arc<sqlite::Readers>),
    Postgres(sqlx::PgPool),
}

/// Where writes go (see [`on_writer!`]).
#[derive(Debug, Clone)]
pub(crate) enum Writer {
    Sqlite {
        /// The one writer connection; `None` once the store is closed.
        conn: std::sync::Arc<tokio::sync::Mutex<Option<sqlx::SqliteConnection>>>,
        /// The group commit every write passes through (PostgreSQL syncs at commit).
        sync: std::sync::Arc<group_sync::GroupSync>,
    },
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
    #[error("the store is closed")]
    Closed,
    /// Syncing to stable storage failed; the store refuses writes until restarted.
    #[error("the store cannot make writes durable: {0}")]
    Durability(std::sync::Arc<str>),
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
    pub(crate) writer: Writer,
}

impl Store {
    /// Opens a store. `url` is `postgres://...`, `postgresql://...`, or `sqlite:PATH`
    /// (a plain path is taken as SQLite). The SQLite file is created if missing.
    pub async fn connect(url: &str) -> Result<Self> {
        let path = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = postgres::connect(url).await?;
            return Ok(Self {
                writer: Writer::Postgres(pool.clone()),
                pool: Pool::Postgres(pool),
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
        let readers = std::sync::Arc::new(readers);
        let sync = group_sync::GroupSync::new(Path::new(path), Some(readers.clone()));
        Ok(Self {
            pool: Pool::Sqlite(readers),
            writer: Writer::Sqlite {
                conn: std::sync::Arc::new(tokio::sync::Mutex::new(Some(writer))),
                sync: std::sync::Arc::new(sync),
            },
        })
    }

    /// Opens the store and brings its schema to this binary's version (refusing a newer one).
    pub async fn open(url: &str, now: time::OffsetDateTime) -> Result<Self> {
        let store = Self::connect(url).await?;
        store.migrate(now).await?;
        Ok(store)
    }

    /// WAL syncs performed by SQLite's group commit (0 on PostgreSQL): each covers every
    /// write committed before it started.
    pub fn durable_syncs(&self) -> u64 {
        match &self.writer {
            Writer::Sqlite { sync, .. } => sync.syncs(),
            Writer::Postgres(_) => 0,
        }
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
        match &self.pool {
            Pool::Sqlite(readers) => readers.close().await,
            Pool::Postgres(p) => p.close().await,
        }
        match &self.writer {
            Writer::Sqlite { conn, .. } => {
                if let Some(conn) = conn.lock().await.take() {
                    if let Err(e) = sqlx::Connection::close(conn).await {
                        tracing::warn!(error = %e, "closing the SQLite writer connection failed");
                    }
                }
            }
            Writer::Postgres(p) => p.close().await,
        }
    }

    /// Lists `(table, column)` pairs of tutela's own tables, sorted: lets a test check
    /// that both migration trees produce the same schema.
    pub async fn schema_columns(&self) -> Result<Vec<(String, String)>> {
        let mut cols = match &self.pool {
            Pool::Sqlite(readers) => {
                let mut lent = readers.lend().await?;
                sqlite::schema_columns(lent.conn()?).await?
            }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::requests::StoredRequest;
    use crate::subjects::Subject;
    use crate::tenants::Tenant;
    use crate::vault::AuditEntry;
    use time::OffsetDateTime;
    use tutela_core::request::{RequestStatus, RequestType};
    use tutela_core::tenant::{SubjectKind, TenantKind, TenantName, TenantState};
    use tutela_core::{SubjectId, TenantId};

    async fn sqlite_store(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        Store::open(&url, OffsetDateTime::UNIX_EPOCH).await.unwrap()
    }

    fn audit(n: u8, action: &str) -> AuditEntry {
        AuditEntry {
            id: format!("aud_test_{n}"),
            at: OffsetDateTime::UNIX_EPOCH,
            token_id: "tok_test".into(),
            role: "privacy_officer".into(),
            tenant: None,
            subject: None,
            category: None,
            purpose: None,
            action: action.into(),
            decision: "allow".into(),
            reason: "test".into(),
            clause: None,
            seq: None,
        }
    }

    /// The group-commit contract (`group_sync.rs`): a write method returns only after a
    /// WAL sync that started after its commit; reads cause none.
    #[tokio::test]
    async fn sqlite_writes_return_after_a_wal_sync_and_reads_cause_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        let after_migrations = store.durable_syncs();
        assert!(after_migrations >= 1, "migrations are writes too");
        store.ping().await.unwrap();
        store.request("req_missing").await.unwrap();
        assert_eq!(store.durable_syncs(), after_migrations);
        store.append_audit(&audit(1, "test.write")).await.unwrap();
        assert!(store.durable_syncs() > after_migrations);
    }

    /// A request transition and its audit entry run as one script (one round trip on
    /// SQLite): a stale expected status changes nothing and writes no audit entry (R35).
    #[tokio::test]
    async fn a_stale_request_transition_is_a_conflict_and_leaves_no_audit_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        let now = OffsetDateTime::UNIX_EPOCH;
        let tenant = TenantId::from_bytes([1; 16]);
        let subject = SubjectId::from_bytes([2; 16]);
        store
            .insert_tenant(
                &Tenant {
                    id: tenant.clone(),
                    name: crate::tenants::StoredName::Clear(
                        TenantName::parse("Test tenant").unwrap(),
                    ),
                    kind: TenantKind::Enterprise,
                    state: TenantState::Active,
                    created_at: now,
                    frozen_until: None,
                    trial_ends_at: None,
                    closed_at: None,
                },
                None,
                None,
            )
            .await
            .unwrap();
        store
            .insert_subject(&Subject {
                id: subject.clone(),
                tenant: tenant.clone(),
                kind: SubjectKind::Contact,
                adult_on: None,
                created_at: now,
                erased_at: None,
                frozen_until: None,
                frozen_ground: None,
            })
            .await
            .unwrap();
        let filed = StoredRequest {
            id: "req_test".into(),
            subject,
            tenant,
            kind: RequestType::Delete,
            status: RequestStatus::Received,
            filed_by: "tok_test".into(),
            filed_role: "tenant_admin".into(),
            received_at: now,
            due_at: now,
            confirmed: false,
            extended: false,
            sealed_text: None,
            verification_method: None,
            verification_ref: None,
            refusal_ground: None,
            updated_at: now,
        };
        store
            .insert_request_audited(&filed, &audit(1, "request.filed"))
            .await
            .unwrap();
        let verified = StoredRequest {
            status: RequestStatus::IdentityVerified,
            verification_method: Some("document".into()),
            ..filed.clone()
        };
        store
            .update_request_audited(
                &verified,
                RequestStatus::Received,
                &audit(2, "request.verified"),
            )
            .await
            .unwrap();
        // A second writer that still believes the request is `received` loses.
        let stale = StoredRequest {
            status: RequestStatus::Refused,
            ..filed
        };
        let err = store
            .update_request_audited(
                &stale,
                RequestStatus::Received,
                &audit(3, "request.refused"),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict), "{err}");
        let now_stored = store.request("req_test").await.unwrap().unwrap();
        assert_eq!(now_stored.status, RequestStatus::IdentityVerified);
        assert_eq!(now_stored.verification_method.as_deref(), Some("document"));
        let actions: Vec<String> = store
            .audit_by_reason("test")
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(actions, ["request.filed", "request.verified"]);
    }
}
