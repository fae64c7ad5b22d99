//! Just-in-time support access (issue 5; R7, R22).
//!
//! - `POST /v1/grants`: a `support` engineer asks for access to a tenant's categories,
//!   tied to an incident; the request is pending until the tenant's admin answers.
//! - `POST /v1/grants/{id}/approve|deny`: that tenant's admin answers.
//! - `POST /v1/incidents/{incident}/resolve` `{tenant}`: the grants of that tenant's
//!   incident end at once (the engineer's own; all of them for the tenant's admin and
//!   the privacy officer). `POST /v1/grants/{id}/end` ends one.
//! - `GET /v1/grants/{id}`, `GET /v1/tenants/{tenant}/grants`: the customer sees its
//!   grants and every access made under each (audit entries with reason `grant:<id>`).
//!
//! The lifecycle is `tutela_core::grant` (pure); `decide` lets a support engineer (in
//! China or overseas) read only under an active grant it requested itself, covering the
//! category (issue 14; R7, R29). A grant's reason is sealed under the tenant's key.

use super::input::rfc3339;
use crate::api::{ApiJson, ApiPath};
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tutela_app::grants::{life, reason_scope, NewGrant};
use tutela_app::keys::TenantTexts;
use tutela_app::AppState;
use tutela_core::grant::GrantEvent;
use tutela_core::{Category, Clause, Role, TenantId};
use tutela_store::grants::Grant;
use utoipa::ToSchema;

/// `POST /v1/grants` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    pub tenant: String,
    /// The incident the access is for (ticket id).
    pub incident: String,
    pub categories: Vec<String>,
    /// Why access is needed (shown to the customer).
    pub reason: String,
    /// How long access lasts once approved; default and maximum `grants.max_minutes`.
    pub minutes: Option<u32>,
    /// Ask the customer for access to personal information too (R7, R22). Without it,
    /// support data is shown with personal information redacted.
    #[serde(default)]
    pub personal_information: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantView {
    pub id: String,
    pub tenant: String,
    pub incident: String,
    pub categories: Vec<String>,
    pub reason: String,
    pub minutes: i64,
    /// `pending`, `active`, `denied`, `ended` or `expired`, as of now.
    pub status: String,
    pub requested_at: String,
    pub pending_until: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// Approving this grant also approves access to personal information.
    pub personal_information: bool,
    /// The token id of the engineer who asked; only they act under the grant.
    pub requested_by: String,
}

/// `POST /v1/incidents/{incident}/resolve` body: incidents are the tenant's own.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentResolve {
    /// The tenant whose incident this is; a tenant admin may omit it (its own).
    pub tenant: Option<String>,
}

/// One access made under a grant.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantAccess {
    pub at: String,
    pub subject: Option<String>,
    pub category: Option<String>,
    pub purpose: Option<String>,
    pub action: String,
    /// The engineer's token id.
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantDetail {
    #[serde(flatten)]
    pub grant: GrantView,
    pub accesses: Vec<GrantAccess>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentResolved {
    pub incident: String,
    /// Grants ended by this resolution.
    pub ended: Vec<String>,
}

/// A grant's reason, opened from its sealed form (or the clear form of an older row).
async fn reason_of(texts: &mut TenantTexts<'_>, g: &Grant) -> Result<String, ApiError> {
    match &g.sealed_reason {
        Some(sealed) => Ok(texts.open(&reason_scope(&g.id), sealed).await?),
        None => Ok(g.reason.clone()),
    }
}

async fn view(state: &AppState, g: &Grant, now: OffsetDateTime) -> Result<GrantView, ApiError> {
    let mut texts = state.vault.tenant_texts(&state.store, &g.tenant);
    view_with(&mut texts, g, now).await
}

/// [`view`] for several grants of one tenant, opening their reasons with one key read.
async fn view_with(
    texts: &mut TenantTexts<'_>,
    g: &Grant,
    now: OffsetDateTime,
) -> Result<GrantView, ApiError> {
    Ok(GrantView {
        id: g.id.clone(),
        tenant: g.tenant.to_string(),
        incident: g.incident.clone(),
        categories: g.categories.iter().map(ToString::to_string).collect(),
        reason: reason_of(texts, g).await?,
        minutes: g.duration_minutes,
        status: life(g).status(now).as_str().to_owned(),
        requested_at: rfc3339(g.requested_at),
        pending_until: rfc3339(g.pending_until),
        expires_at: g.expires_at.map(rfc3339),
        ended_at: g.ended_at.map(rfc3339),
        personal_information: g.personal_information,
        requested_by: g.requested_by.clone(),
    })
}

/// Ticket-like ids: 1 to 64 letters, digits, `_`, `-` or `.`.
fn incident_id(raw: &str) -> Result<String, ApiError> {
    let ok = (1..=64).contains(&raw.len())
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::invalid(
            "invalid_incident",
            "incident must be 1 to 64 letters, digits, `_`, `-` or `.`",
        ))
    }
}

