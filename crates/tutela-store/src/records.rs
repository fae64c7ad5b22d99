//! Sealed records and their look-up keys. Values arrive here already encrypted; this
//! module never sees plaintext. A record write and its audit entry commit in one
//! transaction.

use crate::audit::{insert_audit, insert_audit_rows, AuditEntry};
use crate::db::Value;
use crate::keys::WrappedKeys;
use crate::{db, from_micros, parse_col, to_micros, Result, Store};
use std::sync::LazyLock;
use time::OffsetDateTime;
use tutela_core::lookup::LookupKind;
use tutela_core::{Category, SubjectId, TenantId};

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

/// What is written with a record besides its fields: the blind-index keys (see
/// `tutela_core::lookup`) and the storage location (R6).
#[derive(Debug, Clone, Copy)]
pub struct RecordExtras<'a> {
    pub tenant: &'a TenantId,
    pub keys: &'a [(LookupKind, [u8; 32])],
    /// A registered storage location; `None` for the default one.
    pub location: Option<&'a str>,
}

/// The record columns and key-chain columns the joined record queries select.
type RecordCols = (i64, String, Vec<u8>, i64);
type KeyCols = (Vec<u8>, i64, Vec<u8>);

/// Builds a record and its key chain from the columns the record queries select.
fn record_and_keys(
    subject: &SubjectId,
    category: Category,
    (version, service, fields, updated_at): RecordCols,
    (subject_key, master_key_id, tenant_key): KeyCols,
) -> Result<(SealedRecord, WrappedKeys)> {
    Ok((
        SealedRecord {
            subject: subject.clone(),
            category,
            version,
            service,
            fields,
            updated_at: from_micros(updated_at)?,
        },
        WrappedKeys {
            master_key_id,
            tenant_key,
            subject_key,
        },
    ))
}

/// A record joined with the wrapped keys that open it (the read path's one query reads
/// from it, and so do the export and the consent-joined read).
const RECORD_AND_KEYS_FROM: &str = "FROM records r \
     JOIN subject_keys sk ON sk.subject_id = r.subject_id \
     JOIN subjects s ON s.id = r.subject_id \
     JOIN tenant_keys tk ON tk.tenant_id = s.tenant_id";

/// The read path's one query (built once: it runs on every read).
static RECORD_WITH_KEYS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT r.version, r.service, r.fields, r.updated_at, sk.wrapped, tk.master_key_id, \
         tk.wrapped {RECORD_AND_KEYS_FROM} WHERE r.subject_id = $1 AND r.category = $2"
    )
});

/// Every record of a subject with its keys, by category.
static RECORDS_WITH_KEYS_OF: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT r.category, r.version, r.service, r.fields, r.updated_at, sk.wrapped, \
         tk.master_key_id, tk.wrapped {RECORD_AND_KEYS_FROM} \
         WHERE r.subject_id = $1 ORDER BY r.category"
    )
});

/// [`RECORD_WITH_KEYS`] plus the latest consent entry of scope `$3`.
static RECORD_WITH_KEYS_AND_CONSENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT r.version, r.service, r.fields, r.updated_at, sk.wrapped, tk.master_key_id, \
         tk.wrapped, c.granted, c.at {RECORD_AND_KEYS_FROM} \
         LEFT JOIN consents c ON c.id = ( \
             SELECT c2.id FROM consents c2 \
             WHERE c2.subject_id = r.subject_id AND c2.scope = $3 \
             ORDER BY c2.at DESC, c2.id DESC LIMIT 1) \
         WHERE r.subject_id = $1 AND r.category = $2"
    )
});

