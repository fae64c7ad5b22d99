//! Data-subject requests (issue 6; R32, R33, R35): what the request handlers, fulfilment
//! and exports share: who may see a request, its sealed notes, its audit entries.

use crate::error::Error;
use crate::state::AppState;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use tutela_core::actor::ScopeAccess;
use tutela_core::request::{RequestEvent, RequestLife, RequestType};
use tutela_core::tenant::{SubjectKind, TenantState};
use tutela_core::{Actor, Category, Clause, Role};
use tutela_store::requests::StoredRequest;
use tutela_store::subjects::Subject;
use tutela_store::AuditEntry;
use tutela_store::StoreError;

/// A stored request's workflow state (`tutela_core::request`, pure).
pub fn life(r: &StoredRequest) -> RequestLife {
    RequestLife {
        kind: r.kind,
        status: r.status,
        received_at: r.received_at,
        due_at: r.due_at,
        confirmed: r.confirmed,
        extended: r.extended,
    }
}

/// The scope a request's notes are sealed under (with the subject's key).
pub fn scope_of(r: &StoredRequest) -> String {
    format!("request:{}", r.id)
}

/// A request's free-text notes, opened with the subject's key; none once the key is
/// shredded.
pub async fn open_notes(
    state: &AppState,
    r: &StoredRequest,
) -> Result<BTreeMap<String, String>, Error> {
    let Some(sealed) = &r.sealed_text else {
        return Ok(BTreeMap::new());
    };
    // A shredded key leaves nothing to open: the notes are gone with the data.
    let Some(key) = state
        .vault
        .subject_key(&state.store, &r.tenant, &r.subject, false)
        .await?
    else {
        return Ok(BTreeMap::new());
    };
    Ok(state
        .vault
        .open_notes(&key, &r.subject, &scope_of(r), sealed)?)
}

/// Seals a request's notes under the subject's key (created if it has none yet).
async fn seal_notes(
    state: &AppState,
    r: &StoredRequest,
    notes: &BTreeMap<String, String>,
) -> Result<Option<Vec<u8>>, Error> {
    if notes.is_empty() {
        return Ok(None);
    }
    let key = state
        .vault
        .subject_key(&state.store, &r.tenant, &r.subject, true)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("no data key after create")))?;
    Ok(Some(state.vault.seal_notes(
        &key,
        &r.subject,
        &scope_of(r),
        notes,
    )?))
}

/// The audit entry of one step of the request workflow (R35).
pub fn audit(actor: &Actor, r: &StoredRequest, action: &str, at: OffsetDateTime) -> AuditEntry {
    AuditEntry {
        id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
        at,
        token_id: actor.token().to_string(),
        role: actor.role().to_string(),
        tenant: Some(r.tenant.to_string()),
        subject: Some(r.subject.to_string()),
        category: None,
        purpose: None,
        action: action.to_owned(),
        decision: "allow".to_owned(),
        reason: format!("request:{}", r.id),
        clause: Some(Clause::r(35).to_string()),
        seq: None,
    }
}

/// Loads a request the caller may see: who filed it, the subject itself, its tenant's
/// admin, the privacy office. Anyone else: 404.
pub async fn visible(state: &AppState, actor: &Actor, id: &str) -> Result<StoredRequest, Error> {
    let r = state
        .store
        .request(id)
        .await?
        .ok_or_else(|| Error::not_found("request"))?;
    let allowed = r.filed_by == actor.token().to_string()
        || match actor.role() {
            Role::PrivacyOfficer => true,
            Role::TenantAdmin | Role::EndUser => {
                actor.may_view_subject(&r.tenant, &r.subject) == ScopeAccess::Allowed
            }
            _ => false,
        };
    if allowed {
        Ok(r)
    } else {
        Err(Error::not_found("request"))
    }
}

