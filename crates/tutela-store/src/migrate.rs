//! Embedded migrations with a version table (`tutela_schema`). Each backend has its own
//! migration tree (`migrations/sqlite`, `migrations/postgres`) with the same versions; a
//! test compares the schemas they produce (column types, nullability, indexes). Each
//! applied migration's SHA-256 is recorded: a database whose applied migration differs
//! from the one this binary carries (an edited migration) is refused, and so is one whose
//! schema is newer than this binary knows. All pending migrations run in one transaction:
//! they land together or not at all.

use crate::{db, Result, Store, StoreError};

/// The schema version this binary writes and expects.
pub const SCHEMA_VERSION: i64 = 19;

const CREATE_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS tutela_schema (\
     version BIGINT PRIMARY KEY, description TEXT NOT NULL, applied_at BIGINT NOT NULL, \
     checksum TEXT)";

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub from: i64,
    pub to: i64,
}

/// Hex SHA-256 of a migration's SQL text.
fn checksum(sql: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, sql.as_bytes()))
}

impl Store {
    /// Applies every embedded migration the database lacks, in one transaction, after
    /// checking the applied ones against their checksums.
    pub async fn migrate(&self, now: time::OffsetDateTime) -> Result<MigrationStatus> {
        let dialect = db::dialect(self.backend());
        let migrations = dialect.migrations;
        debug_assert_eq!(migrations.last().map(|m| m.0), Some(SCHEMA_VERSION));
        let now = crate::to_micros(now);
        self.write(move |db| {
            Box::pin(async move {
                // The lock comes first: on PostgreSQL a second process's `CREATE TABLE IF
                // NOT EXISTS` would otherwise wait for the first one's uncommitted table
                // and then fail with a duplicate-key error instead of seeing it.
                if let Some(lock) = dialect.migration_lock {
                    db.execute(lock, &[]).await?;
                }
                db.execute_script(CREATE_VERSION_TABLE).await?;
                let (has_checksum,): (i64,) =
                    db.fetch_one(dialect.has_checksum_column, &[]).await?;
                if has_checksum == 0 {
                    db.execute("ALTER TABLE tutela_schema ADD COLUMN checksum TEXT", &[])
                        .await?;
                }
                let applied: Vec<(i64, String, Option<String>)> = db
                    .fetch_all(
                        "SELECT version, description, checksum FROM tutela_schema ORDER BY version",
                        &[],
                    )
                    .await?;
                let found = applied.last().map_or(0, |a| a.0);
                if found > SCHEMA_VERSION {
                    return Err(StoreError::SchemaTooNew {
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                for (version, description, stored) in applied {
                    let Some(&(_, _, sql)) = migrations.iter().find(|m| m.0 == version) else {
                        continue;
                    };
                    let embedded = checksum(sql);
                    match stored {
                        Some(stored) if stored != embedded => {
                            return Err(StoreError::MigrationEdited {
                                version,
                                description,
                                applied: stored,
                                embedded,
                            })
                        }
                        Some(_) => {}
                        // Applied before checksums were recorded: adopt this binary's.
                        None => {
                            db.execute(
                                "UPDATE tutela_schema SET checksum = $1 WHERE version = $2",
                                &[embedded.into(), version.into()],
                            )
                            .await?;
                        }
                    }
                }
                for &(version, description, sql) in migrations.iter().filter(|m| m.0 > found) {
                    let fail = |source| StoreError::Migration {
                        version,
                        description,
                        source: Box::new(source),
                    };
                    db.execute_script(sql).await.map_err(fail)?;
                    db.execute(
                        "INSERT INTO tutela_schema (version, description, applied_at, checksum) \
                         VALUES ($1, $2, $3, $4)",
                        &[
                            version.into(),
                            description.into(),
                            now.into(),
                            checksum(sql).into(),
                        ],
                    )
                    .await
                    .map_err(fail)?;
                    tracing::info!(version, description, "applied database migration");
                }
                Ok(MigrationStatus {
                    from: found,
                    to: SCHEMA_VERSION.max(found),
                })
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    async fn store(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        Store::connect(&url).await.unwrap()
    }

    async fn exec(store: &Store, sql: &'static str) {
        store
            .write(move |db| Box::pin(async move { db.execute(sql, &[]).await.map(|_| ()) }))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn migrates_once_and_refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let t0 = time::OffsetDateTime::UNIX_EPOCH;
        assert_eq!(
            store.migrate(t0).await.unwrap(),
            MigrationStatus {
                from: 0,
                to: SCHEMA_VERSION
            }
        );
        assert_eq!(
            store.migrate(t0).await.unwrap(),
            MigrationStatus {
                from: SCHEMA_VERSION,
                to: SCHEMA_VERSION
            }
        );
        exec(
            &store,
            "INSERT INTO tutela_schema (version, description, applied_at) VALUES (99, 'future', 0)",
        )
        .await;
        let err = store.migrate(t0).await.unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
            "{err}"
        );
        assert!(err
            .to_string()
            .contains("newer than this tutela binary supports"));
    }

    /// Issue 15: a released migration edited after it was applied is refused, naming it.
    #[tokio::test]
    async fn an_edited_migration_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let t0 = time::OffsetDateTime::UNIX_EPOCH;
        store.migrate(t0).await.unwrap();
        exec(
            &store,
            "UPDATE tutela_schema SET checksum = 'not-the-original' WHERE version = 3",
        )
        .await;
        let err = store.migrate(t0).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::MigrationEdited { version: 3, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("must never be edited"), "{err}");
    }

    /// A database migrated before checksums were recorded adopts them once, then is
    /// checked like any other.
    #[tokio::test]
    async fn a_database_without_checksums_adopts_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let t0 = time::OffsetDateTime::UNIX_EPOCH;
        store.migrate(t0).await.unwrap();
        exec(&store, "UPDATE tutela_schema SET checksum = NULL").await;
        store.migrate(t0).await.unwrap();
        let missing: (i64,) = store
            .read(|db| {
                Box::pin(async move {
                    db.fetch_one(
                        "SELECT COUNT(*) FROM tutela_schema WHERE checksum IS NULL",
                        &[],
                    )
                    .await
                })
            })
            .await
            .unwrap();
        assert_eq!(missing.0, 0);
    }

    /// Issue 15: the PostgreSQL tree produces the SQLite tree's schema: columns with
    /// types and nullability, indexes with their columns and uniqueness. Runs where
    /// `TUTELA_TEST_PG_URL` names a database it may migrate (the CI PostgreSQL run).
    #[tokio::test]
    async fn both_trees_produce_the_same_schema() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = store(&dir).await;
        sqlite
            .migrate(time::OffsetDateTime::UNIX_EPOCH)
            .await
            .unwrap();
        let lite = sqlite.schema_shape().await.unwrap();
        assert!(lite.columns.len() > 50 && !lite.indexes.is_empty());
        let Ok(url) = std::env::var("TUTELA_TEST_PG_URL") else {
            return;
        };
        let pg = Store::open(&url, time::OffsetDateTime::UNIX_EPOCH)
            .await
            .unwrap();
        let pg = pg.schema_shape().await.unwrap();
        assert_eq!(
            lite.differences(&pg),
            Vec::<String>::new(),
            "first: SQLite, second: PostgreSQL"
        );
    }

    #[tokio::test]
    async fn bad_urls_are_refused() {
        assert!(matches!(
            Store::connect("mysql://x").await,
            Err(StoreError::UnsupportedUrl)
        ));
        assert!(matches!(
            Store::connect("sqlite::memory:").await,
            Err(StoreError::UnsupportedUrl)
        ));
    }
}
