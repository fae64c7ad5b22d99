//! Account lifecycle (issue 7; R19, R20, R41): closing and activating a tenant, and
//! terminating a service (announced to the tenants it affects, their administrators
//! told through the send gate). The retention engine (`crate::retention_engine`) then
//! removes what falls due.

use crate::error::Error;
use crate::state::AppState;
use time::OffsetDateTime;
use tutela_core::actor::ScopeAccess;
use tutela_core::lifecycle::{LifecycleError, TenantEvent};
use tutela_core::{Actor, Clause, Role, TenantId};
use tutela_store::retention::{Announcement, StoredTermination};
use tutela_store::tenants::Tenant;
use tutela_store::AuditEntry;
use tutela_store::StoreError;

/// What announcing a service's termination did.
#[derive(Debug, Clone)]
pub struct Termination {
    pub effective_at: OffsetDateTime,
    /// Tenants that were told (e-mail to their administrators and a portal announcement).
    pub tenants_notified: usize,
    /// Service notices sent to their administrators.
    pub notices: usize,
}

/// Closes a tenant's account (R19; operator or the tenant's own admin): from now on its
/// data is frozen until each category's retention period ends.
pub async fn close_tenant(state: &AppState, actor: &Actor, raw: &str) -> Result<Tenant, Error> {
    if !matches!(actor.role(), Role::Operator | Role::TenantAdmin) {
        return Err(Error::forbidden_role("close accounts"));
    }
    let t = load_tenant(state, actor, raw).await?;
    let t = step(
        state,
        actor,
        &t,
        TenantEvent::Close,
        "tenant_closed",
        Clause::r(19),
    )
    .await?;
    tracing::info!(tenant = %t.id, "tenant closed");
    Ok(t)
}

/// A trial customer buys (R41; operator only): the trial's data stays.
pub async fn activate_tenant(state: &AppState, actor: &Actor, raw: &str) -> Result<Tenant, Error> {
    if actor.role() != Role::Operator {
        return Err(Error::forbidden_role("activate accounts"));
    }
    let t = load_tenant(state, actor, raw).await?;
    let t = step(
        state,
        actor,
        &t,
        TenantEvent::Activate,
        "tenant_activated",
        Clause::r(41),
    )
    .await?;
    Ok(t)
}

/// Terminates `service` at `effective_at` (RFC 3339, not in the past; operator only,
/// R20): every tenant with data in it gets an announcement and its administrators a
/// service notice; the retention engine removes the records after the date.
pub async fn terminate_service(
    state: &AppState,
    actor: &Actor,
    service: &str,
    effective_at: &str,
) -> Result<Termination, Error> {
    if actor.role() != Role::Operator {
        return Err(Error::forbidden_role("terminate services"));
    }
    if state.policy.service(service).is_none() {
        return Err(Error::not_found("service in the policy"));
    }
    let effective_at =
        time::OffsetDateTime::parse(effective_at, &time::format_description::well_known::Rfc3339)
            .map_err(|_| Error::invalid("invalid_time", "effective_at must be an RFC 3339 time"))?;
    let now = state.clock.now();
    if effective_at < now {
        return Err(Error::Invalid {
            code: "effective_in_past",
            message:
                "customers must be told before a service ends: effective_at cannot be in the past"
                    .into(),
            clause: Some(Clause::r(20)),
        });
    }
    let tenants = state.store.tenants_using_service(service).await?;
    let mut announcements = Vec::with_capacity(tenants.len());
    let mut entries = vec![audit(
        actor,
        None,
        "service_terminated",
        format!("service:{service}"),
        Clause::r(20),
        now,
    )];
    for t in &tenants {
        announcements.push(Announcement {
            id: format!("ann_{}", uuid::Uuid::now_v7().simple()),
            tenant: t.clone(),
            kind: "service_termination".into(),
            subject: service.to_owned(),
            effective_at: Some(effective_at),
            created_at: now,
        });
        entries.push(audit(
            actor,
            Some(t),
            "announcement",
            format!("service:{service}"),
            Clause::r(20),
            now,
        ));
    }
    let termination = StoredTermination {
        service: service.to_owned(),
        effective_at,
        announced_at: now,
        finished_at: None,
    };
    match state
        .store
        .insert_termination_audited(&termination, &announcements, &entries)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(Error::Conflict {
                code: "already_terminated",
                message: "this service's termination is already announced".into(),
                clause: Some(Clause::r(20)),
            })
        }
        Err(e) => return Err(e.into()),
    }
    // E-mail to each affected tenant's administrators (service notices cannot be refused).
    let mut notices = 0;
    for t in &tenants {
        for admin in state.store.administrators_of(t).await? {
            if let Some(subject) = state.cache.subject(&state.store, &admin).await? {
                crate::contact::send_service_notice(
                    state,
                    actor,
                    &subject,
                    "service-termination",
                    Clause::r(20),
                )
                .await?;
                notices += 1;
            }
        }
    }
    Ok(Termination {
        effective_at,
        tenants_notified: tenants.len(),
        notices,
    })
}

/// The portal's announcements for a tenant the caller may see (R20).
pub async fn announcements(
    state: &AppState,
    actor: &Actor,
    raw: &str,
) -> Result<Vec<Announcement>, Error> {
    let t = load_tenant(state, actor, raw).await?;
    Ok(state.store.announcements_of(&t.id).await?)
}

fn audit(
    actor: &Actor,
    tenant: Option<&TenantId>,
    action: &str,
    reason: String,
    clause: Clause,
    at: time::OffsetDateTime,
) -> AuditEntry {
    AuditEntry {
        id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
        at,
        token_id: actor.token().to_string(),
        role: actor.role().to_string(),
        tenant: tenant.map(ToString::to_string),
        subject: None,
        category: None,
        purpose: None,
        action: action.to_owned(),
        decision: "allow".to_owned(),
        reason,
        clause: Some(clause.to_string()),
        seq: None,
    }
}

async fn load_tenant(state: &AppState, actor: &Actor, raw: &str) -> Result<Tenant, Error> {
    let id = TenantId::parse(raw).map_err(|_| Error::not_found("tenant"))?;
    if actor.may_view_tenant(&id) != ScopeAccess::Allowed {
        return Err(Error::not_found("tenant"));
    }
    state
        .store
        .tenant(&id)
        .await?
        .ok_or_else(|| Error::not_found("tenant"))
}

/// Applies a lifecycle event to a tenant with its audit entry.
async fn step(
    state: &AppState,
    actor: &Actor,
    t: &Tenant,
    event: TenantEvent,
    action: &str,
    clause: Clause,
) -> Result<Tenant, Error> {
    let now = state.clock.now();
    let next = t
        .life()
        .apply(event, now, &state.policy)
        .map_err(|e: LifecycleError| Error::Conflict {
            code: "tenant_state",
            message: e.to_string(),
            clause: Some(clause),
        })?;
    let entry = audit(
        actor,
        Some(&t.id),
        action,
        format!("tenant:{}", t.id),
        clause,
        now,
    );
    match state
        .store
        .update_tenant_life_audited(&t.id, t.state, &next, &entry)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(Error::Conflict {
                code: "tenant_state",
                message: "the tenant changed meanwhile; reload it".into(),
                clause: Some(clause),
            })
        }
        Err(e) => return Err(e.into()),
    }
    // In this process at once; other replicas within `cache.ttl_ms`.
    state.cache.forget_tenant(&t.id);
    Ok(Tenant {
        state: next.state,
        trial_ends_at: next.trial_ends_at,
        closed_at: next.closed_at,
        frozen_until: next.frozen_until,
        ..t.clone()
    })
}
