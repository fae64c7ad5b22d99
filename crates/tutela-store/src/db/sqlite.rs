//! SQLite on a synchronous driver (rusqlite): one writer thread, group commit, and
//! readers that run in place.
//!
//! **Writes.** Every write transaction is a closure sent to the one writer thread (SQLite
//! allows one writer at a time; a second connection would wait in a sleeping busy
//! handler). The thread runs it inside `BEGIN IMMEDIATE … COMMIT` with its statements
//! prepared once and cached, then takes the next closure already queued, up to a batch.
//! The connection runs `synchronous=NORMAL`: a commit has written its WAL frames to the
//! operating system but not synced them. The batch's replies go to the **sync thread**,
//! which `fsync`s the WAL once for every batch that reached it meanwhile and only then
//! answers the callers: a write is acknowledged only once its commit is on stable storage
//! (as with `synchronous=FULL`), at one sync per group. The writer goes on committing the
//! next batch while the sync runs.
//!
//! Why syncing our own descriptor is sound: `fsync` flushes the file (inode), whichever
//! descriptor it is called on; SQLite in `NORMAL` mode still syncs the WAL before each
//! checkpoint and the database after it, so frames a checkpoint moved are durable in the
//! database file; a new WAL file also needs its directory entry synced, done whenever the
//! WAL is a new inode. A failed `fsync` leaves the page cache in an unknown state, so the
//! store is poisoned: every later write fails until restart, as PostgreSQL does.
//!
//! **Checkpoints** run on a third thread with its own connection (`PASSIVE`, at most every
//! [`CHECKPOINT_EVERY`] while writes come in), beside the writer; SQLite's automatic
//! checkpoint inside a commit is only a backstop at 64 MiB of log.
//!
//! **Reads** take a connection from a small pool and run in place, on the calling task:
//! an indexed look-up costs a few microseconds here, less than any thread hand-off
//! (measured: `BENCHMARKS.md`, issue 15). Reader connections are `query_only`, so a read
//! closure cannot write. Long scans use [`SqliteEngine::scan`], which runs on tokio's
//! blocking pool instead of holding up a runtime worker.

use super::{run_ready, BoxFut, Conn, Db, Row, Value};
use crate::{Result, StoreError};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often, at most, a background checkpoint starts while writes are coming in.
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// Reader connections at most (WAL lets them all run beside the writer).
const READERS: usize = 8;
/// Write transactions the writer commits before handing their replies to the sync thread.
const WRITE_BATCH: usize = 512;
/// Prepared statements each connection keeps.
const STATEMENT_CACHE: usize = 256;

/// Called with the outcome of the sync that covers a committed transaction.
type Completion = Box<dyn FnOnce(std::result::Result<(), Arc<str>>) + Send>;
/// A write transaction, as the writer thread runs it; its answer waits for the next sync.
type Job = Box<dyn FnOnce(&mut WriterState) -> Option<Completion> + Send>;

struct WriterState {
    conn: Option<Connection>,
    poison: Arc<Poison>,
    /// To replace a connection left inside a transaction.
    options: SqliteOptions,
}

/// Set for good after a failed sync.
#[derive(Default)]
struct Poison(Mutex<Option<Arc<str>>>);

impl Poison {
    fn get(&self) -> Option<Arc<str>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
    fn set(&self, message: Arc<str>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(message);
    }
}

/// How to open the database.
#[derive(Debug, Clone)]
pub(crate) struct SqliteOptions {
    pub(crate) path: PathBuf,
}

impl SqliteOptions {
    fn open(&self, reader: bool) -> Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(connect_error)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Only another process (the CLI beside a running server) can still hold the
        // write lock: wait for it rather than fail.
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(connect_error)?;
        conn.execute_batch(
            // WAL lets readers run beside the single writer. NORMAL: see the module
            // comment (the sync thread makes every acknowledged commit durable).
            // Checkpoints run on their own thread; SQLite's own only starts if those fall
            // behind by 64 MiB of log, and the log is cut back to 64 MiB after one.
            "PRAGMA journal_mode = WAL; \
             PRAGMA synchronous = NORMAL; \
             PRAGMA foreign_keys = ON; \
             PRAGMA wal_autocheckpoint = 16384; \
             PRAGMA journal_size_limit = 67108864;",
        )
        .map_err(connect_error)?;
        if reader {
            conn.execute_batch("PRAGMA query_only = ON;")
                .map_err(connect_error)?;
        }
        Ok(conn)
    }
}

