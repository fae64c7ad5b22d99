//! Minting API tokens, shared by `tutela token create` and `serve --demo`.

use tutela_core::actor::{DataScope, ScopeError};
use tutela_core::{Actor, Clock, Region, Role, SubjectId, TenantId, TokenId};
use tutela_store::tokens::Token;
use tutela_store::{Store, StoreError};

/// Why a token could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateTokenError {
    #[error(transparent)]
    Scope(#[from] ScopeError),
    #[error("tenant {0} does not exist")]
    UnknownTenant(TenantId),
    #[error("subject {0} does not exist under tenant {1}")]
    UnknownSubject(SubjectId, TenantId),
    #[error("the random number generator failed")]
    Random,
    #[error("a support token names its engineer: pass --label (grants are bound to the engineer who asked, R7)")]
    EngineerRequired,
    #[error("a scoped service token names both --purposes and --categories")]
    HalfScope,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What to scope a new token to.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub role: Role,
    pub tenant: Option<TenantId>,
    pub subject: Option<SubjectId>,
    pub region: Region,
    pub label: String,
    /// For `service` tokens: the purposes and categories it may use (issue 14, R29).
    pub scope: DataScope,
}

impl TokenRequest {
    /// A request with no data scope (every role but a scoped service).
    pub fn new(
        role: Role,
        tenant: Option<TenantId>,
        subject: Option<SubjectId>,
        region: Region,
        label: impl Into<String>,
    ) -> Self {
        Self {
            role,
            tenant,
            subject,
            region,
            label: label.into(),
            scope: DataScope::default(),
        }
    }
}

/// Mints a token, stores its hash, and returns the stored row and the bearer string
/// (to be shown once).
pub async fn create(
    store: &Store,
    clock: &dyn Clock,
    req: TokenRequest,
) -> Result<(Token, String), CreateTokenError> {
    let id_bytes = crate::ids::bits();
    let id = TokenId::from_bytes(id_bytes);
    // Validates that the scope fits the role before anything is stored.
    Actor::new(
        id.clone(),
        req.role,
        req.tenant.clone(),
        req.subject.clone(),
        req.region,
    )?
    .with_scope(req.scope.clone())?;
    if req.scope.purposes().is_empty() != req.scope.categories().is_empty() {
        return Err(CreateTokenError::HalfScope);
    }
    if req.role == Role::Support && req.label.trim().is_empty() {
        return Err(CreateTokenError::EngineerRequired);
    }
    if let Some(t) = &req.tenant {
        if store.tenant(t).await?.is_none() {
            return Err(CreateTokenError::UnknownTenant(t.clone()));
        }
    }
    if let (Some(s), Some(t)) = (&req.subject, &req.tenant) {
        match store.subject(s).await? {
            Some(sub) if &sub.tenant == t => {}
            _ => return Err(CreateTokenError::UnknownSubject(s.clone(), t.clone())),
        }
    }
    let minted = tutela_crypto::token::mint(id_bytes).map_err(|_| CreateTokenError::Random)?;
    let row = Token {
        id,
        secret_hash: minted.secret_hash.to_vec(),
        role: req.role,
        tenant: req.tenant,
        subject: req.subject,
        region: req.region,
        label: req.label,
        created_at: clock.now(),
        revoked_at: None,
        scope: req.scope,
    };
    store.insert_token(&row).await?;
    Ok((row, minted.bearer))
}

/// Revokes a token. This process stops accepting it at once; other processes (replicas)
/// within `cache.ttl_ms`. Returns whether a live token was revoked.
pub async fn revoke(state: &crate::state::AppState, id: &TokenId) -> Result<bool, StoreError> {
    let revoked = state.store.revoke_token(id, state.clock.now()).await?;
    state.cache.forget_token(id);
    Ok(revoked)
}
