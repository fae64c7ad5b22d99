//! The retention engine's storage (issue 7; R19, R20, R41): finding subjects whose data
//! is due, leasing them so two replicas never process the same subject, and applying a
//! batch of outcomes (shred, remove, re-key, aggregate, notify, audit) in one
//! transaction, so a crash leaves every subject either untouched or finished.

use crate::audit::{insert_audit, insert_audit_rows, AuditEntry};
use crate::db::{list_placeholders, Value};
use crate::deliveries::{insert_deliveries, Delivery};
use crate::erasure::rekey_subject;
use crate::keys::WrappedKeys;
use crate::records::SealedRecord;
use crate::{from_micros, parse_col, to_micros, Result, Store};
use time::OffsetDateTime;
use tutela_core::anonymize::Aggregate;
use tutela_core::{Category, SubjectId, TenantId};

/// Which subjects have due work.
#[derive(Debug, Clone, Copy)]
pub enum Candidates<'a> {
    /// Every subject of the tenant not yet erased (its retention has fully ended).
    WholeTenant(&'a TenantId),
    /// Subjects of the tenant holding records in these categories.
    TenantCategories(&'a TenantId, &'a [Category]),
    /// Subjects holding records of a terminated service.
    Service(&'a str),
    /// Subjects erased on request whose legal hold has ended (R19, R33).
    EndedHolds,
}

/// Category lists are closed vocabulary, so they can be inlined as SQL literals.
fn category_list(categories: &[Category]) -> String {
    if categories.is_empty() {
        return "''".to_owned();
    }
    categories
        .iter()
        .map(|c| format!("'{}'", c.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `(predicate, binds)`: the predicate over `subjects s` uses `$1` = now, and `$2` when
/// `binds` has a value.
fn predicate(c: Candidates<'_>) -> (String, Option<String>) {
    match c {
        Candidates::WholeTenant(t) => (
            "s.tenant_id = $2 AND s.erased_at IS NULL AND $1 = $1".to_owned(),
            Some(t.to_string()),
        ),
        Candidates::TenantCategories(t, cats) => (
            format!(
                "s.tenant_id = $2 AND $1 = $1 AND EXISTS (SELECT 1 FROM records r WHERE r.subject_id = s.id AND r.category IN ({}))",
                category_list(cats)
            ),
            Some(t.to_string()),
        ),
        Candidates::Service(service) => (
            "$1 = $1 AND EXISTS (SELECT 1 FROM records r WHERE r.subject_id = s.id AND r.service = $2)".to_owned(),
            Some(service.to_owned()),
        ),
        Candidates::EndedHolds => (
            "s.frozen_until IS NOT NULL AND s.frozen_until <= $1".to_owned(),
            None,
        ),
    }
}

/// What happens to one subject in a retention batch.
#[derive(Debug, Clone)]
pub struct SubjectOutcome {
    pub subject: SubjectId,
    /// Categories whose records are removed (after anonymization, where that applies).
    pub remove: Vec<Category>,
    /// Everything is gone: remove every row and shred the key.
    pub erase: bool,
    /// With `erase`: the subject itself is gone (nothing may be written for it again).
    /// Not when only a service's or a category's data went and the person may come back.
    pub mark_erased: bool,
    /// Otherwise: the kept records re-sealed under `new_key` (the old key is shredded).
    pub resealed: Vec<(Category, i64, Vec<u8>)>,
    pub new_key: Option<Vec<u8>>,
}

/// Rows per statement of a batch's `IN (…)` lists, as before (and far below both
/// engines' bind limits).
const IN_ROWS: usize = 500;

impl Store {
    /// How many subjects have due work (for dry runs and progress bars).
    pub async fn count_candidates(&self, c: Candidates<'_>, now: OffsetDateTime) -> Result<u64> {
        let (pred, bind) = predicate(c);
        let sql = format!("SELECT count(*) FROM subjects s WHERE {pred}");
        let mut params = vec![Value::from(to_micros(now))];
        params.extend(bind.map(Value::from));
        // A count over a tenant's (or every) subject: a scan, off the runtime workers.
        let (n,): (i64,) = self
            .scan(move |db| Box::pin(async move { db.fetch_one(&sql, &params).await }))
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// When the earliest lease held by *another* owner on a candidate subject ends, if any
    /// (a concurrent run's, or one killed between claiming and applying a batch).
    pub async fn earliest_foreign_lease(
        &self,
        c: Candidates<'_>,
        now: OffsetDateTime,
        owner: &str,
    ) -> Result<Option<OffsetDateTime>> {
        let (pred, bind) = predicate(c);
        // Binds: $1 now, $2 the predicate's value (or a dummy), $3 owner.
        let sql = format!(
            "SELECT MIN(s.retention_lease_until) FROM subjects s WHERE {pred} AND ($2 = $2) \
             AND s.retention_lease_until > $1 AND s.retention_lease_owner <> $3"
        );
        let params: Vec<Value> = vec![
            to_micros(now).into(),
            bind.unwrap_or_default().into(),
            owner.into(),
        ];
        let (until,): (Option<i64>,) = self
            .scan(move |db| Box::pin(async move { db.fetch_one(&sql, &params).await }))
            .await?;
        until.map(from_micros).transpose()
    }

    /// Leases up to `limit` candidate subjects no live lease holds, for `owner` until
    /// `lease_until`. On PostgreSQL `FOR UPDATE SKIP LOCKED` keeps concurrent claims
    /// apart; SQLite's single writer makes the claim exclusive already.
    pub async fn claim_candidates(
        &self,
        c: Candidates<'_>,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        owner: &str,
        limit: u32,
    ) -> Result<Vec<SubjectId>> {
        let (pred, bind) = predicate(c);
        // Binds: $1 now, $2 the predicate's value (or a dummy), $3 lease, $4 owner, $5 limit.
        let params: Vec<Value> = vec![
            to_micros(now).into(),
            bind.unwrap_or_default().into(),
            to_micros(lease_until).into(),
            owner.into(),
            i64::from(limit).into(),
        ];
        let rows: Vec<(String,)> = self
            .write(move |db| {
                Box::pin(async move {
                    let sql = format!(
                        "UPDATE subjects SET retention_lease_until = $3, retention_lease_owner = $4 \
                         WHERE id IN (SELECT s.id FROM subjects s WHERE {pred} \
                           AND (s.retention_lease_until IS NULL OR s.retention_lease_until <= $1) \
                           AND ($2 = $2) ORDER BY s.id LIMIT $5{}) \
                         RETURNING id",
                        db.dialect().skip_locked
                    );
                    db.fetch_all(&sql, &params).await
                })
            })
            .await?;
        let mut ids = rows
            .into_iter()
            .map(|(id,)| parse_col("subjects.id", &id, SubjectId::parse))
            .collect::<Result<Vec<_>>>()?;
        ids.sort();
        Ok(ids)
    }

    /// The records of `subjects` with their key chains and tenants, in one query.
    pub async fn records_of_subjects(
        &self,
        subjects: &[SubjectId],
    ) -> Result<Vec<(TenantId, SealedRecord, WrappedKeys)>> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        type Row = (
            String,
            String,
            String,
            i64,
            String,
            Vec<u8>,
            i64,
            Vec<u8>,
            i64,
            Vec<u8>,
        );
        let n = subjects.len();
        // The same list on the key table keeps PostgreSQL from hash-joining all of it.
        let sql = format!(
            "SELECT r.subject_id, s.tenant_id, r.category, r.version, r.service, r.fields, r.updated_at, \
             sk.wrapped, tk.master_key_id, tk.wrapped \
             FROM records r JOIN subjects s ON s.id = r.subject_id \
             JOIN subject_keys sk ON sk.subject_id = r.subject_id \
             JOIN tenant_keys tk ON tk.tenant_id = s.tenant_id WHERE r.subject_id IN ({}) \
             AND sk.subject_id IN ({}) ORDER BY r.subject_id, r.category",
            list_placeholders(n, 1),
            list_placeholders(n, n + 1)
        );
        let params: Vec<Value> = subjects
            .iter()
            .chain(subjects)
            .map(|s| s.as_str().into())
            .collect();
        let rows: Vec<Row> = self
            .scan(move |db| Box::pin(async move { db.fetch_all(&sql, &params).await }))
            .await?;
        rows.into_iter()
            .map(
                |(subject, tenant, category, version, service, fields, at, sk, mk, tk)| {
                    Ok((
                        parse_col("tenant_id", &tenant, TenantId::parse)?,
                        SealedRecord {
                            subject: parse_col("subject_id", &subject, SubjectId::parse)?,
                            category: parse_col("category", &category, Category::parse)?,
                            version,
                            service,
                            fields,
                            updated_at: from_micros(at)?,
                        },
                        WrappedKeys {
                            master_key_id: mk,
                            tenant_key: tk,
                            subject_key: sk,
                        },
                    ))
                },
            )
            .collect()
    }

    /// Applies a batch atomically, only for subjects still leased to `owner` (a lease that
    /// expired and was taken over is left to its new holder). `aggregates` are counts to
    /// add. Returns how many subjects were applied; 0 means the whole batch was skipped.
    pub async fn apply_retention_batch(
        &self,
        owner: &str,
        now: OffsetDateTime,
        outcomes: &[SubjectOutcome],
        aggregates: &[(Aggregate, i64)],
        deliveries: &[Delivery],
        audit: &[AuditEntry],
    ) -> Result<usize> {
        if outcomes.is_empty() {
            return Ok(0);
        }
        let owner = owner.to_owned();
        let outcomes = outcomes.to_vec();
        let aggregates = aggregates.to_vec();
        let deliveries = deliveries.to_vec();
        let audit = audit.to_vec();
        self.write(move |db| {
            Box::pin(async move {
                // Every subject of the batch must still be ours, or nothing is written
                // (checked first: a lost lease commits an empty transaction).
                let sql = format!(
                    "SELECT count(*) FROM subjects WHERE retention_lease_owner = $1 AND id IN ({})",
                    list_placeholders(outcomes.len(), 2)
                );
                let mut params = Vec::with_capacity(outcomes.len() + 1);
                params.push(Value::from(&owner));
                params.extend(outcomes.iter().map(|o| Value::from(o.subject.as_str())));
                let (held,): (i64,) = db.fetch_one(&sql, &params).await?;
                if usize::try_from(held).unwrap_or(0) != outcomes.len() {
                    return Ok(0);
                }
                let erased: Vec<&str> = outcomes
                    .iter()
                    .filter(|o| o.erase)
                    .map(|o| o.subject.as_str())
                    .collect();
                for chunk in erased.chunks(IN_ROWS) {
                    let list = list_placeholders(chunk.len(), 1);
                    let ids: Vec<Value> = chunk.iter().map(|id| Value::from(*id)).collect();
                    for table in [
                        "records",
                        "subject_lookup",
                        "contact_preferences",
                        "subject_keys",
                    ] {
                        db.execute(
                            &format!("DELETE FROM {table} WHERE subject_id IN ({list})"),
                            &ids,
                        )
                        .await?;
                    }
                    for update in [
                        "UPDATE requests SET sealed_text = NULL WHERE subject_id IN",
                        "UPDATE messages SET sealed_params = NULL WHERE subject_id IN",
                        "UPDATE subjects SET frozen_until = NULL, frozen_ground = NULL, \
                         retention_lease_until = NULL, retention_lease_owner = NULL WHERE id IN",
                    ] {
                        db.execute(&format!("{update} ({list})"), &ids).await?;
                    }
                }
                let gone: Vec<&str> = outcomes
                    .iter()
                    .filter(|o| o.erase && o.mark_erased)
                    .map(|o| o.subject.as_str())
                    .collect();
                for chunk in gone.chunks(IN_ROWS) {
                    let sql = format!(
                        "UPDATE subjects SET erased_at = coalesce(erased_at, $1) WHERE id IN ({})",
                        list_placeholders(chunk.len(), 2)
                    );
                    let mut params = Vec::with_capacity(chunk.len() + 1);
                    params.push(Value::from(to_micros(now)));
                    params.extend(chunk.iter().map(|id| Value::from(*id)));
                    db.execute(&sql, &params).await?;
                }
                for o in outcomes.iter().filter(|o| !o.erase) {
                    let subject = o.subject.as_str();
                    rekey_subject(db, subject, &o.remove, &o.resealed, o.new_key.as_deref())
                        .await?;
                    db.execute(
                        "UPDATE subjects SET retention_lease_until = NULL, retention_lease_owner = NULL WHERE id = $1",
                        &[subject.into()],
                    )
                    .await?;
                }
                for (a, n) in &aggregates {
                    db.execute(
                        "INSERT INTO anonymized_aggregates (category, service, period, attribute, value, count) \
                         VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (category, service, period, attribute, value) \
                         DO UPDATE SET count = anonymized_aggregates.count + excluded.count",
                        &[
                            a.category.as_str().into(),
                            (&a.service).into(),
                            (&a.period).into(),
                            a.attribute.into(),
                            a.value.into(),
                            (*n).into(),
                        ],
                    )
                    .await?;
                }
                insert_deliveries(db, &deliveries).await?;
                insert_audit_rows(db, &audit).await?;
                Ok(outcomes.len())
            })
        })
        .await
    }

    /// Gives up leases (a dry run, or work that turned out to be empty).
    pub async fn release_leases(&self, owner: &str) -> Result<()> {
        let owner = owner.to_owned();
        self.write(move |db| {
            Box::pin(async move {
                db.execute(
                    "UPDATE subjects SET retention_lease_until = NULL, retention_lease_owner = NULL \
                     WHERE retention_lease_owner = $1",
                    &[owner.into()],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// The anonymized aggregates (R19), for reports and tests.
    pub async fn anonymized_aggregates(
        &self,
    ) -> Result<Vec<(String, String, String, String, String, i64)>> {
        self.scan(|db| {
            Box::pin(async move {
                db.fetch_all(
                    "SELECT category, service, period, attribute, value, count FROM anonymized_aggregates \
                     ORDER BY category, service, period, attribute, value",
                    &[],
                )
                .await
            })
        })
        .await
    }

    /// Recipients that the transfer register lists for any of `subjects`, with the
    /// subjects each got.
    pub async fn transfer_recipients_of_many(
        &self,
        subjects: &[SubjectId],
    ) -> Result<Vec<(String, String)>> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT DISTINCT recipient_id, subject_id FROM transfers WHERE subject_id IN ({}) \
             ORDER BY recipient_id, subject_id",
            list_placeholders(subjects.len(), 1)
        );
        let params: Vec<Value> = subjects.iter().map(|s| s.as_str().into()).collect();
        self.scan(move |db| Box::pin(async move { db.fetch_all(&sql, &params).await }))
            .await
    }

    /// Whether any subject of the tenant is not yet erased.
    pub async fn tenant_has_live_subjects(&self, tenant: &TenantId) -> Result<bool> {
        let row: Option<(i64,)> = self
            .read(|db| {
                Box::pin(async move {
                    db.fetch_optional(
                        "SELECT CAST(1 AS BIGINT) FROM subjects WHERE tenant_id = $1 AND erased_at IS NULL LIMIT 1",
                        &[tenant.as_str().into()],
                    )
                    .await
                })
            })
            .await?;
        Ok(row.is_some())
    }
}

/// A service termination (R20).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTermination {
    pub service: String,
    pub effective_at: OffsetDateTime,
    pub announced_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

/// A portal announcement to a tenant (R20).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub id: String,
    pub tenant: TenantId,
    pub kind: String,
    /// What it is about (a service id): never personal data.
    pub subject: String,
    pub effective_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

impl Store {
    /// Records a termination with its announcements and their audit entries. A service
    /// terminated twice keeps its first record (`StoreError::Conflict`).
    pub async fn insert_termination_audited(
        &self,
        t: &StoredTermination,
        announcements: &[Announcement],
        audit: &[AuditEntry],
    ) -> Result<()> {
        let t = t.clone();
        let announcements = announcements.to_vec();
        let audit = audit.to_vec();
        self.write(move |db| {
            Box::pin(async move {
                // A second termination of the service violates its key: `Conflict`, and
                // the error rolls back the transaction.
                db.execute(
                    "INSERT INTO service_terminations (service, effective_at, announced_at, finished_at) VALUES ($1, $2, $3, NULL)",
                    &[
                        t.service.into(),
                        to_micros(t.effective_at).into(),
                        to_micros(t.announced_at).into(),
                    ],
                )
                .await?;
                for a in &announcements {
                    db.execute(
                        "INSERT INTO announcements (id, tenant_id, kind, subject, effective_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                        &[
                            (&a.id).into(),
                            a.tenant.as_str().into(),
                            (&a.kind).into(),
                            (&a.subject).into(),
                            a.effective_at.map(to_micros).into(),
                            to_micros(a.created_at).into(),
                        ],
                    )
                    .await?;
                }
                insert_audit_rows(db, &audit).await
            })
        })
        .await
    }

    pub async fn terminations(&self) -> Result<Vec<StoredTermination>> {
        let rows: Vec<(String, i64, i64, Option<i64>)> = self
            .scan(|db| {
                Box::pin(async move {
                    db.fetch_all(
                        "SELECT service, effective_at, announced_at, finished_at FROM service_terminations ORDER BY service",
                        &[],
                    )
                    .await
                })
            })
            .await?;
        rows.into_iter()
            .map(|(service, e, a, f)| {
                Ok(StoredTermination {
                    service,
                    effective_at: from_micros(e)?,
                    announced_at: from_micros(a)?,
                    finished_at: f.map(from_micros).transpose()?,
                })
            })
            .collect()
    }

    pub async fn finish_termination_audited(
        &self,
        service: &str,
        at: OffsetDateTime,
        audit: &AuditEntry,
    ) -> Result<()> {
        let service = service.to_owned();
        let audit = audit.clone();
        self.write(move |db| {
            Box::pin(async move {
                db.execute(
                    "UPDATE service_terminations SET finished_at = $1 WHERE service = $2 AND finished_at IS NULL",
                    &[to_micros(at).into(), service.into()],
                )
                .await?;
                insert_audit(db, &audit).await
            })
        })
        .await
    }

    /// Tenants with records of `service` (who must hear of its termination).
    pub async fn tenants_using_service(&self, service: &str) -> Result<Vec<TenantId>> {
        let service = service.to_owned();
        // Over every record of the service: a scan.
        let rows: Vec<(String,)> = self
            .scan(move |db| {
                Box::pin(async move {
                    db.fetch_all(
                        "SELECT DISTINCT s.tenant_id FROM records r JOIN subjects s ON s.id = r.subject_id \
                         WHERE r.service = $1 ORDER BY s.tenant_id",
                        &[service.into()],
                    )
                    .await
                })
            })
            .await?;
        rows.into_iter()
            .map(|(t,)| parse_col("tenant_id", &t, TenantId::parse))
            .collect()
    }

    pub async fn announcements_of(&self, tenant: &TenantId) -> Result<Vec<Announcement>> {
        let tenant = tenant.as_str().to_owned();
        let rows: Vec<(String, String, String, String, Option<i64>, i64)> = self
            .scan(move |db| {
                Box::pin(async move {
                    db.fetch_all(
                        "SELECT id, tenant_id, kind, subject, effective_at, created_at FROM announcements \
                         WHERE tenant_id = $1 ORDER BY created_at, id",
                        &[tenant.into()],
                    )
                    .await
                })
            })
            .await?;
        rows.into_iter()
            .map(|(id, tenant, kind, subject, e, c)| {
                Ok(Announcement {
                    id,
                    tenant: parse_col("tenant_id", &tenant, TenantId::parse)?,
                    kind,
                    subject,
                    effective_at: e.map(from_micros).transpose()?,
                    created_at: from_micros(c)?,
                })
            })
            .collect()
    }

    /// Administrators of a tenant (who get its notices).
    /// A scan: the query walks the tenant's live subjects (tens of milliseconds for a
    /// tenant of half a million), so it must not run on a runtime worker.
    pub async fn administrators_of(&self, tenant: &TenantId) -> Result<Vec<SubjectId>> {
        let tenant = tenant.as_str().to_owned();
        let rows: Vec<(String,)> = self
            .scan(move |db| {
                Box::pin(async move {
                    db.fetch_all(
                        "SELECT id FROM subjects WHERE tenant_id = $1 AND kind = 'administrator' AND erased_at IS NULL ORDER BY id",
                        &[tenant.into()],
                    )
                    .await
                })
            })
            .await?;
        rows.into_iter()
            .map(|(s,)| parse_col("subject_id", &s, SubjectId::parse))
            .collect()
    }
}

/// A token's sealed original (R13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiiToken {
    pub tenant: TenantId,
    pub token_digest: Vec<u8>,
    pub kind: String,
    pub sealed_value: Vec<u8>,
    pub created_at: OffsetDateTime,
}

impl Store {
    /// Records tokens (a token already known is left as it is), with the audit entry.
    pub async fn insert_pii_tokens_audited(
        &self,
        tokens: &[PiiToken],
        audit: &AuditEntry,
    ) -> Result<()> {
        let tokens = tokens.to_vec();
        let audit = audit.clone();
        self.write(move |db| {
            Box::pin(async move {
                for t in &tokens {
                    db.execute(
                        "INSERT INTO pii_tokens (tenant_id, token_digest, kind, sealed_value, created_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, token_digest) DO NOTHING",
                        &[
                            t.tenant.as_str().into(),
                            (&t.token_digest).into(),
                            (&t.kind).into(),
                            (&t.sealed_value).into(),
                            to_micros(t.created_at).into(),
                        ],
                    )
                    .await?;
                }
                insert_audit(db, &audit).await
            })
        })
        .await
    }

    /// A token's (kind, sealed original), if this tenant handed it out.
    pub async fn pii_token(
        &self,
        tenant: &TenantId,
        digest: &[u8],
    ) -> Result<Option<(String, Vec<u8>)>> {
        self.read(|db| {
            Box::pin(async move {
                db.fetch_optional(
                    "SELECT kind, sealed_value FROM pii_tokens WHERE tenant_id = $1 AND token_digest = $2",
                    &[tenant.as_str().into(), digest.into()],
                )
                .await
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::deliveries::testing::{
        audit, audited, count, fresh, recipient, store, subject, tenant,
    };
    use time::Duration;

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::seconds(s)
    }

    async fn records(store: &Store, subject: &SubjectId) -> Vec<(String, Vec<u8>)> {
        let sid = subject.as_str();
        store
            .read(|db| {
                Box::pin(async move {
                    db.fetch_all(
                        "SELECT category, fields FROM records WHERE subject_id = $1 ORDER BY category",
                        &[sid.into()],
                    )
                    .await
                })
            })
            .await
            .unwrap()
    }

    /// R19, R21: subjects are leased to one owner at a time; a batch applied by an owner
    /// whose lease was taken over writes nothing, and the new holder's batch shreds,
    /// removes, re-keys, aggregates, notifies and audits in one transaction.
    #[tokio::test]
    async fn a_batch_whose_lease_was_taken_over_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let tenant = tenant(&store).await;
        let gone = subject(&store, &tenant, &["customer"]).await;
        let kept = subject(&store, &tenant, &["customer", "payment"]).await;
        let mut both = vec![gone.clone(), kept.clone()];
        both.sort();
        let whole = Candidates::WholeTenant(&tenant);
        assert_eq!(store.count_candidates(whole, at(0)).await.unwrap(), 2);
        let payment = Candidates::TenantCategories(&tenant, &[Category::Payment]);
        assert_eq!(store.count_candidates(payment, at(0)).await.unwrap(), 1);
        let claimed = store
            .claim_candidates(whole, at(0), at(60), "a", 10)
            .await
            .unwrap();
        assert_eq!(claimed, both);
        assert!(store
            .claim_candidates(whole, at(1), at(61), "b", 10)
            .await
            .unwrap()
            .is_empty());
        // What "b" waits for before taking over (a run killed after its claim, R19).
        assert_eq!(
            store
                .earliest_foreign_lease(whole, at(1), "b")
                .await
                .unwrap(),
            Some(at(60))
        );
        assert_eq!(
            store
                .earliest_foreign_lease(whole, at(1), "a")
                .await
                .unwrap(),
            None,
            "a run never waits for its own leases"
        );
        assert_eq!(
            store
                .claim_candidates(whole, at(61), at(121), "b", 10)
                .await
                .unwrap(),
            both,
            "an expired lease is taken over"
        );
        assert_eq!(store.records_of_subjects(&both).await.unwrap().len(), 3);

        let outcomes = [
            SubjectOutcome {
                subject: gone.clone(),
                remove: vec![Category::Customer],
                erase: true,
                mark_erased: true,
                resealed: Vec::new(),
                new_key: None,
            },
            SubjectOutcome {
                subject: kept.clone(),
                remove: vec![Category::Customer],
                erase: false,
                mark_erased: false,
                resealed: vec![(Category::Payment, 1, b"resealed".to_vec())],
                new_key: Some(b"new-key".to_vec()),
            },
        ];
        let service = fresh("svc");
        let aggregate = Aggregate {
            category: Category::Customer,
            service: service.clone(),
            period: "1970-01".into(),
            attribute: "country",
            value: "CN",
        };
        let aggregates = [(aggregate.clone(), 2), (aggregate, 3)];
        let recipient = recipient(&store).await;
        // Not sendable: a manual notice is never claimed by the outbox tests.
        let notices = [Delivery::queued(
            fresh("dlv"),
            None,
            &recipient,
            false,
            None,
            "{}".into(),
            at(61),
        )];
        let reason = fresh("retention");
        let entries = [audit(&reason)];
        let stale = store
            .apply_retention_batch("a", at(62), &outcomes, &aggregates, &notices, &entries)
            .await
            .unwrap();
        assert_eq!(stale, 0, "the lease is b's now");
        assert_eq!(audited(&store, &reason).await, 0);
        assert_eq!(records(&store, &gone).await.len(), 1);
        assert_eq!(records(&store, &kept).await.len(), 2);

        let applied = store
            .apply_retention_batch("b", at(62), &outcomes, &aggregates, &notices, &entries)
            .await
            .unwrap();
        assert_eq!(applied, 2);
        assert!(records(&store, &gone).await.is_empty());
        assert_eq!(
            records(&store, &kept).await,
            [("payment".to_owned(), b"resealed".to_vec())]
        );
        let erased = count(
            &store,
            "SELECT count(*) FROM subjects WHERE id = $1 AND erased_at IS NOT NULL",
            vec![gone.as_str().into()],
        )
        .await;
        assert_eq!(erased, 1);
        let keys = count(
            &store,
            "SELECT count(*) FROM subject_keys WHERE subject_id IN ($1, $2)",
            vec![gone.as_str().into(), kept.as_str().into()],
        )
        .await;
        assert_eq!(
            keys, 1,
            "the erased subject's key is shredded, the kept one re-keyed"
        );
        let leased = count(
            &store,
            "SELECT count(*) FROM subjects WHERE tenant_id = $1 AND retention_lease_owner IS NOT NULL",
            vec![tenant.as_str().into()],
        )
        .await;
        assert_eq!(leased, 0, "leases are released");
        let counted: Vec<_> = store
            .anonymized_aggregates()
            .await
            .unwrap()
            .into_iter()
            .filter(|row| row.1 == service)
            .map(|row| row.5)
            .collect();
        assert_eq!(counted, [5]);
        assert_eq!(audited(&store, &reason).await, 1);
        let queued = count(
            &store,
            "SELECT count(*) FROM deliveries WHERE recipient_id = $1",
            vec![recipient.as_str().into()],
        )
        .await;
        assert_eq!(queued, 1);
        assert!(store.tenant_has_live_subjects(&tenant).await.unwrap());
        assert_eq!(store.count_candidates(whole, at(62)).await.unwrap(), 1);
        assert!(store
            .transfer_recipients_of_many(&both)
            .await
            .unwrap()
            .is_empty());
    }

    /// R20: a service terminated twice keeps its first record; the second attempt is a
    /// conflict that writes neither announcements nor audit entries.
    #[tokio::test]
    async fn a_service_terminated_twice_keeps_its_first_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let tenant = tenant(&store).await;
        let service = fresh("svc");
        let termination = StoredTermination {
            service: service.clone(),
            effective_at: at(1000),
            announced_at: at(10),
            finished_at: None,
        };
        let announce = |id: String| Announcement {
            id,
            tenant: tenant.clone(),
            kind: "service_termination".into(),
            subject: service.clone(),
            effective_at: Some(at(1000)),
            created_at: at(10),
        };
        let reason = fresh("terminate");
        store
            .insert_termination_audited(&termination, &[announce(fresh("ann"))], &[audit(&reason)])
            .await
            .unwrap();
        let later = StoredTermination {
            effective_at: at(2000),
            ..termination.clone()
        };
        let err = store
            .insert_termination_audited(&later, &[announce(fresh("ann"))], &[audit(&reason)])
            .await
            .unwrap_err();
        assert!(matches!(err, crate::StoreError::Conflict), "{err}");
        assert_eq!(store.announcements_of(&tenant).await.unwrap().len(), 1);
        assert_eq!(audited(&store, &reason).await, 1);
        let stored = |all: Vec<StoredTermination>| all.into_iter().find(|t| t.service == service);
        assert_eq!(
            stored(store.terminations().await.unwrap()),
            Some(termination.clone())
        );
        store
            .finish_termination_audited(&service, at(1001), &audit(&reason))
            .await
            .unwrap();
        assert_eq!(
            stored(store.terminations().await.unwrap())
                .unwrap()
                .finished_at,
            Some(at(1001))
        );
        assert!(store
            .tenants_using_service(&service)
            .await
            .unwrap()
            .is_empty());
        assert!(store.administrators_of(&tenant).await.unwrap().is_empty());
    }

    /// R13: a token already known keeps its first sealed original.
    #[tokio::test]
    async fn a_known_token_keeps_its_first_original() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let tenant = tenant(&store).await;
        let token = |sealed: &[u8]| PiiToken {
            tenant: tenant.clone(),
            token_digest: b"digest".to_vec(),
            kind: "email".into(),
            sealed_value: sealed.to_vec(),
            created_at: at(0),
        };
        let reason = fresh("tokenize");
        store
            .insert_pii_tokens_audited(&[token(b"first")], &audit(&reason))
            .await
            .unwrap();
        store
            .insert_pii_tokens_audited(&[token(b"second")], &audit(&reason))
            .await
            .unwrap();
        assert_eq!(
            store.pii_token(&tenant, b"digest").await.unwrap(),
            Some(("email".to_owned(), b"first".to_vec()))
        );
        assert_eq!(store.pii_token(&tenant, b"other").await.unwrap(), None);
        assert_eq!(audited(&store, &reason).await, 2);
    }

    /// R19, R33: a subject whose legal hold has ended is a candidate (the predicate
    /// binds only the time).
    #[tokio::test]
    async fn a_subject_whose_hold_ended_is_a_candidate() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let tenant = tenant(&store).await;
        let held = subject(&store, &tenant, &["payment"]).await;
        crate::deliveries::testing::exec(
            &store,
            "UPDATE subjects SET erased_at = 0, frozen_until = $1 WHERE id = $2",
            vec![to_micros(at(5)).into(), held.as_str().into()],
        )
        .await;
        let ended = Candidates::EndedHolds;
        assert!(store.count_candidates(ended, at(6)).await.unwrap() >= 1);
        let before = store
            .claim_candidates(ended, at(4), at(64), "c", 10_000)
            .await
            .unwrap();
        assert!(!before.contains(&held), "the hold runs until t = 5 s");
        let claimed = store
            .claim_candidates(ended, at(6), at(66), "c", 10_000)
            .await
            .unwrap();
        assert!(claimed.contains(&held));
        store.release_leases("c").await.unwrap();
        let leased = count(
            &store,
            "SELECT count(*) FROM subjects WHERE retention_lease_owner = 'c'",
            Vec::new(),
        )
        .await;
        assert_eq!(leased, 0);
    }
}
