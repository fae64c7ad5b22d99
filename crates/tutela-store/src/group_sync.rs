//! Group commit for SQLite: many commits, one `fsync`.
//!
//! tutela promises that a write is on stable storage before anyone hears it happened (an
//! audit entry survives a power cut once its response is sent). `synchronous=FULL` gives
//! that by syncing the write-ahead log inside every commit, which costs one `fsync` per
//! transaction on the single writer connection: measured here, that capped the deletion
//! workflow (about nine small transactions per request) at 55–80 requests/s.
//!
//! Instead the connections run with `synchronous=NORMAL`, where a commit has written its
//! WAL frames to the operating system but not synced them, and every store method that
//! wrote calls [`GroupSync::barrier`] before it returns. A barrier waits for one `fsync` of
//! the WAL file that *started after* the barrier was entered, so it covers every commit the
//! caller made. Concurrent barriers share one sync: the first caller to find no sync running
//! performs it for all tickets issued so far (leader election, no background task), the
//! others wait for its result. Durability is the same as `FULL` (which syncs the same file
//! at commit); under load one `fsync` now covers dozens of commits.
//!
//! Why this is sound:
//! - `fsync` flushes the file (inode), whichever descriptor it is called on, so syncing our
//!   own read-only descriptor of the `-wal` file makes SQLite's writes durable.
//! - SQLite in `NORMAL` mode still syncs the WAL before each checkpoint and the database
//!   after it, so frames that a checkpoint moved are durable in the database file; a WAL
//!   that no longer exists was checkpointed and removed by the last connection to close.
//! - A newly created WAL file also needs its directory entry synced; we sync the directory
//!   whenever the WAL file we see is a new inode (as SQLite does for a new journal).
//! - A failed `fsync` leaves the page cache in an unknown state (the dirty pages may have
//!   been dropped), so the store is poisoned: every later write fails until the process is
//!   restarted, the way PostgreSQL treats the same failure.
//!
//! Checkpoints move off the writer too. SQLite's automatic checkpoint runs inside the
//! commit that crosses the threshold, so the single writer stalls while it copies pages
//! back and syncs the database file. Here a leader that has just synced starts a `PASSIVE`
//! checkpoint on a reader connection once [`CHECKPOINT_EVERY`] has passed since the last
//! one; it runs beside the writer. The writer keeps a much larger automatic threshold only
//! as a backstop (see `sqlite.rs`).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

use crate::{Result, StoreError};

/// How often, at most, a background checkpoint starts while writes are coming in.
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Default)]
struct Synced {
    /// Every ticket up to this one is covered by a completed sync.
    covered: u64,
    /// Set for good after a failed sync.
    poisoned: Option<Arc<str>>,
}

/// The group-commit state of one SQLite database (shared by all clones of a `Store`).
#[derive(Debug)]
pub(crate) struct GroupSync {
    wal: PathBuf,
    dir: PathBuf,
    /// Tickets handed out to barriers, in order.
    issued: AtomicU64,
    /// Whether some barrier is performing a sync right now (the leader).
    leading: AtomicBool,
    synced: watch::Sender<Synced>,
    /// The WAL inode whose directory entry has been synced.
    synced_inode: Mutex<Option<u64>>,
    /// Syncs performed (for tests and metrics).
    syncs: AtomicU64,
    /// Where background checkpoints run (a reader connection), and when the last began.
    checkpointer: Option<Arc<crate::sqlite::Readers>>,
    checkpointing: Arc<AtomicBool>,
    last_checkpoint: Mutex<Instant>,
}

/// Clears `leading` and wakes the waiters when the leader finishes or is cancelled (a
/// cancelled leader must not leave the others waiting for a sync nobody performs).
struct Leadership<'a>(&'a GroupSync);

impl Drop for Leadership<'_> {
    fn drop(&mut self) {
        self.0.leading.store(false, Ordering::SeqCst);
        self.0.synced.send_modify(|_| {});
    }
}

impl GroupSync {
    /// `checkpointer`: the pool background checkpoints run on (`None`: SQLite's own).
    pub(crate) fn new(database: &Path, checkpointer: Option<Arc<crate::sqlite::Readers>>) -> Self {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        let dir = match database.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        Self {
            wal: PathBuf::from(wal),
            dir,
            issued: AtomicU64::new(0),
            leading: AtomicBool::new(false),
            synced: watch::Sender::new(Synced::default()),
            synced_inode: Mutex::new(None),
            syncs: AtomicU64::new(0),
            checkpointer,
            checkpointing: Arc::new(AtomicBool::new(false)),
            last_checkpoint: Mutex::new(Instant::now()),
        }
    }

