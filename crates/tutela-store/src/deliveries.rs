//! The propagation outbox (issue 6; R34): one row per (request, recipient), written in
//! the same transaction as the erasure that causes it, so a deletion never exists
//! without its notifications. Senders claim due rows with a lease (`leased_until`), so
//! two replicas never send the same row at once; a crashed sender's lease just expires.

use crate::audit::{insert_audit_rows, AuditEntry};
use crate::db::{Db, Value};
use crate::{from_micros, parse_col, to_micros, Result, Store};
use time::OffsetDateTime;
use tutela_core::delivery::DeliveryStatus;

/// One recipient's notification of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Also the idempotency key sent with every attempt.
    pub id: String,
    /// The data-subject request that caused it; `None` for a retention erasure.
    pub request: Option<String>,
    pub recipient: String,
    /// The one subject it concerns; `None` for a batch (the body lists the subjects).
    pub subject: Option<String>,
    pub status: DeliveryStatus,
    /// The JSON body sent (ids and vocabulary only).
    pub body: String,
    pub attempts: u32,
    pub next_attempt_at: OffsetDateTime,
    /// A short code of the last failure (`http_503`, `timeout`, ...); never a body.
    pub last_error: Option<String>,
    pub acked_at: Option<OffsetDateTime>,
    /// The officer's reason for a waiver, in clear: only rows written before schema 19.
    pub waived_reason: Option<String>,
    /// The officer's reason for a waiver, sealed under the tenant key (R29).
    pub waived_reason_sealed: Option<Vec<u8>>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Delivery {
    /// A new notice, due now: `pending` when the recipient has a webhook and secret,
    /// else `manual` (the officer settles it).
    pub fn queued(
        id: String,
        request: Option<String>,
        recipient: &str,
        sendable: bool,
        subject: Option<String>,
        body: String,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            request,
            recipient: recipient.to_owned(),
            subject,
            status: if sendable {
                DeliveryStatus::Pending
            } else {
                DeliveryStatus::Manual
            },
            body,
            attempts: 0,
            next_attempt_at: now,
            last_error: (!sendable).then(|| "no_webhook".to_owned()),
            acked_at: None,
            waived_reason: None,
            waived_reason_sealed: None,
            created_at: now,
            updated_at: now,
        }
    }
}

pub(crate) const COLUMNS: &str =
    "id, request_id, recipient_id, subject_id, status, body, attempts, \
    next_attempt_at, last_error, acked_at, waived_reason, waived_reason_sealed, created_at, updated_at";

type Row = (
    String,
    Option<String>,
    String,
    Option<String>,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<Vec<u8>>,
    i64,
    i64,
);

fn decode(r: Row) -> Result<Delivery> {
    let (
        id,
        request,
        recipient,
        subject,
        status,
        body,
        attempts,
        next_attempt_at,
        last_error,
        acked_at,
        waived_reason,
        waived_reason_sealed,
        created_at,
        updated_at,
    ) = r;
    Ok(Delivery {
        id,
        request,
        recipient,
        subject,
        status: parse_col("status", &status, DeliveryStatus::parse)?,
        body,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_at: from_micros(next_attempt_at)?,
        last_error,
        acked_at: acked_at.map(from_micros).transpose()?,
        waived_reason,
        waived_reason_sealed,
        created_at: from_micros(created_at)?,
        updated_at: from_micros(updated_at)?,
    })
}

/// Rows per multi-row INSERT of deliveries (14 binds each, far below both engines' bind
/// limits).
const INSERT_ROWS: usize = 500;
/// Columns bound per delivery row.
const BINDS: usize = 14;

