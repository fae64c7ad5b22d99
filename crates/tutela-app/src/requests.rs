//! Data-subject requests (issue 6; R32, R33, R35): what the request handlers, fulfilment
//! and exports share: who may see a request, its sealed notes, its audit entries.

use crate::error::Error;
use crate::state::AppState;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use tutela_core::actor::ScopeAccess;
use tutela_core::request::RequestLife;
use tutela_core::{Actor, Category, Clause, Role};
use tutela_store::requests::StoredRequest;
use tutela_store::vault::AuditEntry;

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
pub async fn seal_notes(
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
