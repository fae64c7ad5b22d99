//! The audit log's rows: entries (appended with the action they record, or alone for
//! reads and denials), their sealing into the Merkle tree, and the signed heads. An entry
//! never holds a personal data value.

use crate::db::{Db, Value};
use crate::{from_micros, to_micros, Result, Store, StoreError};
use time::OffsetDateTime;

/// One audit entry: who did what to whom, for which purpose, and the decision. Never a
/// personal data value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: String,
    pub at: OffsetDateTime,
    pub token_id: String,
    pub role: String,
    pub tenant: Option<String>,
    pub subject: Option<String>,
    pub category: Option<String>,
    pub purpose: Option<String>,
    pub action: String,
    pub decision: String,
    pub reason: String,
    pub clause: Option<String>,
    /// The entry's index in the Merkle tree, once sealed.
    pub seq: Option<i64>,
}

/// A signed tree head as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadRow {
    pub size: i64,
    pub root: Vec<u8>,
    pub signature: Vec<u8>,
    pub signed_at: OffsetDateTime,
}

const AUDIT_COLUMNS: &str =
    "id, at, token_id, role, tenant_id, subject_id, category, purpose, action, decision, reason, clause, seq, leaf_hash";

type AuditRow = (
    String,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<Vec<u8>>,
);

fn decode_audit(r: AuditRow) -> Result<(AuditEntry, Option<Vec<u8>>)> {
    let (
        id,
        at,
        token_id,
        role,
        tenant,
        subject,
        category,
        purpose,
        action,
        decision,
        reason,
        clause,
        seq,
        leaf,
    ) = r;
    Ok((
        AuditEntry {
            id,
            at: from_micros(at)?,
            token_id,
            role,
            tenant,
            subject,
            category,
            purpose,
            action,
            decision,
            reason,
            clause,
            seq,
        },
        leaf,
    ))
}

fn decode_head(
    (size, root, signature, signed_at): (i64, Vec<u8>, Vec<u8>, i64),
) -> Result<HeadRow> {
    Ok(HeadRow {
        size,
        root,
        signature,
        signed_at: from_micros(signed_at)?,
    })
}

const INSERT_AUDIT_HEAD: &str = "INSERT INTO audit_entries \
    (id, at, token_id, role, tenant_id, subject_id, category, purpose, action, decision, reason, clause) VALUES ";
/// Columns bound per audit row.
const AUDIT_BINDS: usize = 12;
/// Rows per multi-row INSERT: 12 binds each stays far below SQLite's 32,766 and
/// PostgreSQL's 65,535 bind limits.
const AUDIT_BATCH_ROWS: usize = 500;
/// Rows per sealing UPDATE (3 binds each).
const SEAL_UPDATE_ROWS: usize = 500;

fn push_audit_params(out: &mut Vec<Value>, e: &AuditEntry) {
    out.extend([
        Value::from(&e.id),
        Value::from(to_micros(e.at)),
        Value::from(&e.token_id),
        Value::from(&e.role),
        Value::from(e.tenant.as_deref()),
        Value::from(e.subject.as_deref()),
        Value::from(e.category.as_deref()),
        Value::from(e.purpose.as_deref()),
        Value::from(&e.action),
        Value::from(&e.decision),
        Value::from(&e.reason),
        Value::from(e.clause.as_deref()),
    ]);
}

/// Appends `entries` inside the caller's transaction, so that an action and its audit
/// entries land together or not at all (`AUDIT_BATCH_ROWS` per statement).
pub(crate) async fn insert_audit_rows(db: &mut Db<'_>, entries: &[AuditEntry]) -> Result<()> {
    db.execute_rows(
        (INSERT_AUDIT_HEAD, ""),
        entries,
        (AUDIT_BINDS, AUDIT_BATCH_ROWS),
        push_audit_params,
    )
    .await?;
    Ok(())
}

/// Appends one entry inside the caller's transaction (see [`insert_audit_rows`]).
pub(crate) async fn insert_audit(db: &mut Db<'_>, entry: &AuditEntry) -> Result<()> {
    insert_audit_rows(db, std::slice::from_ref(entry)).await
}

impl Store {
    /// Appends an audit entry on its own (reads and denials). Durable when this returns.
    pub async fn append_audit(&self, e: &AuditEntry) -> Result<()> {
        let e = e.clone();
        self.write(move |db| Box::pin(async move { insert_audit(db, &e).await }))
            .await
    }

