//! Support grants (issue 5; R7, R22): their lifecycle, their sealed reasons, and the
//! active grants the decision needs on every support read.

use crate::error::Error;
use crate::keys::Vault;
use crate::state::AppState;
use time::Duration;
use tutela_core::grant::GrantLife;
use tutela_core::TenantId;
use tutela_store::grants::Grant;
use tutela_store::Store;

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
