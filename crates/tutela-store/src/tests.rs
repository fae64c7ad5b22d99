//! Store-level tests across modules.
#![allow(clippy::unwrap_used, reason = "tests")]
use super::*;
use crate::audit::AuditEntry;
use crate::requests::StoredRequest;
use crate::subjects::Subject;
use crate::tenants::Tenant;
use time::OffsetDateTime;
use tutela_core::request::{RequestStatus, RequestType};
use tutela_core::tenant::{SubjectKind, TenantKind, TenantName, TenantState};
use tutela_core::{SubjectId, TenantId};

async fn sqlite_store(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite:{}", dir.path().join("t.db").display());
    Store::open(&url, OffsetDateTime::UNIX_EPOCH).await.unwrap()
}

fn audit(n: u8, action: &str) -> AuditEntry {
    AuditEntry {
        id: format!("aud_test_{n}"),
        at: OffsetDateTime::UNIX_EPOCH,
        token_id: "tok_test".into(),
        role: "privacy_officer".into(),
        tenant: None,
        subject: None,
        category: None,
        purpose: None,
        action: action.into(),
        decision: "allow".into(),
        reason: "test".into(),
        clause: None,
        seq: None,
    }
}

/// The group-commit contract (`group_sync.rs`): a write method returns only after a
/// WAL sync that started after its commit; reads cause none.
#[tokio::test]
async fn sqlite_writes_return_after_a_wal_sync_and_reads_cause_none() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let after_migrations = store.durable_syncs();
    assert!(after_migrations >= 1, "migrations are writes too");
    store.ping().await.unwrap();
    store.request("req_missing").await.unwrap();
    assert_eq!(store.durable_syncs(), after_migrations);
    store.append_audit(&audit(1, "test.write")).await.unwrap();
    assert!(store.durable_syncs() > after_migrations);
}

/// A request transition and its audit entry run as one script (one round trip on
/// SQLite): a stale expected status changes nothing and writes no audit entry (R35).
#[tokio::test]
async fn a_stale_request_transition_is_a_conflict_and_leaves_no_audit_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let now = OffsetDateTime::UNIX_EPOCH;
    let tenant = TenantId::from_bytes([1; 16]);
    let subject = SubjectId::from_bytes([2; 16]);
    store
        .insert_tenant(
            &Tenant {
                id: tenant.clone(),
                name: crate::tenants::StoredName::Clear(TenantName::parse("Test tenant").unwrap()),
                kind: TenantKind::Enterprise,
                state: TenantState::Active,
                created_at: now,
                frozen_until: None,
                trial_ends_at: None,
                closed_at: None,
            },
            None,
            None,
        )
        .await
        .unwrap();
    store
        .insert_subject(&Subject {
            id: subject.clone(),
            tenant: tenant.clone(),
            kind: SubjectKind::Contact,
            adult_on: None,
            created_at: now,
            erased_at: None,
            frozen_until: None,
            frozen_ground: None,
        })
        .await
        .unwrap();
    let filed = StoredRequest {
        id: "req_test".into(),
        subject,
        tenant,
        kind: RequestType::Delete,
        status: RequestStatus::Received,
        filed_by: "tok_test".into(),
        filed_role: "tenant_admin".into(),
        received_at: now,
        due_at: now,
        confirmed: false,
        extended: false,
        sealed_text: None,
        verification_method: None,
        verification_ref: None,
        refusal_ground: None,
        updated_at: now,
    };
    store
        .insert_request_audited(&filed, &audit(1, "request.filed"))
        .await
        .unwrap();
    let verified = StoredRequest {
        status: RequestStatus::IdentityVerified,
        verification_method: Some("document".into()),
        ..filed.clone()
    };
    store
        .update_request_audited(
            &verified,
            RequestStatus::Received,
            &audit(2, "request.verified"),
        )
        .await
        .unwrap();
    // A second writer that still believes the request is `received` loses.
    let stale = StoredRequest {
        status: RequestStatus::Refused,
        ..filed
    };
    let err = store
        .update_request_audited(
            &stale,
            RequestStatus::Received,
            &audit(3, "request.refused"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err}");
    let now_stored = store.request("req_test").await.unwrap().unwrap();
    assert_eq!(now_stored.status, RequestStatus::IdentityVerified);
    assert_eq!(now_stored.verification_method.as_deref(), Some("document"));
    let actions: Vec<String> = store
        .audit_by_reason("test")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["request.filed", "request.verified"]);
}