fn push_params(out: &mut Vec<Value>, d: &Delivery) {
    out.extend([
        Value::from(&d.id),
        Value::from(d.request.as_deref()),
        Value::from(&d.recipient),
        Value::from(d.subject.as_deref()),
        Value::from(d.status.as_str()),
        Value::from(&d.body),
        Value::from(i64::from(d.attempts)),
        Value::from(to_micros(d.next_attempt_at)),
        Value::from(d.last_error.as_deref()),
        Value::from(d.acked_at.map(to_micros)),
        Value::from(d.waived_reason.as_deref()),
        Value::from(d.waived_reason_sealed.as_deref()),
        Value::from(to_micros(d.created_at)),
        Value::from(to_micros(d.updated_at)),
    ]);
}

/// Inserts deliveries inside the caller's transaction (`INSERT_ROWS` per statement), so
/// that they commit with the erasure or retention batch that causes them.
pub(crate) async fn insert_deliveries(db: &mut Db<'_>, deliveries: &[Delivery]) -> Result<()> {
    let head = format!("INSERT INTO deliveries ({COLUMNS}) VALUES ");
    db.execute_rows((&head, ""), deliveries, (BINDS, INSERT_ROWS), push_params)
        .await?;
    Ok(())
}

/// How an attempt, an acknowledgement or a waiver changes a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryUpdate {
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: OffsetDateTime,
    pub last_error: Option<String>,
    pub acked_at: Option<OffsetDateTime>,
    /// A waiver's reason, sealed under the tenant key (R29).
    pub waived_reason_sealed: Option<Vec<u8>>,
    pub at: OffsetDateTime,
}

impl Store {
    /// The deliveries of a request, by recipient.
    pub async fn deliveries_of(&self, request: &str) -> Result<Vec<Delivery>> {
        let sql =
            format!("SELECT {COLUMNS} FROM deliveries WHERE request_id = $1 ORDER BY recipient_id");
        let rows: Vec<Row> = self
            .read(|db| Box::pin(async move { db.fetch_all(&sql, &[request.into()]).await }))
            .await?;
        rows.into_iter().map(decode).collect()
    }

    pub async fn delivery(&self, id: &str) -> Result<Option<Delivery>> {
        let sql = format!("SELECT {COLUMNS} FROM deliveries WHERE id = $1");
        let row: Option<Row> = self
            .read(|db| Box::pin(async move { db.fetch_optional(&sql, &[id.into()]).await }))
            .await?;
        row.map(decode).transpose()
    }

