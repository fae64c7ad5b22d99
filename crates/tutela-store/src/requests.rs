//! Data-subject request rows (issue 6). Status changes are optimistic
//! (`WHERE status = <expected>`) and commit with their audit entry.

use crate::audit::{insert_audit, insert_audit_rows, AuditEntry};
use crate::contact::{insert_message, Message};
use crate::db::{values_placeholders, Value};
use crate::{from_micros, parse_col, to_micros, Result, Store, StoreError};
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

/// The bound values of a request row, in [`COLUMNS`] order.
fn request_params(r: &StoredRequest) -> Vec<Value> {
    vec![
        (&r.id).into(),
        r.subject.as_str().into(),
        r.tenant.as_str().into(),
        r.kind.as_str().into(),
        r.status.as_str().into(),
        (&r.filed_by).into(),
        (&r.filed_role).into(),
        to_micros(r.received_at).into(),
        to_micros(r.due_at).into(),
        r.confirmed.into(),
        r.extended.into(),
        r.sealed_text.as_deref().into(),
        r.verification_method.as_deref().into(),
        r.verification_ref.as_deref().into(),
        r.refusal_ground.as_deref().into(),
        to_micros(r.updated_at).into(),
    ]
}

/// Columns of a request row.
const REQUEST_BINDS: usize = 16;

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
        let c = c.clone();
        let message = message.clone();
        let sealed_params = sealed_params.to_vec();
        let audit = audit.to_vec();
        self.write(move |db| {
            Box::pin(async move {
                insert_message(db, &message, Some(&sealed_params)).await?;
                db.execute(
                    "DELETE FROM identity_challenges WHERE request_id = $1",
                    &[(&c.request).into()],
                )
                .await?;
                db.execute(
                    "INSERT INTO identity_challenges (request_id, channel, code_hash, message_id, attempts, expires_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        (&c.request).into(),
                        (&c.channel).into(),
                        (&c.code_digest).into(),
                        (&c.message).into(),
                        c.attempts.into(),
                        to_micros(c.expires_at).into(),
                        to_micros(c.created_at).into(),
                    ],
                )
                .await?;
                insert_audit_rows(db, &audit).await
            })
        })
        .await
    }

    pub async fn challenge(&self, request: &str) -> Result<Option<Challenge>> {
        type Row = (String, String, Vec<u8>, String, i64, i64, i64);
        let row: Option<Row> = self
            .read(|db| {
                Box::pin(async move {
                    db.fetch_optional(
                        "SELECT request_id, channel, code_hash, message_id, attempts, expires_at, created_at \
                         FROM identity_challenges WHERE request_id = $1",
                        &[request.into()],
                    )
                    .await
                })
            })
            .await?;
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
        let request = request.to_owned();
        let audit = audit.clone();
        let n: Option<(i64,)> = self
            .write(move |db| {
                Box::pin(async move {
                    // One statement counts and reads back, so concurrent wrong codes
                    // each see their own count.
                    let n = db
                        .fetch_optional(
                            "UPDATE identity_challenges SET attempts = attempts + 1 WHERE request_id = $1 RETURNING attempts",
                            &[request.into()],
                        )
                        .await?;
                    insert_audit(db, &audit).await?;
                    Ok(n)
                })
            })
            .await?;
        Ok(n.map_or(0, |(n,)| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    /// Removes a used (or exhausted) challenge.
    pub async fn delete_challenge(&self, request: &str) -> Result<()> {
        let request = request.to_owned();
        self.write(move |db| {
            Box::pin(async move {
                db.execute(
                    "DELETE FROM identity_challenges WHERE request_id = $1",
                    &[request.into()],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn insert_request_audited(
        &self,
        r: &StoredRequest,
        audit: &AuditEntry,
    ) -> Result<()> {
        let params = request_params(r);
        let audit = audit.clone();
        self.write(move |db| {
            Box::pin(async move {
                let sql = format!(
                    "INSERT INTO requests ({COLUMNS}) VALUES {}",
                    values_placeholders(1, REQUEST_BINDS, 1)
                );
                db.execute(&sql, &params).await?;
                insert_audit(db, &audit).await
            })
        })
        .await
    }

    pub async fn request(&self, id: &str) -> Result<Option<StoredRequest>> {
        let sql = format!("SELECT {COLUMNS} FROM requests WHERE id = $1");
        let row: Option<Row> = self
            .read(|db| Box::pin(async move { db.fetch_optional(&sql, &[id.into()]).await }))
            .await?;
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
        let before = to_micros(before);
        let rows: Vec<Row> = self
            .scan(move |db| Box::pin(async move { db.fetch_all(&sql, &[before.into()]).await }))
            .await?;
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
        let params: Vec<Value> = vec![
            r.status.as_str().into(),
            to_micros(r.due_at).into(),
            r.confirmed.into(),
            r.extended.into(),
            r.sealed_text.as_deref().into(),
            r.verification_method.as_deref().into(),
            r.verification_ref.as_deref().into(),
            r.refusal_ground.as_deref().into(),
            to_micros(r.updated_at).into(),
            (&r.id).into(),
            expected.as_str().into(),
        ];
        let audit = audit.clone();
        self.write(move |db| {
            Box::pin(async move {
                let n = db
                    .execute(
                        "UPDATE requests SET status = $1, due_at = $2, confirmed = $3, extended = $4, \
                         sealed_text = $5, verification_method = $6, verification_ref = $7, \
                         refusal_ground = $8, updated_at = $9 WHERE id = $10 AND status = $11",
                        &params,
                    )
                    .await?;
                if n == 0 {
                    // The status changed meanwhile: nothing was written, and the
                    // transition is not audited.
                    return Err(StoreError::Conflict);
                }
                insert_audit(db, &audit).await
            })
        })
        .await
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
        let params: Vec<Value> = vec![
            (&l.id).into(),
            (&l.request_id).into(),
            (&l.created_by).into(),
            to_micros(l.created_at).into(),
            to_micros(l.expires_at).into(),
            l.used_at.map(to_micros).into(),
            l.used_by.as_deref().into(),
        ];
        self.write(move |db| {
            Box::pin(async move {
                db.execute(
                    "INSERT INTO export_links (id, request_id, created_by, created_at, expires_at, used_at, used_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &params,
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn export_link(&self, id: &str) -> Result<Option<ExportLink>> {
        let row: Option<LinkRow> = self
            .read(|db| {
                Box::pin(async move {
                    db.fetch_optional(
                        "SELECT id, request_id, created_by, created_at, expires_at, used_at, used_by \
                         FROM export_links WHERE id = $1",
                        &[id.into()],
                    )
                    .await
                })
            })
            .await?;
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
        let params: Vec<Value> = vec![to_micros(at).into(), used_by.into(), id.into()];
        let audit = audit.to_vec();
        self.write(move |db| {
            Box::pin(async move {
                let n = db
                    .execute(
                        "UPDATE export_links SET used_at = $1, used_by = $2 WHERE id = $3 AND used_at IS NULL",
                        &params,
                    )
                    .await?;
                if n == 0 {
                    // Already used: nothing was written (the transaction commits empty).
                    return Ok(false);
                }
                insert_audit_rows(db, &audit).await?;
                Ok(true)
            })
        })
        .await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use tutela_core::contact::{ContactChannel, MessageKind};

    /// A migrated SQLite store, and a PostgreSQL one when `TUTELA_TEST_PG_URL` is set.
    pub(crate) async fn stores(dir: &tempfile::TempDir) -> Vec<Store> {
        let now = OffsetDateTime::UNIX_EPOCH;
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        let mut stores = vec![Store::open(&url, now).await.unwrap()];
        if let Ok(pg) = std::env::var("TUTELA_TEST_PG_URL") {
            stores.push(Store::open(&pg, now).await.unwrap());
        }
        stores
    }

    /// Ids unique to one run, so that a reused PostgreSQL database keeps working (the
    /// other modules' tests share these helpers).
    pub(crate) fn nonce() -> [u8; 16] {
        uuid::Uuid::now_v7().into_bytes()
    }

    pub(crate) fn audit(id: &str, action: &str, reason: &str) -> AuditEntry {
        AuditEntry {
            id: id.into(),
            at: OffsetDateTime::UNIX_EPOCH,
            token_id: "tok_test".into(),
            role: "privacy_officer".into(),
            tenant: None,
            subject: None,
            category: None,
            purpose: None,
            action: action.into(),
            decision: "allow".into(),
            reason: reason.into(),
            clause: None,
            seq: None,
        }
    }

    /// A tenant and subject written directly (their modules are tested on their own).
    pub(crate) async fn subject_row(store: &Store, tenant: &TenantId, subject: &SubjectId) {
        let params: Vec<Value> = vec![tenant.as_str().into(), subject.as_str().into()];
        store
            .write(move |db| {
                Box::pin(async move {
                    db.execute(
                        "INSERT INTO tenants (id, name, kind, state, created_at) \
                         VALUES ($1, 'Test tenant', 'enterprise', 'active', 0)",
                        &params[..1],
                    )
                    .await?;
                    db.execute(
                        "INSERT INTO subjects (id, tenant_id, kind, created_at) VALUES ($2, $1, 'contact', 0)",
                        &params,
                    )
                    .await?;
                    Ok(())
                })
            })
            .await
            .unwrap();
    }

    fn request(id: &str, tenant: &TenantId, subject: &SubjectId) -> StoredRequest {
        let now = OffsetDateTime::UNIX_EPOCH;
        StoredRequest {
            id: id.into(),
            subject: subject.clone(),
            tenant: tenant.clone(),
            kind: RequestType::Delete,
            status: RequestStatus::Received,
            filed_by: "tok_test".into(),
            filed_role: "tenant_admin".into(),
            received_at: now,
            due_at: now,
            confirmed: false,
            extended: false,
            sealed_text: Some(vec![1, 2, 3]),
            verification_method: None,
            verification_ref: None,
            refusal_ground: None,
            updated_at: now,
        }
    }

    pub(crate) async fn actions(store: &Store, reason: &str) -> Vec<String> {
        let mut entries = store.audit_by_reason(reason).await.unwrap();
        entries.sort_by(|a, b| a.id.cmp(&b.id));
        entries.into_iter().map(|e| e.action).collect()
    }

    /// A stale expected status changes nothing and writes no audit entry (R35).
    #[tokio::test]
    async fn a_stale_request_transition_is_a_conflict_and_leaves_no_audit_entry() {
        let dir = tempfile::tempdir().unwrap();
        for store in stores(&dir).await {
            let n = nonce();
            let (tenant, subject) = (TenantId::from_bytes(n), SubjectId::from_bytes(n));
            let reason = format!("req-test-{}", subject.as_str());
            subject_row(&store, &tenant, &subject).await;
            let id = format!("req_{}", subject.as_str());
            let filed = request(&id, &tenant, &subject);
            store
                .insert_request_audited(
                    &filed,
                    &audit(&format!("{id}_1"), "request.filed", &reason),
                )
                .await
                .unwrap();
            assert_eq!(store.request(&id).await.unwrap().as_ref(), Some(&filed));
            let verified = StoredRequest {
                status: RequestStatus::IdentityVerified,
                verification_method: Some("document".into()),
                ..filed.clone()
            };
            store
                .update_request_audited(
                    &verified,
                    RequestStatus::Received,
                    &audit(&format!("{id}_2"), "request.verified", &reason),
                )
                .await
                .unwrap();
            let stale = StoredRequest {
                status: RequestStatus::Refused,
                ..filed.clone()
            };
            let err = store
                .update_request_audited(
                    &stale,
                    RequestStatus::Received,
                    &audit(&format!("{id}_3"), "request.refused", &reason),
                )
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::Conflict), "{err}");
            assert_eq!(store.request(&id).await.unwrap(), Some(verified));
            assert_eq!(
                actions(&store, &reason).await,
                ["request.filed", "request.verified"]
            );
            // The same id twice is a conflict too.
            let dup = store
                .insert_request_audited(
                    &filed,
                    &audit(&format!("{id}_4"), "request.filed", &reason),
                )
                .await
                .unwrap_err();
            assert!(matches!(dup, StoreError::Conflict), "{dup}");
            assert_eq!(actions(&store, &reason).await.len(), 2);
            let due = store
                .open_requests_due_before(OffsetDateTime::UNIX_EPOCH + time::Duration::SECOND)
                .await
                .unwrap();
            assert!(due.iter().any(|r| r.id == id));
        }
    }

    /// Wrong codes are counted one by one, each audited; the code travels in the message's
    /// sealed parameters (R35).
    #[tokio::test]
    async fn challenge_attempts_count_up_and_the_code_rides_in_its_message() {
        let dir = tempfile::tempdir().unwrap();
        for store in stores(&dir).await {
            let n = nonce();
            let (tenant, subject) = (TenantId::from_bytes(n), SubjectId::from_bytes(n));
            let reason = format!("chal-test-{}", subject.as_str());
            subject_row(&store, &tenant, &subject).await;
            let id = format!("req_{}", subject.as_str());
            store
                .insert_request_audited(
                    &request(&id, &tenant, &subject),
                    &audit(&format!("{id}_1"), "request.filed", &reason),
                )
                .await
                .unwrap();
            let now = OffsetDateTime::UNIX_EPOCH;
            let message = Message {
                id: format!("msg_{}", subject.as_str()),
                subject: subject.clone(),
                kind: MessageKind::Service,
                channel: ContactChannel::Email,
                template: "identity_code".into(),
                status: "queued".into(),
                reason: "service".into(),
                clause: "R35".into(),
                created_at: now,
            };
            let challenge = Challenge {
                request: id.clone(),
                channel: "email".into(),
                code_digest: vec![7; 32],
                message: message.id.clone(),
                attempts: 0,
                expires_at: now + time::Duration::MINUTE,
                created_at: now,
            };
            store
                .insert_challenge_audited(
                    &challenge,
                    &message,
                    &[9, 9],
                    &[
                        audit(&format!("{id}_2"), "challenge.issued", &reason),
                        audit(&format!("{id}_3"), "message.queued", &reason),
                    ],
                )
                .await
                .unwrap();
            assert_eq!(
                store.challenge(&id).await.unwrap().as_ref(),
                Some(&challenge)
            );
            assert_eq!(
                store.message_with_params(&message.id).await.unwrap(),
                Some((message.clone(), Some(vec![9, 9])))
            );
            assert_eq!(store.messages_of(&subject).await.unwrap(), [message]);
            for expected in 1..=2 {
                let n = store
                    .count_challenge_attempt(
                        &id,
                        &audit(&format!("{id}_4{expected}"), "challenge.failed", &reason),
                    )
                    .await
                    .unwrap();
                assert_eq!(n, expected);
            }
            assert_eq!(store.challenge(&id).await.unwrap().unwrap().attempts, 2);
            store.delete_challenge(&id).await.unwrap();
            assert_eq!(store.challenge(&id).await.unwrap(), None);
            // No challenge left: nothing to count, but the attempt is still on record.
            let n = store
                .count_challenge_attempt(
                    &id,
                    &audit(&format!("{id}_5"), "challenge.failed", &reason),
                )
                .await
                .unwrap();
            assert_eq!(n, 0);
            assert_eq!(
                actions(&store, &reason).await,
                [
                    "request.filed",
                    "challenge.issued",
                    "message.queued",
                    "challenge.failed",
                    "challenge.failed",
                    "challenge.failed"
                ]
            );
        }
    }

    /// An export link is spent once, with the download's audit entries; a second use
    /// writes nothing (R33).
    #[tokio::test]
    async fn an_export_link_is_consumed_once() {
        let dir = tempfile::tempdir().unwrap();
        for store in stores(&dir).await {
            let n = nonce();
            let (tenant, subject) = (TenantId::from_bytes(n), SubjectId::from_bytes(n));
            let reason = format!("link-test-{}", subject.as_str());
            subject_row(&store, &tenant, &subject).await;
            let id = format!("req_{}", subject.as_str());
            store
                .insert_request_audited(
                    &request(&id, &tenant, &subject),
                    &audit(&format!("{id}_1"), "request.filed", &reason),
                )
                .await
                .unwrap();
            let now = OffsetDateTime::UNIX_EPOCH;
            let link = ExportLink {
                id: format!("lnk_{}", subject.as_str()),
                request_id: id.clone(),
                created_by: "tok_test".into(),
                created_at: now,
                expires_at: now + time::Duration::HOUR,
                used_at: None,
                used_by: None,
            };
            store.insert_export_link(&link).await.unwrap();
            assert_eq!(
                store.export_link(&link.id).await.unwrap().as_ref(),
                Some(&link)
            );
            let at = now + time::Duration::MINUTE;
            let first = store
                .consume_export_link_audited(
                    &link.id,
                    at,
                    "link",
                    &[audit(&format!("{id}_2"), "export.download", &reason)],
                )
                .await
                .unwrap();
            assert!(first);
            let second = store
                .consume_export_link_audited(
                    &link.id,
                    at,
                    "link",
                    &[audit(&format!("{id}_3"), "export.download", &reason)],
                )
                .await
                .unwrap();
            assert!(!second);
            let used = store.export_link(&link.id).await.unwrap().unwrap();
            assert_eq!(
                (used.used_at, used.used_by.as_deref()),
                (Some(at), Some("link"))
            );
            assert_eq!(
                actions(&store, &reason).await,
                ["request.filed", "export.download"]
            );
        }
    }
}
