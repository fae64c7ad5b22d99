//! The audit log over HTTP (auditor, privacy officer): the signed head, entries about a
//! subject, inclusion proofs (RFC 9162) and consistency proofs between two sizes.

use crate::api::ApiQuery;
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tutela_app::AppState;
use tutela_core::{Actor, Role};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct HeadView {
    pub size: u64,
    pub root_hash: String,
    /// Ed25519 over `tutela_audit::TreeHead::canonical_bytes`, hex.
    pub signature: String,
    pub public_key: String,
    pub signed_at: String,
    pub hash: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EntryView {
    /// Tree index; absent until sealed (at most about a second).
    pub index: Option<i64>,
    pub id: String,
    pub at: String,
    pub actor: String,
    pub role: String,
    pub tenant: Option<String>,
    pub subject: Option<String>,
    pub category: Option<String>,
    pub action: String,
    pub purpose: Option<String>,
    pub decision: String,
    pub reason: String,
    pub clause: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProofView {
    pub index: u64,
    pub tree_size: u64,
    pub leaf_hash: String,
    pub path: Vec<String>,
    pub root_hash: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyView {
    pub first: u64,
    pub second: u64,
    pub path: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectQuery {
    pub subject: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexQuery {
    pub index: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    pub first: u64,
    pub second: u64,
}

fn require_auditor(actor: &Actor) -> Result<(), ApiError> {
    match actor.role() {
        Role::Auditor | Role::PrivacyOfficer => Ok(()),
        _ => Err(ApiError::forbidden_role("read the audit log")),
    }
}

async fn head_size(state: &AppState) -> Result<u64, ApiError> {
    let head = state.store.latest_audit_head().await?;
    Ok(head.map_or(0, |h| u64::try_from(h.size).unwrap_or(0)))
}

fn proof_error(e: tutela_audit::ProofError) -> ApiError {
    ApiError::invalid("invalid_proof_request", e.to_string())
}

/// The latest signed tree head.
#[utoipa::path(get, path = "/v1/audit/head", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = HeadView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn head(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
) -> Result<crate::api::ApiJson<HeadView>, ApiError> {
    require_auditor(&actor)?;
    let h = state
        .store
        .latest_audit_head()
        .await?
        .ok_or(ApiError::NotFound {
            code: "no_head_yet",
            message: "no tree head has been signed yet".into(),
        })?;
    Ok(crate::api::ApiJson(HeadView {
        size: u64::try_from(h.size).unwrap_or(0),
        root_hash: hex::encode(&h.root),
        signature: hex::encode(&h.signature),
        public_key: hex::encode(state.audit.public_key()),
        signed_at: super::input::rfc3339(h.signed_at),
        hash: state.audit.alg().as_str().to_owned(),
    }))
}

/// Entries about one subject, oldest first.
#[utoipa::path(get, path = "/v1/audit/entries", tag = "audit", security(("bearer" = [])),
    params(("subject" = String, Query, description = "subject id")),
    responses((status = 200, body = [EntryView]), (status = 403, body = crate::error::ErrorBody)))]
pub async fn entries(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiQuery(q): ApiQuery<SubjectQuery>,
) -> Result<crate::api::ApiJson<Vec<EntryView>>, ApiError> {
    require_auditor(&actor)?;
    let rows = state.store.audit_for_subject(&q.subject).await?;
    Ok(crate::api::ApiJson(
        rows.into_iter()
            .map(|e| EntryView {
                index: e.seq,
                id: e.id,
                at: super::input::rfc3339(e.at),
                actor: e.token_id,
                role: e.role,
                tenant: e.tenant,
                subject: e.subject,
                category: e.category,
                action: e.action,
                purpose: e.purpose,
                decision: e.decision,
                reason: e.reason,
                clause: e.clause,
            })
            .collect(),
    ))
}

/// An inclusion proof for entry `index` against the current signed head.
#[utoipa::path(get, path = "/v1/audit/proof", tag = "audit", security(("bearer" = [])),
    params(("index" = u64, Query)),
    responses((status = 200, body = ProofView), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn proof(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiQuery(q): ApiQuery<IndexQuery>,
) -> Result<crate::api::ApiJson<ProofView>, ApiError> {
    require_auditor(&actor)?;
    let size = head_size(&state).await?;
    let (leaf, path, root) = state
        .audit
        .inclusion(q.index, size)
        .await
        .map_err(proof_error)?;
    Ok(crate::api::ApiJson(ProofView {
        index: q.index,
        tree_size: size,
        leaf_hash: hex::encode(leaf),
        path: path.iter().map(hex::encode).collect(),
        root_hash: hex::encode(root),
    }))
}

/// A consistency proof between two tree sizes (RFC 9162 2.1.4).
#[utoipa::path(get, path = "/v1/audit/consistency", tag = "audit", security(("bearer" = [])),
    params(("first" = u64, Query), ("second" = u64, Query)),
    responses((status = 200, body = ConsistencyView), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn consistency(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<crate::api::ApiJson<ConsistencyView>, ApiError> {
    require_auditor(&actor)?;
    let size = head_size(&state).await?;
    if q.second > size {
        return Err(ApiError::invalid(
            "invalid_proof_request",
            format!("second must be at most the signed size {size}"),
        ));
    }
    let path = state
        .audit
        .consistency(q.first, q.second)
        .await
        .map_err(proof_error)?;
    Ok(crate::api::ApiJson(ConsistencyView {
        first: q.first,
        second: q.second,
        path: path.iter().map(hex::encode).collect(),
    }))
}
