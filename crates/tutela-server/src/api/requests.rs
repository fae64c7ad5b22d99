//! Data-subject requests (issue 6; R2, R26, R32, R33, R35, R36, R45): filing, the
//! tenant's instruction, identity verification, confirmation of consequences, extension,
//! completion and refusal, each step audited. The workflow is
//! `tutela_core::request` (pure); free text is sealed under the subject's key.
//!
//! Fulfilment lives beside it: access exports in `export.rs`, erasure, propagation and
//! one-time identity codes in `fulfil.rs`.

use super::views::{request_view, RequestView};
use crate::api::{ApiJson, ApiPath, ApiQuery};
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tutela_app::requests::{is_requester, life, visible};
use tutela_app::AppState;
use tutela_core::policy::RefusalGround;
use tutela_core::request::{RequestEvent, RequestType};
use tutela_core::{Category, Clause, Role};
use tutela_store::subjects::Subject;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    pub subject: String,
    /// access, correct, delete, restrict, close_account or complaint.
    #[serde(rename = "type")]
    pub kind: String,
    /// Free text from the requester (sealed; may contain personal data).
    pub details: Option<String>,
    /// For `correct`: the categories to correct (real-name data cannot be, R32).
    pub categories: Option<Vec<String>>,
}

/// Files a request.
#[utoipa::path(
    post, path = "/v1/requests", tag = "requests", security(("bearer" = [])),
    request_body = NewRequest,
    responses((status = 201, body = RequestView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody))
)]
pub async fn file_request(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiJson(body): ApiJson<NewRequest>,
) -> Result<(StatusCode, ApiJson<RequestView>), ApiError> {
    if !matches!(
        actor.role(),
        Role::EndUser | Role::TenantAdmin | Role::PrivacyOfficer
    ) {
        return Err(ApiError::forbidden_role("file data-subject requests"));
    }
    let kind = RequestType::parse(&body.kind)
        .map_err(|e| ApiError::invalid("invalid_type", e.to_string()))?;
    let subject: Subject = tutela_app::subjects::subject_in_scope(
        &state,
        &body.subject,
        |s| actor.may_view_subject(&s.tenant, &s.id),
        "file requests",
    )
    .await?;
    if let Some(categories) = &body.categories {
        let parsed = categories
            .iter()
            .map(|c| Category::parse(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApiError::invalid("invalid_categories", e.to_string()))?;
        if kind == RequestType::Correct && parsed.contains(&Category::RealName) {
            return Err(ApiError::Invalid {
                code: "real_name_not_correctable",
                message: "initial real-name registration data cannot be corrected by the customer; it is kept as verified".into(),
                clause: Some(Clause::r(32)),
            });
        }
    }
    let details = body
        .details
        .as_deref()
        .map(|d| super::input::bounded_text("details", d, 10_000, false, "invalid_text"))
        .transpose()?;
    let r = tutela_app::requests::file(&state, &actor, &subject, kind, details).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(request_view(&state, &r).await?),
    ))
}