fn connect_error(e: rusqlite::Error) -> StoreError {
    StoreError::Connect(Box::new(e))
}

/// The SQLite side of a store (shared by every clone of it).
pub(crate) struct SqliteEngine {
    options: SqliteOptions,
    /// `None` once closed.
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    readers: Readers,
    syncs: Arc<AtomicU64>,
}

impl std::fmt::Debug for SqliteEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteEngine")
            .field("path", &self.options.path)
            .finish_non_exhaustive()
    }
}

impl SqliteEngine {
    /// Opens the database file (created owner-only if missing) and starts the writer,
    /// sync and checkpoint threads.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        restrict_files(path).map_err(|e| StoreError::Connect(Box::new(e)))?;
        let options = SqliteOptions {
            path: path.to_owned(),
        };
        // The writer connects first so that it creates the `-wal` and `-shm` files, with
        // the database file's owner-only mode.
        let writer = options.open(false)?;
        let checkpointer = options.open(false)?;
        let syncs = Arc::new(AtomicU64::new(0));
        let poison = Arc::new(Poison::default());

        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let (done_tx, done_rx) = mpsc::channel::<Vec<Completion>>();
        let (ckpt_tx, ckpt_rx) = mpsc::sync_channel::<()>(1);
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(f)
                .map_err(|e| StoreError::Connect(Box::new(e)))
        };
        let state = WriterState {
            conn: Some(writer),
            poison: poison.clone(),
            options: options.clone(),
        };
        let writer_thread = spawn(
            "tutela-sqlite-writer",
            Box::new(move || writer_loop(state, &jobs_rx, &done_tx)),
        )?;
        let sync = WalSync::new(path, syncs.clone(), poison.clone());
        let sync_thread = spawn(
            "tutela-sqlite-sync",
            Box::new(move || sync_loop(sync, &done_rx, &ckpt_tx)),
        )?;
        let ckpt_thread = spawn(
            "tutela-sqlite-checkpoint",
            Box::new(move || checkpoint_loop(checkpointer, &ckpt_rx, &poison)),
        )?;
        Ok(Self {
            readers: Readers::new(options.clone(), READERS),
            options,
            jobs: Mutex::new(Some(jobs_tx)),
            threads: Mutex::new(vec![writer_thread, sync_thread, ckpt_thread]),
            syncs,
        })
    }

    /// Runs `f` in one write transaction on the writer thread; returns once its commit
    /// is durable.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Db<'static>) -> BoxFut<'c, T> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |state: &mut WriterState| match transaction(state, f) {
            Ok(value) => Some(Box::new(move |synced: std::result::Result<(), Arc<str>>| {
                let _ = reply.send(synced.map(|()| value).map_err(StoreError::Durability));
            }) as Completion),
            Err(e) => {
                let _ = reply.send(Err(e));
                None
            }
        });
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(job)
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on a reader connection, in place (see the module comment).
    pub(crate) async fn read<'a, T, F>(&self, f: F) -> Result<T>
    where
        F: for<'c> FnOnce(&'c mut Db<'a>) -> BoxFut<'c, T> + Send + 'a,
    {
        let permit = self
            .readers
            .available
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let conn = self.readers.take()?;
        let mut db = Db::new(Conn::Sqlite(conn));
        let out = f(&mut db).await;
        self.readers.give_back(db.into_conn());
        drop(permit);
        out
    }

    /// Runs `f` on a reader connection on tokio's blocking pool: for reads that may take
    /// milliseconds (exports, audit scans), which must not hold up a runtime worker.
    pub(crate) async fn scan<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Db<'static>) -> BoxFut<'c, T> + Send + 'static,
    {
        let permit = self
            .readers
            .available
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = this.readers.take()?;
            let mut db = Db::new(Conn::Sqlite(conn));
            let out = run_ready(f(&mut db));
            this.readers.give_back(db.into_conn());
            drop(permit);
            out
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("a scan did not finish: {e}")))?
    }

    pub(crate) fn durable_syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Stops taking writes, lets queued ones finish, and closes every connection (the
    /// last one to close checkpoints and removes the WAL).
    pub(crate) async fn close(&self) {
        self.readers.close();
        drop(
            self.jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let threads: Vec<_> = self
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        let joined = tokio::task::spawn_blocking(move || {
            for t in threads {
                if t.join().is_err() {
                    tracing::error!("an SQLite store thread panicked");
                }
            }
        })
        .await;
        if let Err(e) = joined {
            tracing::warn!(error = %e, "waiting for the SQLite threads failed");
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.options.path
    }
}

/// Runs one write transaction on the writer's connection.
fn transaction<T, F>(state: &mut WriterState, f: F) -> Result<T>
where
    F: for<'c> FnOnce(&'c mut Db<'static>) -> BoxFut<'c, T>,
{
    if let Some(message) = state.poison.get() {
        return Err(StoreError::Durability(message));
    }
    let conn = state.conn.take().ok_or(StoreError::Closed)?;
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        state.conn = Some(conn);
        return Err(e.into());
    }
    let mut db = Db::new(Conn::Sqlite(conn));
    // A panicking closure must not take the writer thread (and every later write) with
    // it: it is rolled back like a failed one.
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_ready(f(&mut db))))
        .unwrap_or_else(|_| {
            tracing::error!("a write transaction panicked; it was rolled back");
            Err(StoreError::Corrupt("a write transaction panicked".into()))
        });
    let Conn::Sqlite(conn) = db.into_conn() else {
        return Err(StoreError::Closed);
    };
    let out = match out {
        Ok(value) => match conn.execute_batch("COMMIT") {
            Ok(()) => Ok(value),
            Err(e) => Err(e.into()),
        },
        Err(e) => Err(e),
    };
    if !conn.is_autocommit() {
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %e, "rolling back an SQLite write transaction failed");
        }
    }
    if conn.is_autocommit() {
        state.conn = Some(conn);
    } else {
        // Still inside a transaction: every later BEGIN would fail. Start afresh (closing
        // the connection rolls the transaction back).
        drop(conn);
        state.conn = match state.options.open(false) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "reopening the SQLite writer failed; writes are refused");
                None
            }
        };
    }
    out
}

