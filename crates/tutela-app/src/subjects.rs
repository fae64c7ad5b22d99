//! Subjects as use cases see them (R2): loading one named by a caller, through the read
//! cache, with the caller's scope applied. A subject out of scope looks absent.

use crate::error::Error;
use crate::state::AppState;
use tutela_core::actor::ScopeAccess;
use tutela_core::lookup::LookupKind;
use tutela_core::tenant::{SubjectKind, TenantState};
use tutela_core::{Actor, Clause, Role, SubjectId, TenantId};
use tutela_store::subjects::Subject;
use tutela_store::tenants::Tenant;
use tutela_store::AuditEntry;

/// Parses a subject id from a path; a malformed one answers like an unknown one (404).
pub fn subject_id(raw: &str) -> Result<SubjectId, Error> {
    SubjectId::parse(raw).map_err(|e| Error::NotFound {
        code: "not_found",
        message: format!("no subject with this id ({e})"),
    })
}

/// Loads a subject named in a path and checks the caller's access to it: a missing
/// subject and one out of scope both answer 404 (R2); a role that may not act, 403.
pub async fn subject_in_scope(
    state: &AppState,
    raw: &str,
    access: impl Fn(&Subject) -> ScopeAccess,
    action: &str,
) -> Result<Subject, Error> {
    let id = subject_id(raw)?;
    let subject = state
        .cache
        .subject(&state.store, &id)
        .await?
        .ok_or_else(|| Error::not_found("subject"))?;
    enforce(access(&subject), "subject", action)?;
    Ok(subject)
}

/// Loads a subject and its tenant (through the read cache). A missing subject is 404.
pub async fn subject_and_tenant(state: &AppState, raw: &str) -> Result<(Subject, Tenant), Error> {
    let id = subject_id(raw)?;
    let subject = state
        .cache
        .subject(&state.store, &id)
        .await?
        .ok_or_else(|| Error::not_found("subject"))?;
    let tenant = state
        .cache
        .tenant(&state.store, &subject.tenant)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("subject without tenant")))?;
    Ok((subject, tenant))
}

/// Applies a scope decision: hidden resources look absent (R2).
pub fn enforce(access: ScopeAccess, what: &str, action: &str) -> Result<(), Error> {
    match access {
        ScopeAccess::Allowed => Ok(()),
        ScopeAccess::RoleDenied => Err(Error::forbidden_role(action)),
        ScopeAccess::Hidden => Err(Error::not_found(what)),
    }
}

/// Registers a subject of `tenant_id` (the caller checked its scope); a closed account is
/// frozen (R19), an expired or erased one takes no new subjects (R41, R19).
pub async fn register(
    state: &AppState,
    tenant_id: TenantId,
    kind: SubjectKind,
    adult_on: Option<time::Date>,
) -> Result<Subject, Error> {
    let now = state.clock.now();
    let tenant = state
        .store
        .tenant(&tenant_id)
        .await?
        .ok_or_else(|| Error::not_found("tenant"))?;
    match tenant.state {
        TenantState::Trial | TenantState::Active => {}
        TenantState::Closed => {
            return Err(Error::Locked {
                code: "frozen",
                message:
                    "the account is closed; its data is frozen until the retention period ends"
                        .to_owned(),
                clause: Some(Clause::r(19)),
            })
        }
        TenantState::Expired | TenantState::Erased => {
            return Err(Error::Conflict {
                code: "tenant_not_active",
                message: format!(
                    "the tenant is {}; no new subjects can be registered",
                    tenant.state
                ),
                clause: Some(Clause::r(if tenant.state == TenantState::Expired {
                    41
                } else {
                    19
                })),
            })
        }
    }
    let subject = Subject {
        id: crate::ids::subject(),
        tenant: tenant_id,
        kind,
        adult_on,
        created_at: now,
        erased_at: None,
        frozen_until: None,
        frozen_ground: None,
    };
    state.store.insert_subject(&subject).await?;
    tracing::info!(tenant = %subject.tenant, subject = %subject.id, kind = %subject.kind, "subject registered");
    Ok(subject)
}

/// Finds `tenant_id`'s subjects by e-mail or phone through the blind index (R29); the
/// look-up is audited, allowed or not, before the answer. A tenant the caller may not
/// know is not found; a value that is no e-mail or phone is invalid.
pub async fn lookup(
    state: &AppState,
    actor: &Actor,
    tenant_id: &TenantId,
    kind: LookupKind,
    value: &str,
) -> Result<Vec<SubjectId>, Error> {
    let access = actor.may_view_tenant(tenant_id);
    if access == ScopeAccess::Hidden || state.cache.tenant(&state.store, tenant_id).await?.is_none()
    {
        return Err(Error::not_found("tenant"));
    }
    let allowed = access == ScopeAccess::Allowed;
    let entry = AuditEntry {
        id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
        at: state.clock.now(),
        token_id: actor.token().to_string(),
        role: actor.role().to_string(),
        tenant: Some(tenant_id.to_string()),
        subject: None,
        category: None,
        purpose: None,
        action: format!("lookup_{}", kind.as_str()),
        decision: if allowed { "allow" } else { "deny" }.to_owned(),
        reason: if allowed {
            "blind_index_lookup"
        } else {
            "role_denied"
        }
        .to_owned(),
        clause: Some(Clause::r(29).to_string()),
        seq: None,
    };
    state.audit_writer.append(entry).await?;
    enforce(access, "tenant", "look up subjects")?;
    let Some(digest) = state
        .vault
        .lookup_key(&state.store, tenant_id, kind, value)
        .await?
    else {
        return Err(Error::invalid(
            "invalid_lookup",
            format!("not a valid {}", kind.as_str()),
        ));
    };
    let found = state.store.find_by_lookup(tenant_id, kind, &digest).await?;
    Ok(found)
}

/// A subject's profile for `actor`: a subject of another tenant answers exactly like a
/// missing one (R2); roles that read no subjects are refused either way.
pub async fn get(state: &AppState, actor: &Actor, id: &SubjectId) -> Result<Subject, Error> {
    // Load first: the scope check needs the subject's tenant. A subject of another
    // tenant answers exactly like a missing one.
    let subject = state.store.subject(id).await?;
    let Some(subject) = subject else {
        return match actor.role() {
            Role::Auditor | Role::Service | Role::Support => {
                Err(Error::forbidden_role("read subjects"))
            }
            _ => Err(Error::not_found("subject")),
        };
    };
    enforce(
        actor.may_view_subject(&subject.tenant, &subject.id),
        "subject",
        "read subjects",
    )?;
    Ok(subject)
}

/// A page of a tenant's subjects after `after` (the caller checked its scope); a missing
/// tenant is not found.
pub async fn page(
    state: &AppState,
    tenant_id: &TenantId,
    after: Option<&SubjectId>,
    limit: u32,
) -> Result<Vec<Subject>, Error> {
    if state.store.tenant(tenant_id).await?.is_none() {
        return Err(Error::not_found("tenant"));
    }
    Ok(state.store.subjects_of(tenant_id, after, limit).await?)
}
