//! The vault's rows: wrapped keys, sealed records, and audit entries. Values arrive here
//! already encrypted; this module never sees plaintext. A record write and its audit
//! entry commit in one transaction; a read's audit entry commits before the caller
//! returns data (fail closed).

use crate::{on_pool, on_writer, to_micros, Result, Store};
use time::OffsetDateTime;
use tutela_core::lookup::LookupKind;
use tutela_core::{Category, SubjectId, TenantId};

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

/// A sealed record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedRecord {
    pub subject: SubjectId,
    pub category: Category,
    pub version: i64,
    pub service: String,
    pub fields: Vec<u8>,
    pub updated_at: OffsetDateTime,
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
            at: crate::from_micros(at)?,
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
        signed_at: crate::from_micros(signed_at)?,
    })
}

pub(crate) const INSERT_AUDIT_HEAD: &str = "INSERT INTO audit_entries \
    (id, at, token_id, role, tenant_id, subject_id, category, purpose, action, decision, reason, clause) ";
pub(crate) const INSERT_AUDIT: &str = "INSERT INTO audit_entries \
    (id, at, token_id, role, tenant_id, subject_id, category, purpose, action, decision, reason, clause) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
/// Builds a record and its key chain from the columns the record queries select.
fn record_and_keys(
    subject: &SubjectId,
    category: Category,
    (version, service, fields, updated_at): (i64, String, Vec<u8>, i64),
    (subject_key, master_key_id, tenant_key): (Vec<u8>, i64, Vec<u8>),
) -> Result<(SealedRecord, WrappedKeys)> {
    Ok((
        SealedRecord {
            subject: subject.clone(),
            category,
            version,
            service,
            fields,
            updated_at: crate::from_micros(updated_at)?,
        },
        WrappedKeys {
            master_key_id,
            tenant_key,
            subject_key,
        },
    ))
}

/// What is written with a record besides its fields: the blind-index keys (see
/// `tutela_core::lookup`) and the storage location (R6).
#[derive(Debug, Clone, Copy)]
pub struct RecordExtras<'a> {
    pub tenant: &'a TenantId,
    pub keys: &'a [(LookupKind, [u8; 32])],
    /// A registered storage location; `None` for the default one.
    pub location: Option<&'a str>,
}

/// The wrapped key chain of one subject: the tenant key (under master key
/// `master_key_id`) and the subject's data key (under the tenant key).
#[derive(Debug, Clone)]
pub struct WrappedKeys {
    pub master_key_id: i64,
    pub tenant_key: Vec<u8>,
    pub subject_key: Vec<u8>,
}

/// Rows per multi-row INSERT: 12 binds each stays far below SQLite's 32,766 and
/// PostgreSQL's 65,535 bind limits.
pub(crate) const AUDIT_BATCH_ROWS: usize = 500;
/// Rows per sealing UPDATE (3 binds each).
const SEAL_UPDATE_ROWS: usize = 500;

macro_rules! bind_audit {
    ($q:expr, $e:expr) => {
        $q.bind(&$e.id)
            .bind(to_micros($e.at))
            .bind(&$e.token_id)
            .bind(&$e.role)
            .bind($e.tenant.as_deref())
            .bind($e.subject.as_deref())
            .bind($e.category.as_deref())
            .bind($e.purpose.as_deref())
            .bind(&$e.action)
            .bind(&$e.decision)
            .bind(&$e.reason)
            .bind($e.clause.as_deref())
    };
}
pub(crate) use bind_audit;

/// Adds the statements inserting audit entries to a [`crate::script::Script`],
/// `AUDIT_BATCH_ROWS` per statement.
macro_rules! push_audit_rows {
    ($script:ident, $entries:expr) => {{
        for chunk in $entries.chunks($crate::vault::AUDIT_BATCH_ROWS) {
            $script
                .statement($crate::vault::INSERT_AUDIT_HEAD)
                .push_values(chunk, |mut b, e| {
                    b.push_bind(&e.id)
                        .push_bind($crate::to_micros(e.at))
                        .push_bind(&e.token_id)
                        .push_bind(&e.role)
                        .push_bind(e.tenant.as_deref())
                        .push_bind(e.subject.as_deref())
                        .push_bind(e.category.as_deref())
                        .push_bind(e.purpose.as_deref())
                        .push_bind(&e.action)
                        .push_bind(&e.decision)
                        .push_bind(&e.reason)
                        .push_bind(e.clause.as_deref());
                });
        }
    }};
}
pub(crate) use push_audit_rows;