fn writer_loop(
    mut state: WriterState,
    jobs: &mpsc::Receiver<Job>,
    done: &mpsc::Sender<Vec<Completion>>,
) {
    while let Ok(first) = jobs.recv() {
        let mut completions = Vec::new();
        let mut next = Some(first);
        while let Some(job) = next.take() {
            completions.extend(job(&mut state));
            if completions.len() < WRITE_BATCH {
                next = jobs.try_recv().ok();
            }
        }
        if !completions.is_empty() && done.send(completions).is_err() {
            tracing::error!("the SQLite sync thread is gone; writes cannot be acknowledged");
            return;
        }
    }
    // Closing: `state.conn` drops here, after every queued write ran.
}

fn sync_loop(
    mut sync: WalSync,
    done: &mpsc::Receiver<Vec<Completion>>,
    checkpoint: &mpsc::SyncSender<()>,
) {
    let mut last_checkpoint = Instant::now();
    while let Ok(mut waiting) = done.recv() {
        // Every batch that reached us is committed: one sync covers them all.
        while let Ok(more) = done.try_recv() {
            waiting.extend(more);
        }
        let outcome = sync.sync_now();
        for complete in waiting {
            complete(outcome.clone());
        }
        if outcome.is_ok() && last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
            // Full means one is running: skip.
            let _ = checkpoint.try_send(());
            last_checkpoint = Instant::now();
        }
    }
}

fn checkpoint_loop(conn: Connection, wake: &mpsc::Receiver<()>, poison: &Poison) {
    while wake.recv().is_ok() {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            if e.sqlite_error_code() == Some(rusqlite::ErrorCode::SystemIoFailure) {
                // The checkpoint syncs the WAL and the database: an I/O error there may
                // have consumed a write-back error the sync thread would never see.
                let message: Arc<str> =
                    format!("a WAL checkpoint failed with an I/O error: {e}").into();
                tracing::error!(error = %message, "the store refuses further writes until restarted");
                poison.set(message);
            } else {
                tracing::warn!(error = %e, "background WAL checkpoint failed");
            }
        }
    }
}

