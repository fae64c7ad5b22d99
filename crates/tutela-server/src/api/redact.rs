//! `POST /v1/redact` (issue 8; R7, R13, R22): finds personal information in support
//! text and returns it redacted, with the spans found (offsets and types, never values).

use crate::api::ApiJson;
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tutela_app::AppState;
use tutela_core::{Clause, Role, TenantId};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedactRequest {
    pub text: String,
    /// `mask` (keep the last four), `tag` (`<TYPE>`, default), `hash` (`<TYPE:hmac>`) or
    /// `token` (format-preserving, reversible through `POST /v1/detokenize`); `hash` and
    /// `token` are keyed per tenant and need `tenant`.
    pub operator: Option<String>,
    /// The tenant whose support data this is (required for `hash`).
    pub tenant: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FoundSpan {
    /// 1-based line.
    pub line: usize,
    /// UTF-8 byte offsets into that line of the input, end exclusive.
    pub start: usize,
    pub end: usize,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Redacted {
    pub text: String,
    pub spans: Vec<FoundSpan>,
}

#[utoipa::path(post, path = "/v1/redact", tag = "records", security(("bearer" = [])),
    request_body = RedactRequest,
    responses((status = 200, body = Redacted), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn redact(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiJson(body): ApiJson<RedactRequest>,
) -> Result<ApiJson<Redacted>, ApiError> {
    if !matches!(
        actor.role(),
        Role::Service | Role::Support | Role::Operator | Role::PrivacyOfficer | Role::TenantAdmin
    ) {
        return Err(ApiError::forbidden_role("redact support data"));
    }
    let (out, spans) = tutela_app::redaction::redact(
        &state,
        &actor,
        body.tenant.as_deref(),
        body.operator.as_deref(),
        &body.text,
    )
    .await?;
    let found = spans
        .into_iter()
        .map(|s| FoundSpan {
            line: s.line,
            start: s.start,
            end: s.end,
            kind: s.kind,
        })
        .collect();
    Ok(ApiJson(Redacted {
        text: out,
        spans: found,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRef {
    #[serde(rename = "type")]
    pub kind: String,
    pub token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DetokenizeRequest {
    pub tenant: String,
    /// Why the originals are needed: a purpose the statement declares for support data
    /// without conditions (support, troubleshooting).
    pub purpose: String,
    pub tokens: Vec<TokenRef>,
    /// The privacy officer's basis: the reference of the legal obligation or request it
    /// fulfils (required for the officer, R29; audited). Ignored for the tenant's admin.
    pub legal_ref: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Detokenized {
    /// The originals, in request order; `null` for a token this tenant never issued.
    pub values: Vec<Option<String>>,
}

/// Reverses format-preserving tokens for an authorized purpose (R13): the privacy
/// officer, or the tenant's own admin, naming a purpose the statement allows for support
/// data. Audited with the count, never the values.
#[utoipa::path(post, path = "/v1/detokenize", tag = "records", security(("bearer" = [])),
    request_body = DetokenizeRequest,
    responses((status = 200, body = Detokenized), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn detokenize(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiJson(body): ApiJson<DetokenizeRequest>,
) -> Result<ApiJson<Detokenized>, ApiError> {
    use tutela_core::policy::PurposeVerdict;
    use tutela_core::{Category, Purpose};
    let tenant = TenantId::parse(&body.tenant).map_err(|_| ApiError::not_found("tenant"))?;
    match actor.role() {
        Role::PrivacyOfficer => {}
        // Another tenant's tokens do not exist for this admin (R2).
        Role::TenantAdmin if actor.tenant() != Some(&tenant) => {
            return Err(ApiError::not_found("tenant"))
        }
        Role::TenantAdmin => {}
        _ => return Err(ApiError::forbidden_role("reverse PII tokens")),
    }
    if state.cache.tenant(&state.store, &tenant).await?.is_none() {
        return Err(ApiError::not_found("tenant"));
    }
    // The privacy officer reads personal information only naming the obligation (R29).
    let basis = match actor.role() {
        Role::PrivacyOfficer => {
            match super::input::reference("legal_ref", body.legal_ref.as_deref(), 200)? {
                Some(r) => Some(r),
                None => {
                    return Err(ApiError::Forbidden {
                        code: "basis_required",
                        message: "name the obligation this reversal fulfils (`legal_ref`)".into(),
                        clause: Some(Clause::r(29)),
                    })
                }
            }
        }
        _ => None,
    };
    let purpose = Purpose::parse(&body.purpose)
        .map_err(|e| ApiError::invalid("invalid_purpose", e.to_string()))?;
    match state.policy.purpose_verdict(Category::Support, purpose) {
        PurposeVerdict::Declared(rule) if rule.condition.is_none() => {}
        _ => {
            return Err(ApiError::Forbidden {
                code: "purpose_not_allowed",
                message: format!("support data is not reversed for {purpose}"),
                clause: Some(Clause::r(13)),
            })
        }
    }
    if body.tokens.len() > 1_000 {
        return Err(ApiError::invalid(
            "too_many_tokens",
            "at most 1,000 tokens per call",
        ));
    }
    let tokens: Vec<(&str, &str)> = body
        .tokens
        .iter()
        .map(|t| (t.kind.as_str(), t.token.as_str()))
        .collect();
    let values =
        tutela_app::redaction::detokenize(&state, &actor, &tenant, purpose, basis, &tokens).await?;
    Ok(ApiJson(Detokenized { values }))
}
