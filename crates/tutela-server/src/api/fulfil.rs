//! Deletion fulfilment and its propagation (issue 6; R19, R33, R34), and one-time-code
//! identity verification (R35).
//!
//! - `POST /v1/requests/{id}/erase`: crypto-shreds the subject's data key, removes what
//!   the law does not keep, re-seals and freezes what it does (with its ground), and
//!   queues a signed notice to every recipient that got the subject's data, all in one
//!   transaction (`tutela_store::erasure`). The sender (`tutela_app::outbox`) delivers them.
//! - `POST /v1/requests/{id}/acks`: a recipient acknowledges, signing the body with its
//!   webhook secret (no bearer token: recipients are not tutela users).
//! - `POST /v1/requests/{id}/deliveries/{recipient}/waive`: the officer records why a
//!   recipient cannot acknowledge.
//! - `POST /v1/requests/{id}/identity-code` and `GET /v1/messages/{id}`: a one-time code
//!   sent through the send gate; the delivery system reads it to render the message.

use super::input::{bounded_text, rfc3339};
use super::views::{request_view, RequestView};
use crate::api::{ApiJson, ApiPath};
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use tutela_app::requests::visible;
use tutela_app::AppState;
use tutela_core::delivery::DeliveryStatus;
use tutela_core::request::RequestStatus;
use tutela_core::{Clause, Role};
use tutela_crypto::webhook::SIGNATURE_HEADER;
use utoipa::ToSchema;

// The shape `tutela_app::erasure::DeletionNotice` sends, as the OpenAPI document shows it.
/// The body of a deletion notice: ids and vocabulary, never a personal data value.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeletionNotice {
    /// Always `deletion`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The delivery id, also sent as the `Idempotency-Key` header.
    pub idempotency_key: String,
    pub request: String,
    pub tenant: String,
    pub subject: String,
    /// The subject's categories this recipient is registered for.
    pub categories: Vec<String>,
    pub erased_at: String,
    /// Where to acknowledge (or answer 2xx with `{"acknowledged": true}`).
    pub ack_url: String,
    pub clause: String,
}

/// Erases the subject of a delete request in progress (R33) and queues the notices to
/// recipients (R34).
#[utoipa::path(post, path = "/v1/requests/{request}/erase", tag = "requests", security(("bearer" = [])),
    params(("request" = String, Path)),
    responses((status = 200, body = RequestView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn erase(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<RequestView>, ApiError> {
    let r = tutela_app::erasure::erase(&state, &actor, &id).await?;
    Ok(ApiJson(request_view(&state, &r).await?))
}

/// A recipient's acknowledgement of a deletion notice.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    pub recipient: String,
    /// The notice's idempotency key.
    pub idempotency_key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AckResult {
    pub idempotency_key: String,
    /// `acknowledged` (also when it already was).
    pub status: String,
}

/// A recipient acknowledges a deletion notice (R34). Authenticated by the
/// `Tutela-Signature` header over the body, under the recipient's webhook secret.
#[utoipa::path(post, path = "/v1/requests/{request}/acks", tag = "requests",
    params(("request" = String, Path)), request_body = Ack,
    responses((status = 200, body = AckResult), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn acknowledge(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<ApiJson<AckResult>, ApiError> {
    acknowledge_delivery(&state, Some(&id), &headers, &body).await
}

/// A recipient acknowledges any deletion notice, including those of retention erasures
/// that belong to no request (R19, R34). Signed like `/v1/requests/{id}/acks`.
#[utoipa::path(post, path = "/v1/acks", tag = "requests", request_body = Ack,
    responses((status = 200, body = AckResult), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn acknowledge_any(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<ApiJson<AckResult>, ApiError> {
    acknowledge_delivery(&state, None, &headers, &body).await
}

async fn acknowledge_delivery(
    state: &AppState,
    request: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ApiJson<AckResult>, ApiError> {
    let ack: Ack = serde_json::from_slice(body).map_err(|e| ApiError::BadRequest {
        code: "invalid_json",
        message: format!("expected {{recipient, idempotency_key}}: {e}"),
    })?;
    let signature = headers.get(SIGNATURE_HEADER).and_then(|h| h.to_str().ok());
    let id = tutela_app::deliveries::acknowledge(
        state,
        request,
        &ack.recipient,
        &ack.idempotency_key,
        signature,
        body,
    )
    .await?;
    Ok(ApiJson(AckResult {
        idempotency_key: id,
        status: DeliveryStatus::Acknowledged.to_string(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    /// Why this recipient cannot acknowledge (e.g. it ceased to exist; confirmed by letter).
    pub reason: String,
}

/// The officer records why a recipient cannot acknowledge (R34); the request may then
/// complete without it.
#[utoipa::path(post, path = "/v1/requests/{request}/deliveries/{recipient}/waive", tag = "requests", security(("bearer" = [])),
    params(("request" = String, Path), ("recipient" = String, Path)), request_body = Waiver,
    responses((status = 200, body = RequestView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn waive(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath((id, recipient)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<Waiver>,
) -> Result<ApiJson<RequestView>, ApiError> {
    if actor.role() != Role::PrivacyOfficer {
        return Err(ApiError::forbidden_role(
            "waive a recipient's acknowledgement",
        ));
    }
    let reason = bounded_text("reason", &body.reason, 2_000, false, "invalid_text")?;
    let r = tutela_app::deliveries::waive(&state, &actor, &id, &recipient, &reason).await?;
    Ok(ApiJson(request_view(&state, &r).await?))
}

// ---------------------------------------------------------------------------------------
// One-time identity codes (R35)
// ---------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// `email` or `sms`: where the subject's verified contact receives the code.
    pub channel: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CodeSent {
    /// The message that carries the code (the delivery system renders and sends it).
    pub message: String,
    pub channel: String,
    pub expires_at: String,
}

/// Sends a one-time code to the subject through the send gate (R35). The code is never in
/// this answer: only the subject, through its own contact, can present it.
#[utoipa::path(post, path = "/v1/requests/{request}/identity-code", tag = "requests", security(("bearer" = [])),
    params(("request" = String, Path)), request_body = CodeRequest,
    responses((status = 201, body = CodeSent), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn send_identity_code(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<(StatusCode, ApiJson<CodeSent>), ApiError> {
    use tutela_core::contact::ContactChannel;
    let r = visible(&state, &actor, &id).await?;
    if r.status != RequestStatus::Received {
        return Err(ApiError::Conflict {
            code: "request_state",
            message: format!("a request that is {} needs no identity code", r.status),
            clause: Some(Clause::r(35)),
        });
    }
    let channel = match body.channel.as_str() {
        "email" => ContactChannel::Email,
        "sms" => ContactChannel::Sms,
        _ => {
            return Err(ApiError::invalid(
                "invalid_channel",
                "channel must be email or sms",
            ))
        }
    };
    let (message, expires_at) =
        tutela_app::identity_codes::issue(&state, &actor, &r, channel).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(CodeSent {
            message,
            channel: channel.to_string(),
            expires_at: rfc3339(expires_at),
        }),
    ))
}
