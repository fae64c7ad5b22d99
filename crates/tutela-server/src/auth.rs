//! Bearer-token authentication: the `Authenticated` extractor turns an
//! `Authorization: Bearer tutela_...` header into a core [`Actor`].

use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use tutela_app::AppState;
use tutela_core::{Actor, TokenId};

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Actor);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or(ApiError::Unauthorized)?;
        let value = header.to_str().map_err(|_| ApiError::Unauthorized)?;
        let bearer = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(ApiError::Unauthorized)?;
        let presented = tutela_crypto::token::parse(bearer.trim()).ok_or(ApiError::Unauthorized)?;
        let id = TokenId::parse(&format!("{}_{}", TokenId::PREFIX, presented.id_hex))
            .map_err(|_| ApiError::Unauthorized)?;
        let token = state
            .cache
            .token(&state.store, &id)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        if token.revoked_at.is_some() || !presented.matches(&token.secret_hash) {
            return Err(ApiError::Unauthorized);
        }
        let actor = Actor::new(
            token.id,
            token.role,
            token.tenant,
            token.subject,
            token.region,
        )
        .and_then(|a| a.with_scope(token.scope))
        .map_err(|e| {
            ApiError::Internal(anyhow::anyhow!("stored token has an invalid scope: {e}"))
        })?;
        Ok(Authenticated(actor))
    }
}

/// The caller of a route that works without sign-in but checks a token when one is
/// presented (download links): `None` without an `Authorization` header; a header with
/// a bad, unknown or revoked token is still 401.
#[derive(Debug, Clone)]
pub struct MaybeAuthenticated(pub Option<Actor>);

impl FromRequestParts<AppState> for MaybeAuthenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if !parts.headers.contains_key(AUTHORIZATION) {
            return Ok(MaybeAuthenticated(None));
        }
        let Authenticated(actor) = Authenticated::from_request_parts(parts, state).await?;
        Ok(MaybeAuthenticated(Some(actor)))
    }
}
