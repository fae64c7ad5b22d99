//! Group commit for the audit entries of reads and denials (issue 3, `DESIGN.md`).
//!
//! A read's audit entry must be durable before its data leaves, and a failed audit write
//! fails the access. One transaction per read would cap throughput at what SQLite's single
//! writer connection commits per second (at most ~6,000/s with a sync per commit here; the
//! store's group commit shares syncs, not transactions), so concurrent requests hand
//! their entries to one writer task that inserts everything waiting in one transaction and
//! then answers each request. A request waits at most one commit plus the commit already in
//! progress; under load, batches grow by themselves.
//!
//! The decision and the decryption happen in the request before it gets here: only the
//! insert and the commit are serialized.

use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tutela_store::AuditEntry;
use tutela_store::Store;

/// Entries taken into one transaction at most; more wait for the next commit.
const MAX_BATCH: usize = 4096;
/// Batches committing at once. The store's SQLite writer commits the next batch while
/// the previous one's WAL sync runs (`tutela-store/src/db/sqlite.rs`); with one batch in
/// flight, each request waited for a whole commit-and-sync of the batch before its own.
const IN_FLIGHT: usize = 4;
/// Requests that may wait for the writer before `append` itself waits for room.
const QUEUE: usize = 16_384;

type Reply = oneshot::Sender<Result<(), Arc<str>>>;

/// The audit append failed; the access it recorded must fail too (fail closed).
#[derive(Debug, thiserror::Error)]
#[error("audit entry not written: {0}")]
pub struct AuditWriteFailed(Arc<str>);

/// Handle to the writer task; cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditWriter {
    queue: mpsc::Sender<(AuditEntry, Reply)>,
}

impl AuditWriter {
    /// Starts the writer task on the current tokio runtime. It ends when the last handle
    /// is dropped, after committing what was queued.
    pub fn spawn(store: Store, metrics: Arc<crate::metrics::Metrics>) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, rx, metrics));
        Self { queue }
    }

    /// Appends one entry and returns once it is committed.
    pub async fn append(&self, entry: AuditEntry) -> Result<(), AuditWriteFailed> {
        let (reply, done) = oneshot::channel();
        self.queue
            .send((entry, reply))
            .await
            .map_err(|_| AuditWriteFailed("the audit writer has stopped".into()))?;
        done.await
            .map_err(|_| AuditWriteFailed("the audit writer has stopped".into()))?
            .map_err(AuditWriteFailed)
    }
}

async fn run(
    store: Store,
    mut rx: mpsc::Receiver<(AuditEntry, Reply)>,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut batch: Vec<(AuditEntry, Reply)> = Vec::with_capacity(256);
    let mut committing = tokio::task::JoinSet::new();
    loop {
        // Wait for a free slot first, so entries keep gathering into the next batch
        // while every slot is busy.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
            break;
        }
        let (entries, replies): (Vec<AuditEntry>, Vec<Reply>) = batch.drain(..).unzip();
        let (store, metrics) = (store.clone(), metrics.clone());
        committing.spawn(async move {
            let outcome = store
                .append_audit_batch(&entries)
                .await
                .map_err(|e| -> Arc<str> { format!("{e}").into() });
            drop(slot);
            if let Err(e) = &outcome {
                tracing::error!(error = %e, entries = entries.len(), "audit group commit failed");
            }
            metrics.observe_audit_batch(entries.len());
            for reply in replies {
                // The request may have gone (client hung up); the entry is committed anyway.
                let _ = reply.send(outcome.clone());
            }
        });
        // Reap finished commits so the set does not grow.
        while committing.try_join_next().is_some() {}
    }
    // The last handle is gone: let the commits in flight finish and answer.
    while committing.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        reason = "tests"
    )]
    use super::*;
    use time::macros::datetime;

    fn entry(n: usize) -> AuditEntry {
        AuditEntry {
            id: format!("aud_test_{n:06}"),
            at: datetime!(2026-11-29 00:00 UTC),
            token_id: "tok_0".into(),
            role: "operator".into(),
            tenant: None,
            subject: None,
            category: None,
            purpose: None,
            action: "read".into(),
            decision: "allow".into(),
            reason: "declared_purpose".into(),
            clause: Some("R8".into()),
            seq: None,
        }
    }

    #[tokio::test]
    async fn concurrent_appends_are_all_durable_and_share_commits() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        let store = Store::open(&url, datetime!(2026-11-29 00:00 UTC))
            .await
            .unwrap();
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let writer = AuditWriter::spawn(store.clone(), metrics.clone());
        let tasks: Vec<_> = (0..200)
            .map(|n| {
                let w = writer.clone();
                tokio::spawn(async move { w.append(entry(n)).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(store.unsealed_audit(1000).await.unwrap().len(), 200);
        let commits = metrics.audit_batches();
        assert!(
            commits < 200,
            "200 concurrent appends should share commits, got {commits}"
        );
    }

    #[tokio::test]
    async fn a_failed_commit_fails_every_waiting_append() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        let store = Store::open(&url, datetime!(2026-11-29 00:00 UTC))
            .await
            .unwrap();
        let writer = AuditWriter::spawn(store.clone(), Arc::new(crate::metrics::Metrics::new()));
        writer.append(entry(1)).await.unwrap();
        // The same id again violates the primary key: the access must fail, not pass.
        let err = writer.append(entry(1)).await.unwrap_err();
        assert!(err.to_string().contains("audit entry not written"));
    }
}
