//! Cookie consent (issue 4, R16): the banner script websites embed, and the record of
//! each visitor's choice.
//!
//! `POST /v1/cookie-consents` is called by the banner from the visitor's browser on
//! another origin, so it needs no token and accepts a `text/plain` JSON body (a "simple"
//! cross-origin request without preflight). It records choices only; it reveals nothing.
//!
//! Visitor ids are issued by the server (`POST /v1/cookie-consents/visitors`, issue 14):
//! `vis_<random>.<key id>.<tag>`, signed with an HMAC key derived from the master key
//! (`Vault::issue_visitor_id`). A choice under an id the server did not issue, or an
//! altered one, is refused (422 `invalid_visitor_id`, R16) and nothing is stored, so
//! nobody can append choices to another visitor's history by naming it. Issuing stores
//! nothing.

use crate::api::{ApiJson, ApiPath};
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tutela_app::cookies::Choice;
use tutela_app::AppState;
use tutela_core::Role;
use tutela_store::cookies::CookieConsent;
use utoipa::ToSchema;

const CONSENT_JS: &str = include_str!("../../assets/consent.js");

/// A visitor's choice. `necessary` may be sent but only as `true`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CookieChoice {
    /// The id issued by `POST /v1/cookie-consents/visitors`, kept by the banner in its
    /// strictly necessary cookie.
    pub visitor_id: String,
    pub necessary: Option<bool>,
    pub preferences: bool,
    /// Site analytics, including third-party analytics.
    pub analytics: bool,
    pub fraud_prevention: bool,
    pub statement_version: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VisitorIssued {
    /// A signed visitor id: `vis_<32 hex>.<key id>.<32 hex>`.
    pub visitor_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CookieConsentCreated {
    pub id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CookieConsentView {
    pub id: String,
    pub necessary: bool,
    pub preferences: bool,
    pub analytics: bool,
    pub fraud_prevention: bool,
    pub statement_version: String,
    pub at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CookieConsentHistory {
    pub visitor_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<CookieConsentView>,
    pub history: Vec<CookieConsentView>,
}

/// Lets the banner, running on a customer's website, call and read this API.
fn cors(mut r: Response) -> Response {
    let h = r.headers_mut();
    for (name, value) in [
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        (header::ACCESS_CONTROL_ALLOW_METHODS, "POST, OPTIONS"),
        (header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    r
}

/// The shape of a visitor id in a path (issued ids, and older client-chosen ones).
fn visitor_ok(id: &str) -> bool {
    (8..=100).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

fn parse_choice(body: &[u8]) -> Result<CookieChoice, ApiError> {
    let choice: CookieChoice = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(
            "invalid_body",
            format!(
                "expected {{visitor_id, preferences, analytics, fraud_prevention, statement_version}}: {}",
                e.to_string().chars().take(120).collect::<String>()
            ),
        )
    })?;
    Ok(choice)
}

/// Issues a fresh signed visitor id (no token; called by the banner when it has none).
#[utoipa::path(
    post, path = "/v1/cookie-consents/visitors", tag = "cookies",
    responses((status = 201, body = VisitorIssued))
)]
pub async fn issue_visitor(State(state): State<AppState>) -> Response {
    cors(match tutela_app::cookies::issue_visitor(&state) {
        Ok(visitor_id) => {
            (StatusCode::CREATED, ApiJson(VisitorIssued { visitor_id })).into_response()
        }
        Err(e) => ApiError::Internal(e).into_response(),
    })
}

/// Records a visitor's cookie choice (no token; called by the banner).
#[utoipa::path(
    post, path = "/v1/cookie-consents", tag = "cookies",
    request_body(content = CookieChoice, content_type = "text/plain"),
    responses((status = 201, body = CookieConsentCreated), (status = 422, body = crate::error::ErrorBody, description = "`invalid_visitor_id` (R16): not an id this server issued"))
)]
pub async fn record_cookie_consent(State(state): State<AppState>, body: Bytes) -> Response {
    let result = async {
        let choice = parse_choice(&body)?;
        let id = tutela_app::cookies::record(
            &state,
            Choice {
                visitor_id: choice.visitor_id,
                necessary: choice.necessary,
                preferences: choice.preferences,
                analytics: choice.analytics,
                fraud_prevention: choice.fraud_prevention,
                statement_version: choice.statement_version,
            },
        )
        .await?;
        Ok::<_, ApiError>(id)
    }
    .await;
    cors(match result {
        Ok(id) => (StatusCode::CREATED, ApiJson(CookieConsentCreated { id })).into_response(),
        Err(e) => e.into_response(),
    })
}

/// CORS preflight for clients that send `application/json`.
pub async fn cookie_consent_preflight() -> Response {
    cors(StatusCode::NO_CONTENT.into_response())
}

fn view(c: &CookieConsent) -> CookieConsentView {
    CookieConsentView {
        id: c.id.clone(),
        necessary: true,
        preferences: c.preferences,
        analytics: c.analytics,
        fraud_prevention: c.fraud_prevention,
        statement_version: c.statement_version.clone(),
        at: super::input::rfc3339(c.at),
    }
}

/// A visitor's current choice and history (privacy officer, auditor).
#[utoipa::path(
    get, path = "/v1/cookie-consents/{visitor}", tag = "cookies", security(("bearer" = [])),
    params(("visitor" = String, Path)),
    responses((status = 200, body = CookieConsentHistory), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody))
)]
pub async fn cookie_consent_history(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(visitor): ApiPath<String>,
) -> Result<ApiJson<CookieConsentHistory>, ApiError> {
    if !matches!(actor.role(), Role::PrivacyOfficer | Role::Auditor) {
        return Err(ApiError::forbidden_role("read cookie consents"));
    }
    if !visitor_ok(&visitor) {
        return Err(ApiError::not_found("visitor"));
    }
    let history = tutela_app::cookies::history(&state, &visitor).await?;
    Ok(ApiJson(CookieConsentHistory {
        visitor_id: visitor,
        current: history.last().map(view),
        history: history.iter().map(view).collect(),
    }))
}

/// The embeddable banner script, with the statement version in force.
pub async fn consent_js(State(state): State<AppState>) -> Response {
    let js = CONSENT_JS.replace(
        "__STATEMENT_VERSION__",
        &state.policy.statement.version.replace(['"', '\\', '<'], ""),
    );
    let mut r = js.into_response();
    let h = r.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_TYPE,
            "application/javascript; charset=utf-8",
        ),
        (header::CACHE_CONTROL, "public, max-age=300"),
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    r
}
