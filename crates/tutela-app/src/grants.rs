//! Support grants (issue 5; R7, R22): their lifecycle, their sealed reasons, and the
//! active grants the decision needs on every support read.

use crate::error::Error;
use crate::keys::Vault;
use crate::state::AppState;
use time::{Duration, OffsetDateTime};
use tutela_core::actor::ScopeAccess;
use tutela_core::grant::{GrantEvent, GrantLife, GrantState};
use tutela_core::{Actor, Category, Clause, Role, TenantId};
use tutela_store::grants::Grant;
use tutela_store::AuditEntry;
use tutela_store::{Store, StoreError};

/// The scope a grant's reason is sealed under.
pub fn reason_scope(id: &str) -> String {
    format!("grant-reason:{id}")
}

/// Seals the clear reasons of grants written before schema 17 (run at start; issue 14).
pub async fn seal_legacy_reasons(vault: &Vault, store: &Store) -> anyhow::Result<usize> {
    let mut sealed = 0;
    loop {
        let batch = store.grants_with_clear_reason(200).await?;
        if batch.is_empty() {
            return Ok(sealed);
        }
        for g in batch {
            let blob = vault
                .seal_tenant_text(store, &g.tenant, &reason_scope(&g.id), &g.reason)
                .await?;
            store.seal_grant_reason(&g.id, &blob).await?;
            sealed += 1;
        }
    }
}

/// A stored grant's lifecycle (`tutela_core::grant`, pure).
pub fn life(g: &Grant) -> GrantLife {
    GrantLife {
        state: g.state,
        pending_until: g.pending_until,
        duration: Duration::minutes(g.duration_minutes),
        expires_at: g.expires_at,
    }
}

/// The active grants of a tenant as `decide` sees them, with each one's (id, whether it
/// covers personal information), index for index.
pub async fn active_grant_views(
    state: &AppState,
    tenant: &TenantId,
) -> Result<(Vec<tutela_core::decide::GrantView>, Vec<(String, bool)>), Error> {
    let now = state.clock.now();
    let grants = state.store.active_grants(tenant, now).await?;
    let views = grants
        .iter()
        .filter_map(|g| {
            Some(tutela_core::decide::GrantView {
                tenant: g.tenant.clone(),
                holder: tutela_core::TokenId::parse(&g.requested_by).ok()?,
                categories: g.categories.clone(),
                expires_at: g.expires_at?,
                active: life(g).status(now) == tutela_core::grant::GrantStatus::Active,
            })
        })
        .collect();
    let ids = grants
        .iter()
        .filter(|g| g.expires_at.is_some() && tutela_core::TokenId::parse(&g.requested_by).is_ok())
        .map(|g| (g.id.clone(), g.personal_information))
        .collect();
    Ok((views, ids))
}

/// A support engineer's request for access to a tenant's categories (R7, R22), its
/// input already parsed.
#[derive(Debug)]
pub struct NewGrant<'a> {
    /// The tenant id as given; an unknown or malformed one is not found.
    pub tenant: &'a str,
    pub incident: String,
    pub categories: Vec<Category>,
    /// Why access is needed (shown to the customer); sealed under the tenant key.
    pub reason: &'a str,
    /// How long access lasts once approved; default and maximum `grants.max_minutes`.
    pub minutes: Option<u32>,
    pub personal_information: bool,
}

