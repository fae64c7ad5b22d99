//! Tenants and their subjects (R2): operators create tenants; operators and a tenant's own
//! administrators register subjects. Another tenant's resources answer 404, never 403, so
//! their existence does not leak.

use super::views::{subject_view, tenant_view, SubjectView, TenantView};
use crate::api::{ApiJson, ApiPath, ApiQuery};
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tutela_app::subjects;
use tutela_app::AppState;
use tutela_core::lookup::LookupKind;
use tutela_core::tenant::{self, SubjectKind, TenantKind, TenantName};
use tutela_core::{Clause, Role, SubjectId, TenantId};
use utoipa::ToSchema;

/// `POST /v1/tenants` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Display name, 1 to 200 characters.
    pub name: String,
    /// `enterprise` or `individual`.
    pub kind: String,
    /// Start as a trial (R41).
    #[serde(default)]
    pub trial: bool,
    /// How long the trial lasts (1 to 365 days; default 30). Only with `trial`.
    pub trial_days: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantCreated {
    pub id: String,
    /// `trial` or `active`.
    pub state: String,
}

/// `POST /v1/tenants/{tenant}/subjects` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubject {
    /// `administrator`, `end_user` or `contact`.
    pub kind: String,
    /// `YYYY-MM-DD`; makes the subject a minor until 18 (R43). Only the coming-of-age
    /// date is kept.
    pub birth_date: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectCreated {
    pub id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectPage {
    pub subjects: Vec<SubjectView>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub after: Option<String>,
    pub limit: Option<u32>,
}

fn tenant_id(raw: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(raw).map_err(|e| ApiError::NotFound {
        code: "not_found",
        message: format!("no tenant with this id ({e})"),
    })
}

/// Creates a tenant (operator only).
#[utoipa::path(
    post, path = "/v1/tenants", tag = "tenants", security(("bearer" = [])),
    request_body = NewTenant,
    responses(
        (status = 201, body = TenantCreated),
        (status = 403, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody),
    )
)]
pub async fn create_tenant(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiJson(body): ApiJson<NewTenant>,
) -> Result<(StatusCode, ApiJson<TenantCreated>), ApiError> {
    if actor.role() != Role::Operator {
        return Err(ApiError::forbidden_role("create tenants"));
    }
    let name = TenantName::parse(&body.name)
        .map_err(|e| ApiError::invalid("invalid_name", e.to_string()))?;
    let kind = TenantKind::parse(&body.kind)
        .map_err(|e| ApiError::invalid("invalid_kind", e.to_string()))?;
    let trial_days = match (body.trial, body.trial_days) {
        (_, Some(d)) if !(1..=365).contains(&d) => {
            return Err(ApiError::invalid(
                "invalid_trial_days",
                "trial_days must be 1 to 365",
            ))
        }
        (false, Some(_)) => {
            return Err(ApiError::invalid(
                "invalid_trial_days",
                "trial_days needs `trial: true`",
            ))
        }
        (true, d) => Some(d.unwrap_or(30)),
        (false, None) => None,
    };
    let tenant = tutela_app::tenants::create(&state, name, kind, body.trial, trial_days).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(TenantCreated {
            id: tenant.id.to_string(),
            state: tenant.state.to_string(),
        }),
    ))
}

/// A tenant's profile (operator, privacy officer, that tenant's admin).
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}", tag = "tenants", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant id")),
    responses((status = 200, body = TenantView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody))
)]
pub async fn get_tenant(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(raw): ApiPath<String>,
) -> Result<ApiJson<TenantView>, ApiError> {
    let id = tenant_id(&raw)?;
    subjects::enforce(actor.may_view_tenant(&id), "tenant", "read tenants")?;
    let tenant = tutela_app::tenants::get(&state, &id).await?;
    Ok(ApiJson(tenant_view(&state, tenant).await?))
}

