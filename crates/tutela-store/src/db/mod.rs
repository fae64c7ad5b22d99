//! The one database API over both engines (issue 15).
//!
//! Store methods are written once, as closures over a [`Db`] handle:
//!
//! ```ignore
//! store.write(move |db| Box::pin(async move {
//!     db.execute("INSERT INTO t (a, b) VALUES ($1, $2)", &[a.into(), b.into()]).await?;
//!     Ok(())
//! })).await
//! ```
//!
//! - On **SQLite** (`sqlite.rs`) the driver is synchronous (rusqlite). A write closure is
//!   sent whole to the one writer thread, which runs it inside `BEGIN IMMEDIATE … COMMIT`:
//!   one thread hand-off per transaction, not per statement. Its `.await`s complete at
//!   once (the statements run in place), so the writer polls the closure's future once; a
//!   body that awaits anything else is refused ([`StoreError::Yielded`]). Commits are
//!   made durable in groups by a sync thread, and [`crate::Store::write`] returns only
//!   after the `fsync` that covers its commit: the barrier is part of `write` itself, so
//!   no early `return` in a body can skip it.
//! - On **PostgreSQL** (`postgres.rs`) the same closure runs on the async driver (sqlx)
//!   inside a transaction on a pooled connection; the server syncs at commit.
//!
//! Placeholders are `$1`, `$2`, … on both engines (SQLite reads `$N` as the N-th value,
//! as sqlx did). Everything that differs between the engines lives in `sqlite.rs` and
//! `postgres.rs`; nothing outside this module names an engine's types.

mod postgres;
mod sqlite;
mod value;

pub use value::{FromRow, FromValue, Row, Value};

pub(crate) use postgres::{try_session_lock, PgEngine};
pub(crate) use sqlite::SqliteEngine;

use crate::{Backend, Result, StoreError};
use std::future::Future;
use std::pin::Pin;

/// The future a store closure returns: it borrows the [`Db`] handle it was given.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// A connection lent to one store closure: inside a transaction for
/// [`crate::Store::write`], a plain connection for reads.
///
/// `'scope` is the lifetime of what a read closure borrows from its caller: a closure
/// takes `&'c mut Db<'scope>` for any `'c`, and that type is only well-formed when
/// `'scope: 'c`, which is what lets its future hold those borrows. Write closures run on
/// another thread and borrow nothing (`Db<'static>`).
pub struct Db<'scope> {
    conn: Conn,
    _scope: std::marker::PhantomData<&'scope ()>,
}

pub(crate) enum Conn {
    Sqlite(rusqlite::Connection),
    PgTx(sqlx::Transaction<'static, sqlx::Postgres>),
    Pg(sqlx::pool::PoolConnection<sqlx::Postgres>),
    /// Between being taken back and dropped.
    Gone,
}

impl std::fmt::Debug for Db<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Db({})", self.backend().as_str())
    }
}

impl Db<'_> {
    pub(crate) fn new(conn: Conn) -> Self {
        Self {
            conn,
            _scope: std::marker::PhantomData,
        }
    }

    pub(crate) fn into_conn(mut self) -> Conn {
        std::mem::replace(&mut self.conn, Conn::Gone)
    }

    /// The engine this handle talks to (for the rare statement that must differ; keep
    /// those in this module's engine files where possible).
    pub fn backend(&self) -> Backend {
        match self.conn {
            Conn::Sqlite(_) | Conn::Gone => Backend::Sqlite,
            Conn::PgTx(_) | Conn::Pg(_) => Backend::Postgres,
        }
    }

    /// Runs one statement; returns the rows it changed.
    pub async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        match &mut self.conn {
            Conn::Sqlite(c) => sqlite::execute(c, sql, params),
            Conn::PgTx(tx) => postgres::execute(tx, sql, params).await,
            Conn::Pg(c) => postgres::execute(c, sql, params).await,
            Conn::Gone => Err(StoreError::Closed),
        }
    }

    /// Runs SQL text of one or more statements without parameters (DDL, migrations).
    pub async fn execute_script(&mut self, sql: &str) -> Result<()> {
        match &mut self.conn {
            Conn::Sqlite(c) => c.execute_batch(sql).map_err(StoreError::from),
            Conn::PgTx(tx) => postgres::execute_script(tx, sql).await,
            Conn::Pg(c) => postgres::execute_script(c, sql).await,
            Conn::Gone => Err(StoreError::Closed),
        }
    }

    /// Every row of a query.
    pub async fn fetch_all<T: FromRow>(&mut self, sql: &str, params: &[Value]) -> Result<Vec<T>> {
        let rows = match &mut self.conn {
            Conn::Sqlite(c) => sqlite::query(c, sql, params)?,
            Conn::PgTx(tx) => postgres::query(tx, sql, params).await?,
            Conn::Pg(c) => postgres::query(c, sql, params).await?,
            Conn::Gone => return Err(StoreError::Closed),
        };
        rows.into_iter().map(T::from_row).collect()
    }

    /// The first row of a query, if any.
    pub async fn fetch_optional<T: FromRow>(
        &mut self,
        sql: &str,
        params: &[Value],
    ) -> Result<Option<T>> {
        let row = match &mut self.conn {
            Conn::Sqlite(c) => sqlite::query_first(c, sql, params)?,
            Conn::PgTx(tx) => postgres::query_first(tx, sql, params).await?,
            Conn::Pg(c) => postgres::query_first(c, sql, params).await?,
            Conn::Gone => return Err(StoreError::Closed),
        };
        row.map(T::from_row).transpose()
    }

    /// Runs `head VALUES (…), (…) tail` over `rows`, at most `max_rows` rows per
    /// statement and never more than the engine's `rows_per_statement`; `push` appends
    /// one row's `columns` values. The statement text is built once per chunk length
    /// (every full chunk shares it; on SQLite, one cached one-row statement). Returns the
    /// rows changed in all.
    pub async fn execute_rows<T>(
        &mut self,
        (head, tail): (&str, &str),
        rows: &[T],
        (columns, max_rows): (usize, usize),
        push: impl Fn(&mut Vec<Value>, &T),
    ) -> Result<u64> {
        let per = self.dialect().rows_per_statement.min(max_rows).max(1);
        let mut sql = String::new();
        let mut sql_rows = 0;
        let mut changed = 0;
        for chunk in rows.chunks(per) {
            if chunk.len() != sql_rows {
                sql = format!(
                    "{head}{}{tail}",
                    values_placeholders(chunk.len(), columns, 1)
                );
                sql_rows = chunk.len();
            }
            let mut params = Vec::with_capacity(chunk.len() * columns);
            for row in chunk {
                push(&mut params, row);
            }
            changed += self.execute(&sql, &params).await?;
        }
        Ok(changed)
    }

    /// The first row of a query; a query that returns none is an error.
    pub async fn fetch_one<T: FromRow>(&mut self, sql: &str, params: &[Value]) -> Result<T> {
        self.fetch_optional(sql, params).await?.ok_or_else(|| {
            StoreError::Corrupt("a query that always returns a row returned none".into())
        })
    }
}