/// Records a pending grant for the engineer `actor` (checked by the caller to be
/// support), with its audit entry. Returns it and the time it was asked.
pub async fn request(
    state: &AppState,
    actor: &Actor,
    new: NewGrant<'_>,
) -> Result<(Grant, OffsetDateTime), Error> {
    let NewGrant {
        tenant,
        incident,
        categories,
        reason,
        minutes,
        personal_information,
    } = new;
    let max = state.config.grants.max_minutes;
    let minutes = minutes.unwrap_or(max);
    if minutes == 0 || minutes > max {
        return Err(Error::Invalid {
            code: "invalid_duration",
            message: format!("minutes must be between 1 and {max}"),
            clause: Some(Clause::r(7)),
        });
    }
    let tenant = TenantId::parse(tenant).map_err(|_| Error::not_found("tenant"))?;
    if state.cache.tenant(&state.store, &tenant).await?.is_none() {
        return Err(Error::not_found("tenant"));
    }
    let now = state.clock.now();
    let id = format!("grt_{}", uuid::Uuid::now_v7().simple());
    let sealed_reason = state
        .vault
        .seal_tenant_text(&state.store, &tenant, &reason_scope(&id), reason)
        .await?;
    let grant = Grant {
        id,
        tenant,
        incident,
        categories,
        reason: String::new(),
        sealed_reason: Some(sealed_reason),
        duration_minutes: i64::from(minutes),
        requested_by: actor.token().to_string(),
        requested_at: now,
        pending_until: now + Duration::days(i64::from(state.config.grants.pending_days)),
        state: GrantState::Pending,
        decided_by: None,
        decided_at: None,
        expires_at: None,
        ended_at: None,
        personal_information,
    };
    state
        .store
        .insert_grant_audited(&grant, &audit(actor, &grant, "grant_request", now))
        .await?;
    Ok((grant, now))
}

/// A grant the caller may see and the accesses made under it (audit entries naming a
/// subject, reason `grant:<id>`).
pub async fn with_accesses(
    state: &AppState,
    actor: &Actor,
    id: &str,
) -> Result<(Grant, Vec<AuditEntry>), Error> {
    let grant = visible(state, actor, id).await?;
    let accesses = state
        .store
        .audit_by_reason(&format!("grant:{}", grant.id))
        .await?;
    Ok((grant, accesses))
}

/// A tenant's grants, newest first, for its admin and the privacy office.
pub async fn of_tenant(
    state: &AppState,
    actor: &Actor,
    raw: &str,
) -> Result<(TenantId, Vec<Grant>), Error> {
    let tenant = TenantId::parse(raw).map_err(|_| Error::not_found("tenant"))?;
    // Grant oversight is the customer's and the privacy office's, not the operator's.
    if actor.role() == Role::Operator {
        return Err(Error::forbidden_role("list grants"));
    }
    match actor.may_view_tenant(&tenant) {
        ScopeAccess::Allowed => {}
        ScopeAccess::RoleDenied => return Err(Error::forbidden_role("list grants")),
        ScopeAccess::Hidden => return Err(Error::not_found("tenant")),
    }
    let grants = state.store.grants_of_tenant(&tenant).await?;
    Ok((tenant, grants))
}

