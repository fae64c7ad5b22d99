//! Embedded migrations with a version table (`tutela_schema`). Each backend has its own
//! migration tree (`migrations/sqlite`, `migrations/postgres`) with the same versions; a
//! test compares the schemas they produce. A database whose schema is newer than this
//! binary knows is refused rather than touched.

use crate::{postgres, sqlite, Result, Store, StoreError};

/// The schema version this binary writes and expects.
pub const SCHEMA_VERSION: i64 = 19;

const CREATE_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS tutela_schema (\
     version BIGINT PRIMARY KEY, description TEXT NOT NULL, applied_at BIGINT NOT NULL)";

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub from: i64,
    pub to: i64,
}

/// The migration run on one connection (`$conn` derefs to the backend's connection).
macro_rules! migrate_on {
    ($store:expr, $conn:ident, $migrations:expr, $now:expr) => {{
        let (store, migrations, now) = ($store, $migrations, $now);
        let conn = &mut *$conn;
        sqlx::raw_sql(CREATE_VERSION_TABLE)
            .execute(&mut *conn)
            .await?;
        if store.backend() == crate::Backend::Postgres {
            // Replicas starting together must not race each other through DDL.
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(postgres::MIGRATION_LOCK)
                .execute(&mut *conn)
                .await?;
        }
        let outcome = async {
            let (found,): (Option<i64>,) =
                sqlx::query_as("SELECT MAX(version) FROM tutela_schema").fetch_one(&mut *conn).await?;
            let found = found.unwrap_or(0);
            if found > SCHEMA_VERSION {
                return Err(StoreError::SchemaTooNew { found, supported: SCHEMA_VERSION });
            }
            for &(version, description, sql) in migrations.iter().filter(|m| m.0 > found) {
                let fail = |source| StoreError::Migration { version, description, source };
                let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(fail)?;
                sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(fail)?;
                sqlx::query("INSERT INTO tutela_schema (version, description, applied_at) VALUES ($1, $2, $3)")
                    .bind(version)
                    .bind(description)
                    .bind(crate::to_micros(now))
                    .execute(&mut *tx)
                    .await
                    .map_err(fail)?;
                tx.commit().await.map_err(fail)?;
                tracing::info!(version, description, "applied database migration");
            }
            Ok(MigrationStatus { from: found, to: SCHEMA_VERSION.max(found) })
        }
        .await;
        if store.backend() == crate::Backend::Postgres {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(postgres::MIGRATION_LOCK)
                .execute(&mut *conn)
                .await?;
        }
        outcome
    }};
}

impl Store {
    /// Applies every embedded migration the database lacks, each in its own transaction.
    pub async fn migrate(&self, now: time::OffsetDateTime) -> Result<MigrationStatus> {
        let migrations = match self.backend() {
            crate::Backend::Sqlite => sqlite::MIGRATIONS,
            crate::Backend::Postgres => postgres::MIGRATIONS,
        };
        debug_assert_eq!(migrations.last().map(|m| m.0), Some(SCHEMA_VERSION));
        match &self.writer {
            crate::Writer::Sqlite { conn, sync } => {
                let outcome = {
                    let mut guard = conn.lock().await;
                    let conn = guard.as_mut().ok_or(StoreError::Closed)?;
                    migrate_on!(self, conn, migrations, now)
                };
                sync.barrier().await?;
                outcome
            }
            crate::Writer::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                migrate_on!(self, conn, migrations, now)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn migrates_once_and_refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.unwrap();
        assert_eq!(
            store
                .migrate(time::OffsetDateTime::UNIX_EPOCH)
                .await
                .unwrap(),
            MigrationStatus {
                from: 0,
                to: SCHEMA_VERSION
            }
        );
        assert_eq!(
            store
                .migrate(time::OffsetDateTime::UNIX_EPOCH)
                .await
                .unwrap(),
            MigrationStatus {
                from: SCHEMA_VERSION,
                to: SCHEMA_VERSION
            }
        );
        {
            let crate::Writer::Sqlite { conn, .. } = &store.writer else {
                unreachable!("a sqlite: url opens SQLite")
            };
            let mut conn = conn.lock().await;
            sqlx::query(
                "INSERT INTO tutela_schema (version, description, applied_at) VALUES (99, 'future', 0)",
            )
            .execute(conn.as_mut().unwrap())
            .await
            .unwrap();
        }
        let err = store
            .migrate(time::OffsetDateTime::UNIX_EPOCH)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
            "{err}"
        );
        assert!(err
            .to_string()
            .contains("newer than this tutela binary supports"));
    }

    #[tokio::test]
    async fn bad_urls_are_refused() {
        assert!(matches!(
            Store::connect("mysql://x").await,
            Err(StoreError::UnsupportedUrl)
        ));
    }
}
