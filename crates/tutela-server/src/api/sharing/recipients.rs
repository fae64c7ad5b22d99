//! Recipients (R21-R25, R28): only registered recipients receive personal information,
//! and only what their kind may receive; a third-party offering names its own policy
//! (R25). Deletion notices to a recipient are signed with its webhook secret (R34).

use crate::api::ApiJson;
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tutela_app::AppState;
use tutela_core::policy::RecipientKind;
use tutela_core::{Clause, Purpose, Region, Role};
use tutela_store::sharing::Recipient;
use utoipa::ToSchema;

use super::{categories, country, require};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRecipient {
    pub name: String,
    /// affiliate, subprocessor, payment_processor, fraud_prevention,
    /// third_party_offering or authority.
    pub kind: String,
    pub country: String,
    pub purposes: Vec<String>,
    pub categories: Vec<String>,
    /// The confidentiality / protection commitment the recipient signed (R21); required
    /// for every kind but `authority`.
    pub commitment_ref: Option<String>,
    /// The recipient's own privacy policy; required for third-party offerings (R25).
    pub policy_ref: Option<String>,
    /// Where deletion requests are propagated (https).
    pub webhook_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecipientInfo {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub country: String,
    pub purposes: Vec<String>,
    pub categories: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commitment_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// The webhook signing secret (hex), shown once, when the recipient is registered
    /// with a `webhook_url` (R34). Deletion notices carry
    /// `Tutela-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." || body)>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

fn recipient_view(r: &Recipient) -> RecipientInfo {
    RecipientInfo {
        id: r.id.clone(),
        name: r.name.clone(),
        kind: r.kind.to_string(),
        country: r.country.as_str().to_owned(),
        purposes: r.purposes.iter().map(ToString::to_string).collect(),
        categories: r.categories.iter().map(ToString::to_string).collect(),
        commitment_ref: r.commitment_ref.clone(),
        policy_ref: r.policy_ref.clone(),
        webhook_url: r.webhook_url.clone(),
        webhook_secret: None,
    }
}

/// Registers a recipient within what the statement allows its kind.
#[utoipa::path(
    post, path = "/v1/recipients", tag = "sharing", security(("bearer" = [])),
    request_body = NewRecipient,
    responses((status = 201, body = RecipientInfo), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody))
)]
pub async fn register_recipient(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiJson(body): ApiJson<NewRecipient>,
) -> Result<(StatusCode, ApiJson<RecipientInfo>), ApiError> {
    require(&actor, &[Role::Operator], "register recipients")?;
    let name = crate::api::input::bounded_text("name", &body.name, 200, true, "invalid_name")?;
    let kind = RecipientKind::parse(&body.kind)
        .map_err(|e| ApiError::invalid("invalid_kind", e.to_string()))?;
    let kind_policy = state
        .policy
        .recipient_kind(kind)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("recipient kind missing from policy")))?;
    let country = country(&body.country)?;
    let categories = categories(&body.categories)?;
    if body.purposes.is_empty() {
        return Err(ApiError::invalid(
            "invalid_purposes",
            "name at least one purpose",
        ));
    }
    let purposes = body
        .purposes
        .iter()
        .map(|p| Purpose::parse(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::invalid("invalid_purposes", e.to_string()))?;
    // R21: a recipient is registered only for what the statement shares with its kind.
    let beyond: Vec<String> = categories
        .iter()
        .filter(|c| !kind_policy.categories.contains(c))
        .map(ToString::to_string)
        .chain(
            purposes
                .iter()
                .filter(|p| !kind_policy.purposes.contains(p))
                .map(ToString::to_string),
        )
        .collect();
    if !beyond.is_empty() {
        return Err(ApiError::Invalid {
            code: "beyond_statement",
            message: format!(
                "the statement does not share {} with a {kind}",
                beyond.join(", ")
            ),
            clause: Some(kind_policy.clause),
        });
    }
    if country.region() == Region::Overseas && !kind_policy.overseas_allowed {
        return Err(ApiError::Invalid {
            code: "recipient_kind_not_allowed_abroad",
            message: format!("a {kind} outside mainland China cannot be registered"),
            clause: Some(kind_policy.clause),
        });
    }
    let commitment_ref =
        crate::api::input::reference("commitment_ref", body.commitment_ref.as_deref(), 256)?;
    if kind != RecipientKind::Authority && commitment_ref.is_none() {
        return Err(ApiError::Invalid {
            code: "commitment_required",
            message: "name the confidentiality / protection commitment the recipient signed".into(),
            clause: Some(Clause::r(21)),
        });
    }
    let policy_ref = crate::api::input::reference("policy_ref", body.policy_ref.as_deref(), 256)?;
    if kind_policy.requires_policy_ref && policy_ref.is_none() {
        return Err(ApiError::Invalid {
            code: "policy_ref_required",
            message: "a third-party offering names its own privacy policy".into(),
            clause: Some(Clause::r(25)),
        });
    }
    let webhook_url = match body.webhook_url.as_deref() {
        None => None,
        Some(u)
            if (u.starts_with("https://") || u.starts_with("http://"))
                && u.len() <= 512
                && !u.contains(char::is_whitespace) =>
        {
            Some(u.to_owned())
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "invalid_webhook_url",
                "webhook_url must be an http(s) URL",
            ))
        }
    };
    let (recipient, secret) = tutela_app::sharing::register_recipient(
        &state,
        &actor,
        Recipient {
            id: String::new(),
            name,
            kind,
            country,
            purposes,
            categories,
            commitment_ref,
            policy_ref,
            webhook_url,
            webhook_secret: None,
            created_at: state.clock.now(),
        },
        kind_policy.clause,
    )
    .await?;
    let mut view = recipient_view(&recipient);
    view.webhook_secret = secret.map(|s| s.to_hex());
    Ok((StatusCode::CREATED, ApiJson(view)))
}

/// Rotates a recipient's webhook secret (operator): the new one is shown once, and
/// notices and acknowledgements are signed with it from now on (R34).
#[utoipa::path(
    post, path = "/v1/recipients/{recipient}/webhook-secret", tag = "sharing", security(("bearer" = [])),
    params(("recipient" = String, Path)),
    responses((status = 200, body = RecipientInfo), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody))
)]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    crate::api::ApiPath(id): crate::api::ApiPath<String>,
) -> Result<ApiJson<RecipientInfo>, ApiError> {
    require(&actor, &[Role::Operator], "rotate webhook secrets")?;
    let (recipient, secret) =
        tutela_app::sharing::rotate_webhook_secret(&state, &actor, &id).await?;
    let mut view = recipient_view(&recipient);
    view.webhook_secret = Some(secret.to_hex());
    Ok(ApiJson(view))
}

#[utoipa::path(
    get, path = "/v1/recipients", tag = "sharing", security(("bearer" = [])),
    responses((status = 200, body = [RecipientInfo]), (status = 403, body = crate::error::ErrorBody))
)]
pub async fn list_recipients(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
) -> Result<ApiJson<Vec<RecipientInfo>>, ApiError> {
    require(
        &actor,
        &[
            Role::Operator,
            Role::PrivacyOfficer,
            Role::Auditor,
            Role::Service,
        ],
        "list recipients",
    )?;
    let all = state.store.recipients().await?;
    Ok(ApiJson(all.iter().map(recipient_view).collect()))
}