#[utoipa::path(
    get, path = "/v1/requests/{request}", tag = "requests", security(("bearer" = [])),
    params(("request" = String, Path)),
    responses((status = 200, body = RequestView), (status = 404, body = crate::error::ErrorBody))
)]
pub async fn get_request(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<RequestView>, ApiError> {
    let r = visible(&state, &actor, &id).await?;
    Ok(ApiJson(request_view(&state, &r).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `true`: only open requests past their due time (R35).
    pub overdue: Option<bool>,
}

/// Open requests; with `overdue=true`, those past their due time (privacy office).
#[utoipa::path(
    get, path = "/v1/requests", tag = "requests", security(("bearer" = [])),
    params(("overdue" = Option<bool>, Query)),
    responses((status = 200, body = [RequestView]), (status = 403, body = crate::error::ErrorBody))
)]
pub async fn list_requests(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<ApiJson<Vec<RequestView>>, ApiError> {
    if actor.role() != Role::PrivacyOfficer {
        return Err(ApiError::forbidden_role("list requests"));
    }
    let rows = tutela_app::requests::open_list(&state, q.overdue.unwrap_or(false)).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(request_view(&state, r).await?);
    }
    Ok(ApiJson(out))
}

/// The requester confirms after seeing the consequences (R33).
#[utoipa::path(post, path = "/v1/requests/{request}/confirm", tag = "requests", security(("bearer" = [])),
    params(("request" = String, Path)),
    responses((status = 200, body = RequestView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn confirm(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<RequestView>, ApiError> {
    let r = visible(&state, &actor, &id).await?;
    if !is_requester(&actor, &r) {
        return Err(ApiError::forbidden_role("confirm another person's request"));
    }
    let r = tutela_app::requests::step(
        &state,
        &actor,
        r,
        RequestEvent::Confirm,
        "request_confirm",
        |_, _| {},
    )
    .await?;
    Ok(ApiJson(request_view(&state, &r).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    /// `one_time_code` (the requester presents the code sent by
    /// `/identity-code`), or, recorded by the privacy officer: document, video_call,
    /// in_person or callback.
    pub method: String,
    /// For an officer's verification: a reference to the evidence (never the document).
    pub evidence: Option<String>,
    /// For `one_time_code`: the six digits received.
    pub code: Option<String>,
}

/// The privacy officer records how the requester's identity was verified (R35).
#[utoipa::path(post, path = "/v1/requests/{request}/verify", tag = "requests", security(("bearer" = [])),
    params(("request" = String, Path)), request_body = Verification,
    responses((status = 200, body = RequestView), (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn verify(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Verification>,
) -> Result<ApiJson<RequestView>, ApiError> {
    if body.method == "one_time_code" {
        let code = body.code.as_deref().ok_or_else(|| {
            ApiError::invalid("code_required", "one_time_code needs the `code` received")
        })?;
        let r = tutela_app::identity_codes::verify(&state, &actor, &id, code).await?;
        return Ok(ApiJson(request_view(&state, &r).await?));
    }
    tutela_app::requests::require_officer(&actor)?;
    if !matches!(
        body.method.as_str(),
        "document" | "video_call" | "in_person" | "callback"
    ) {
        return Err(ApiError::invalid(
            "invalid_method",
            "method must be one_time_code, document, video_call, in_person or callback",
        ));
    }
    let evidence = body.evidence.as_deref().unwrap_or("").trim();
    if evidence.is_empty() || evidence.len() > 256 || evidence.contains(char::is_whitespace) {
        return Err(ApiError::invalid(
            "invalid_evidence",
            "evidence must be a reference: 1 to 256 characters without spaces",
        ));
    }
    let r = visible(&state, &actor, &id).await?;
    let r = tutela_app::requests::step(
        &state,
        &actor,
        r,
        RequestEvent::VerifyIdentity,
        "request_verify",
        |u, _| {
            u.verification_method = Some(body.method.clone());
            u.verification_ref = Some(evidence.to_owned());
        },
    )
    .await?;
    Ok(ApiJson(request_view(&state, &r).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Instruction {
    /// The tenant's written instruction for its end user's request (R26).
    pub instruction: String,
}

/// The tenant's admin instructs on an end user's request (R26).
#[utoipa::path(post, path = "/v1/requests/{request}/instruct", tag = "requests", security(("bearer" = [])),
    params(("request" = String, Path)), request_body = Instruction,
    responses((status = 200, body = RequestView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn instruct(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Instruction>,
) -> Result<ApiJson<RequestView>, ApiError> {
    let r = visible(&state, &actor, &id).await?;
    if actor.role() != Role::TenantAdmin {
        return Err(ApiError::forbidden_role("instruct on end users' requests"));
    }
    let instruction = super::input::bounded_text(
        "instruction",
        &body.instruction,
        10_000,
        false,
        "invalid_text",
    )?;
    let r = tutela_app::requests::step(
        &state,
        &actor,
        r,
        RequestEvent::Instruct,
        "request_instruct",
        |_, notes| {
            notes.insert("instruction".into(), instruction);
        },
    )
    .await?;
    Ok(ApiJson(request_view(&state, &r).await?))
}

/// Work starts (identity verified; consequences confirmed where they apply).
#[utoipa::path(post, path = "/v1/requests/{request}/start", tag = "requests", security(("bearer" = [])),
    params(("request" = String, Path)),
    responses((status = 200, body = RequestView), (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<RequestView>, ApiError> {
    tutela_app::requests::require_officer(&actor)?;
    let r = visible(&state, &actor, &id).await?;
    let r = tutela_app::requests::step(
        &state,
        &actor,
        r,
        RequestEvent::Start,
        "request_start",
        |_, _| {},
    )
    .await?;
    Ok(ApiJson(request_view(&state, &r).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Extension {
    pub reason: String,
    /// 1 to 30.
    pub days: u32,
}

/// One extension of the answer period, with a reason; the subject is told (R35).
#[utoipa::path(post, path = "/v1/requests/{request}/extend", tag = "requests", security(("bearer" = [])),
    params(("request" = String, Path)), request_body = Extension,
    responses((status = 200, body = RequestView), (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn extend(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Extension>,
) -> Result<ApiJson<RequestView>, ApiError> {
    tutela_app::requests::require_officer(&actor)?;
    let reason = super::input::bounded_text("reason", &body.reason, 2_000, false, "invalid_text")?;
    let r = visible(&state, &actor, &id).await?;
    let r = tutela_app::requests::step(
        &state,
        &actor,
        r,
        RequestEvent::Extend { days: body.days },
        "request_extend",
        |_, notes| {
            notes.insert("extension_reason".into(), reason);
        },
    )
    .await?;
    tutela_app::requests::notify_subject(&state, &actor, &r, "request-extended").await?;
    Ok(ApiJson(request_view(&state, &r).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Completion {
    /// The answer to the requester (sealed).
    pub response: String,
}

/// Completes a request with a response text (R35).
#[utoipa::path(post, path = "/v1/requests/{request}/complete", tag = "requests", security(("bearer" = [])),
    params(("request" = String, Path)), request_body = Completion,
    responses((status = 200, body = RequestView), (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn complete(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Completion>,
) -> Result<ApiJson<RequestView>, ApiError> {
    tutela_app::requests::require_officer(&actor)?;
    let response =
        super::input::bounded_text("response", &body.response, 20_000, false, "invalid_text")?;
    let r = visible(&state, &actor, &id).await?;
    // The workflow's own objections (identity, confirmation) come first.
    if life(&r)
        .apply(RequestEvent::Complete, state.clock.now())
        .is_ok()
    {
        match r.kind {
            RequestType::Delete => tutela_app::requests::deletion_fulfilled(&state, &r).await?,
            RequestType::CloseAccount => {
                tutela_app::requests::closure_fulfilled(&state, &r).await?
            }
            _ => {}
        }
    }
    let r = tutela_app::requests::step(
        &state,
        &actor,
        r,
        RequestEvent::Complete,
        "request_complete",
        |_, notes| {
            notes.insert("response".into(), response);
        },
    )
    .await?;
    Ok(ApiJson(request_view(&state, &r).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    /// One of the eight grounds (R36).
    pub ground: String,
    pub response: String,
}

/// Refuses a request on one of the eight legal grounds (R36), with the dispute channels.
#[utoipa::path(post, path = "/v1/requests/{request}/refuse", tag = "requests", security(("bearer" = [])),
    params(("request" = String, Path)), request_body = Refusal,
    responses((status = 200, body = RequestView), (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn refuse(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Refusal>,
) -> Result<ApiJson<RequestView>, ApiError> {
    tutela_app::requests::require_officer(&actor)?;
    let ground = RefusalGround::parse(&body.ground).map_err(|e| ApiError::Invalid {
        code: "invalid_ground",
        message: format!("{e}: a refusal must cite one of the eight legal grounds"),
        clause: Some(Clause::r(36)),
    })?;
    let response =
        super::input::bounded_text("response", &body.response, 20_000, false, "invalid_text")?;
    let r = visible(&state, &actor, &id).await?;
    let r = tutela_app::requests::step(
        &state,
        &actor,
        r,
        RequestEvent::Refuse,
        "request_refuse",
        |u, notes| {
            u.refusal_ground = Some(ground.to_string());
            notes.insert("response".into(), response);
        },
    )
    .await?;
    Ok(ApiJson(request_view(&state, &r).await?))
}
