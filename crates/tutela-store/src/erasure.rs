//! Erasing a subject (issue 6; R19, R33, R34): one transaction that crypto-shreds the
//! subject's data key, removes the deleted categories' rows and look-up keys, re-seals
//! what the law keeps under a fresh key, marks the subject erased (and frozen), queues
//! the notifications to recipients and appends the audit entries. Either all of it
//! happens or none of it does, so no subject is ever left half-deleted.

use crate::deliveries::Delivery;
use crate::vault::AuditEntry;
use crate::{on_writer, to_micros, Result, Store, StoreError};
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

/// Adds to a [`crate::script::Script`] what erasure and retention both do to a subject
/// that keeps some data: remove the categories in `$remove`, write the kept records
/// re-sealed under the new key (same version, so their associated data still binds), and,
/// with a new key, replace the shredded one and drop the request notes that were sealed
/// under it (unreadable now, so dropped rather than kept as noise).
macro_rules! push_rekey {
    ($script:ident, $subject:expr, $remove:expr, $resealed:expr, $new_key:expr) => {{
        for c in $remove {
            $script
                .statement("DELETE FROM records WHERE subject_id = ")
                .push_bind($subject)
                .push(" AND category = ")
                .push_bind(c.as_str());
        }
        for (c, version, fields) in $resealed {
            $script
                .statement("UPDATE records SET fields = ")
                .push_bind(fields.as_slice())
                .push(" WHERE subject_id = ")
                .push_bind($subject)
                .push(" AND category = ")
                .push_bind(c.as_str())
                .push(" AND version = ")
                .push_bind(*version);
        }
        if let Some(key) = $new_key {
            $script
                .statement("DELETE FROM subject_keys WHERE subject_id = ")
                .push_bind($subject);
            $script
                .statement("INSERT INTO subject_keys (subject_id, wrapped) VALUES (")
                .push_bind($subject)
                .push(", ")
                .push_bind(key)
                .push(")");
            $script
                .statement("UPDATE requests SET sealed_text = NULL WHERE subject_id = ")
                .push_bind($subject);
        }
    }};
}
pub(crate) use push_rekey;

impl Store {
    /// Applies an erasure atomically. `StoreError::Conflict` if the subject was erased
    /// meanwhile (a second erasure must not re-key what the first froze).
    pub async fn erase_subject(&self, e: &Erasure<'_>) -> Result<()> {
        let subject = e.subject.as_str();
        on_writer!(self, |p| {
            let mut tx = p.begin().await?;
            let n = sqlx::query(
                "UPDATE subjects SET erased_at = $1, frozen_until = $2, frozen_ground = $3 \
                 WHERE id = $4 AND erased_at IS NULL",
            )
            .bind(to_micros(e.erased_at))
            .bind(e.frozen_until.map(to_micros))
            .bind(e.frozen_ground)
            .bind(subject)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                tx.rollback().await?;
                return Err(StoreError::Conflict);
            }
            // The rest in one round trip on SQLite (`script.rs`): the writer is held for
            // one query instead of a dozen.
            let mut script = crate::script::Script::new();
            // Frozen data is not looked up for business (R19): every look-up key goes.
            for sql in [
                "DELETE FROM subject_lookup WHERE subject_id = ",
                "DELETE FROM contact_preferences WHERE subject_id = ",
            ] {
                script.statement(sql).push_bind(subject);
            }
            push_rekey!(script, subject, e.delete, e.resealed, Some(e.new_key));
            if let Some((request, sealed)) = e.request_notes {
                script
                    .statement("UPDATE requests SET sealed_text = ")
                    .push_bind(sealed)
                    .push(" WHERE id = ")
                    .push_bind(request);
            }
            script
                .statement("UPDATE messages SET sealed_params = NULL WHERE subject_id = ")
                .push_bind(subject);
            crate::deliveries::push_deliveries!(script, e.deliveries);
            crate::vault::push_audit_rows!(script, e.audit);
            crate::script::run_script!(tx, script);
            tx.commit().await
        })?;
        Ok(())
    }

    /// Distinct recipients the transfer register lists for a subject.
    pub async fn transfer_recipients_of(&self, subject: &SubjectId) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = crate::on_pool!(self, |p| {
            sqlx::query_as(
            "SELECT DISTINCT recipient_id FROM transfers WHERE subject_id = $1 ORDER BY recipient_id"
        )
        .bind(subject.as_str())
        .fetch_all(p)
        .await
        })?;
        Ok(rows.into_iter().map(|(r,)| r).collect())
    }
}