/// Inserts audit entries in an open transaction, `AUDIT_BATCH_ROWS` per statement.
macro_rules! insert_audit_rows {
    ($tx:ident, $entries:expr) => {{
        let mut script = $crate::script::Script::new();
        $crate::vault::push_audit_rows!(script, $entries);
        $crate::script::run_script!($tx, script);
    }};
}
pub(crate) use insert_audit_rows;

/// The last step of every audited write: appends `audit` to the open transaction and
/// commits, so the action and its audit entry land together or not at all.
macro_rules! audit_and_commit {
    ($tx:ident, $audit:expr) => {{
        $crate::vault::bind_audit!(sqlx::query($crate::vault::INSERT_AUDIT), $audit)
            .execute(&mut *$tx)
            .await?;
        $tx.commit().await
    }};
}
pub(crate) use audit_and_commit;

impl Store {
    /// Appends an audit entry on its own (reads and denials). Durable when this returns.
    pub async fn append_audit(&self, e: &AuditEntry) -> Result<()> {
        on_writer!(self, |p| bind_audit!(sqlx::query(INSERT_AUDIT), e)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Appends many audit entries in one transaction: one commit (one fsync) for the
    /// whole batch. The group-commit writer of the read path calls this; either every
    /// entry is durable or none is.
    pub async fn append_audit_batch(&self, entries: &[AuditEntry]) -> Result<()> {
        for chunk in entries.chunks(AUDIT_BATCH_ROWS) {
            on_writer!(self, |p| {
                let mut tx = p.begin().await?;
                insert_audit_rows!(tx, chunk);
                tx.commit().await
            })?;
        }
        Ok(())
    }

    /// Audit entries about a subject, oldest first.
    pub async fn audit_for_subject(&self, subject: &str) -> Result<Vec<AuditEntry>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_entries WHERE subject_id = $1 ORDER BY at, id"
        );
        let rows: Vec<AuditRow> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(subject)
            .fetch_all(p)
            .await)?;
        rows.into_iter()
            .map(|r| decode_audit(r).map(|(e, _)| e))
            .collect()
    }

    /// Audit entries with a given reason (e.g. `grant:<id>`, the accesses made under a
    /// support grant), oldest first.
    pub async fn audit_by_reason(&self, reason: &str) -> Result<Vec<AuditEntry>> {
        let sql =
            format!("SELECT {AUDIT_COLUMNS} FROM audit_entries WHERE reason = $1 ORDER BY at, id");
        let rows: Vec<AuditRow> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(reason)
            .fetch_all(p)
            .await)?;
        rows.into_iter()
            .map(|r| decode_audit(r).map(|(e, _)| e))
            .collect()
    }

    /// Entries not yet sealed, in the order the sealer assigns indexes: (at, id).
    pub async fn unsealed_audit(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_entries WHERE seq IS NULL ORDER BY at, id LIMIT $1"
        );
        let rows: Vec<AuditRow> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(limit)
            .fetch_all(p)
            .await)?;
        rows.into_iter()
            .map(|r| decode_audit(r).map(|(e, _)| e))
            .collect()
    }

    /// Sealed entries with `seq >= from`, in index order, with their stored leaf hashes.
    pub async fn sealed_audit(&self, from: i64, limit: i64) -> Result<Vec<(AuditEntry, Vec<u8>)>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_entries WHERE seq >= $1 ORDER BY seq LIMIT $2"
        );
        let rows: Vec<AuditRow> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(from)
            .bind(limit)
            .fetch_all(p)
            .await)?;
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
        on_writer!(self, |p| {
            let mut tx = p.begin().await?;
            // One statement per chunk: a statement costs ~70 us of driver round trip
            // with sqlx's SQLite worker thread, so a per-row UPDATE capped sealing at
            // ~15k entries/s. `coalesce(seq, -1) = -1` rather than `seq IS NULL`: the
            // latter made SQLite scan the partial index of unsealed entries for every
            // row (4 s for 5,000 rows instead of 27 ms).
            for chunk in batch.chunks(SEAL_UPDATE_ROWS) {
                let mut q = sqlx::QueryBuilder::new("WITH v(id, seq, leaf) AS (");
                q.push_values(chunk, |mut b, (id, seq, leaf)| {
                    b.push_bind(id).push_bind(*seq).push_bind(leaf);
                });
                q.push(
                    ") UPDATE audit_entries SET seq = v.seq, leaf_hash = v.leaf FROM v \
                     WHERE audit_entries.id = v.id AND coalesce(audit_entries.seq, -1) = -1",
                );
                let updated = q.build().execute(&mut *tx).await?.rows_affected();
                if usize::try_from(updated).ok() != Some(chunk.len()) {
                    // Another sealer got there first: keep its indexes, drop this batch.
                    tx.rollback().await?;
                    return Err(crate::StoreError::ConcurrentSeal);
                }
            }
            sqlx::query("INSERT INTO audit_heads (size, root, signature, signed_at) VALUES ($1, $2, $3, $4)")
                .bind(head.size)
                .bind(&head.root)
                .bind(&head.signature)
                .bind(to_micros(head.signed_at))
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })?;
        Ok(())
    }

    /// Every signed head, smallest first.
    pub async fn audit_heads(&self) -> Result<Vec<HeadRow>> {
        let rows: Vec<(i64, Vec<u8>, Vec<u8>, i64)> = on_pool!(self, |p| sqlx::query_as(
            "SELECT size, root, signature, signed_at FROM audit_heads ORDER BY size"
        )
        .fetch_all(p)
        .await)?;
        rows.into_iter().map(decode_head).collect()
    }

    /// The latest signed head.
    pub async fn latest_audit_head(&self) -> Result<Option<HeadRow>> {
        let row: Option<(i64, Vec<u8>, Vec<u8>, i64)> = on_pool!(self, |p| {
            sqlx::query_as("SELECT size, root, signature, signed_at FROM audit_heads ORDER BY size DESC LIMIT 1").fetch_optional(p).await
        })?;
        row.map(decode_head).transpose()
    }

    /// The wrapped key of a tenant and the id of the master key that wraps it.
    pub async fn tenant_key(&self, tenant: &TenantId) -> Result<Option<(i64, Vec<u8>)>> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as("SELECT master_key_id, wrapped FROM tenant_keys WHERE tenant_id = $1")
                .bind(tenant.as_str())
                .fetch_optional(p)
                .await
        })?)
    }

    /// Stores a tenant key unless one exists; returns the one in force (first writer wins).
    pub async fn insert_tenant_key(
        &self,
        tenant: &TenantId,
        master_key_id: i64,
        wrapped: &[u8],
    ) -> Result<(i64, Vec<u8>)> {
        on_writer!(self, |p| {
            sqlx::query("INSERT INTO tenant_keys (tenant_id, master_key_id, wrapped) VALUES ($1, $2, $3) ON CONFLICT (tenant_id) DO NOTHING")
                .bind(tenant.as_str())
                .bind(master_key_id)
                .bind(wrapped)
                .execute(p)
                .await
                .map(|_| ())
        })?;
        self.tenant_key(tenant)
            .await?
            .ok_or_else(|| crate::StoreError::Corrupt("tenant key vanished".into()))
    }

    /// Every tenant key with the id of the master key wrapping it.
    pub async fn all_tenant_keys(&self) -> Result<Vec<(TenantId, i64, Vec<u8>)>> {
        let rows: Vec<(String, i64, Vec<u8>)> = on_pool!(self, |p| sqlx::query_as(
            "SELECT tenant_id, master_key_id, wrapped FROM tenant_keys ORDER BY tenant_id"
        )
        .fetch_all(p)
        .await)?;
        rows.into_iter()
            .map(|(t, id, w)| {
                Ok((
                    crate::parse_col("tenant_keys.tenant_id", &t, TenantId::parse)?,
                    id,
                    w,
                ))
            })
            .collect()
    }

    /// Replaces a tenant key's wrapping if it is still wrapped by `old_master` (safe to
    /// run twice, or beside another rotation).
    pub async fn rewrap_tenant_key(
        &self,
        tenant: &TenantId,
        old_master: i64,
        new_master: i64,
        wrapped: &[u8],
    ) -> Result<bool> {
        let n = on_writer!(self, |p| {
            sqlx::query("UPDATE tenant_keys SET master_key_id = $1, wrapped = $2 WHERE tenant_id = $3 AND master_key_id = $4")
                .bind(new_master)
                .bind(wrapped)
                .bind(tenant.as_str())
                .bind(old_master)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }

    pub async fn subject_key(&self, subject: &SubjectId) -> Result<Option<Vec<u8>>> {
        let row: Option<(Vec<u8>,)> = on_pool!(self, |p| {
            sqlx::query_as("SELECT wrapped FROM subject_keys WHERE subject_id = $1")
                .bind(subject.as_str())
                .fetch_optional(p)
                .await
        })?;
        Ok(row.map(|r| r.0))
    }

    /// Stores a subject key unless one exists; returns the one in force.
    pub async fn insert_subject_key(&self, subject: &SubjectId, wrapped: &[u8]) -> Result<Vec<u8>> {
        on_writer!(self, |p| {
            sqlx::query("INSERT INTO subject_keys (subject_id, wrapped) VALUES ($1, $2) ON CONFLICT (subject_id) DO NOTHING")
                .bind(subject.as_str())
                .bind(wrapped)
                .execute(p)
                .await
                .map(|_| ())
        })?;
        self.subject_key(subject)
            .await?
            .ok_or_else(|| crate::StoreError::Corrupt("subject key vanished".into()))
    }

    /// The record's current version (0 when absent), to bind the next version into the AAD.
    pub async fn record_version(&self, subject: &SubjectId, category: Category) -> Result<i64> {
        let row: Option<(i64,)> = on_pool!(self, |p| {
            sqlx::query_as("SELECT version FROM records WHERE subject_id = $1 AND category = $2")
                .bind(subject.as_str())
                .bind(category.as_str())
                .fetch_optional(p)
                .await
        })?;
        Ok(row.map_or(0, |r| r.0))
    }

    /// Writes a record and its audit entry in one transaction. The write only happens if
    /// the stored version is still `expected_version` (else `Ok(false)`: a concurrent writer won).
    pub async fn put_record_audited(
        &self,
        r: &SealedRecord,
        expected_version: i64,
        audit: &AuditEntry,
        lookups: &RecordExtras<'_>,
    ) -> Result<bool> {
        on_writer!(self, |p| {
            let mut tx = p.begin().await?;
            let changed = if expected_version == 0 {
                sqlx::query(
                    "INSERT INTO records (subject_id, category, version, service, fields, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subject_id, category) DO NOTHING",
                )
                .bind(r.subject.as_str())
                .bind(r.category.as_str())
                .bind(r.version)
                .bind(&r.service)
                .bind(&r.fields)
                .bind(to_micros(r.updated_at))
                .execute(&mut *tx)
                .await?
                .rows_affected()
            } else {
                sqlx::query(
                    "UPDATE records SET version = $1, service = $2, fields = $3, updated_at = $4 \
                     WHERE subject_id = $5 AND category = $6 AND version = $7",
                )
                .bind(r.version)
                .bind(&r.service)
                .bind(&r.fields)
                .bind(to_micros(r.updated_at))
                .bind(r.subject.as_str())
                .bind(r.category.as_str())
                .bind(expected_version)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            };
            if changed == 0 {
                tx.rollback().await?;
                Ok(false)
            } else {
                sqlx::query(
                    "UPDATE records SET location_id = $1 WHERE subject_id = $2 AND category = $3",
                )
                .bind(lookups.location)
                .bind(r.subject.as_str())
                .bind(r.category.as_str())
                .execute(&mut *tx)
                .await?;
                // The record's look-up keys are replaced with it.
                sqlx::query("DELETE FROM subject_lookup WHERE subject_id = $1 AND category = $2")
                    .bind(r.subject.as_str())
                    .bind(r.category.as_str())
                    .execute(&mut *tx)
                    .await?;
                for (kind, digest) in lookups.keys {
                    sqlx::query(
                        "INSERT INTO subject_lookup (tenant_id, kind, digest, subject_id, category) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    )
                    .bind(lookups.tenant.as_str())
                    .bind(kind.as_str())
                    .bind(digest.as_slice())
                    .bind(r.subject.as_str())
                    .bind(r.category.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
                audit_and_commit!(tx, audit)?;
                Ok(true)
            }
        })
    }

    pub async fn record(
        &self,
        subject: &SubjectId,
        category: Category,
    ) -> Result<Option<SealedRecord>> {
        let row: Option<(i64, String, Vec<u8>, i64)> = on_pool!(self, |p| {
            sqlx::query_as("SELECT version, service, fields, updated_at FROM records WHERE subject_id = $1 AND category = $2")
                .bind(subject.as_str())
                .bind(category.as_str())
                .fetch_optional(p)
                .await
        })?;
        row.map(|(version, service, fields, updated_at)| {
            Ok(SealedRecord {
                subject: subject.clone(),
                category,
                version,
                service,
                fields,
                updated_at: crate::from_micros(updated_at)?,
            })
        })
        .transpose()
    }

    /// A record together with the wrapped keys that open it, in one query: the read
    /// path's only database read. `None` when there is no record or its subject key was
    /// shredded (the record is then unreadable anyway).
    pub async fn record_with_keys(
        &self,
        subject: &SubjectId,
        category: Category,
    ) -> Result<Option<(SealedRecord, WrappedKeys)>> {
        type Row = (i64, String, Vec<u8>, i64, Vec<u8>, i64, Vec<u8>);
        let row: Option<Row> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT r.version, r.service, r.fields, r.updated_at, sk.wrapped, tk.master_key_id, tk.wrapped \
                 FROM records r \
                 JOIN subject_keys sk ON sk.subject_id = r.subject_id \
                 JOIN subjects s ON s.id = r.subject_id \
                 JOIN tenant_keys tk ON tk.tenant_id = s.tenant_id \
                 WHERE r.subject_id = $1 AND r.category = $2",
            )
            .bind(subject.as_str())
            .bind(category.as_str())
            .fetch_optional(p)
            .await
        })?;
        row.map(
            |(version, service, fields, updated_at, subject_key, master_key_id, tenant_key)| {
                record_and_keys(
                    subject,
                    category,
                    (version, service, fields, updated_at),
                    (subject_key, master_key_id, tenant_key),
                )
            },
        )
        .transpose()
    }

    /// Every record of a subject with its key chain, by category (for an access export).
    pub async fn records_with_keys_of(
        &self,
        subject: &SubjectId,
    ) -> Result<Vec<(SealedRecord, WrappedKeys)>> {
        type Row = (String, i64, String, Vec<u8>, i64, Vec<u8>, i64, Vec<u8>);
        let rows: Vec<Row> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT r.category, r.version, r.service, r.fields, r.updated_at, sk.wrapped, tk.master_key_id, tk.wrapped \
                 FROM records r \
                 JOIN subject_keys sk ON sk.subject_id = r.subject_id \
                 JOIN subjects s ON s.id = r.subject_id \
                 JOIN tenant_keys tk ON tk.tenant_id = s.tenant_id \
                 WHERE r.subject_id = $1 ORDER BY r.category",
            )
            .bind(subject.as_str())
            .fetch_all(p)
            .await
        })?;
        rows.into_iter()
            .map(
                |(
                    category,
                    version,
                    service,
                    fields,
                    updated_at,
                    subject_key,
                    master_key_id,
                    tenant_key,
                )| {
                    record_and_keys(
                        subject,
                        crate::parse_col("category", &category, Category::parse)?,
                        (version, service, fields, updated_at),
                        (subject_key, master_key_id, tenant_key),
                    )
                },
            )
            .collect()
    }

    /// Like [`Store::record_with_keys`], plus the latest consent entry of `scope` for the
    /// subject (granted, at), in the same single query: a read whose purpose rests on
    /// the subject's express consent (R4) then costs no extra round trip.
    pub async fn record_with_keys_and_consent(
        &self,
        subject: &SubjectId,
        category: Category,
        scope: &str,
    ) -> Result<Option<(SealedRecord, WrappedKeys, Option<(bool, OffsetDateTime)>)>> {
        type Row = (
            i64,
            String,
            Vec<u8>,
            i64,
            Vec<u8>,
            i64,
            Vec<u8>,
            Option<bool>,
            Option<i64>,
        );
        let row: Option<Row> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT r.version, r.service, r.fields, r.updated_at, sk.wrapped, tk.master_key_id, tk.wrapped, \
                        c.granted, c.at \
                 FROM records r \
                 JOIN subject_keys sk ON sk.subject_id = r.subject_id \
                 JOIN subjects s ON s.id = r.subject_id \
                 JOIN tenant_keys tk ON tk.tenant_id = s.tenant_id \
                 LEFT JOIN consents c ON c.id = ( \
                     SELECT c2.id FROM consents c2 \
                     WHERE c2.subject_id = r.subject_id AND c2.scope = $3 \
                     ORDER BY c2.at DESC, c2.id DESC LIMIT 1) \
                 WHERE r.subject_id = $1 AND r.category = $2",
            )
            .bind(subject.as_str())
            .bind(category.as_str())
            .bind(scope)
            .fetch_optional(p)
            .await
        })?;
        row.map(
            |(
                version,
                service,
                fields,
                updated_at,
                subject_key,
                master_key_id,
                tenant_key,
                granted,
                at,
            )| {
                let consent = match (granted, at) {
                    (Some(g), Some(at)) => Some((g, crate::from_micros(at)?)),
                    _ => None,
                };
                let (record, keys) = record_and_keys(
                    subject,
                    category,
                    (version, service, fields, updated_at),
                    (subject_key, master_key_id, tenant_key),
                )?;
                Ok((record, keys, consent))
            },
        )
        .transpose()
    }

    /// Imports new subjects' data in bulk: their wrapped data keys and first records, with
    /// one audit entry each, in one transaction (500 rows per statement). For migrating
    /// existing data into tutela and for seeding benchmarks; records must not exist yet.
    pub async fn import_records(
        &self,
        keys: &[(SubjectId, Vec<u8>)],
        records: &[SealedRecord],
        audit: &[AuditEntry],
    ) -> Result<()> {
        on_writer!(self, |p| {
            let mut tx = p.begin().await?;
            for chunk in keys.chunks(500) {
                let mut qb =
                    sqlx::QueryBuilder::new("INSERT INTO subject_keys (subject_id, wrapped) ");
                qb.push_values(chunk, |mut b, (s, w)| {
                    b.push_bind(s.as_str()).push_bind(w.as_slice());
                });
                qb.build().execute(&mut *tx).await?;
            }
            for chunk in records.chunks(500) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO records (subject_id, category, version, service, fields, updated_at) ",
                );
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(r.subject.as_str())
                        .push_bind(r.category.as_str())
                        .push_bind(r.version)
                        .push_bind(&r.service)
                        .push_bind(r.fields.as_slice())
                        .push_bind(to_micros(r.updated_at));
                });
                qb.build().execute(&mut *tx).await?;
            }
            insert_audit_rows!(tx, audit);
            tx.commit().await
        })?;
        // A bulk load leaves PostgreSQL's planner statistics stale (it would then scan
        // whole tables for key look-ups); refresh them as any bulk load should.
        if let crate::Writer::Postgres(p) = &self.writer {
            sqlx::query("ANALYZE subjects, subject_keys, records")
                .execute(p)
                .await?;
        }
        Ok(())
    }

    /// Deletes a record and appends its audit entry in one transaction; returns whether
    /// a record existed.
    pub async fn delete_record_audited(
        &self,
        subject: &SubjectId,
        category: Category,
        audit: &AuditEntry,
    ) -> Result<bool> {
        on_writer!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("DELETE FROM subject_lookup WHERE subject_id = $1 AND category = $2")
                .bind(subject.as_str())
                .bind(category.as_str())
                .execute(&mut *tx)
                .await?;
            let n = sqlx::query("DELETE FROM records WHERE subject_id = $1 AND category = $2")
                .bind(subject.as_str())
                .bind(category.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            audit_and_commit!(tx, audit)?;
            Ok(n > 0)
        })
    }

    /// Subjects of `tenant` with a record carrying the look-up key `digest`, by id.
    pub async fn find_by_lookup(
        &self,
        tenant: &TenantId,
        kind: LookupKind,
        digest: &[u8],
    ) -> Result<Vec<SubjectId>> {
        let rows: Vec<(String,)> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT DISTINCT subject_id FROM subject_lookup \
                 WHERE tenant_id = $1 AND kind = $2 AND digest = $3 ORDER BY subject_id",
            )
            .bind(tenant.as_str())
            .bind(kind.as_str())
            .bind(digest)
            .fetch_all(p)
            .await
        })?;
        rows.into_iter()
            .map(|(id,)| crate::parse_col("subject_id", &id, SubjectId::parse))
            .collect()
    }

    /// Crypto-shreds a subject: deletes its data key, so every sealed copy of its fields
    /// (including backups) becomes unreadable. Returns whether a key existed.
    pub async fn shred_subject_key(&self, subject: &SubjectId) -> Result<bool> {
        let n = on_writer!(self, |p| {
            sqlx::query("DELETE FROM subject_keys WHERE subject_id = $1")
                .bind(subject.as_str())
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }
}