/// Asks for access to a tenant's data for an incident.
#[utoipa::path(
    post, path = "/v1/grants", tag = "grants", security(("bearer" = [])),
    request_body = GrantRequest,
    responses((status = 201, body = GrantView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody))
)]
pub async fn request_grant(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiJson(body): ApiJson<GrantRequest>,
) -> Result<(StatusCode, ApiJson<GrantView>), ApiError> {
    if actor.role() != Role::Support {
        return Err(ApiError::forbidden_role("request support access"));
    }
    let incident = incident_id(&body.incident)?;
    if body.categories.is_empty() {
        return Err(ApiError::invalid(
            "invalid_categories",
            "name at least one category",
        ));
    }
    let mut categories = body
        .categories
        .iter()
        .map(|c| Category::parse(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::invalid("invalid_categories", e.to_string()))?;
    categories.sort();
    categories.dedup();
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 2000 {
        return Err(ApiError::invalid(
            "invalid_reason",
            "reason must be 1 to 2000 characters",
        ));
    }
    let (grant, now) = tutela_app::grants::request(
        &state,
        &actor,
        NewGrant {
            tenant: &body.tenant,
            incident,
            categories,
            reason,
            minutes: body.minutes,
            personal_information: body.personal_information,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(view(&state, &grant, now).await?),
    ))
}

/// A grant and every access made under it.
#[utoipa::path(
    get, path = "/v1/grants/{grant}", tag = "grants", security(("bearer" = [])),
    params(("grant" = String, Path)),
    responses((status = 200, body = GrantDetail), (status = 404, body = crate::error::ErrorBody))
)]
pub async fn get_grant(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<GrantDetail>, ApiError> {
    let (grant, accesses) = tutela_app::grants::with_accesses(&state, &actor, &id).await?;
    let accesses = accesses
        .into_iter()
        .filter(|e| e.subject.is_some())
        .map(|e| GrantAccess {
            at: rfc3339(e.at),
            subject: e.subject,
            category: e.category,
            purpose: e.purpose,
            action: e.action,
            token: e.token_id,
        })
        .collect();
    Ok(ApiJson(GrantDetail {
        grant: view(&state, &grant, state.clock.now()).await?,
        accesses,
    }))
}

/// A tenant's grants, newest first (its admin, the privacy office).
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/grants", tag = "grants", security(("bearer" = [])),
    params(("tenant" = String, Path)),
    responses((status = 200, body = [GrantView]), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody))
)]
pub async fn tenant_grants(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(raw): ApiPath<String>,
) -> Result<ApiJson<Vec<GrantView>>, ApiError> {
    let (tenant, grants) = tutela_app::grants::of_tenant(&state, &actor, &raw).await?;
    let now = state.clock.now();
    let mut texts = state.vault.tenant_texts(&state.store, &tenant);
    let mut views = Vec::with_capacity(grants.len());
    for g in &grants {
        views.push(view_with(&mut texts, g, now).await?);
    }
    Ok(ApiJson(views))
}

/// The tenant's admin approves: access starts now for the requested time.
#[utoipa::path(
    post, path = "/v1/grants/{grant}/approve", tag = "grants", security(("bearer" = [])),
    params(("grant" = String, Path)),
    responses((status = 200, body = GrantView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody))
)]
pub async fn approve_grant(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<GrantView>, ApiError> {
    let (g, now) = tutela_app::grants::answer(&state, &actor, &id, GrantEvent::Approve).await?;
    Ok(ApiJson(view(&state, &g, now).await?))
}

/// The tenant's admin denies the request.
#[utoipa::path(
    post, path = "/v1/grants/{grant}/deny", tag = "grants", security(("bearer" = [])),
    params(("grant" = String, Path)),
    responses((status = 200, body = GrantView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody))
)]
pub async fn deny_grant(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<GrantView>, ApiError> {
    let (g, now) = tutela_app::grants::answer(&state, &actor, &id, GrantEvent::Deny).await?;
    Ok(ApiJson(view(&state, &g, now).await?))
}

/// The incident is solved: its grants end at once (R7). Incidents are scoped to their
/// tenant; an engineer ends only the grants it holds, the tenant's admin and the privacy
/// officer every grant of the incident (issue 14).
#[utoipa::path(
    post, path = "/v1/incidents/{incident}/resolve", tag = "grants", security(("bearer" = [])),
    params(("incident" = String, Path)),
    request_body = IncidentResolve,
    responses((status = 200, body = IncidentResolved), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody))
)]
pub async fn resolve_incident(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(raw): ApiPath<String>,
    ApiJson(body): ApiJson<IncidentResolve>,
) -> Result<ApiJson<IncidentResolved>, ApiError> {
    if !matches!(
        actor.role(),
        Role::Support | Role::PrivacyOfficer | Role::TenantAdmin
    ) {
        return Err(ApiError::forbidden_role("resolve incidents"));
    }
    let incident = incident_id(&raw)?;
    let tenant = match (body.tenant.as_deref(), actor.tenant()) {
        (Some(raw), _) => TenantId::parse(raw).map_err(|_| ApiError::not_found("incident"))?,
        (None, Some(own)) => own.clone(),
        (None, None) => {
            return Err(ApiError::Invalid {
                code: "tenant_required",
                message: "name the tenant whose incident this is (`tenant`)".into(),
                clause: Some(Clause::r(7)),
            })
        }
    };
    let ended = tutela_app::grants::resolve_incident(&state, &actor, &tenant, &incident).await?;
    Ok(ApiJson(IncidentResolved { incident, ended }))
}

/// Ends one grant at once: the engineer who asked for it, the tenant's admin or the
/// privacy officer (issue 14; R7).
#[utoipa::path(
    post, path = "/v1/grants/{grant}/end", tag = "grants", security(("bearer" = [])),
    params(("grant" = String, Path)),
    responses((status = 200, body = GrantView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody))
)]
pub async fn end_grant(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<GrantView>, ApiError> {
    let (after, now) = tutela_app::grants::end(&state, &actor, &id).await?;
    Ok(ApiJson(view(&state, &after, now).await?))
}
