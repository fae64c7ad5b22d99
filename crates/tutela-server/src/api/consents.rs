//! `POST/GET /v1/subjects/{subject}/consents`: the consent ledger (issue 4; R4, R18,
//! R22, R25, R43). Entries are appended, never changed; the current state per scope is
//! derived from the history. Every entry commits with its audit entry.
//!
//! Provenance (issue 14; R4, R18, R25, R43): each entry records who recorded it (role,
//! token) and how (a [`ConsentMethod`]). A grant stands on the consenting person's own
//! act: the subject's own token, or, from a service or tenant admin, cited evidence of
//! the subject's (or guardian's) act; without it the grant is refused (422
//! `consent_evidence_required`) and nothing is stored. A withdrawal only narrows
//! processing and is accepted without evidence (`unevidenced` when not the subject's).

use super::views::{consent_view, ConsentView};
use crate::api::{ApiJson, ApiPath};
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tutela_app::consents::NewEntry;
use tutela_app::AppState;
use tutela_core::consent::{Channel, ConsentMethod, ConsentScope, Evidence};
use tutela_core::{Clause, Purpose, Role};
use tutela_store::consents::PurposeChange;
use utoipa::ToSchema;

/// `POST` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConsent {
    /// A purpose id, `cross_border`, `guardian` or `third_party_offering:<recipient>`.
    pub purpose: String,
    /// `true` to grant, `false` to withdraw.
    pub granted: bool,
    /// The statement version the subject was shown; must be the one in force.
    pub statement_version: String,
    /// `portal`, `api`, `email_link` or `paper`.
    pub channel: String,
    /// Given by the guardian of a minor (R43); needs `guardian_ref`.
    #[serde(default)]
    pub guardian: bool,
    /// Reference to the guardian's verified identity (never the identity itself).
    pub guardian_ref: Option<String>,
    /// Reference to the evidence of the subject's (or guardian's) own act: form scan id,
    /// portal session id, e-mail message id. Alone it cites the act by reference only
    /// (recorded as method `reference_only`); beside `evidence` it must equal
    /// `evidence.reference`.
    pub evidence_ref: Option<String>,
    /// Evidence of the subject's (or guardian's) own act, with its method. Required for
    /// a grant recorded by a service or tenant admin, and for every guardian consent
    /// (a bare `evidence_ref` also counts). The subject's own token needs none.
    pub evidence: Option<EvidenceBody>,
}

/// Evidence cited for a consent entry (issue 14).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceBody {
    /// How the subject acted: `signed_form`, `portal_session`, `email_confirmation`,
    /// `recorded_call` or `written_instruction`; `subject_self` only from the subject's
    /// own token.
    pub method: String,
    /// A reference to that act (document, session, message or recording id; 1 to 128
    /// printable ASCII characters, no spaces), never its content.
    pub reference: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentCreated {
    pub id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentLedger {
    pub subject: String,
    /// The latest entry per purpose or scope.
    pub current: Vec<ConsentView>,
    /// Every entry, oldest first.
    pub history: Vec<ConsentView>,
}

/// Records a consent or its withdrawal.
///
/// The subject's own token records without evidence (method `subject_self`). A service
/// or the tenant's admin grants only citing the subject's own act (`evidence` or
/// `evidence_ref`), and a guardian consent always cites the guardian's act; otherwise
/// 422 `consent_evidence_required` (clause R4, R18 or R25 by scope, R43 for a guardian)
/// and nothing is stored. Withdrawals need no evidence (`unevidenced` when recorded on
/// the subject's behalf without any).
#[utoipa::path(
    post, path = "/v1/subjects/{subject}/consents", tag = "consents", security(("bearer" = [])),
    params(("subject" = String, Path)),
    request_body = NewConsent,
    responses(
        (status = 201, body = ConsentCreated),
        (status = 403, body = crate::error::ErrorBody, description = "operators, privacy officers, auditors and support never record consents"),
        (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody, description = "invalid input, or `consent_evidence_required`: a grant on the subject's behalf without evidence of the subject's (or guardian's) own act")
    )
)]
pub async fn record_consent(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(raw_subject): ApiPath<String>,
    ApiJson(body): ApiJson<NewConsent>,
) -> Result<(StatusCode, ApiJson<ConsentCreated>), ApiError> {
    let subject = tutela_app::subjects::subject_in_scope(
        &state,
        &raw_subject,
        |s| actor.may_record_consent(&s.tenant, &s.id),
        "record consents",
    )
    .await?;
    let scope = ConsentScope::parse(&body.purpose).map_err(|e| ApiError::Invalid {
        code: "invalid_purpose",
        message: e.to_string(),
        clause: Some(Clause::r(4)),
    })?;
    let channel = Channel::parse(&body.channel)
        .map_err(|e| ApiError::invalid("invalid_channel", e.to_string()))?;
    let current_version = &state.policy.statement.version;
    if &body.statement_version != current_version {
        return Err(ApiError::Invalid {
            code: "statement_version_mismatch",
            message: format!(
                "consent must refer to the statement in force (version {current_version})"
            ),
            clause: Some(Clause::r(44)),
        });
    }
    let guardian_ref = super::input::reference("guardian_ref", body.guardian_ref.as_deref(), 128)?;
    let evidence = evidence_of(&body)?;
    let id = tutela_app::consents::record(
        &state,
        &actor,
        &subject,
        NewEntry {
            scope,
            granted: body.granted,
            statement_version: body.statement_version,
            channel,
            guardian: body.guardian,
            guardian_ref,
            evidence,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(ConsentCreated { id })))
}