    /// Claims up to `limit` deliveries due at `now` that no live lease holds, leasing them
    /// until `lease_until`. On PostgreSQL `FOR UPDATE SKIP LOCKED` keeps two replicas off
    /// the same rows; SQLite has one writer, so the claim is already exclusive.
    pub async fn claim_due_deliveries(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        let rows: Vec<Row> = self
            .write(move |db| {
                Box::pin(async move {
                    let sql = format!(
                        "UPDATE deliveries SET leased_until = $1 WHERE id IN (\
                           SELECT id FROM deliveries \
                           WHERE status IN ('pending', 'delivered') AND next_attempt_at <= $2 \
                             AND (leased_until IS NULL OR leased_until <= $2) \
                           ORDER BY next_attempt_at, id LIMIT $3{}) \
                         RETURNING {COLUMNS}",
                        db.dialect().skip_locked
                    );
                    db.fetch_all(
                        &sql,
                        &[
                            to_micros(lease_until).into(),
                            to_micros(now).into(),
                            i64::from(limit).into(),
                        ],
                    )
                    .await
                })
            })
            .await?;
        let mut out = rows.into_iter().map(decode).collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id)));
        Ok(out)
    }

    /// The earliest time a sendable delivery falls due, if any (the sender sleeps until
    /// then or until woken).
    pub async fn next_delivery_due(&self) -> Result<Option<OffsetDateTime>> {
        let row: Option<(Option<i64>,)> = self
            .read(|db| {
                Box::pin(async move {
                    db.fetch_optional(
                        "SELECT min(next_attempt_at) FROM deliveries WHERE status IN ('pending', 'delivered')",
                        &[],
                    )
                    .await
                })
            })
            .await?;
        row.and_then(|(t,)| t).map(from_micros).transpose()
    }

    /// Records the outcomes of one sending round in a single transaction (each as
    /// [`Store::update_delivery_audited`] would); returns how many changed.
    pub async fn update_deliveries_audited(
        &self,
        updates: &[(String, DeliveryUpdate, AuditEntry)],
    ) -> Result<usize> {
        if updates.is_empty() {
            return Ok(0);
        }
        let updates = updates.to_vec();
        self.write(move |db| {
            Box::pin(async move {
                let mut changed = 0;
                let mut audits = Vec::with_capacity(updates.len());
                for (id, u, audit) in updates {
                    let n = db
                        .execute(
                            "UPDATE deliveries SET status = $1, attempts = $2, next_attempt_at = $3, last_error = $4, \
                             acked_at = $5, waived_reason_sealed = $6, updated_at = $7, leased_until = NULL \
                             WHERE id = $8 AND status NOT IN ('acknowledged', 'waived')",
                            &[
                                u.status.as_str().into(),
                                i64::from(u.attempts).into(),
                                to_micros(u.next_attempt_at).into(),
                                u.last_error.into(),
                                u.acked_at.map(to_micros).into(),
                                u.waived_reason_sealed.into(),
                                to_micros(u.at).into(),
                                id.into(),
                            ],
                        )
                        .await?;
                    // A settled delivery is left as it is, and its audit entry dropped.
                    if n > 0 {
                        changed += 1;
                        audits.push(audit);
                    }
                }
                insert_audit_rows(db, &audits).await?;
                Ok(changed)
            })
        })
        .await
    }

    /// Writes a delivery's new state unless it is already settled (acknowledged or
    /// waived: a late attempt result never undoes an acknowledgement), releasing its
    /// lease, with the audit entry. Returns whether it changed.
    pub async fn update_delivery_audited(
        &self,
        id: &str,
        u: &DeliveryUpdate,
        audit: &AuditEntry,
    ) -> Result<bool> {
        let one = [(id.to_owned(), u.clone(), audit.clone())];
        Ok(self.update_deliveries_audited(&one).await? == 1)
    }
}

/// Test support shared by the outbox, erasure and retention tests. Each test's rows
/// carry fresh random ids, so the tests also run side by side on one PostgreSQL
/// database (`TUTELA_TEST_DB=postgres`, `TUTELA_TEST_PG_URL`).
#[cfg(test)]
pub(crate) mod testing {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
    use crate::audit::AuditEntry;
    use crate::db::Value;
    use crate::Store;
    use time::OffsetDateTime;
    use tutela_core::{SubjectId, TenantId};

    /// A migrated store: SQLite in `dir`, or PostgreSQL when the environment asks for it.
    pub(crate) async fn store(dir: &tempfile::TempDir) -> Store {
        let url = if std::env::var("TUTELA_TEST_DB").is_ok_and(|v| v == "postgres") {
            std::env::var("TUTELA_TEST_PG_URL")
                .expect("TUTELA_TEST_DB=postgres needs TUTELA_TEST_PG_URL")
        } else {
            format!("sqlite:{}", dir.path().join("t.db").display())
        };
        Store::open(&url, OffsetDateTime::UNIX_EPOCH).await.unwrap()
    }

