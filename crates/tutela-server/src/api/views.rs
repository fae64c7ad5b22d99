//! Response views that several handler modules return: a request, a tenant, a subject, a
//! consent entry, contact preferences, a transfer. Each is the JSON shape of `API.md`
//! and a mapping from what the service layer returns; handlers share these instead of
//! calling each other.

use super::input::rfc3339;
use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tutela_app::AppState;
use tutela_core::contact::{ContactChannel, PreferenceTopic, Preferences};
use tutela_core::request::{RequestStatus, RequestType};
use tutela_store::consents::ConsentEntry;
use tutela_store::requests::StoredRequest;
use tutela_store::sharing::Transfer;
use tutela_store::subjects::Subject;
use tutela_store::tenants::Tenant;
use utoipa::ToSchema;

// Requests (R33, R34, R35).

/// Where a refused requester can take the dispute (R35).
const DISPUTE_CHANNELS: &[&str] = &[
    "the personal information protection officer (complaint, answered within 30 days)",
    "the competent personal information protection authority",
    "a people's court with jurisdiction",
];

#[derive(Debug, Serialize, ToSchema)]
pub struct Consequence {
    pub zh: String,
    pub en: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequestView {
    pub id: String,
    pub subject: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub received_at: String,
    pub due_at: String,
    pub overdue: bool,
    /// What stops working if fulfilled (R33); empty when nothing does.
    pub consequences: Vec<Consequence>,
    pub confirmed: bool,
    pub extended: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal_ground: Option<String>,
    /// The requester's details and the answers, opened for who may see them.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub notes: BTreeMap<String, String>,
    /// On refusal: where the requester can turn (R35).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dispute_channels: Vec<String>,
    /// For a fulfilled deletion: what was erased and what the law keeps (R19, R33).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erasure: Option<ErasureView>,
    /// Each recipient's deletion notice (R34).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<DeliveryView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureView {
    pub erased_at: String,
    /// What the law keeps stays frozen until then (R19).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frozen_until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ground: Option<String>,
}

/// One recipient's deletion notice (R34).
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub recipient: String,
    /// pending, delivered, acknowledged, waived or manual.
    pub status: String,
    pub idempotency_key: String,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waived_reason: Option<String>,
}

async fn delivery_view(
    texts: &mut tutela_app::keys::TenantTexts<'_>,
    d: &tutela_store::deliveries::Delivery,
) -> Result<DeliveryView, ApiError> {
    let waived_reason = match &d.waived_reason_sealed {
        Some(sealed) => Some(
            texts
                .open(&tutela_app::requests::waiver_scope(&d.id), sealed)
                .await?,
        ),
        // Written in clear before schema 19.
        None => d.waived_reason.clone(),
    };
    Ok(DeliveryView {
        recipient: d.recipient.clone(),
        status: d.status.to_string(),
        idempotency_key: d.id.clone(),
        attempts: d.attempts,
        next_attempt_at: d.status.is_sendable().then(|| rfc3339(d.next_attempt_at)),
        last_error: d.last_error.clone(),
        acknowledged_at: d.acked_at.map(rfc3339),
        waived_reason,
    })
}

/// A request as its readers see it: notes opened, and for a deletion what was erased
/// and each recipient's notice.
pub(crate) async fn request_view(
    state: &AppState,
    r: &StoredRequest,
) -> Result<RequestView, ApiError> {
    let now = state.clock.now();
    let (erasure, deliveries) = if r.kind == RequestType::Delete {
        let subject = state.store.subject(&r.subject).await?;
        let erasure = subject.and_then(|s| {
            Some(ErasureView {
                erased_at: rfc3339(s.erased_at?),
                frozen_until: s.frozen_until.map(rfc3339),
                ground: s.frozen_ground,
            })
        });
        // The tenant key is read once, and only if a waiver needs opening.
        let mut texts = state.vault.tenant_texts(&state.store, &r.tenant);
        let mut views = Vec::new();
        for d in &state.store.deliveries_of(&r.id).await? {
            views.push(delivery_view(&mut texts, d).await?);
        }
        (erasure, views)
    } else {
        (None, Vec::new())
    };
    Ok(RequestView {
        erasure,
        deliveries,
        id: r.id.clone(),
        subject: r.subject.to_string(),
        kind: r.kind.to_string(),
        status: r.status.to_string(),
        received_at: rfc3339(r.received_at),
        due_at: rfc3339(r.due_at),
        overdue: tutela_app::requests::life(r).is_overdue(now),
        consequences: r
            .kind
            .consequences()
            .iter()
            .map(|(zh, en)| Consequence {
                zh: (*zh).to_owned(),
                en: (*en).to_owned(),
            })
            .collect(),
        confirmed: r.confirmed,
        extended: r.extended,
        verification_method: r.verification_method.clone(),
        refusal_ground: r.refusal_ground.clone(),
        notes: tutela_app::requests::open_notes(state, r).await?,
        dispute_channels: if r.status == RequestStatus::Refused {
            DISPUTE_CHANNELS.iter().map(|c| (*c).to_owned()).collect()
        } else {
            Vec::new()
        },
    })
}

