//! Erasing a subject (issue 6; R19, R33, R34): one transaction that crypto-shreds the
//! subject's data key, removes the deleted categories' rows and look-up keys, re-seals
//! what the law keeps under a fresh key, marks the subject erased (and frozen), queues
//! the notifications to recipients and appends the audit entries. Either all of it
//! happens or none of it does, so no subject is ever left half-deleted.

use crate::audit::{insert_audit_rows, AuditEntry};
use crate::db::Db;
use crate::deliveries::{insert_deliveries, Delivery};
use crate::{to_micros, Result, Store, StoreError};
use time::OffsetDateTime;
use tutela_core::{Category, SubjectId};

/// Everything an erasure writes.
#[derive(Debug)]
pub struct Erasure<'a> {
    pub subject: &'a SubjectId,
    /// Categories whose records are removed.
    pub delete: &'a [Category],
    /// Kept records re-sealed under `new_key`: (category, version, packed fields).
    pub resealed: &'a [(Category, i64, Vec<u8>)],
    /// The subject's fresh data key, wrapped by the tenant key. The old key is deleted
    /// (crypto-shred); the new one protects only what is kept and the request's
    /// correspondence.
    pub new_key: &'a [u8],
    /// The request's own notes re-sealed under the new key: (request id, sealed).
    pub request_notes: Option<(&'a str, &'a [u8])>,
    pub erased_at: OffsetDateTime,
    pub frozen_until: Option<OffsetDateTime>,
    pub frozen_ground: Option<&'a str>,
    pub deliveries: &'a [Delivery],
    pub audit: &'a [AuditEntry],
}

/// What erasure and retention both do to a subject that keeps some data, inside the
/// caller's transaction: remove the categories in `remove`, write the kept records
/// re-sealed under the new key (same version, so their associated data still binds),
/// and, with a new key, replace the shredded one and drop the request notes that were
/// sealed under it (unreadable now, so dropped rather than kept as noise).
pub(crate) async fn rekey_subject(
    db: &mut Db<'_>,
    subject: &str,
    remove: &[Category],
    resealed: &[(Category, i64, Vec<u8>)],
    new_key: Option<&[u8]>,
) -> Result<()> {
    for c in remove {
        db.execute(
            "DELETE FROM records WHERE subject_id = $1 AND category = $2",
            &[subject.into(), c.as_str().into()],
        )
        .await?;
    }
    for (c, version, fields) in resealed {
        db.execute(
            "UPDATE records SET fields = $1 WHERE subject_id = $2 AND category = $3 AND version = $4",
            &[
                fields.into(),
                subject.into(),
                c.as_str().into(),
                (*version).into(),
            ],
        )
        .await?;
    }
    if let Some(key) = new_key {
        db.execute(
            "DELETE FROM subject_keys WHERE subject_id = $1",
            &[subject.into()],
        )
        .await?;
        db.execute(
            "INSERT INTO subject_keys (subject_id, wrapped) VALUES ($1, $2)",
            &[subject.into(), key.into()],
        )
        .await?;
        db.execute(
            "UPDATE requests SET sealed_text = NULL WHERE subject_id = $1",
            &[subject.into()],
        )
        .await?;
    }
    Ok(())
}

/// An [`Erasure`] owned, to move into the write transaction.
struct OwnedErasure {
    subject: String,
    delete: Vec<Category>,
    resealed: Vec<(Category, i64, Vec<u8>)>,
    new_key: Vec<u8>,
    request_notes: Option<(String, Vec<u8>)>,
    erased_at: OffsetDateTime,
    frozen_until: Option<OffsetDateTime>,
    frozen_ground: Option<String>,
    deliveries: Vec<Delivery>,
    audit: Vec<AuditEntry>,
}