/// Syncs the WAL file (and its directory entry when the file is new).
struct WalSync {
    wal: PathBuf,
    dir: PathBuf,
    /// The WAL file, kept open between syncs: Linux reports a write-back error only to
    /// descriptors open when it happened, so a descriptor opened afresh for each sync
    /// could miss one. Reopened when the WAL is a new file.
    open: Option<(File, u64)>,
    synced_inode: Option<u64>,
    syncs: Arc<AtomicU64>,
    poison: Arc<Poison>,
}

impl WalSync {
    fn new(database: &Path, syncs: Arc<AtomicU64>, poison: Arc<Poison>) -> Self {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        let dir = match database.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        Self {
            wal: PathBuf::from(wal),
            dir,
            open: None,
            synced_inode: None,
            syncs,
            poison,
        }
    }

    fn sync_now(&mut self) -> std::result::Result<(), Arc<str>> {
        if let Some(message) = self.poison.get() {
            return Err(message);
        }
        match self.try_sync() {
            Ok(()) => Ok(()),
            Err(e) => {
                let message: Arc<str> = format!("fsync of the write-ahead log failed: {e}").into();
                tracing::error!(error = %message, "the store refuses further writes until restarted");
                self.poison.set(message.clone());
                Err(message)
            }
        }
    }

    fn try_sync(&mut self) -> std::io::Result<()> {
        let inode = match std::fs::metadata(&self.wal) {
            Ok(m) => m.ino(),
            // Checkpointed into the (synced) database and removed by the last connection.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.open = None;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let wal = match self.open.take() {
            Some((file, open_inode)) if open_inode == inode => file,
            _ => File::open(&self.wal)?,
        };
        let synced = wal.sync_data();
        self.open = Some((wal, inode));
        synced?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        if self.synced_inode != Some(inode) {
            File::open(&self.dir)?.sync_all()?;
            self.synced_inode = Some(inode);
        }
        Ok(())
    }
}

/// The reader connections, opened on first need, up to a maximum.
struct Readers {
    options: SqliteOptions,
    idle: Mutex<Vec<Connection>>,
    available: Arc<tokio::sync::Semaphore>,
}

impl Readers {
    fn new(options: SqliteOptions, max: usize) -> Self {
        Self {
            options,
            idle: Mutex::new(Vec::with_capacity(max)),
            available: Arc::new(tokio::sync::Semaphore::new(max)),
        }
    }

    /// An idle connection, or a new one (the caller holds a permit).
    fn take(&self) -> Result<Connection> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match idle {
            Some(conn) => Ok(conn),
            None => self.options.open(true),
        }
    }

    fn give_back(&self, conn: Conn) {
        if let Conn::Sqlite(conn) = conn {
            if !self.available.is_closed() {
                self.idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(conn);
            }
        }
    }

    fn close(&self) {
        self.available.close();
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// Makes the database file, its WAL and shared-memory file readable by the owner only
/// (0600; R29). A missing database file is created empty with that mode before SQLite
/// opens it: SQLite would create it 0644 (less the umask), and it gives the `-wal` and
/// `-shm` files it creates the database file's mode. Files of an older install are
/// narrowed to 0600 here too.
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
        PathBuf::from(p)
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

/// Binds `params` to a prepared statement: `$N` and `?N` take the N-th value (as sqlx
/// did, so one SQL text serves both engines); a bare `?` takes the next.
fn bind(stmt: &mut rusqlite::Statement<'_>, params: &[Value]) -> Result<()> {
    for i in 1..=stmt.parameter_count() {
        let index = match stmt.parameter_name(i) {
            None => i,
            Some(name) => name
                .strip_prefix('$')
                .or_else(|| name.strip_prefix('?'))
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| StoreError::Corrupt(format!("unsupported placeholder {name}")))?,
        };
        let value = index
            .checked_sub(1)
            .and_then(|k| params.get(k))
            .ok_or_else(|| StoreError::Corrupt(format!("no value for placeholder {i}")))?;
        let bound = match value {
            Value::Int(v) => stmt.raw_bind_parameter(i, v),
            Value::Real(v) => stmt.raw_bind_parameter(i, v),
            Value::Bool(v) => stmt.raw_bind_parameter(i, v.map(i64::from)),
            Value::Text(v) => stmt.raw_bind_parameter(i, v.as_deref()),
            Value::Blob(v) => stmt.raw_bind_parameter(i, v.as_deref()),
        };
        bound?;
    }
    Ok(())
}