// Tenants and subjects (R2).

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub state: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frozen_until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trial_ends_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<String>,
}

/// A tenant as its readers see it, the name opened from its seal (R29).
pub(crate) async fn tenant_view(state: &AppState, t: Tenant) -> Result<TenantView, ApiError> {
    let name = state.vault.tenant_name(&state.store, &t).await?;
    Ok(TenantView {
        id: t.id.to_string(),
        name: name.as_str().to_owned(),
        kind: t.kind.to_string(),
        state: t.state.to_string(),
        created_at: rfc3339(t.created_at),
        frozen_until: t.frozen_until.map(rfc3339),
        trial_ends_at: t.trial_ends_at.map(rfc3339),
        closed_at: t.closed_at.map(rfc3339),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectView {
    pub id: String,
    pub tenant: String,
    pub kind: String,
    /// Under 18 today (R43).
    pub minor: bool,
    pub created_at: String,
}

pub(crate) fn subject_view(s: Subject, today: time::Date) -> SubjectView {
    SubjectView {
        id: s.id.to_string(),
        tenant: s.tenant.to_string(),
        kind: s.kind.to_string(),
        minor: tutela_core::tenant::is_minor(s.adult_on, today),
        created_at: rfc3339(s.created_at),
    }
}

// Consents (R4).

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentView {
    pub id: String,
    pub purpose: String,
    pub granted: bool,
    pub statement_version: String,
    pub channel: String,
    /// Role of who recorded it.
    pub recorded_by: String,
    /// The recording token's id: shown to the privacy officer only (tenant admins,
    /// subjects and exports see the role, not operator token ids).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_by_token: Option<String>,
    /// How it was recorded (issue 14): `subject_self`, a cited evidence method
    /// (`signed_form`, `portal_session`, `email_confirmation`, `recorded_call`,
    /// `written_instruction`), `reference_only` (a bare `evidence_ref`), `unevidenced`
    /// (a withdrawal recorded on the subject's behalf without evidence) or
    /// `legacy_unrecorded` (recorded before provenance was kept).
    pub method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guardian_ref: Option<String>,
    /// The reference to the evidence of the act (see `method`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence_ref: Option<String>,
    pub at: String,
}

/// An entry as shown; `show_token` only for the privacy officer.
pub(crate) fn consent_view(c: &ConsentEntry, show_token: bool) -> ConsentView {
    ConsentView {
        id: c.id.clone(),
        purpose: c.scope.to_string(),
        granted: c.granted,
        statement_version: c.statement_version.clone(),
        channel: c.channel.to_string(),
        recorded_by: c.role.clone(),
        recorded_by_token: show_token.then(|| c.token_id.clone()),
        method: c.method.to_string(),
        guardian_ref: c.guardian_ref.clone(),
        evidence_ref: c.evidence_ref.clone(),
        at: rfc3339(c.at),
    }
}

// Contact preferences (R9, R15).

#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreferencesView {
    pub marketing: ChannelFlags,
    pub surveys: ChannelFlags,
    pub service_communications: bool,
}

fn flags(prefs: &Preferences, topic: PreferenceTopic) -> ChannelFlags {
    let get = |c| Some(prefs.get(&(topic, c)).copied().unwrap_or(false));
    ChannelFlags {
        email: get(ContactChannel::Email),
        phone: get(ContactChannel::Phone),
        sms: get(ContactChannel::Sms),
    }
}

pub(crate) fn preferences_view(prefs: &Preferences) -> PreferencesView {
    PreferencesView {
        marketing: flags(prefs, PreferenceTopic::Marketing),
        surveys: flags(prefs, PreferenceTopic::Surveys),
        service_communications: true,
    }
}

// Transfers (R23, R28).

#[derive(Debug, Serialize, ToSchema)]
pub struct TransferView {
    pub id: String,
    pub subject: String,
    pub recipient: String,
    pub recipient_kind: String,
    pub country: String,
    pub categories: Vec<String>,
    pub purpose: String,
    pub basis: String,
    pub clause: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legal_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prohibition_ref: Option<String>,
    pub at: String,
}

pub(crate) fn transfer_view(t: &Transfer) -> TransferView {
    TransferView {
        id: t.id.clone(),
        subject: t.subject.to_string(),
        recipient: t.recipient.clone(),
        recipient_kind: t.recipient_kind.to_string(),
        country: t.country.as_str().to_owned(),
        categories: t.categories.iter().map(ToString::to_string).collect(),
        purpose: t.purpose.to_string(),
        basis: t.basis.clone(),
        clause: t.clause.clone(),
        legal_ref: t.legal_ref.clone(),
        policy_ref: t.policy_ref.clone(),
        notice_id: t.notice_id.clone(),
        prohibition_ref: t.prohibition_ref.clone(),
        at: rfc3339(t.at),
    }
}