impl Store {
    /// Applies an erasure atomically. `StoreError::Conflict` if the subject was erased
    /// meanwhile (a second erasure must not re-key what the first froze).
    pub async fn erase_subject(&self, e: &Erasure<'_>) -> Result<()> {
        let e = OwnedErasure {
            subject: e.subject.as_str().to_owned(),
            delete: e.delete.to_vec(),
            resealed: e.resealed.to_vec(),
            new_key: e.new_key.to_vec(),
            request_notes: e
                .request_notes
                .map(|(id, sealed)| (id.to_owned(), sealed.to_vec())),
            erased_at: e.erased_at,
            frozen_until: e.frozen_until,
            frozen_ground: e.frozen_ground.map(str::to_owned),
            deliveries: e.deliveries.to_vec(),
            audit: e.audit.to_vec(),
        };
        self.write(move |db| {
            Box::pin(async move {
                let subject = e.subject.as_str();
                let n = db
                    .execute(
                        "UPDATE subjects SET erased_at = $1, frozen_until = $2, frozen_ground = $3 \
                         WHERE id = $4 AND erased_at IS NULL",
                        &[
                            to_micros(e.erased_at).into(),
                            e.frozen_until.map(to_micros).into(),
                            e.frozen_ground.as_deref().into(),
                            subject.into(),
                        ],
                    )
                    .await?;
                if n == 0 {
                    // Erased meanwhile: nothing was written, and the error rolls back.
                    return Err(StoreError::Conflict);
                }
                // Frozen data is not looked up for business (R19): every look-up key goes.
                for sql in [
                    "DELETE FROM subject_lookup WHERE subject_id = $1",
                    "DELETE FROM contact_preferences WHERE subject_id = $1",
                ] {
                    db.execute(sql, &[subject.into()]).await?;
                }
                rekey_subject(
                    db,
                    subject,
                    &e.delete,
                    &e.resealed,
                    Some(e.new_key.as_slice()),
                )
                .await?;
                if let Some((request, sealed)) = &e.request_notes {
                    db.execute(
                        "UPDATE requests SET sealed_text = $1 WHERE id = $2",
                        &[sealed.into(), request.into()],
                    )
                    .await?;
                }
                db.execute(
                    "UPDATE messages SET sealed_params = NULL WHERE subject_id = $1",
                    &[subject.into()],
                )
                .await?;
                insert_deliveries(db, &e.deliveries).await?;
                insert_audit_rows(db, &e.audit).await?;
                Ok(())
            })
        })
        .await
    }

    /// Distinct recipients the transfer register lists for a subject.
    pub async fn transfer_recipients_of(&self, subject: &SubjectId) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = self
            .read(|db| {
                Box::pin(async move {
                    db.fetch_all(
                        "SELECT DISTINCT recipient_id FROM transfers WHERE subject_id = $1 ORDER BY recipient_id",
                        &[subject.as_str().into()],
                    )
                    .await
                })
            })
            .await?;
        Ok(rows.into_iter().map(|(r,)| r).collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::deliveries::testing::{
        audit, audited, count, fresh, recipient, store, subject, tenant,
    };

    /// R19, R34: an erasure removes, re-keys and notifies in one transaction; a second
    /// erasure of the same subject is a conflict and writes nothing at all.
    #[tokio::test]
    async fn a_second_erasure_is_a_conflict_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let tenant = tenant(&store).await;
        let subject = subject(&store, &tenant, &["customer", "payment"]).await;
        let sid = subject.as_str();
        let recipient = recipient(&store).await;
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1);
        let notice = |id: String| {
            // Not sendable: a manual notice is never claimed by the outbox tests.
            Delivery::queued(
                id,
                None,
                &recipient,
                false,
                Some(subject.to_string()),
                "{}".into(),
                now,
            )
        };
        let reason = fresh("erase");
        let first_audit = [audit(&reason)];
        let first_notice = [notice(fresh("dlv"))];
        let resealed = [(Category::Payment, 1, b"resealed".to_vec())];
        let erasure = Erasure {
            subject: &subject,
            delete: &[Category::Customer],
            resealed: &resealed,
            new_key: b"new-key",
            request_notes: None,
            erased_at: now,
            frozen_until: Some(now + time::Duration::days(365)),
            frozen_ground: Some("tax"),
            deliveries: &first_notice,
            audit: &first_audit,
        };
        store.erase_subject(&erasure).await.unwrap();
        let records: Vec<(String, Vec<u8>)> = store
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
            .unwrap();
        assert_eq!(records, [("payment".to_owned(), b"resealed".to_vec())]);
        let key: (Vec<u8>,) = store
            .read(|db| {
                Box::pin(async move {
                    db.fetch_one(
                        "SELECT wrapped FROM subject_keys WHERE subject_id = $1",
                        &[sid.into()],
                    )
                    .await
                })
            })
            .await
            .unwrap();
        assert_eq!(key.0, b"new-key");
        assert_eq!(audited(&store, &reason).await, 1);

        let second_audit = [audit(&reason)];
        let second_notice = [notice(fresh("dlv"))];
        let again = Erasure {
            new_key: b"another-key",
            delete: &[Category::Payment],
            resealed: &[],
            deliveries: &second_notice,
            audit: &second_audit,
            ..erasure
        };
        let err = store.erase_subject(&again).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict), "{err}");
        assert_eq!(audited(&store, &reason).await, 1, "no audit entry");
        let notices = count(
            &store,
            "SELECT count(*) FROM deliveries WHERE recipient_id = $1",
            vec![recipient.as_str().into()],
        )
        .await;
        assert_eq!(notices, 1, "no second notice");
        let kept = count(
            &store,
            "SELECT count(*) FROM records WHERE subject_id = $1",
            vec![subject.as_str().into()],
        )
        .await;
        assert_eq!(kept, 1, "the frozen record stays");
        assert_eq!(
            store.transfer_recipients_of(&subject).await.unwrap(),
            Vec::<String>::new()
        );
    }
}