    pub(crate) fn random_id() -> [u8; 16] {
        let mut bytes = [0; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
        bytes
    }

    /// A fresh id with `prefix`.
    pub(crate) fn fresh(prefix: &str) -> String {
        format!("{prefix}_{}", hex::encode(random_id()))
    }

    pub(crate) async fn exec(store: &Store, sql: &'static str, params: Vec<Value>) {
        store
            .write(move |db| Box::pin(async move { db.execute(sql, &params).await.map(|_| ()) }))
            .await
            .unwrap();
    }

    pub(crate) async fn count(store: &Store, sql: &'static str, params: Vec<Value>) -> i64 {
        let (n,): (i64,) = store
            .read(|db| Box::pin(async move { db.fetch_one(sql, &params).await }))
            .await
            .unwrap();
        n
    }

    /// A tenant with its wrapped key.
    pub(crate) async fn tenant(store: &Store) -> TenantId {
        let tenant = TenantId::from_bytes(random_id());
        exec(
            store,
            "INSERT INTO tenants (id, name, kind, state, created_at) \
             VALUES ($1, 'Test tenant', 'enterprise', 'active', 0)",
            vec![tenant.as_str().into()],
        )
        .await;
        exec(
            store,
            "INSERT INTO tenant_keys (tenant_id, master_key_id, wrapped) VALUES ($1, 1, $2)",
            vec![tenant.as_str().into(), b"tenant-key".into()],
        )
        .await;
        tenant
    }

    /// A customer subject of `tenant` with its data key and one record per category.
    pub(crate) async fn subject(
        store: &Store,
        tenant: &TenantId,
        categories: &[&str],
    ) -> SubjectId {
        let subject = SubjectId::from_bytes(random_id());
        exec(
            store,
            "INSERT INTO subjects (id, tenant_id, kind, created_at) VALUES ($1, $2, 'customer', 0)",
            vec![subject.as_str().into(), tenant.as_str().into()],
        )
        .await;
        exec(
            store,
            "INSERT INTO subject_keys (subject_id, wrapped) VALUES ($1, $2)",
            vec![subject.as_str().into(), b"old-key".into()],
        )
        .await;
        for c in categories {
            exec(
                store,
                "INSERT INTO records (subject_id, category, version, service, fields, updated_at) \
                 VALUES ($1, $2, 1, 'svc', $3, 0)",
                vec![subject.as_str().into(), (*c).into(), b"sealed".into()],
            )
            .await;
        }
        subject
    }

    /// A recipient without a webhook.
    pub(crate) async fn recipient(store: &Store) -> String {
        let id = fresh("rcp");
        exec(
            store,
            "INSERT INTO recipients (id, name, kind, country, purposes, categories, created_at) \
             VALUES ($1, 'Recipient', 'subprocessor', 'CN', '', '', 0)",
            vec![id.as_str().into()],
        )
        .await;
        id
    }

    pub(crate) fn audit(reason: &str) -> AuditEntry {
        AuditEntry {
            id: fresh("aud"),
            at: OffsetDateTime::UNIX_EPOCH,
            token_id: "tok_test".into(),
            role: "privacy_officer".into(),
            tenant: None,
            subject: None,
            category: None,
            purpose: None,
            action: "test".into(),
            decision: "allow".into(),
            reason: reason.to_owned(),
            clause: None,
            seq: None,
        }
    }

    /// Audit entries with this reason.
    pub(crate) async fn audited(store: &Store, reason: &str) -> i64 {
        count(
            store,
            "SELECT count(*) FROM audit_entries WHERE reason = $1",
            vec![reason.into()],
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::testing::{audit, audited, fresh, recipient, store};
    use super::*;
    use std::collections::HashSet;
    use time::Duration;

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::seconds(s)
    }

    /// `n` sendable notices to one recipient, due at `due`.
    async fn queue(store: &Store, n: usize, due: OffsetDateTime) -> (String, Vec<String>) {
        let recipient = recipient(store).await;
        let batch = fresh("dlv");
        let rows: Vec<Delivery> = (0..n)
            .map(|i| {
                Delivery::queued(
                    format!("{batch}_{i:03}"),
                    None,
                    &recipient,
                    true,
                    None,
                    "{}".into(),
                    due,
                )
            })
            .collect();
        let ids = rows.iter().map(|d| d.id.clone()).collect();
        store
            .write(move |db| Box::pin(async move { insert_deliveries(db, &rows).await }))
            .await
            .unwrap();
        (recipient, ids)
    }

    fn mine<'a>(claimed: &'a [Delivery], recipient: &str) -> Vec<&'a str> {
        claimed
            .iter()
            .filter(|d| d.recipient == recipient)
            .map(|d| d.id.as_str())
            .collect()
    }

