//! Everything SQLite-specific: connection options, the migration tree, schema listing.

use crate::{Result, StoreError};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, SqliteConnection, SqlitePool};
use std::path::Path;
use std::time::Duration;

pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation: tenants, subjects, api tokens",
        include_str!("../migrations/sqlite/0001_foundation.sql"),
    ),
    (
        2,
        "vault: wrapped keys, encrypted records, audit entries",
        include_str!("../migrations/sqlite/0002_vault.sql"),
    ),
    (
        3,
        "lookup: blind indexes of e-mail addresses and phone numbers",
        include_str!("../migrations/sqlite/0003_lookup.sql"),
    ),
    (
        4,
        "consent: the append-only consent ledger",
        include_str!("../migrations/sqlite/0004_consent.sql"),
    ),
    (
        5,
        "contact: preferences and the outbound message gate",
        include_str!("../migrations/sqlite/0005_contact.sql"),
    ),
    (
        6,
        "cookie: website visitors' cookie consent",
        include_str!("../migrations/sqlite/0006_cookie.sql"),
    ),
    (
        7,
        "successor: purpose changes under a new controller",
        include_str!("../migrations/sqlite/0007_successor.sql"),
    ),
    (
        8,
        "grants: just-in-time support access",
        include_str!("../migrations/sqlite/0008_grants.sql"),
    ),
    (
        9,
        "sharing: storage locations, recipients, the transfer register",
        include_str!("../migrations/sqlite/0009_sharing.sql"),
    ),
    (
        10,
        "complaints: third-party complaints redirected to the customer",
        include_str!("../migrations/sqlite/0010_complaints.sql"),
    ),
    (
        11,
        "record location: where each record is stored",
        include_str!("../migrations/sqlite/0011_record_location.sql"),
    ),
    (
        12,
        "requests: data-subject requests",
        include_str!("../migrations/sqlite/0012_requests.sql"),
    ),
    (
        13,
        "fulfilment: erasure, propagation outbox, one-time identity codes",
        include_str!("../migrations/sqlite/0013_fulfilment.sql"),
    ),
    (
        14,
        "lifecycle: trials, closure, retention leases, anonymized aggregates, service terminations",
        include_str!("../migrations/sqlite/0014_lifecycle.sql"),
    ),
    (
        15,
        "grants: explicit cover of personal information",
        include_str!("../migrations/sqlite/0015_grant_personal_information.sql"),
    ),
    (
        16,
        "pii tokens: sealed originals of format-preserving tokens",
        include_str!("../migrations/sqlite/0016_pii_tokens.sql"),
    ),
];

/// Opens the database as a pool of readers and the one writer connection (see
/// `on_writer!`). The writer connects first so that it creates the file.
pub(crate) async fn connect(path: &Path) -> Result<(SqlitePool, SqliteConnection)> {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        // WAL lets readers run beside the single writer. NORMAL writes a commit's frames
        // to the OS without syncing them; the store's group commit (`group_sync.rs`) syncs
        // before any write method returns, so a write is durable once anyone hears of it
        // (an audit entry must survive a power cut once its response is sent).
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        // Only another process (the CLI beside a running server) can still hold the
        // write lock: wait for it rather than fail.
        .busy_timeout(Duration::from_secs(10))
        // Checkpoints run in the background, beside the writer (`group_sync.rs`); SQLite's
        // own, inside a commit, only starts if those fall behind by 64 MiB of log. After
        // a checkpoint the log file is cut back to 64 MiB.
        .pragma("wal_autocheckpoint", "16384")
        .pragma("journal_size_limit", "67108864");
    let writer = opts.connect().await.map_err(StoreError::Connect)?;
    // A pool pings a connection before lending it by default; for a local file that check
    // finds nothing and costs a round trip to the connection's worker thread per query.
    let readers = SqlitePoolOptions::new()
        .test_before_acquire(false)
        .max_connections(8)
        .connect_with(opts)
        .await
        .map_err(StoreError::Connect)?;
    Ok((readers, writer))
}

pub(crate) async fn schema_columns(pool: &SqlitePool) -> Result<Vec<(String, String)>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}
