//! Tenants (R2, R29, R41): creating one, its display name sealed under its own key.

use crate::error::Error;
use crate::state::AppState;
use tutela_core::tenant::{TenantKind, TenantName, TenantState};
use tutela_core::TenantId;
use tutela_store::tenants::{StoredName, Tenant};

/// Creates a tenant (the caller checked it is the operator): active, or in trial for
/// `trial_days` (R41). The tenant key is created with the row and seals the name (R29).
pub async fn create(
    state: &AppState,
    name: TenantName,
    kind: TenantKind,
    trial: bool,
    trial_days: Option<u32>,
) -> Result<Tenant, Error> {
    let now = state.clock.now();
    let tenant = Tenant {
        id: crate::ids::tenant(),
        // Sealed under the new tenant's key by `Vault::insert_tenant` (R29).
        name: StoredName::Clear(name),
        kind,
        state: if trial {
            TenantState::Trial
        } else {
            TenantState::Active
        },
        created_at: now,
        frozen_until: None,
        trial_ends_at: trial_days.map(|d| now + time::Duration::days(i64::from(d))),
        closed_at: None,
    };
    let tenant = state
        .vault
        .insert_tenant(&state.store, tenant, None)
        .await?;
    tracing::info!(tenant = %tenant.id, state = %tenant.state, "tenant created");
    Ok(tenant)
}

/// A tenant by id (the caller checked its scope); a missing one is not found.
pub async fn get(state: &AppState, id: &TenantId) -> Result<Tenant, Error> {
    state
        .store
        .tenant(id)
        .await?
        .ok_or_else(|| Error::not_found("tenant"))
}