/// The evidence a body cites: `evidence` and/or a bare `evidence_ref` (which must agree).
fn evidence_of(body: &NewConsent) -> Result<Option<Evidence>, ApiError> {
    let bare = super::input::reference("evidence_ref", body.evidence_ref.as_deref(), 128)?;
    let Some(cited) = &body.evidence else {
        return Ok(bare.map(|reference| Evidence {
            method: None,
            reference,
        }));
    };
    let method = ConsentMethod::parse(&cited.method)
        .map_err(|e| ApiError::invalid("invalid_evidence", e.to_string()))?;
    let reference = super::input::reference("evidence.reference", Some(&cited.reference), 128)?
        .unwrap_or_default();
    if bare.as_ref().is_some_and(|b| *b != reference) {
        return Err(ApiError::invalid(
            "invalid_evidence",
            "`evidence_ref` and `evidence.reference` name different evidence; send one",
        ));
    }
    Ok(Some(Evidence {
        method: Some(method),
        reference,
    }))
}

/// A subject's consents: the current state per purpose and the full history.
#[utoipa::path(
    get, path = "/v1/subjects/{subject}/consents", tag = "consents", security(("bearer" = [])),
    params(("subject" = String, Path)),
    responses((status = 200, body = ConsentLedger), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody))
)]
pub async fn list_consents(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath(raw_subject): ApiPath<String>,
) -> Result<ApiJson<ConsentLedger>, ApiError> {
    let (subject, history, current) =
        tutela_app::consents::ledger(&state, &actor, &raw_subject).await?;
    let show_token = actor.role() == Role::PrivacyOfficer;
    let current = current
        .iter()
        .map(|c| consent_view(c, show_token))
        .collect();
    Ok(ApiJson(ConsentLedger {
        subject: subject.id.to_string(),
        current,
        history: history
            .iter()
            .map(|c| consent_view(c, show_token))
            .collect(),
    }))
}

/// `POST /v1/purpose-changes` body (R27).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPurposeChange {
    /// Purpose ids whose use the successor changes.
    pub purposes: Vec<String>,
    /// The successor controller (company name).
    pub controller: String,
    /// Why the purpose changes (shown to subjects in the notice).
    pub reason: String,
    /// Reference of the notice sent to subjects.
    pub notice_ref: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PurposeChangeView {
    pub id: String,
    pub purpose: String,
    pub controller: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice_ref: Option<String>,
    pub at: String,
}

fn change_view(c: &PurposeChange) -> PurposeChangeView {
    PurposeChangeView {
        id: c.id.clone(),
        purpose: c.purpose.to_string(),
        controller: c.controller.clone(),
        reason: c.reason.clone(),
        notice_ref: c.notice_ref.clone(),
        at: super::input::rfc3339(c.at),
    }
}

/// Marks purposes as changed by a successor controller (R27): from now on, each
/// subject's data may be used for them only after that subject consents again.
#[utoipa::path(
    post, path = "/v1/purpose-changes", tag = "consents", security(("bearer" = [])),
    request_body = NewPurposeChange,
    responses((status = 201, body = [PurposeChangeView]), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody))
)]
pub async fn record_purpose_change(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiJson(body): ApiJson<NewPurposeChange>,
) -> Result<(StatusCode, ApiJson<Vec<PurposeChangeView>>), ApiError> {
    if !matches!(actor.role(), Role::Operator | Role::PrivacyOfficer) {
        return Err(ApiError::forbidden_role("record purpose changes"));
    }
    if body.purposes.is_empty() {
        return Err(ApiError::invalid(
            "invalid_purpose_change",
            "name at least one purpose",
        ));
    }
    let purposes = body
        .purposes
        .iter()
        .map(|p| Purpose::parse(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::Invalid {
            code: "invalid_purpose",
            message: e.to_string(),
            clause: Some(Clause::r(27)),
        })?;
    let controller = super::input::bounded_text(
        "controller",
        &body.controller,
        200,
        true,
        "invalid_purpose_change",
    )?;
    let reason =
        super::input::bounded_text("reason", &body.reason, 2000, true, "invalid_purpose_change")?;
    let notice_ref = super::input::reference("notice_ref", body.notice_ref.as_deref(), 128)?;
    let changes = tutela_app::consents::record_purpose_changes(
        &state, &actor, purposes, controller, reason, notice_ref,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(changes.iter().map(change_view).collect()),
    ))
}

/// Every purpose change by a successor controller.
#[utoipa::path(
    get, path = "/v1/purpose-changes", tag = "consents", security(("bearer" = [])),
    responses((status = 200, body = [PurposeChangeView]), (status = 403, body = crate::error::ErrorBody))
)]
pub async fn list_purpose_changes(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
) -> Result<ApiJson<Vec<PurposeChangeView>>, ApiError> {
    if !matches!(
        actor.role(),
        Role::Operator | Role::PrivacyOfficer | Role::Auditor
    ) {
        return Err(ApiError::forbidden_role("read purpose changes"));
    }
    let changes = state.store.purpose_changes().await?;
    Ok(ApiJson(changes.iter().map(change_view).collect()))
}
