//! `POST /v1/redact` (issue 8; R7, R13, R22): finds personal information in support
//! text and returns it redacted, with the spans found (offsets and types, never values).

use crate::api::ApiJson;
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tutela_app::AppState;
use tutela_core::{Clause, Role, TenantId};
use tutela_pii::{Operator, Redactor};
use tutela_store::vault::AuditEntry;
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
    let mut token_keys = None;
    let op = match (op_name, &tenant) {
        ("hash", Some(t)) => Operator::Hash {
            key: state.vault.pii_hash_key(&state.store, t).await?,
        },
        ("token", Some(t)) => {
            let keys = state.vault.pii_token_keys(&state.store, t).await?;
            let key = keys.0;
            token_keys = Some(keys);
            Operator::Token { key }
        }
        ("hash" | "token", None) => {
            return Err(ApiError::Invalid {
                code: "tenant_required",
                message: "hash and token are keyed per tenant: name the `tenant`".into(),
                clause: Some(Clause::r(13)),
            })
        }
        (name, _) => Operator::parse(name, None).ok_or_else(|| {
            ApiError::invalid(
                "invalid_operator",
                "operator must be mask, tag, hash or token",
            )
        })?,
    };
    let redactor = Redactor::new(op);
    let mut out = String::with_capacity(body.text.len());
    let mut spans = Vec::new();
    let mut found = Vec::new();
    let mut issued = Vec::new();
    for (n, line) in body.text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        spans.clear();
        tutela_pii::scan_line(line, &mut spans);
        redactor.redact_line_with(line, &spans, &mut out, &mut |kind, value, token| {
            if token_keys.is_some() {
                issued.push((kind, value.to_owned(), token.to_owned()));
            }
        });
        found.extend(spans.iter().map(|s| FoundSpan {
            line: n + 1,
            start: s.start,
            end: s.end,
            kind: s.kind.to_string(),
        }));
    }
    let now = state.clock.now();
    let entry = AuditEntry {
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
    };
    match (token_keys, &tenant) {
        // Tokens are recorded (sealed originals) before they leave, with the audit entry.
        (Some((_, digest_key, tenant_key)), Some(t)) => {
            let mut rows = Vec::with_capacity(issued.len());
            for (kind, value, token) in &issued {
                rows.push(tutela_store::retention::PiiToken {
                    tenant: t.clone(),
                    token_digest: state.vault.token_digest(&digest_key, kind.as_str(), token),
                    kind: kind.to_string(),
                    sealed_value: state.vault.seal_token_value(
                        &tenant_key,
                        t,
                        kind.as_str(),
                        value,
                    )?,
                    created_at: now,
                });
            }
            state.store.insert_pii_tokens_audited(&rows, &entry).await?;
        }
        _ => state.audit_writer.append(entry).await?,
    }
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
    let (_, digest_key, tenant_key) = state.vault.pii_token_keys(&state.store, &tenant).await?;
    let mut values = Vec::with_capacity(body.tokens.len());
    for t in &body.tokens {
        let digest = state.vault.token_digest(&digest_key, &t.kind, &t.token);
        values.push(match state.store.pii_token(&tenant, &digest).await? {
            Some((kind, sealed)) => Some(state.vault.open_token_value(
                &tenant_key,
                &tenant,
                &kind,
                &sealed,
            )?),
            None => None,
        });
    }
    let now = state.clock.now();
    state
        .audit_writer
        .append(AuditEntry {
            id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
            at: now,
            token_id: actor.token().to_string(),
            role: actor.role().to_string(),
            tenant: Some(tenant.to_string()),
            subject: None,
            category: Some("support".into()),
            purpose: Some(purpose.to_string()),
            action: "detokenize".into(),
            decision: "allow".into(),
            reason: match &basis {
                Some(r) => format!(
                    "detokenize:{}:legal_ref:{r}",
                    values.iter().filter(|v| v.is_some()).count()
                ),
                None => format!(
                    "detokenize:{}",
                    values.iter().filter(|v| v.is_some()).count()
                ),
            },
            clause: Some(Clause::r(13).to_string()),
            seq: None,
        })
        .await?;
    Ok(ApiJson(Detokenized { values }))
}