/// Who filed the request, or the subject it is about.
pub fn is_requester(actor: &Actor, r: &StoredRequest) -> bool {
    r.filed_by == actor.token().to_string()
        || (actor.role() == Role::EndUser && actor.subject() == Some(&r.subject))
}

/// The sealing scope of a delivery's waiver reason.
pub fn waiver_scope(delivery: &str) -> String {
    format!("waiver:{delivery}")
}

/// A workflow step's audit entry with that step's category and clause.
pub fn entry(
    actor: &Actor,
    r: &StoredRequest,
    action: &str,
    category: Option<Category>,
    clause: Clause,
    at: OffsetDateTime,
) -> AuditEntry {
    // The request workflow's entry, with this step's category and clause.
    AuditEntry {
        category: category.map(|c| c.to_string()),
        clause: Some(clause.to_string()),
        ..audit(actor, r, action, at)
    }
}

/// Applies one workflow event, with its audit entry; a conflict when the workflow forbids
/// it. `change` sets the step's fields and notes; changed notes are re-sealed.
pub async fn step(
    state: &AppState,
    actor: &Actor,
    r: StoredRequest,
    event: RequestEvent,
    action: &str,
    change: impl FnOnce(&mut StoredRequest, &mut BTreeMap<String, String>),
) -> Result<StoredRequest, Error> {
    let now = state.clock.now();
    let next = life(&r).apply(event, now).map_err(|e| Error::Conflict {
        code: "request_state",
        message: e.to_string(),
        clause: Some(Clause::r(match e {
            tutela_core::request::RequestError::NotConfirmed => 33,
            _ => 35,
        })),
    })?;
    let mut updated = StoredRequest {
        status: next.status,
        due_at: next.due_at,
        confirmed: next.confirmed,
        extended: next.extended,
        updated_at: now,
        ..r.clone()
    };
    let mut notes = open_notes(state, &r).await?;
    let before = notes.clone();
    change(&mut updated, &mut notes);
    if notes != before {
        updated.sealed_text = seal_notes(state, &updated, &notes).await?;
    }
    match state
        .store
        .update_request_audited(&updated, r.status, &audit(actor, &updated, action, now))
        .await
    {
        Ok(()) => Ok(updated),
        Err(StoreError::Conflict) => Err(Error::Conflict {
            code: "request_state",
            message: "the request changed meanwhile; reload it".into(),
            clause: None,
        }),
        Err(e) => Err(e.into()),
    }
}

/// Only the privacy officer acts on requests (R35).
pub fn require_officer(actor: &Actor) -> Result<(), Error> {
    if actor.role() == Role::PrivacyOfficer {
        Ok(())
    } else {
        Err(Error::forbidden_role("act on requests"))
    }
}

/// An account-closure request about a tenant's administrator is the customer closing its
/// account with the operator: it completes only once the tenant is closed (R19), so the
/// answer never says "closed" while the data is still in use. About an end user or a
/// contact, the account lives with the tenant (the controller, R26), which closes it on
/// its side; the operator's answer relays that.
pub async fn closure_fulfilled(state: &AppState, r: &StoredRequest) -> Result<(), Error> {
    let subject = state.store.subject(&r.subject).await?;
    if subject.is_none_or(|s| s.kind != SubjectKind::Administrator) {
        return Ok(());
    }
    let tenant = state.store.tenant(&r.tenant).await?;
    if tenant.is_some_and(|t| matches!(t.state, TenantState::Active | TenantState::Trial)) {
        return Err(Error::Conflict {
            code: "account_not_closed",
            message: format!(
                "close the account first (POST /v1/tenants/{}/close), then complete the request",
                r.tenant
            ),
            clause: Some(Clause::r(19)),
        });
    }
    Ok(())
}

