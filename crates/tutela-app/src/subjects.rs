//! Subjects as use cases see them (R2): loading one named by a caller, through the read
//! cache, with the caller's scope applied. A subject out of scope looks absent.

use crate::error::Error;
use crate::state::AppState;
use tutela_core::actor::ScopeAccess;
use tutela_core::SubjectId;
use tutela_store::subjects::Subject;
use tutela_store::tenants::Tenant;

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
