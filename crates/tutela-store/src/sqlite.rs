//! Everything SQLite-specific: connection options, the migration tree, schema listing.

use crate::{Result, StoreError};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, SqliteConnection};
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
    (
        17,
        "least privilege: service token scopes, sealed grant reasons, incidents per tenant",
        include_str!("../migrations/sqlite/0017_least_privilege.sql"),
    ),
    (
        18,
        "consents: provenance method of each ledger entry",
        include_str!("../migrations/sqlite/0018_consent_provenance.sql"),
    ),
    (
        19,
        "hardening: single-use export links, sealed tenant names and waiver reasons",
        include_str!("../migrations/sqlite/0019_hardening.sql"),
    ),
];

/// Makes the database file, its WAL and shared-memory file readable by the owner only
/// (0600; R29). A missing database file is created empty with that mode before SQLite
/// opens it: SQLite would create it 0644 (less the umask), and it gives the `-wal` and
/// `-shm` files it creates the database file's mode. Files of an older install are
/// narrowed to 0600 here too.
#[cfg(unix)]
fn restrict_files(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let companion = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        std::path::PathBuf::from(p)
    };
    for file in [path.to_owned(), companion("-wal"), companion("-shm")] {
        match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_files(_: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Opens the database as a pool of readers and the one writer connection (see
/// `on_writer!`). The writer connects first so that it creates the `-wal` and `-shm`
/// files, with the database file's owner-only mode.
pub(crate) async fn connect(path: &Path) -> Result<(Readers, SqliteConnection)> {
    if path.as_os_str() != ":memory:" {
        restrict_files(path).map_err(|e| StoreError::Connect(sqlx::Error::Io(e)))?;
    }
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
    Ok((Readers::new(opts, READERS), writer))
}

/// Reader connections at most (WAL lets them all run beside the writer).
const READERS: usize = 8;

/// SQLite's reader connections, lent one at a time (see `on_pool!`).
///
/// Not an sqlx pool: sqlx pings a connection on every release, from a spawned task, and
/// through its SQLite driver that ping is a round trip to the connection's worker thread,
/// doubling the thread hand-offs of a one-statement read. A local file needs no health
/// check. Connections open on first need, up to [`READERS`]; a lent connection goes back
/// when its guard drops, also when the reading future is cancelled (the driver finishes
/// or resets the statement before it runs the next one).
#[derive(Debug)]
pub(crate) struct Readers {
    options: SqliteConnectOptions,
    idle: std::sync::Mutex<Vec<SqliteConnection>>,
    available: tokio::sync::Semaphore,
}

/// A reader connection lent by [`Readers::lend`]; returned on drop.
pub(crate) struct Lent<'a> {
    readers: &'a Readers,
    conn: Option<SqliteConnection>,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Lent<'_> {
    pub(crate) fn conn(&mut self) -> Result<&mut SqliteConnection> {
        self.conn.as_mut().ok_or(StoreError::Closed)
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.readers.idle_conns().push(conn);
        }
    }
}

impl Readers {
    fn new(options: SqliteConnectOptions, max: usize) -> Self {
        Self {
            options,
            idle: std::sync::Mutex::new(Vec::with_capacity(max)),
            available: tokio::sync::Semaphore::new(max),
        }
    }

    fn idle_conns(&self) -> std::sync::MutexGuard<'_, Vec<SqliteConnection>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for a free reader connection (opening one if fewer than the maximum exist).
    pub(crate) async fn lend(&self) -> Result<Lent<'_>> {
        let permit = self
            .available
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let idle = self.idle_conns().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.options.connect().await.map_err(StoreError::Connect)?,
        };
        Ok(Lent {
            readers: self,
            conn: Some(conn),
            _permit: permit,
        })
    }

    /// Refuses new loans and closes the idle connections (on shutdown).
    pub(crate) async fn close(&self) {
        self.available.close();
        let conns: Vec<SqliteConnection> = self.idle_conns().drain(..).collect();
        for conn in conns {
            if let Err(e) = sqlx::Connection::close(conn).await {
                tracing::warn!(error = %e, "closing an SQLite reader connection failed");
            }
        }
    }
}

pub(crate) async fn schema_columns(conn: &mut SqliteConnection) -> Result<Vec<(String, String)>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[tokio::test]
    async fn readers_lend_at_most_their_maximum_and_every_connection_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("r.db"))
            .create_if_missing(true);
        let readers = Readers::new(options, 2);
        let a = readers.lend().await.unwrap();
        let mut b = readers.lend().await.unwrap();
        assert_eq!(
            readers.available.available_permits(),
            0,
            "a third loan waits"
        );
        sqlx::query("SELECT 1")
            .execute(b.conn().unwrap())
            .await
            .unwrap();
        drop(a);
        let c = readers.lend().await.unwrap();
        drop((b, c));
        assert_eq!(
            readers.idle_conns().len(),
            2,
            "reused, none leaked or extra"
        );
        assert_eq!(readers.available.available_permits(), 2);
        readers.close().await;
        assert!(matches!(readers.lend().await, Err(StoreError::Closed)));
        assert!(readers.idle_conns().is_empty());
    }
}
