//! `POST /v1/redact` (issue 8; R7, R13, R22): finds personal information in support
//! text and returns it redacted, with the spans found (offsets and types, never values).

use crate::api::ApiJson;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tutela_core::{Clause, Role, TenantId};
use tutela_pii::{Operator, Redactor};
use tutela_store::vault::AuditEntry;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedactRequest {
    pub text: String,
    /// `mask` (keep the last four), `tag` (`<TYPE>`, default) or `hash` (`<TYPE:hmac>`,
    /// keyed per tenant: needs `tenant`).
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
    let tenant = match &body.tenant {
        None => None,
        Some(raw) => {
            let id = TenantId::parse(raw).map_err(|_| ApiError::not_found("tenant"))?;
            // A tenant admin redacts only for its own tenant; support systems for any.
            let own = actor.role() != Role::TenantAdmin || actor.tenant() == Some(&id);
            if !own || state.cache.tenant(&state.store, &id).await?.is_none() {
                return Err(ApiError::not_found("tenant"));
            }
            Some(id)
        }
    };
    let op_name = body.operator.as_deref().unwrap_or("tag");
    let op = match (op_name, &tenant) {
        ("hash", Some(t)) => Operator::Hash {
            key: state.vault.pii_hash_key(&state.store, t).await?,
        },
        ("hash", None) => {
            return Err(ApiError::Invalid {
                code: "tenant_required",
                message: "the hash operator is keyed per tenant: name the `tenant`".into(),
                clause: Some(Clause::r(13)),
            })
        }
        (name, _) => Operator::parse(name, None).ok_or_else(|| {
            ApiError::invalid("invalid_operator", "operator must be mask, tag or hash")
        })?,
    };
    let redactor = Redactor::new(op);
    let mut out = String::with_capacity(body.text.len());
    let mut spans = Vec::new();
    let mut found = Vec::new();
    for (n, line) in body.text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        spans.clear();
        tutela_pii::scan_line(line, &mut spans);
        redactor.redact_line(line, &spans, &mut out);
        found.extend(spans.iter().map(|s| FoundSpan {
            line: n + 1,
            start: s.start,
            end: s.end,
            kind: s.kind.to_string(),
        }));
    }
    let now = state.clock.now();
    state
        .audit_writer
        .append(AuditEntry {
            id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
            at: now,
            token_id: actor.token().to_string(),
            role: actor.role().to_string(),
            tenant: tenant.as_ref().map(ToString::to_string),
            subject: None,
            category: Some("support".into()),
            purpose: None,
            action: "redact".into(),
            decision: "allow".into(),
            reason: format!("redact:{op_name}:{}", found.len()),
            clause: Some(Clause::r(13).to_string()),
            seq: None,
        })
        .await?;
    Ok(ApiJson(Redacted {
        text: out,
        spans: found,
    }))
}