    /// R34: concurrent claims never overlap; a claimed notice is leased (no second
    /// claim until the lease ends); an acknowledged one is never undone by a late
    /// attempt result, whose audit entry is then dropped with it. One test, because
    /// claims take every due notice: on a shared PostgreSQL database two claiming tests
    /// would take each other's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn claims_never_overlap_and_settled_deliveries_stay_settled() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        concurrent_claims_never_share_a_delivery(&store).await;
        // Later than the concurrent claims' notices.
        let t = |s: i64| at(100_000 + s);
        let (recipient, ids) = queue(&store, 2, t(10)).await;
        assert!(store.next_delivery_due().await.unwrap().unwrap() <= t(10));
        assert!(
            mine(
                &store.claim_due_deliveries(t(5), t(65), 1000).await.unwrap(),
                &recipient
            )
            .is_empty(),
            "not due yet"
        );
        let claimed = store
            .claim_due_deliveries(t(10), t(70), 1000)
            .await
            .unwrap();
        assert_eq!(mine(&claimed, &recipient), ids);
        assert!(
            mine(
                &store
                    .claim_due_deliveries(t(20), t(80), 1000)
                    .await
                    .unwrap(),
                &recipient
            )
            .is_empty(),
            "leased"
        );
        assert_eq!(
            mine(
                &store
                    .claim_due_deliveries(t(70), t(130), 1000)
                    .await
                    .unwrap(),
                &recipient
            ),
            ids,
            "lease ended"
        );

        let first = ids.first().unwrap();
        let ack = DeliveryUpdate {
            status: DeliveryStatus::Acknowledged,
            attempts: 1,
            next_attempt_at: t(71),
            last_error: None,
            acked_at: Some(t(71)),
            waived_reason_sealed: None,
            at: t(71),
        };
        let reason = format!("ack:{first}");
        assert!(store
            .update_delivery_audited(first, &ack, &audit(&reason))
            .await
            .unwrap());
        let late = DeliveryUpdate {
            status: DeliveryStatus::Pending,
            attempts: 2,
            next_attempt_at: t(200),
            last_error: Some("timeout".into()),
            acked_at: None,
            waived_reason_sealed: None,
            at: t(72),
        };
        assert!(!store
            .update_delivery_audited(first, &late, &audit(&reason))
            .await
            .unwrap());
        let stored = store.delivery(first).await.unwrap().unwrap();
        assert_eq!(stored.status, DeliveryStatus::Acknowledged);
        assert_eq!(stored.acked_at, Some(t(71)));
        assert_eq!(
            audited(&store, &reason).await,
            1,
            "the late result is not audited"
        );
    }

    /// Concurrent claimers (replicas) never get the same notice: on PostgreSQL this is
    /// `FOR UPDATE SKIP LOCKED`; on SQLite the single writer.
    async fn concurrent_claims_never_share_a_delivery(store: &Store) {
        // Lease whatever an earlier run on the same PostgreSQL database left due, so
        // that only this run's notices are claimable at t = 10 s.
        store
            .claim_due_deliveries(at(10), at(70), u32::MAX)
            .await
            .unwrap();
        let (recipient, ids) = queue(store, 40, at(10)).await;
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let store = store.clone();
            set.spawn(async move { store.claim_due_deliveries(at(10), at(70), 10).await });
        }
        let mut seen = HashSet::new();
        while let Some(claimed) = set.join_next().await {
            for d in claimed.unwrap().unwrap() {
                if d.recipient == recipient {
                    assert!(seen.insert(d.id), "a delivery was claimed twice");
                }
            }
        }
        let mut ids = ids;
        ids.retain(|id| seen.contains(id));
        assert_eq!(ids.len(), 40, "four claims of ten took every notice once");
    }
}