    /// Returns once every commit made before the call is on stable storage.
    pub(crate) async fn barrier(self: &Arc<Self>) -> Result<()> {
        let ticket = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let mut rx = self.synced.subscribe();
        loop {
            {
                let state = rx.borrow_and_update();
                if let Some(e) = &state.poisoned {
                    return Err(StoreError::Durability(e.clone()));
                }
                if state.covered >= ticket {
                    return Ok(());
                }
            }
            if self
                .leading
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                let _leadership = Leadership(self);
                // Every ticket issued up to here belongs to a caller whose commits are
                // already written to the WAL: this sync covers them all.
                let upto = self.issued.load(Ordering::SeqCst);
                let this = Arc::clone(self);
                let outcome = tokio::task::spawn_blocking(move || this.sync_now())
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
                match outcome {
                    Ok(()) => {
                        self.synced.send_modify(|s| s.covered = s.covered.max(upto));
                        self.maybe_checkpoint();
                    }
                    Err(e) => {
                        let message: Arc<str> =
                            format!("fsync of the write-ahead log failed: {e}").into();
                        tracing::error!(error = %message, "the store refuses further writes until restarted");
                        self.synced
                            .send_modify(|s| s.poisoned = Some(message.clone()));
                        return Err(StoreError::Durability(message));
                    }
                }
                continue;
            }
            // A sync is running; it may or may not cover our ticket. Wait for it to end
            // (or be abandoned), then look again.
            if rx.changed().await.is_err() {
                return Err(StoreError::Durability("the store was closed".into()));
            }
        }
    }

    /// Starts a `PASSIVE` checkpoint in the background if none is running and the last
    /// one began at least [`CHECKPOINT_EVERY`] ago. A failure is logged and retried at
    /// the next occasion; SQLite's own (backstop) checkpoint still bounds the log.
    fn maybe_checkpoint(&self) {
        let Some(pool) = &self.checkpointer else {
            return;
        };
        {
            let mut last = self
                .last_checkpoint
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.elapsed() < CHECKPOINT_EVERY
                || self
                    .checkpointing
                    .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
            {
                return;
            }
            *last = Instant::now();
        }
        let readers = Arc::clone(pool);
        let flag = Arc::clone(&self.checkpointing);
        tokio::spawn(async move {
            let outcome = async {
                let mut lent = readers.lend().await?;
                sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(lent.conn()?)
                    .await?;
                Ok::<_, StoreError>(())
            }
            .await;
            match outcome {
                // Shutting down: closing the connections checkpoints anyway.
                Ok(()) | Err(StoreError::Closed) => {}
                Err(e) => tracing::warn!(error = %e, "background WAL checkpoint failed"),
            }
            flag.store(false, Ordering::SeqCst);
        });
    }

    /// Syncs performed so far.
    pub(crate) fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    fn sync_now(&self) -> std::io::Result<()> {
        let wal = match File::open(&self.wal) {
            Ok(f) => f,
            // Checkpointed into the (synced) database and removed by the last connection.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        wal.sync_data()?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        let inode = wal.metadata()?.ino();
        let mut synced_inode = self
            .synced_inode
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *synced_inode != Some(inode) {
            File::open(&self.dir)?.sync_all()?;
            *synced_inode = Some(inode);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_barriers_share_syncs_and_all_return() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        std::fs::write(dir.path().join("t.db-wal"), b"frames").unwrap();
        let sync = Arc::new(GroupSync::new(&db, None));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..200 {
            let s = sync.clone();
            set.spawn(async move { s.barrier().await });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap().unwrap();
        }
        // Every barrier returned, and they did not each pay for their own sync.
        assert!(sync.syncs() >= 1);
        assert!(
            sync.syncs() < 200,
            "{} syncs for 200 barriers",
            sync.syncs()
        );
    }

    #[tokio::test]
    async fn a_barrier_after_a_sync_waits_for_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        std::fs::write(dir.path().join("t.db-wal"), b"frames").unwrap();
        let sync = Arc::new(GroupSync::new(&db, None));
        sync.barrier().await.unwrap();
        sync.barrier().await.unwrap();
        assert_eq!(
            sync.syncs(),
            2,
            "a later barrier is never covered by an earlier sync"
        );
    }

    #[tokio::test]
    async fn a_failed_sync_poisons_every_later_barrier() {
        let dir = tempfile::tempdir().unwrap();
        // Make the sync fail: the directory holding the WAL cannot be opened.
        let db = dir.path().join("t.db");
        std::fs::write(dir.path().join("t.db-wal"), b"frames").unwrap();
        let mut sync = GroupSync::new(&db, None);
        sync.dir = dir.path().join("gone");
        let sync = Arc::new(sync);
        let first = sync.barrier().await;
        assert!(matches!(first, Err(StoreError::Durability(_))), "{first:?}");
        std::fs::create_dir(dir.path().join("gone")).unwrap();
        let later = sync.barrier().await;
        assert!(matches!(later, Err(StoreError::Durability(_))), "{later:?}");
    }
}
