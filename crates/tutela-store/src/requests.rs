//! Data-subject request rows (issue 6). Status changes are optimistic
//! (`WHERE status = <expected>`) and commit with their audit entry.

use crate::contact::{insert_message, Message};
use crate::vault::{audit_and_commit, bind_audit, AuditEntry, INSERT_AUDIT};
use crate::{from_micros, on_pool, on_writer, parse_col, to_micros, Result, Store, StoreError};
use time::OffsetDateTime;
use tutela_core::request::{RequestStatus, RequestType};
use tutela_core::{SubjectId, TenantId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRequest {
    pub id: String,
    pub subject: SubjectId,
    pub tenant: TenantId,
    pub kind: RequestType,
    pub status: RequestStatus,
    /// Token id of who filed it.
    pub filed_by: String,
    pub filed_role: String,
    pub received_at: OffsetDateTime,
    pub due_at: OffsetDateTime,
    pub confirmed: bool,
    pub extended: bool,
    /// Details, instruction and response, sealed under the subject's data key.
    pub sealed_text: Option<Vec<u8>>,
    pub verification_method: Option<String>,
    pub verification_ref: Option<String>,
    pub refusal_ground: Option<String>,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, subject_id, tenant_id, type, status, filed_by, filed_role, received_at, due_at, \
    confirmed, extended, sealed_text, verification_method, verification_ref, refusal_ground, updated_at";

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    bool,
    bool,
    Option<Vec<u8>>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

fn decode(r: Row) -> Result<StoredRequest> {
    let (
        id,
        subject,
        tenant,
        kind,
        status,
        filed_by,
        filed_role,
        received_at,
        due_at,
        confirmed,
        extended,
        sealed_text,
        verification_method,
        verification_ref,
        refusal_ground,
        updated_at,
    ) = r;
    Ok(StoredRequest {
        id,
        subject: parse_col("subject_id", &subject, SubjectId::parse)?,
        tenant: parse_col("tenant_id", &tenant, TenantId::parse)?,
        kind: parse_col("type", &kind, RequestType::parse)?,
        status: parse_col("status", &status, RequestStatus::parse)?,
        filed_by,
        filed_role,
        received_at: from_micros(received_at)?,
        due_at: from_micros(due_at)?,
        confirmed,
        extended,
        sealed_text,
        verification_method,
        verification_ref,
        refusal_ground,
        updated_at: from_micros(updated_at)?,
    })
}

/// A one-time identity code issued for a request (R35): only its keyed digest is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub request: String,
    pub channel: String,
    pub code_digest: Vec<u8>,
    /// The message that carried the code.
    pub message: String,
    pub attempts: u32,
    pub expires_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
}

impl Store {
    /// Issues a challenge (replacing an earlier one for the request) together with the
    /// message that carries the code (its parameters sealed) and their audit entries.
    pub async fn insert_challenge_audited(
        &self,
        c: &Challenge,
        message: &Message,
        sealed_params: &[u8],
        audit: &[AuditEntry],
    ) -> Result<()> {
        on_writer!(self, |p| {
            let mut tx = p.begin().await?;
            insert_message!(tx, message, Some(sealed_params));
            sqlx::query("DELETE FROM identity_challenges WHERE request_id = $1")
                .bind(&c.request)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO identity_challenges (request_id, channel, code_hash, message_id, attempts, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&c.request)
            .bind(&c.channel)
            .bind(c.code_digest.as_slice())
            .bind(&c.message)
            .bind(i64::from(c.attempts))
            .bind(to_micros(c.expires_at))
            .bind(to_micros(c.created_at))
            .execute(&mut *tx)
            .await?;
            for a in audit {
                bind_audit!(sqlx::query(INSERT_AUDIT), a)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    pub async fn challenge(&self, request: &str) -> Result<Option<Challenge>> {
        type Row = (String, String, Vec<u8>, String, i64, i64, i64);
        let row: Option<Row> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT request_id, channel, code_hash, message_id, attempts, expires_at, created_at \
                 FROM identity_challenges WHERE request_id = $1",
            )
            .bind(request)
            .fetch_optional(p)
            .await
        })?;
        row.map(
            |(request, channel, code_digest, message, attempts, expires_at, created_at)| {
                Ok(Challenge {
                    request,
                    channel,
                    code_digest,
                    message,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    expires_at: from_micros(expires_at)?,
                    created_at: from_micros(created_at)?,
                })
            },
        )
        .transpose()
    }

    /// Counts a wrong code, with its audit entry; returns the attempts made so far.
    pub async fn count_challenge_attempt(&self, request: &str, audit: &AuditEntry) -> Result<u32> {
        let n: Option<(i64,)> = on_writer!(self, |p| {
            let mut tx = p.begin().await?;
            let n = sqlx::query_as(
                "UPDATE identity_challenges SET attempts = attempts + 1 WHERE request_id = $1 RETURNING attempts",
            )
            .bind(request)
            .fetch_optional(&mut *tx)
            .await?;
            audit_and_commit!(tx, audit)?;
            Ok::<_, sqlx::Error>(n)
        })?;
        Ok(n.map_or(0, |(n,)| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    /// Removes a used (or exhausted) challenge.
    pub async fn delete_challenge(&self, request: &str) -> Result<()> {
        on_writer!(self, |p| sqlx::query(
            "DELETE FROM identity_challenges WHERE request_id = $1"
        )
        .bind(request)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    pub async fn insert_request_audited(
        &self,
        r: &StoredRequest,
        audit: &AuditEntry,
    ) -> Result<()> {
        let insert = format!("INSERT INTO requests ({COLUMNS}) ");
        on_writer!(self, |p| {
            let mut tx = p.begin().await?;
            // One round trip on SQLite (`script.rs`).
            let mut script = crate::script::Script::new();
            script.statement(&insert).push_values([r], |mut b, r| {
                b.push_bind(&r.id)
                    .push_bind(r.subject.as_str())
                    .push_bind(r.tenant.as_str())
                    .push_bind(r.kind.as_str())
                    .push_bind(r.status.as_str())
                    .push_bind(&r.filed_by)
                    .push_bind(&r.filed_role)
                    .push_bind(to_micros(r.received_at))
                    .push_bind(to_micros(r.due_at))
                    .push_bind(r.confirmed)
                    .push_bind(r.extended)
                    .push_bind(r.sealed_text.as_deref())
                    .push_bind(r.verification_method.as_deref())
                    .push_bind(r.verification_ref.as_deref())
                    .push_bind(r.refusal_ground.as_deref())
                    .push_bind(to_micros(r.updated_at));
            });
            crate::vault::push_audit_rows!(script, [audit]);
            crate::script::run_script!(tx, script);
            tx.commit().await
        })?;
        Ok(())
    }

    pub async fn request(&self, id: &str) -> Result<Option<StoredRequest>> {
        let sql = format!("SELECT {COLUMNS} FROM requests WHERE id = $1");
        let row: Option<Row> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        row.map(decode).transpose()
    }

    /// Open (not completed or refused) requests due before `before`, oldest due first.
    pub async fn open_requests_due_before(
        &self,
        before: OffsetDateTime,
    ) -> Result<Vec<StoredRequest>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM requests WHERE status NOT IN ('completed', 'refused') AND due_at < $1 ORDER BY due_at, id"
        );
        let rows: Vec<Row> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(to_micros(before))
            .fetch_all(p)
            .await)?;
        rows.into_iter().map(decode).collect()
    }

    /// Writes the request's new state if its status is still `expected`, with the audit
    /// entry of the transition. `StoreError::Conflict` when it changed meanwhile.
    pub async fn update_request_audited(
        &self,
        r: &StoredRequest,
        expected: RequestStatus,
        audit: &AuditEntry,
    ) -> Result<()> {
        on_writer!(self, |p| {
            let mut tx = p.begin().await?;
            // The update and its audit entry in one round trip on SQLite (`script.rs`);
            // the update matched unless fewer than two rows changed.
            let mut script = crate::script::Script::new();
            script
                .statement("UPDATE requests SET status = ")
                .push_bind(r.status.as_str())
                .push(", due_at = ")
                .push_bind(to_micros(r.due_at))
                .push(", confirmed = ")
                .push_bind(r.confirmed)
                .push(", extended = ")
                .push_bind(r.extended)
                .push(", sealed_text = ")
                .push_bind(r.sealed_text.as_deref())
                .push(", verification_method = ")
                .push_bind(r.verification_method.as_deref())
                .push(", verification_ref = ")
                .push_bind(r.verification_ref.as_deref())
                .push(", refusal_ground = ")
                .push_bind(r.refusal_ground.as_deref())
                .push(", updated_at = ")
                .push_bind(to_micros(r.updated_at))
                .push(" WHERE id = ")
                .push_bind(&r.id)
                .push(" AND status = ")
                .push_bind(expected.as_str());
            crate::vault::push_audit_rows!(script, [audit]);
            let n = crate::script::run_script!(tx, script);
            if n < 2 {
                tx.rollback().await?;
                return Err(StoreError::Conflict);
            }
            tx.commit().await
        })?;
        Ok(())
    }
}

/// A prepared access-export download link (R33): single use, short-lived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportLink {
    pub id: String,
    pub request_id: String,
    /// Token id of the privacy officer who prepared it.
    pub created_by: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
    /// Who consumed it: a token id, or `link` for a download without sign-in.
    pub used_by: Option<String>,
}

type LinkRow = (
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
);

impl Store {
    /// Records a prepared export link.
    pub async fn insert_export_link(&self, l: &ExportLink) -> Result<()> {
        on_writer!(self, |p| {
            sqlx::query(
            "INSERT INTO export_links (id, request_id, created_by, created_at, expires_at, used_at, used_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )
        .bind(&l.id)
        .bind(&l.request_id)
        .bind(&l.created_by)
        .bind(to_micros(l.created_at))
        .bind(to_micros(l.expires_at))
        .bind(l.used_at.map(to_micros))
        .bind(l.used_by.as_deref())
        .execute(p)
        .await
        .map(|_| ())
        })?;
        Ok(())
    }

    pub async fn export_link(&self, id: &str) -> Result<Option<ExportLink>> {
        let row: Option<LinkRow> = on_pool!(self, |p| sqlx::query_as(
            "SELECT id, request_id, created_by, created_at, expires_at, used_at, used_by \
             FROM export_links WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(p)
        .await)?;
        row.map(
            |(id, request_id, created_by, created_at, expires_at, used_at, used_by)| {
                Ok(ExportLink {
                    id,
                    request_id,
                    created_by,
                    created_at: from_micros(created_at)?,
                    expires_at: from_micros(expires_at)?,
                    used_at: used_at.map(from_micros).transpose()?,
                    used_by,
                })
            },
        )
        .transpose()
    }

    /// Consumes an unused export link and appends the download's audit entries in one
    /// transaction: the link is spent exactly when the download is on record, so a crash
    /// can never let a second download through. `false` (and nothing written) when the
    /// link was already used.
    pub async fn consume_export_link_audited(
        &self,
        id: &str,
        at: OffsetDateTime,
        used_by: &str,
        audit: &[AuditEntry],
    ) -> Result<bool> {
        let consumed = on_writer!(self, |p| {
            let mut tx = p.begin().await?;
            let n = sqlx::query(
                "UPDATE export_links SET used_at = $1, used_by = $2 WHERE id = $3 AND used_at IS NULL",
            )
            .bind(to_micros(at))
            .bind(used_by)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            crate::vault::insert_audit_rows!(tx, audit);
            tx.commit().await.map(|()| true)
        })?;
        Ok(consumed)
    }
}
