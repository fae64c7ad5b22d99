//! PostgreSQL on its async driver (sqlx): a pool, a transaction per write closure, and
//! the conversion of typed columns to [`Value`]s.

use super::{BoxFut, Conn, Db, Row, Value};
use crate::{Result, StoreError};
use sqlx::postgres::{PgArguments, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::{Column as _, PgConnection, PgPool, Postgres, Row as _, TypeInfo as _};
use std::time::Duration;

/// The PostgreSQL side of a store.
#[derive(Debug, Clone)]
pub(crate) struct PgEngine {
    pub(crate) pool: PgPool,
}

impl PgEngine {
    pub(crate) async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            // A pooled connection is checked by its next statement; pinging it before
            // each loan doubled the round trips of a one-statement read.
            .test_before_acquire(false)
            .connect(url)
            .await
            .map_err(|e| StoreError::Connect(Box::new(e)))?;
        Ok(Self { pool })
    }

    /// Runs `f` on a pooled connection (no transaction).
    pub(crate) async fn read<'a, T, F>(&self, f: F) -> Result<T>
    where
        F: for<'c> FnOnce(&'c mut Db<'a>) -> BoxFut<'c, T> + Send + 'a,
    {
        let conn = self.pool.acquire().await?;
        let mut db = Db::new(Conn::Pg(conn));
        f(&mut db).await
    }

    /// Runs `f` in a transaction; commits if it returns `Ok`, else rolls back.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        F: for<'c> FnOnce(&'c mut Db<'static>) -> BoxFut<'c, T> + Send,
    {
        let tx = self.pool.begin().await?;
        let mut db = Db::new(Conn::PgTx(tx));
        let out = f(&mut db).await;
        let Conn::PgTx(tx) = db.into_conn() else {
            return Err(StoreError::Closed);
        };
        match out {
            Ok(value) => {
                tx.commit().await?;
                Ok(value)
            }
            Err(e) => {
                if let Err(rollback) = tx.rollback().await {
                    tracing::warn!(error = %rollback, "rolling back a PostgreSQL transaction failed");
                }
                Err(e)
            }
        }
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

fn bind<'q>(sql: &'q str, params: &'q [Value]) -> Query<'q, Postgres, PgArguments> {
    let mut q = sqlx::query(sql);
    for p in params {
        q = match p {
            Value::Int(v) => q.bind(*v),
            Value::Real(v) => q.bind(*v),
            Value::Bool(v) => q.bind(*v),
            Value::Text(v) => q.bind(v.as_deref()),
            Value::Blob(v) => q.bind(v.as_deref()),
        };
    }
    q
}

fn decode(row: &PgRow) -> Result<Row> {
    let mut out = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let value = match column.type_info().name() {
            "INT8" => Value::Int(row.try_get::<Option<i64>, _>(i)?),
            "INT4" => Value::Int(row.try_get::<Option<i32>, _>(i)?.map(i64::from)),
            "INT2" => Value::Int(row.try_get::<Option<i16>, _>(i)?.map(i64::from)),
            "BOOL" => Value::Bool(row.try_get::<Option<bool>, _>(i)?),
            "FLOAT8" => Value::Real(row.try_get::<Option<f64>, _>(i)?),
            "FLOAT4" => Value::Real(row.try_get::<Option<f32>, _>(i)?.map(f64::from)),
            "TEXT" | "VARCHAR" | "NAME" | "BPCHAR" => {
                Value::Text(row.try_get::<Option<String>, _>(i)?)
            }
            "BYTEA" => Value::Blob(row.try_get::<Option<Vec<u8>>, _>(i)?),
            other => {
                return Err(StoreError::Corrupt(format!(
                    "column {i} has a type the store does not read: {other}"
                )))
            }
        };
        out.push(value);
    }
    Ok(Row(out))
}

pub(super) async fn execute(conn: &mut PgConnection, sql: &str, params: &[Value]) -> Result<u64> {
    Ok(bind(sql, params).execute(conn).await?.rows_affected())
}

pub(super) async fn execute_script(conn: &mut PgConnection, sql: &str) -> Result<()> {
    // A `&str` with no arguments goes over the simple-query protocol, which takes
    // several statements at once.
    sqlx::Executor::execute(conn, sql).await?;
    Ok(())
}

pub(super) async fn query(
    conn: &mut PgConnection,
    sql: &str,
    params: &[Value],
) -> Result<Vec<Row>> {
    bind(sql, params)
        .fetch_all(conn)
        .await?
        .iter()
        .map(decode)
        .collect()
}

pub(super) async fn query_first(
    conn: &mut PgConnection,
    sql: &str,
    params: &[Value],
) -> Result<Option<Row>> {
    bind(sql, params)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(decode)
        .transpose()
}

/// What differs in SQL text on PostgreSQL (see [`super::Dialect`]).
pub(crate) const DIALECT: super::Dialect = super::Dialect {
    migrations: MIGRATIONS,
    // Replicas starting together must not race each other through DDL ("tutela" in ASCII).
    migration_lock: Some("SELECT pg_advisory_xact_lock(128047812799585)"),
    has_checksum_column: "SELECT COUNT(*) FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = 'tutela_schema' \
           AND column_name = 'checksum'",
    // Replicas claim work concurrently: each skips rows another has locked.
    skip_locked: " FOR UPDATE SKIP LOCKED",
    schema_columns:
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable = 'NO' \
         FROM information_schema.columns WHERE table_schema = current_schema()",
    schema_indexes: "SELECT t.relname::text, ix.indisunique, \
           (SELECT string_agg(a.attname::text, ',' ORDER BY k.ord) \
              FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, ord) \
              JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum) \
         FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid \
           JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = current_schema() AND NOT ix.indisprimary",
    normalize_type: super::normalize_type,
    rows_per_statement: 500,
    after_bulk_import: Some("ANALYZE subjects, subject_keys, records"),
};

/// Takes a session-level advisory lock on a connection of its own (detached from the
/// pool, so no other task can inherit the lock): the sealer lease (`lease.rs`).
pub(crate) async fn try_session_lock(pool: &PgPool, key: i64) -> Result<Option<PgConnection>> {
    let mut session = pool.acquire().await?.detach();
    let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&mut session)
        .await?;
    Ok(got.then_some(session))
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict,
            _ => StoreError::Db(Box::new(e)),
        }
    }
}