fn decode(row: &rusqlite::Row<'_>, columns: usize) -> Result<Row> {
    let mut out = Vec::with_capacity(columns);
    for i in 0..columns {
        out.push(match row.get_ref(i)? {
            ValueRef::Null => Value::Int(None),
            ValueRef::Integer(n) => Value::Int(Some(n)),
            ValueRef::Real(f) => Value::Real(Some(f)),
            ValueRef::Text(t) => Value::Text(Some(
                std::str::from_utf8(t)
                    .map_err(|_| StoreError::Corrupt(format!("column {i} is not UTF-8")))?
                    .to_owned(),
            )),
            ValueRef::Blob(b) => Value::Blob(Some(b.to_vec())),
        });
    }
    Ok(Row(out))
}

pub(super) fn execute(conn: &Connection, sql: &str, params: &[Value]) -> Result<u64> {
    let mut stmt = conn.prepare_cached(sql)?;
    bind(&mut stmt, params)?;
    let changed = if stmt.column_count() == 0 {
        stmt.raw_execute()?
    } else {
        // A statement with a result (`RETURNING`, some PRAGMAs) run for its effect.
        let mut rows = stmt.raw_query();
        while rows.next()?.is_some() {}
        usize::try_from(conn.changes()).unwrap_or(usize::MAX)
    };
    Ok(u64::try_from(changed).unwrap_or(u64::MAX))
}

pub(super) fn query(conn: &Connection, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(sql)?;
    bind(&mut stmt, params)?;
    let columns = stmt.column_count();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode(row, columns)?);
    }
    Ok(out)
}

pub(super) fn query_first(conn: &Connection, sql: &str, params: &[Value]) -> Result<Option<Row>> {
    let mut stmt = conn.prepare_cached(sql)?;
    bind(&mut stmt, params)?;
    let columns = stmt.column_count();
    let mut rows = stmt.raw_query();
    match rows.next()? {
        Some(row) => Ok(Some(decode(row, columns)?)),
        None => Ok(None),
    }
}

/// What differs in SQL text on SQLite (see [`super::Dialect`]).
pub(crate) const DIALECT: super::Dialect = super::Dialect {
    migrations: MIGRATIONS,
    // The writer thread is the only writer: `BEGIN IMMEDIATE` already serializes.
    migration_lock: None,
    has_checksum_column:
        "SELECT COUNT(*) FROM pragma_table_info('tutela_schema') WHERE name = 'checksum'",
    // One writer at a time: a claim cannot race another.
    skip_locked: "",
    schema_columns: "SELECT m.name, p.name, p.type, p.\"notnull\" OR p.pk > 0 \
         FROM sqlite_master m, pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
    schema_indexes: "SELECT m.name, il.\"unique\", \
           (SELECT group_concat(ii.name, ',') FROM \
              (SELECT name FROM pragma_index_info(il.name) ORDER BY seqno) ii) \
         FROM sqlite_master m, pragma_index_list(m.name) il \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND il.origin <> 'pk'",
    normalize_type: super::normalize_type,
    rows_per_statement: 1,
    after_bulk_import: None,
};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            // SQLITE_CONSTRAINT_UNIQUE and SQLITE_CONSTRAINT_PRIMARYKEY.
            if matches!(f.extended_code, 2067 | 1555) {
                return StoreError::Conflict;
            }
        }
        StoreError::Db(Box::new(e))
    }
}