/// The tenant's admin approves or denies a grant (R7). Returns it as stored and when.
pub async fn answer(
    state: &AppState,
    actor: &Actor,
    id: &str,
    event: GrantEvent,
) -> Result<(Grant, OffsetDateTime), Error> {
    let grant = visible(state, actor, id).await?;
    // Only the customer decides on access to its data.
    if actor.role() != Role::TenantAdmin {
        return Err(Error::forbidden_role("answer a support access request"));
    }
    let now = state.clock.now();
    let next = life(&grant)
        .apply(event, now)
        .map_err(|e| Error::Conflict {
            code: "grant_state",
            message: e.to_string(),
            clause: Some(Clause::r(7)),
        })?;
    let updated = Grant {
        state: next.state,
        expires_at: next.expires_at,
        decided_by: Some(actor.token().to_string()),
        decided_at: Some(now),
        ..grant.clone()
    };
    let action = match event {
        GrantEvent::Approve => "grant_approve",
        GrantEvent::Deny => "grant_deny",
        GrantEvent::Resolve => "grant_end",
    };
    match state
        .store
        .update_grant_audited(&updated, grant.state, &audit(actor, &updated, action, now))
        .await
    {
        Ok(()) => Ok((updated, now)),
        Err(StoreError::Conflict) => Err(Error::Conflict {
            code: "grant_state",
            message: "the grant changed meanwhile; reload it".into(),
            clause: Some(Clause::r(7)),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Ends the open grants of `tenant`'s `incident` (R7): an engineer only those it holds
/// (another engineer's incident does not exist for it), the tenant's admin and the
/// privacy officer all of them. Returns the ids that ended.
pub async fn resolve_incident(
    state: &AppState,
    actor: &Actor,
    tenant: &TenantId,
    incident: &str,
) -> Result<Vec<String>, Error> {
    if actor.role() == Role::TenantAdmin && actor.may_view_tenant(tenant) != ScopeAccess::Allowed {
        return Err(Error::not_found("incident"));
    }
    let mut grants = state
        .store
        .open_grants_of_incident(tenant, incident)
        .await?;
    if actor.role() == Role::Support {
        grants.retain(|g| is_holder(actor, g));
        // Another engineer's incident does not exist for this one.
        if grants.is_empty() {
            return Err(Error::not_found("incident"));
        }
    }
    end_grants(state, actor, grants).await
}

/// Ends one grant at once (its engineer, the tenant's admin or the privacy officer;
/// issue 14, R7). Returns it as stored afterwards and when.
pub async fn end(
    state: &AppState,
    actor: &Actor,
    id: &str,
) -> Result<(Grant, OffsetDateTime), Error> {
    let grant = visible(state, actor, id).await?;
    if actor.role() == Role::Auditor {
        return Err(Error::forbidden_role("end support access"));
    }
    let now = state.clock.now();
    if life(&grant).apply(GrantEvent::Resolve, now).is_err() {
        return Err(Error::Conflict {
            code: "grant_state",
            message: format!(
                "a grant that is {} cannot be ended",
                life(&grant).status(now).as_str()
            ),
            clause: Some(Clause::r(7)),
        });
    }
    end_grants(state, actor, vec![grant]).await?;
    let after = state
        .store
        .grant(id)
        .await?
        .ok_or_else(|| Error::not_found("grant"))?;
    Ok((after, now))
}

/// Ends `grants` now, each with its audit entry; returns the ids that ended (a grant
/// that lapsed by time meanwhile has nothing to end).
async fn end_grants(
    state: &AppState,
    actor: &Actor,
    grants: Vec<Grant>,
) -> Result<Vec<String>, Error> {
    let now = state.clock.now();
    let mut ended = Vec::new();
    for grant in grants {
        let Ok(next) = life(&grant).apply(GrantEvent::Resolve, now) else {
            continue;
        };
        let updated = Grant {
            state: next.state,
            expires_at: next.expires_at,
            ended_at: Some(now),
            ..grant.clone()
        };
        match state
            .store
            .update_grant_audited(
                &updated,
                grant.state,
                &audit(actor, &updated, "grant_end", now),
            )
            .await
        {
            Ok(()) | Err(StoreError::Conflict) => ended.push(updated.id),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(ended)
}

/// A grant's audit entry (R7).
fn audit(actor: &Actor, g: &Grant, action: &str, at: OffsetDateTime) -> AuditEntry {
    AuditEntry {
        id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
        at,
        token_id: actor.token().to_string(),
        role: actor.role().to_string(),
        tenant: Some(g.tenant.to_string()),
        subject: None,
        category: None,
        purpose: None,
        action: action.to_owned(),
        decision: "allow".to_owned(),
        reason: format!("grant:{}", g.id),
        clause: Some(Clause::r(7).to_string()),
        seq: None,
    }
}

/// Loads a grant the caller may see: the engineer who asked it, the tenant's admin, and
/// the privacy office and auditors (oversight). Anyone else gets 404: another engineer's
/// grant, or another tenant's, does not exist for them (issue 14; R7, R29).
pub async fn visible(state: &AppState, actor: &Actor, id: &str) -> Result<Grant, Error> {
    let grant = state
        .store
        .grant(id)
        .await?
        .ok_or_else(|| Error::not_found("grant"))?;
    let visible = match actor.role() {
        Role::PrivacyOfficer | Role::Auditor => true,
        Role::Support => is_holder(actor, &grant),
        Role::TenantAdmin => actor.may_view_tenant(&grant.tenant) == ScopeAccess::Allowed,
        Role::Operator | Role::Service | Role::EndUser => false,
    };
    if visible {
        Ok(grant)
    } else {
        Err(Error::not_found("grant"))
    }
}

/// Whether `actor` is the engineer who asked for `grant`.
fn is_holder(actor: &Actor, grant: &Grant) -> bool {
    grant.requested_by == actor.token().as_str()
}