/// A deletion completes only once the data is erased (R33) and every recipient has
/// acknowledged or been waived by the officer (R34).
pub async fn deletion_fulfilled(state: &AppState, r: &StoredRequest) -> Result<(), Error> {
    let subject = state.store.subject(&r.subject).await?;
    if subject.and_then(|s| s.erased_at).is_none() {
        return Err(Error::Conflict {
            code: "not_erased",
            message: "erase the subject's data first (POST /v1/requests/{id}/erase)".into(),
            clause: Some(Clause::r(33)),
        });
    }
    let waiting: Vec<String> = state
        .store
        .deliveries_of(&r.id)
        .await?
        .into_iter()
        .filter(|d| !d.status.is_settled())
        .map(|d| format!("{} ({})", d.recipient, d.status))
        .collect();
    if !waiting.is_empty() {
        return Err(Error::Conflict {
            code: "awaiting_acknowledgements",
            message: format!(
                "recipients have not acknowledged the deletion: {}; wait, or record why one cannot (waive)",
                waiting.join(", ")
            ),
            clause: Some(Clause::r(34)),
        });
    }
    Ok(())
}

/// Tells a request's subject of a step it must hear of (a service notice through the send
/// gate, R35).
pub async fn notify_subject(
    state: &AppState,
    actor: &Actor,
    r: &StoredRequest,
    template: &str,
) -> Result<(), Error> {
    let subject = state
        .cache
        .subject(&state.store, &r.subject)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("request without subject")))?;
    crate::contact::send_service_notice(state, actor, &subject, template, Clause::r(35)).await?;
    Ok(())
}

/// Files a request about `subject` (the caller checked role and scope) with its details
/// sealed under the subject's key (R32, R35); routed to the tenant only for an end
/// user's data (R26); audited. Returns it as stored.
pub async fn file(
    state: &AppState,
    actor: &Actor,
    subject: &Subject,
    kind: RequestType,
    details: Option<String>,
) -> Result<StoredRequest, Error> {
    let now = state.clock.now();
    // Routed by whose data it is, not by who files it (R26): only an end user's request
    // waits for the tenant; an administrator's or contact's is the operator's to answer.
    let to_tenant =
        tutela_core::request::routed_to_tenant(subject.kind, actor.role() == Role::TenantAdmin);
    let l = RequestLife::file(
        kind,
        to_tenant,
        now,
        state.policy.requests.answer_within_days,
    );
    let mut r = StoredRequest {
        id: format!("req_{}", uuid::Uuid::now_v7().simple()),
        subject: subject.id.clone(),
        tenant: subject.tenant.clone(),
        kind,
        status: l.status,
        filed_by: actor.token().to_string(),
        filed_role: actor.role().to_string(),
        received_at: l.received_at,
        due_at: l.due_at,
        confirmed: false,
        extended: false,
        sealed_text: None,
        verification_method: None,
        verification_ref: None,
        refusal_ground: None,
        updated_at: now,
    };
    if let Some(d) = details {
        let mut notes = BTreeMap::new();
        notes.insert("details".to_owned(), d);
        r.sealed_text = seal_notes(state, &r, &notes).await?;
    }
    let mut a = audit(actor, &r, &format!("request_file_{kind}"), now);
    if kind == RequestType::Complaint {
        a.clause = Some(Clause::r(45).to_string());
    }
    state.store.insert_request_audited(&r, &a).await?;
    Ok(r)
}

/// Open requests, oldest due first: all of them, or (`overdue_only`) those past their
/// due time. Updates the `tutela_requests_overdue` gauge.
pub async fn open_list(state: &AppState, overdue_only: bool) -> Result<Vec<StoredRequest>, Error> {
    let now = state.clock.now();
    // Open requests due before the end of time, or (overdue) before now.
    let before = if overdue_only {
        now
    } else {
        OffsetDateTime::UNIX_EPOCH + time::Duration::days(365 * 1000)
    };
    let rows = state.store.open_requests_due_before(before).await?;
    let overdue = rows.iter().filter(|r| life(r).is_overdue(now)).count();
    state
        .metrics
        .requests_overdue
        .set(i64::try_from(overdue).unwrap_or(i64::MAX));
    Ok(rows)
}