/// The migration tree (`migrations/sqlite`): version, description, SQL. Released
/// entries are never edited (their checksums are checked at start, `migrate.rs`).
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation: tenants, subjects, api tokens",
        include_str!("../../migrations/sqlite/0001_foundation.sql"),
    ),
    (
        2,
        "vault: wrapped keys, encrypted records, audit entries",
        include_str!("../../migrations/sqlite/0002_vault.sql"),
    ),
    (
        3,
        "lookup: blind indexes of e-mail addresses and phone numbers",
        include_str!("../../migrations/sqlite/0003_lookup.sql"),
    ),
    (
        4,
        "consent: the append-only consent ledger",
        include_str!("../../migrations/sqlite/0004_consent.sql"),
    ),
    (
        5,
        "contact: preferences and the outbound message gate",
        include_str!("../../migrations/sqlite/0005_contact.sql"),
    ),
    (
        6,
        "cookie: website visitors' cookie consent",
        include_str!("../../migrations/sqlite/0006_cookie.sql"),
    ),
    (
        7,
        "successor: purpose changes under a new controller",
        include_str!("../../migrations/sqlite/0007_successor.sql"),
    ),
    (
        8,
        "grants: just-in-time support access",
        include_str!("../../migrations/sqlite/0008_grants.sql"),
    ),
    (
        9,
        "sharing: storage locations, recipients, the transfer register",
        include_str!("../../migrations/sqlite/0009_sharing.sql"),
    ),
    (
        10,
        "complaints: third-party complaints redirected to the customer",
        include_str!("../../migrations/sqlite/0010_complaints.sql"),
    ),
    (
        11,
        "record location: where each record is stored",
        include_str!("../../migrations/sqlite/0011_record_location.sql"),
    ),
    (
        12,
        "requests: data-subject requests",
        include_str!("../../migrations/sqlite/0012_requests.sql"),
    ),
    (
        13,
        "fulfilment: erasure, propagation outbox, one-time identity codes",
        include_str!("../../migrations/sqlite/0013_fulfilment.sql"),
    ),
    (
        14,
        "lifecycle: trials, closure, retention leases, anonymized aggregates, service terminations",
        include_str!("../../migrations/sqlite/0014_lifecycle.sql"),
    ),
    (
        15,
        "grants: explicit cover of personal information",
        include_str!("../../migrations/sqlite/0015_grant_personal_information.sql"),
    ),
    (
        16,
        "pii tokens: sealed originals of format-preserving tokens",
        include_str!("../../migrations/sqlite/0016_pii_tokens.sql"),
    ),
    (
        17,
        "least privilege: service token scopes, sealed grant reasons, incidents per tenant",
        include_str!("../../migrations/sqlite/0017_least_privilege.sql"),
    ),
    (
        18,
        "consents: provenance method of each ledger entry",
        include_str!("../../migrations/sqlite/0018_consent_provenance.sql"),
    ),
    (
        19,
        "hardening: single-use export links, sealed tenant names and waiver reasons",
        include_str!("../../migrations/sqlite/0019_hardening.sql"),
    ),
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use crate::Store;

    async fn store(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.unwrap();
        store
            .write(|db| {
                Box::pin(async move {
                    db.execute_script("CREATE TABLE t (k TEXT PRIMARY KEY, v BIGINT NOT NULL)")
                        .await
                })
            })
            .await
            .unwrap();
        store
    }

    /// Issue 15: a write returns only after a WAL sync that began after its commit; a
    /// read causes none; concurrent writes share syncs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_return_after_a_sync_and_concurrent_writes_share_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let before = store.durable_syncs();
        assert!(before >= 1);
        store.ping().await.unwrap();
        assert_eq!(store.durable_syncs(), before, "reads never sync");
        let mut set = tokio::task::JoinSet::new();
        for i in 0..200_i64 {
            let s = store.clone();
            set.spawn(async move {
                s.write(move |db| {
                    Box::pin(async move {
                        db.execute(
                            "INSERT INTO t (k, v) VALUES ($1, $2)",
                            &[format!("k{i}").into(), i.into()],
                        )
                        .await
                    })
                })
                .await
            });
        }
        while let Some(r) = set.join_next().await {
            assert_eq!(r.unwrap().unwrap(), 1);
        }
        let syncs = store.durable_syncs() - before;
        assert!((1..200).contains(&syncs), "{syncs} syncs for 200 writes");
        let (n,): (i64,) = store
            .read(|db| Box::pin(async move { db.fetch_one("SELECT COUNT(*) FROM t", &[]).await }))
            .await
            .unwrap();
        assert_eq!(n, 200);
    }

    /// A closure that fails rolls back everything it wrote; `$N` placeholders bind by
    /// number, in any order and repeated.
    #[tokio::test]
    async fn a_failed_closure_rolls_back_and_placeholders_bind_by_number() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let out: crate::Result<()> = store
            .write(|db| {
                Box::pin(async move {
                    db.execute(
                        "INSERT INTO t (k, v) VALUES ($2, $1)",
                        &[7_i64.into(), "a".into()],
                    )
                    .await?;
                    Err(crate::StoreError::Conflict)
                })
            })
            .await;
        assert!(matches!(out, Err(crate::StoreError::Conflict)));
        store
            .write(|db| {
                Box::pin(async move {
                    db.execute(
                        "INSERT INTO t (k, v) VALUES ($2, $1)",
                        &[7_i64.into(), "b".into()],
                    )
                    .await
                })
            })
            .await
            .unwrap();
        let key = String::from("b");
        let rows: Vec<(String, i64)> = store
            .read(|db| {
                Box::pin(async move {
                    db.fetch_all(
                        "SELECT k, v FROM t WHERE k = $1 OR k = $1",
                        &[key.as_str().into()],
                    )
                    .await
                })
            })
            .await
            .unwrap();
        assert_eq!(rows, [("b".to_owned(), 7)]);
        // A duplicate key is a conflict, not a generic error.
        let dup = store
            .write(|db| {
                Box::pin(async move {
                    db.execute("INSERT INTO t (k, v) VALUES ('b', 1)", &[])
                        .await
                })
            })
            .await;
        assert!(matches!(dup, Err(crate::StoreError::Conflict)), "{dup:?}");
    }

    /// A write closure that panics is rolled back and answered with an error; the writer
    /// thread survives and the next write goes through.
    #[tokio::test]
    async fn a_panicking_write_is_rolled_back_and_the_writer_survives() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let out: crate::Result<()> = store
            .write(|db| {
                Box::pin(async move {
                    db.execute("INSERT INTO t (k, v) VALUES ('p', 1)", &[])
                        .await?;
                    let empty: Vec<i64> = Vec::new();
                    #[allow(clippy::indexing_slicing, reason = "the panic under test")]
                    let _ = empty[0];
                    Ok(())
                })
            })
            .await;
        assert!(matches!(out, Err(crate::StoreError::Corrupt(_))), "{out:?}");
        store
            .write(|db| {
                Box::pin(async move {
                    db.execute("INSERT INTO t (k, v) VALUES ('q', 2)", &[])
                        .await
                })
            })
            .await
            .unwrap();
        let keys: Vec<(String,)> = store
            .read(|db| {
                Box::pin(async move { db.fetch_all("SELECT k FROM t ORDER BY k", &[]).await })
            })
            .await
            .unwrap();
        assert_eq!(
            keys,
            [("q".to_owned(),)],
            "the panicking write left nothing"
        );
    }

    /// Readers are `query_only`: a read closure cannot write.
    #[tokio::test]
    async fn a_read_closure_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let out = store
            .read(|db| {
                Box::pin(async move {
                    db.execute("INSERT INTO t (k, v) VALUES ('x', 1)", &[])
                        .await
                })
            })
            .await;
        assert!(out.is_err());
    }

    /// After close, writes are refused, and a new store on the same file sees every
    /// acknowledged write.
    #[tokio::test]
    async fn close_then_reopen_keeps_acknowledged_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        store
            .write(|db| {
                Box::pin(async move {
                    db.execute("INSERT INTO t (k, v) VALUES ('x', 1)", &[])
                        .await
                })
            })
            .await
            .unwrap();
        store.close().await;
        let after = store
            .write(|db| Box::pin(async move { db.execute("DELETE FROM t", &[]).await }))
            .await;
        assert!(matches!(after, Err(crate::StoreError::Closed)));
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        let again = Store::connect(&url).await.unwrap();
        let (n,): (i64,) = again
            .read(|db| Box::pin(async move { db.fetch_one("SELECT COUNT(*) FROM t", &[]).await }))
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
}