/// Registers a subject under a tenant (operator, that tenant's admin).
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/subjects", tag = "tenants", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant id")),
    request_body = NewSubject,
    responses(
        (status = 201, body = SubjectCreated),
        (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody),
        (status = 423, body = crate::error::ErrorBody),
    )
)]
pub async fn create_subject(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(raw): ApiPath<String>,
    ApiJson(body): ApiJson<NewSubject>,
) -> Result<(StatusCode, ApiJson<SubjectCreated>), ApiError> {
    let tenant_id = tenant_id(&raw)?;
    subjects::enforce(
        actor.may_manage_subjects(&tenant_id),
        "tenant",
        "register subjects",
    )?;
    let kind = SubjectKind::parse(&body.kind)
        .map_err(|e| ApiError::invalid("invalid_kind", e.to_string()))?;
    let now = state.clock.now();
    let adult_on = body
        .birth_date
        .as_deref()
        .map(|b| tenant::parse_birth_date(b, now.date()).map(tenant::adult_on))
        .transpose()
        .map_err(|e| ApiError::Invalid {
            code: "invalid_birth_date",
            message: e.to_string(),
            clause: Some(Clause::r(43)),
        })?;
    let subject = subjects::register(&state, tenant_id, kind, adult_on).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(SubjectCreated {
            id: subject.id.to_string(),
        }),
    ))
}

/// A page of a tenant's subjects (operator, privacy officer, that tenant's admin).
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/subjects", tag = "tenants", security(("bearer" = [])),
    params(
        ("tenant" = String, Path, description = "tenant id"),
        ("after" = Option<String>, Query, description = "subject id to continue after"),
        ("limit" = Option<u32>, Query, description = "page size, 1 to 500 (default 100)"),
    ),
    responses((status = 200, body = SubjectPage), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody))
)]
pub async fn list_subjects(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(raw): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<ApiJson<SubjectPage>, ApiError> {
    let tenant_id = tenant_id(&raw)?;
    subjects::enforce(actor.may_view_tenant(&tenant_id), "tenant", "list subjects")?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_query",
            "limit must be between 1 and 500",
        ));
    }
    let after = q
        .after
        .as_deref()
        .map(SubjectId::parse)
        .transpose()
        .map_err(|e| ApiError::invalid("invalid_query", e.to_string()))?;
    let rows = subjects::page(&state, &tenant_id, after.as_ref(), limit).await?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|s| s.id.to_string()))
        .flatten();
    let today = state.clock.now().date();
    Ok(ApiJson(SubjectPage {
        subjects: rows.into_iter().map(|s| subject_view(s, today)).collect(),
        next,
    }))
}

/// A subject's profile (operator, privacy officer, its tenant's admin, the subject itself).
#[utoipa::path(
    get, path = "/v1/subjects/{subject}", tag = "tenants", security(("bearer" = [])),
    params(("subject" = String, Path, description = "subject id")),
    responses((status = 200, body = SubjectView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody))
)]
pub async fn get_subject(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(raw): ApiPath<String>,
) -> Result<ApiJson<SubjectView>, ApiError> {
    let id = subjects::subject_id(&raw)?;
    let subject = subjects::get(&state, &actor, &id).await?;
    Ok(ApiJson(subject_view(subject, state.clock.now().date())))
}

/// `POST /v1/tenants/{tenant}/subjects/lookup` body: exactly one of `email` or `phone`.
/// A POST, not a query string, so the value never lands in access logs or proxies.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LookupResult {
    /// Ids of the tenant's subjects with a record carrying this value.
    pub subjects: Vec<String>,
}

/// Finds a tenant's subjects by e-mail address or phone number through the blind index:
/// the value is normalised, keyed with the tenant's index key and matched; it is never
/// stored or logged in clear. Audited without the value.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/subjects/lookup", tag = "tenants", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant id")),
    request_body = LookupRequest,
    responses((status = 200, body = LookupResult), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody))
)]
pub async fn lookup_subjects(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(raw): ApiPath<String>,
    ApiJson(body): ApiJson<LookupRequest>,
) -> Result<ApiJson<LookupResult>, ApiError> {
    let tenant_id = tenant_id(&raw)?;
    let (kind, value) = match (&body.email, &body.phone) {
        (Some(e), None) => (LookupKind::Email, e),
        (None, Some(p)) => (LookupKind::Phone, p),
        _ => {
            return Err(ApiError::invalid(
                "invalid_lookup",
                "give exactly one of `email` or `phone`",
            ))
        }
    };
    let found = subjects::lookup(&state, &actor, &tenant_id, kind, value).await?;
    Ok(ApiJson(LookupResult {
        subjects: found.into_iter().map(|s| s.to_string()).collect(),
    }))
}