    /// Appends many audit entries in one transaction: one commit (one sync) for the
    /// whole batch, `AUDIT_BATCH_ROWS` rows per statement. The group-commit writer of the
    /// read path calls this; either every entry is durable or none is.
    pub async fn append_audit_batch(&self, entries: &[AuditEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let entries = entries.to_vec();
        self.write(move |db| Box::pin(async move { insert_audit_rows(db, &entries).await }))
            .await
    }

    async fn audit_where(&self, filter: &str, params: Vec<Value>) -> Result<Vec<AuditEntry>> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_entries WHERE {filter}");
        let rows: Vec<AuditRow> = self
            .scan(move |db| Box::pin(async move { db.fetch_all(&sql, &params).await }))
            .await?;
        rows.into_iter()
            .map(|r| decode_audit(r).map(|(e, _)| e))
            .collect()
    }

    /// Audit entries about a subject, oldest first.
    pub async fn audit_for_subject(&self, subject: &str) -> Result<Vec<AuditEntry>> {
        self.audit_where("subject_id = $1 ORDER BY at, id", vec![subject.into()])
            .await
    }

    /// Audit entries with a given reason (e.g. `grant:<id>`, the accesses made under a
    /// support grant), oldest first.
    pub async fn audit_by_reason(&self, reason: &str) -> Result<Vec<AuditEntry>> {
        self.audit_where("reason = $1 ORDER BY at, id", vec![reason.into()])
            .await
    }

    /// Entries not yet sealed, in the order the sealer assigns indexes: (at, id).
    pub async fn unsealed_audit(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        self.audit_where("seq IS NULL ORDER BY at, id LIMIT $1", vec![limit.into()])
            .await
    }

    /// Sealed entries with `seq >= from`, in index order, with their stored leaf hashes.
    pub async fn sealed_audit(&self, from: i64, limit: i64) -> Result<Vec<(AuditEntry, Vec<u8>)>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_entries WHERE seq >= $1 ORDER BY seq LIMIT $2"
        );
        let rows: Vec<AuditRow> = self
            .scan(move |db| {
                Box::pin(async move { db.fetch_all(&sql, &[from.into(), limit.into()]).await })
            })
            .await?;
        rows.into_iter()
            .map(|r| decode_audit(r).map(|(e, h)| (e, h.unwrap_or_default())))
            .collect()
    }

    /// Assigns tree indexes and leaf hashes to a batch and stores the new signed head,
    /// all in one transaction.
    pub async fn seal_audit_batch(
        &self,
        batch: &[(String, i64, Vec<u8>)],
        head: &HeadRow,
    ) -> Result<()> {
        let batch = batch.to_vec();
        let head = head.clone();
        self.write(move |db| {
            Box::pin(async move {
                // One statement per chunk; `coalesce(seq, -1) = -1` rather than `seq IS
                // NULL`: the latter made SQLite scan the partial index of unsealed entries
                // for every row (4 s for 5,000 rows instead of 27 ms).
                let updated = db
                    .execute_rows(
                        (
                            "WITH v(id, seq, leaf) AS (VALUES ",
                            ") UPDATE audit_entries SET seq = v.seq, leaf_hash = v.leaf FROM v \
                             WHERE audit_entries.id = v.id AND coalesce(audit_entries.seq, -1) = -1",
                        ),
                        &batch,
                        (3, SEAL_UPDATE_ROWS),
                        |params, (id, seq, leaf)| {
                            params.extend([Value::from(id), Value::from(*seq), Value::from(leaf)]);
                        },
                    )
                    .await?;
                if usize::try_from(updated).ok() != Some(batch.len()) {
                    // Another sealer got there first: keep its indexes, drop this batch
                    // (the error rolls the transaction back).
                    return Err(StoreError::ConcurrentSeal);
                }
                db.execute(
                    "INSERT INTO audit_heads (size, root, signature, signed_at) VALUES ($1, $2, $3, $4)",
                    &[
                        head.size.into(),
                        head.root.into(),
                        head.signature.into(),
                        to_micros(head.signed_at).into(),
                    ],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Every signed head, smallest first.
    pub async fn audit_heads(&self) -> Result<Vec<HeadRow>> {
        let rows: Vec<(i64, Vec<u8>, Vec<u8>, i64)> = self
            .scan(|db| {
                Box::pin(async move {
                    db.fetch_all(
                        "SELECT size, root, signature, signed_at FROM audit_heads ORDER BY size",
                        &[],
                    )
                    .await
                })
            })
            .await?;
        rows.into_iter().map(decode_head).collect()
    }

    /// The latest signed head.
    pub async fn latest_audit_head(&self) -> Result<Option<HeadRow>> {
        let row: Option<(i64, Vec<u8>, Vec<u8>, i64)> = self
            .read(|db| {
                Box::pin(async move {
                    db.fetch_optional(
                        "SELECT size, root, signature, signed_at FROM audit_heads ORDER BY size DESC LIMIT 1",
                        &[],
                    )
                    .await
                })
            })
            .await?;
        row.map(decode_head).transpose()
    }
}