/// The SQL that differs between the engines; one per engine file.
#[derive(Debug)]
pub(crate) struct Dialect {
    /// `(version, description, SQL)`, in version order.
    pub(crate) migrations: &'static [(i64, &'static str, &'static str)],
    /// Run first in the migration transaction to keep other processes out, if needed.
    pub(crate) migration_lock: Option<&'static str>,
    /// Counts (0 or 1) the `checksum` column of `tutela_schema` (absent before issue 15).
    pub(crate) has_checksum_column: &'static str,
    /// Appended to the sub-select of a claim (`UPDATE … WHERE id IN (SELECT … LIMIT n)`),
    /// so that concurrent claimers skip each other's rows.
    pub(crate) skip_locked: &'static str,
    /// `(table, column, declared type, not null)` of every table.
    pub(crate) schema_columns: &'static str,
    /// `(table, unique, comma-separated columns)` of every non-primary index.
    pub(crate) schema_indexes: &'static str,
    pub(crate) normalize_type: fn(&str) -> String,
    /// Rows per multi-row `INSERT`/`UPDATE … FROM (VALUES …)` at most: PostgreSQL saves a
    /// network round trip per row; SQLite runs in process, where one cached one-row
    /// statement per row beats parsing a new statement text for every batch size.
    pub(crate) rows_per_statement: usize,
    /// Refreshes planner statistics after a bulk import (PostgreSQL would otherwise scan
    /// whole tables for key look-ups); SQLite plans without them.
    pub(crate) after_bulk_import: Option<&'static str>,
}

pub(crate) fn dialect(backend: Backend) -> &'static Dialect {
    match backend {
        Backend::Sqlite => &sqlite::DIALECT,
        Backend::Postgres => &postgres::DIALECT,
    }
}

/// A declared column type reduced to what both engines mean by it.
fn normalize_type(declared: &str) -> String {
    let t = declared.to_ascii_uppercase();
    let kind = if t.contains("INT") {
        "integer"
    } else if t.contains("BOOL") {
        "boolean"
    } else if t.contains("CHAR") || t.contains("TEXT") {
        "text"
    } else if t.contains("BLOB") || t.contains("BYTEA") {
        "blob"
    } else if t.contains("REAL") || t.contains("DOUBLE") || t.contains("FLOAT") {
        "real"
    } else {
        return t.to_ascii_lowercase();
    };
    kind.to_owned()
}

impl Db<'_> {
    /// The engine's SQL variants (see [`Dialect`]).
    pub(crate) fn dialect(&self) -> &'static Dialect {
        dialect(self.backend())
    }
}

/// `($start), ($start+1), …` placeholders for a multi-row `VALUES` list of `rows` rows of
/// `columns` columns, numbering from `$first`.
pub fn values_placeholders(rows: usize, columns: usize, first: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 5);
    let mut n = first;
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..columns {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&n.to_string());
            n += 1;
        }
        out.push(')');
    }
    out
}

/// `$first, $first+1, …` for an `IN (…)` list of `n` values.
pub fn list_placeholders(n: usize, first: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs a future that must complete without waiting (a store closure on SQLite, whose
/// statements run in place): polls it once.
pub(crate) fn run_ready<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => Err(StoreError::Yielded),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_across_rows() {
        assert_eq!(values_placeholders(2, 2, 3), "($3, $4), ($5, $6)");
        assert_eq!(list_placeholders(3, 2), "$2, $3, $4");
    }

    #[test]
    fn a_body_that_waits_on_something_else_is_refused() {
        let out: Result<()> = run_ready(async {
            std::future::pending::<()>().await;
            Ok(())
        });
        assert!(matches!(out, Err(StoreError::Yielded)));
    }
}