impl Store {
    /// The record's current version (0 when absent), to bind the next version into the AAD.
    pub async fn record_version(&self, subject: &SubjectId, category: Category) -> Result<i64> {
        let row: Option<(i64,)> = self
            .read(|db| {
                Box::pin(async move {
                    db.fetch_optional(
                        "SELECT version FROM records WHERE subject_id = $1 AND category = $2",
                        &[subject.as_str().into(), category.as_str().into()],
                    )
                    .await
                })
            })
            .await?;
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
        let r = r.clone();
        let audit = audit.clone();
        let tenant = lookups.tenant.as_str().to_owned();
        let keys = lookups.keys.to_vec();
        let location = lookups.location.map(str::to_owned);
        self.write(move |db| {
            Box::pin(async move {
                let (subject, category) = (r.subject.as_str(), r.category.as_str());
                let changed = if expected_version == 0 {
                    db.execute(
                        "INSERT INTO records (subject_id, category, version, service, fields, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subject_id, category) DO NOTHING",
                        &[
                            subject.into(),
                            category.into(),
                            r.version.into(),
                            (&r.service).into(),
                            (&r.fields).into(),
                            to_micros(r.updated_at).into(),
                        ],
                    )
                    .await?
                } else {
                    db.execute(
                        "UPDATE records SET version = $1, service = $2, fields = $3, updated_at = $4 \
                         WHERE subject_id = $5 AND category = $6 AND version = $7",
                        &[
                            r.version.into(),
                            (&r.service).into(),
                            (&r.fields).into(),
                            to_micros(r.updated_at).into(),
                            subject.into(),
                            category.into(),
                            expected_version.into(),
                        ],
                    )
                    .await?
                };
                if changed == 0 {
                    // A concurrent writer won; nothing was written (the transaction
                    // commits empty).
                    return Ok(false);
                }
                db.execute(
                    "UPDATE records SET location_id = $1 WHERE subject_id = $2 AND category = $3",
                    &[location.into(), subject.into(), category.into()],
                )
                .await?;
                // The record's look-up keys are replaced with it.
                db.execute(
                    "DELETE FROM subject_lookup WHERE subject_id = $1 AND category = $2",
                    &[subject.into(), category.into()],
                )
                .await?;
                for (kind, digest) in &keys {
                    db.execute(
                        "INSERT INTO subject_lookup (tenant_id, kind, digest, subject_id, category) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                        &[
                            (&tenant).into(),
                            kind.as_str().into(),
                            digest.into(),
                            subject.into(),
                            category.into(),
                        ],
                    )
                    .await?;
                }
                insert_audit(db, &audit).await?;
                Ok(true)
            })
        })
        .await
    }

    pub async fn record(
        &self,
        subject: &SubjectId,
        category: Category,
    ) -> Result<Option<SealedRecord>> {
        let row: Option<RecordCols> = self
            .read(|db| {
                Box::pin(async move {
                    db.fetch_optional(
                        "SELECT version, service, fields, updated_at FROM records \
                         WHERE subject_id = $1 AND category = $2",
                        &[subject.as_str().into(), category.as_str().into()],
                    )
                    .await
                })
            })
            .await?;
        row.map(|(version, service, fields, updated_at)| {
            Ok(SealedRecord {
                subject: subject.clone(),
                category,
                version,
                service,
                fields,
                updated_at: from_micros(updated_at)?,
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
        let row: Option<Row> = self
            .read(|db| {
                Box::pin(async move {
                    db.fetch_optional(
                        &RECORD_WITH_KEYS,
                        &[subject.as_str().into(), category.as_str().into()],
                    )
                    .await
                })
            })
            .await?;
        row.map(|(v, s, f, u, sk, mk, tk)| {
            record_and_keys(subject, category, (v, s, f, u), (sk, mk, tk))
        })
        .transpose()
    }

    /// Every record of a subject with its key chain, by category (for an access export).
    pub async fn records_with_keys_of(
        &self,
        subject: &SubjectId,
    ) -> Result<Vec<(SealedRecord, WrappedKeys)>> {
        type Row = (String, i64, String, Vec<u8>, i64, Vec<u8>, i64, Vec<u8>);
        let rows: Vec<Row> = self
            .read(|db| {
                Box::pin(async move {
                    db.fetch_all(&RECORDS_WITH_KEYS_OF, &[subject.as_str().into()])
                        .await
                })
            })
            .await?;
        rows.into_iter()
            .map(|(category, v, s, f, u, sk, mk, tk)| {
                record_and_keys(
                    subject,
                    parse_col("category", &category, Category::parse)?,
                    (v, s, f, u),
                    (sk, mk, tk),
                )
            })
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
        let row: Option<Row> = self
            .read(|db| {
                Box::pin(async move {
                    db.fetch_optional(
                        &RECORD_WITH_KEYS_AND_CONSENT,
                        &[
                            subject.as_str().into(),
                            category.as_str().into(),
                            scope.into(),
                        ],
                    )
                    .await
                })
            })
            .await?;
        row.map(|(v, s, f, u, sk, mk, tk, granted, at)| {
            let consent = match (granted, at) {
                (Some(g), Some(at)) => Some((g, from_micros(at)?)),
                _ => None,
            };
            let (record, keys) = record_and_keys(subject, category, (v, s, f, u), (sk, mk, tk))?;
            Ok((record, keys, consent))
        })
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
        let keys = keys.to_vec();
        let records = records.to_vec();
        let audit = audit.to_vec();
        self.write(move |db| {
            Box::pin(async move {
                db.execute_rows(
                    ("INSERT INTO subject_keys (subject_id, wrapped) VALUES ", ""),
                    &keys,
                    (2, 500),
                    |params, (s, w)| params.extend([s.as_str().into(), w.into()]),
                )
                .await?;
                db.execute_rows(
                    (
                        "INSERT INTO records (subject_id, category, version, service, fields, updated_at) VALUES ",
                        "",
                    ),
                    &records,
                    (6, 500),
                    |params, r| {
                        params.extend([
                            r.subject.as_str().into(),
                            r.category.as_str().into(),
                            r.version.into(),
                            (&r.service).into(),
                            (&r.fields).into(),
                            to_micros(r.updated_at).into(),
                        ])
                    },
                )
                .await?;
                insert_audit_rows(db, &audit).await
            })
        })
        .await?;
        if let Some(analyze) = db::dialect(self.backend()).after_bulk_import {
            self.write(move |db| Box::pin(async move { db.execute_script(analyze).await }))
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
        let key: Vec<Value> = vec![subject.as_str().into(), category.as_str().into()];
        let audit = audit.clone();
        self.write(move |db| {
            Box::pin(async move {
                db.execute(
                    "DELETE FROM subject_lookup WHERE subject_id = $1 AND category = $2",
                    &key,
                )
                .await?;
                let n = db
                    .execute(
                        "DELETE FROM records WHERE subject_id = $1 AND category = $2",
                        &key,
                    )
                    .await?;
                insert_audit(db, &audit).await?;
                Ok(n > 0)
            })
        })
        .await
    }

    /// Subjects of `tenant` with a record carrying the look-up key `digest`, by id.
    pub async fn find_by_lookup(
        &self,
        tenant: &TenantId,
        kind: LookupKind,
        digest: &[u8],
    ) -> Result<Vec<SubjectId>> {
        let rows: Vec<(String,)> = self
            .read(|db| {
                Box::pin(async move {
                    db.fetch_all(
                        "SELECT DISTINCT subject_id FROM subject_lookup \
                         WHERE tenant_id = $1 AND kind = $2 AND digest = $3 ORDER BY subject_id",
                        &[tenant.as_str().into(), kind.as_str().into(), digest.into()],
                    )
                    .await
                })
            })
            .await?;
        rows.into_iter()
            .map(|(id,)| parse_col("subject_id", &id, SubjectId::parse))
            .collect()
    }
}
