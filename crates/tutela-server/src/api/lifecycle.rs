//! Account lifecycle and retention (issue 7; R19, R20, R41): closing and activating
//! tenants, terminating a service (announced to the tenants it affects), the tenants'
//! announcements, and running the retention engine on demand.

use super::input::rfc3339;
use super::views::{tenant_view, TenantView};
use crate::api::{ApiJson, ApiPath, ApiQuery};
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tutela_app::retention_engine::{self as retention, RunOptions};
use tutela_app::AppState;
use tutela_core::Role;
use utoipa::ToSchema;

/// Closes a tenant's account (R19): from now on its data is frozen (423 for every
/// business use) until each category's retention period ends, then deleted or
/// anonymized by the retention engine.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/close", tag = "tenants", security(("bearer" = [])),
    params(("tenant" = String, Path)),
    responses((status = 200, body = TenantView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn close_tenant(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(raw): ApiPath<String>,
) -> Result<ApiJson<TenantView>, ApiError> {
    let t = tutela_app::lifecycle::close_tenant(&state, &actor, &raw).await?;
    Ok(ApiJson(tenant_view(&state, t).await?))
}

/// A trial customer buys (R41): the trial's data stays.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/activate", tag = "tenants", security(("bearer" = [])),
    params(("tenant" = String, Path)),
    responses((status = 200, body = TenantView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn activate_tenant(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(raw): ApiPath<String>,
) -> Result<ApiJson<TenantView>, ApiError> {
    let t = tutela_app::lifecycle::activate_tenant(&state, &actor, &raw).await?;
    Ok(ApiJson(tenant_view(&state, t).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTermination {
    /// RFC 3339; the service's personal information is removed after it.
    pub effective_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TerminationView {
    pub service: String,
    pub effective_at: String,
    /// Tenants that were told (e-mail to their administrators and a portal announcement).
    pub tenants_notified: usize,
    pub notices: usize,
}

/// Terminates a service (R20): every tenant with data in it is told now, by e-mail to its
/// administrators through the send gate and by a portal announcement; after the
/// effective date the retention engine deletes or anonymizes the service's records.
#[utoipa::path(post, path = "/v1/services/{service}/terminate", tag = "tenants", security(("bearer" = [])),
    params(("service" = String, Path)), request_body = NewTermination,
    responses((status = 201, body = TerminationView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn terminate_service(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(service): ApiPath<String>,
    ApiJson(body): ApiJson<NewTermination>,
) -> Result<(StatusCode, ApiJson<TerminationView>), ApiError> {
    let t = tutela_app::lifecycle::terminate_service(&state, &actor, &service, &body.effective_at)
        .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(TerminationView {
            service,
            effective_at: rfc3339(t.effective_at),
            tenants_notified: t.tenants_notified,
            notices: t.notices,
        }),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnnouncementView {
    pub id: String,
    pub kind: String,
    /// What it is about (a service id).
    pub about: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_at: Option<String>,
    pub created_at: String,
}

/// The portal's announcements for a tenant (R20).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/announcements", tag = "tenants", security(("bearer" = [])),
    params(("tenant" = String, Path)),
    responses((status = 200, body = [AnnouncementView]), (status = 404, body = crate::error::ErrorBody)))]
pub async fn announcements(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(raw): ApiPath<String>,
) -> Result<ApiJson<Vec<AnnouncementView>>, ApiError> {
    let list = tutela_app::lifecycle::announcements(&state, &actor, &raw).await?;
    Ok(ApiJson(
        list.into_iter()
            .map(|a| AnnouncementView {
                id: a.id,
                kind: a.kind,
                about: a.subject,
                effective_at: a.effective_at.map(rfc3339),
                created_at: rfc3339(a.created_at),
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunQuery {
    pub dry_run: Option<bool>,
}

/// Runs the retention engine now (operator); `?dry_run=true` only reports.
#[utoipa::path(post, path = "/v1/retention/run", tag = "tenants", security(("bearer" = [])),
    params(("dry_run" = Option<bool>, Query)),
    responses((status = 200, body = Summary), (status = 403, body = crate::error::ErrorBody)))]
pub async fn run_retention(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiQuery(q): ApiQuery<RunQuery>,
) -> Result<ApiJson<Summary>, ApiError> {
    if actor.role() != Role::Operator {
        return Err(ApiError::forbidden_role("run the retention engine"));
    }
    let opts = RunOptions {
        dry_run: q.dry_run.unwrap_or(false),
        batch: state.config.retention.batch,
        lease_secs: state.config.retention.lease_secs,
        wait_for_leases: false,
    };
    let summary = retention::run(&state, opts, &mut |_| {}).await?;
    Ok(ApiJson(summary.into()))
}

/// One line of a run's plan: what happens (or would) to how many subjects.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlanItem {
    /// `tenant:<id>`, `service:<id>` or `ended_holds`.
    pub scope: String,
    /// e.g. `expire_trial`, `erase_subjects`, `remove:support,cookie`, `erase_tenant`.
    pub action: String,
    pub subjects: u64,
    pub clause: String,
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Summary {
    pub dry_run: bool,
    pub trials_expired: u64,
    pub tenants_erased: u64,
    /// Subjects whose data is now entirely gone (key shredded).
    pub subjects_erased: u64,
    /// Subjects that lost some categories and keep the rest under a fresh key.
    pub subjects_rekeyed: u64,
    pub records_deleted: u64,
    pub records_anonymized: u64,
    pub notices_queued: u64,
    pub services_finished: u64,
    /// Subjects with due work found (dry runs: would be processed).
    pub subjects_due: u64,
    pub plan: Vec<PlanItem>,
}

impl From<retention::Summary> for Summary {
    fn from(s: retention::Summary) -> Self {
        Summary {
            dry_run: s.dry_run,
            trials_expired: s.trials_expired,
            tenants_erased: s.tenants_erased,
            subjects_erased: s.subjects_erased,
            subjects_rekeyed: s.subjects_rekeyed,
            records_deleted: s.records_deleted,
            records_anonymized: s.records_anonymized,
            notices_queued: s.notices_queued,
            services_finished: s.services_finished,
            subjects_due: s.subjects_due,
            plan: s
                .plan
                .into_iter()
                .map(|p| PlanItem {
                    scope: p.scope,
                    action: p.action,
                    subjects: p.subjects,
                    clause: p.clause,
                })
                .collect(),
        }
    }
}