/// The migration tree (`migrations/postgres`): version, description, SQL. Released
/// entries are never edited (their checksums are checked at start, `migrate.rs`).
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation: tenants, subjects, api tokens",
        include_str!("../../migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        "vault: wrapped keys, encrypted records, audit entries",
        include_str!("../../migrations/postgres/0002_vault.sql"),
    ),
    (
        3,
        "lookup: blind indexes of e-mail addresses and phone numbers",
        include_str!("../../migrations/postgres/0003_lookup.sql"),
    ),
    (
        4,
        "consent: the append-only consent ledger",
        include_str!("../../migrations/postgres/0004_consent.sql"),
    ),
    (
        5,
        "contact: preferences and the outbound message gate",
        include_str!("../../migrations/postgres/0005_contact.sql"),
    ),
    (
        6,
        "cookie: website visitors' cookie consent",
        include_str!("../../migrations/postgres/0006_cookie.sql"),
    ),
    (
        7,
        "successor: purpose changes under a new controller",
        include_str!("../../migrations/postgres/0007_successor.sql"),
    ),
    (
        8,
        "grants: just-in-time support access",
        include_str!("../../migrations/postgres/0008_grants.sql"),
    ),
    (
        9,
        "sharing: storage locations, recipients, the transfer register",
        include_str!("../../migrations/postgres/0009_sharing.sql"),
    ),
    (
        10,
        "complaints: third-party complaints redirected to the customer",
        include_str!("../../migrations/postgres/0010_complaints.sql"),
    ),
    (
        11,
        "record location: where each record is stored",
        include_str!("../../migrations/postgres/0011_record_location.sql"),
    ),
    (
        12,
        "requests: data-subject requests",
        include_str!("../../migrations/postgres/0012_requests.sql"),
    ),
    (
        13,
        "fulfilment: erasure, propagation outbox, one-time identity codes",
        include_str!("../../migrations/postgres/0013_fulfilment.sql"),
    ),
    (
        14,
        "lifecycle: trials, closure, retention leases, anonymized aggregates, service terminations",
        include_str!("../../migrations/postgres/0014_lifecycle.sql"),
    ),
    (
        15,
        "grants: explicit cover of personal information",
        include_str!("../../migrations/postgres/0015_grant_personal_information.sql"),
    ),
    (
        16,
        "pii tokens: sealed originals of format-preserving tokens",
        include_str!("../../migrations/postgres/0016_pii_tokens.sql"),
    ),
    (
        17,
        "least privilege: service token scopes, sealed grant reasons, incidents per tenant",
        include_str!("../../migrations/postgres/0017_least_privilege.sql"),
    ),
    (
        18,
        "consents: provenance method of each ledger entry",
        include_str!("../../migrations/postgres/0018_consent_provenance.sql"),
    ),
    (
        19,
        "hardening: single-use export links, sealed tenant names and waiver reasons",
        include_str!("../../migrations/postgres/0019_hardening.sql"),
    ),
];
