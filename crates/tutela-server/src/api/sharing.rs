//! Residency, recipients and transfers (issue 5; R6, R17, R18, R21-R25, R28).
//!
//! - `POST/GET /v1/storage-locations`: a location outside mainland China for a category
//!   that must stay there is refused (R6).
//! - `POST/GET /v1/recipients`: only registered recipients receive personal information,
//!   and only what their kind may receive (R21); a third-party offering names its own
//!   policy (R25).
//! - `POST /v1/transfers`: every disclosure is decided by `tutela_core::transfer`; the
//!   register (`GET /v1/transfers`, CSV export) keeps what went ahead and on what basis;
//!   customer data disclosures notify the customer first unless a legal prohibition is
//!   recorded (R23). Every decision, allow or deny, is audited.

use super::input::rfc3339;
use crate::api::{ApiJson, ApiQuery};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tutela_core::consent::{self, ConsentEvent, ConsentScope};
use tutela_core::policy::{ConsentException, RecipientKind};
use tutela_core::transfer::{self, RecipientView, TransferConsents, TransferRequest};
use tutela_core::{Actor, Category, Clause, Country, Purpose, Region, Role, SubjectId};
use tutela_crypto::webhook::WebhookSecret;
use tutela_store::sharing::{Recipient, StorageLocation, Transfer, TransferFilter};
use tutela_store::vault::AuditEntry;
use utoipa::ToSchema;

fn require(actor: &Actor, roles: &[Role], what: &str) -> Result<(), ApiError> {
    if roles.contains(&actor.role()) {
        Ok(())
    } else {
        Err(ApiError::forbidden_role(what))
    }
}

fn categories(raw: &[String]) -> Result<Vec<Category>, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::invalid(
            "invalid_categories",
            "name at least one category",
        ));
    }
    let mut out = raw
        .iter()
        .map(|c| Category::parse(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::invalid("invalid_categories", e.to_string()))?;
    out.sort();
    out.dedup();
    Ok(out)
}

fn country(raw: &str) -> Result<Country, ApiError> {
    Country::parse(raw).map_err(|e| ApiError::invalid("invalid_country", e.to_string()))
}

fn audit(
    actor: &Actor,
    at: OffsetDateTime,
    action: &str,
    decision: bool,
    reason: &str,
    clause: Clause,
) -> AuditEntry {
    AuditEntry {
        id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
        at,
        token_id: actor.token().to_string(),
        role: actor.role().to_string(),
        tenant: None,
        subject: None,
        category: None,
        purpose: None,
        action: action.to_owned(),
        decision: if decision { "allow" } else { "deny" }.to_owned(),
        reason: reason.to_owned(),
        clause: Some(clause.to_string()),
        seq: None,
    }
}

// ---------------------------------------------------------------------------------------
// Storage locations (R6)
// ---------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStorageLocation {
    pub name: String,
    /// `cn` or `overseas`; must agree with the country.
    pub region: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub categories: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StorageLocationView {
    pub id: String,
    pub name: String,
    pub region: String,
    pub country: String,
    pub categories: Vec<String>,
}

fn location_view(l: &StorageLocation) -> StorageLocationView {
    StorageLocationView {
        id: l.id.clone(),
        name: l.name.clone(),
        region: l.region.to_string(),
        country: l.country.as_str().to_owned(),
        categories: l.categories.iter().map(ToString::to_string).collect(),
    }
}

/// Registers where data is stored; a non-CN place for a China-only category is refused.
#[utoipa::path(
    post, path = "/v1/storage-locations", tag = "sharing", security(("bearer" = [])),
    request_body = NewStorageLocation,
    responses((status = 201, body = StorageLocationView), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody))
)]
pub async fn register_location(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiJson(body): ApiJson<NewStorageLocation>,
) -> Result<(StatusCode, ApiJson<StorageLocationView>), ApiError> {
    require(&actor, &[Role::Operator], "register storage locations")?;
    let name = super::input::bounded_text("name", &body.name, 200, true, "invalid_name")?;
    let region = Region::parse(&body.region)
        .map_err(|e| ApiError::invalid("invalid_region", e.to_string()))?;
    let country = country(&body.country)?;
    if country.region() != region {
        return Err(ApiError::Invalid {
            code: "region_mismatch",
            message: format!("{} is not in region `{region}`", country.as_str()),
            clause: Some(Clause::r(6)),
        });
    }
    let categories = categories(&body.categories)?;
    let now = state.clock.now();
    let outside: Vec<String> = categories
        .iter()
        .filter(|c| {
            state
                .policy
                .category(**c)
                .is_some_and(|cp| cp.residency == Region::Cn)
        })
        .map(ToString::to_string)
        .collect();
    if region == Region::Overseas && !outside.is_empty() {
        let mut a = audit(
            &actor,
            now,
            "storage_location_register",
            false,
            "residency_violation",
            Clause::r(6),
        );
        a.category = outside.first().cloned();
        state.audit_writer.append(a).await?;
        return Err(ApiError::Forbidden {
            code: "residency_violation",
            message: format!(
                "{} must be stored in mainland China; {} is not",
                outside.join(", "),
                country.as_str()
            ),
            clause: Some(Clause::r(6)),
        });
    }
    let location = StorageLocation {
        id: format!("loc_{}", uuid::Uuid::now_v7().simple()),
        name,
        region,
        country,
        categories,
        created_at: now,
    };
    let a = audit(
        &actor,
        now,
        "storage_location_register",
        true,
        "residency_ok",
        Clause::r(6),
    );
    state.store.insert_storage_location(&location, &a).await?;
    Ok((StatusCode::CREATED, ApiJson(location_view(&location))))
}

#[utoipa::path(
    get, path = "/v1/storage-locations", tag = "sharing", security(("bearer" = [])),
    responses((status = 200, body = [StorageLocationView]), (status = 403, body = crate::error::ErrorBody))
)]
pub async fn list_locations(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
) -> Result<ApiJson<Vec<StorageLocationView>>, ApiError> {
    require(
        &actor,
        &[Role::Operator, Role::PrivacyOfficer, Role::Auditor],
        "list storage locations",
    )?;
    let all = state.store.storage_locations().await?;
    Ok(ApiJson(all.iter().map(location_view).collect()))
}

// ---------------------------------------------------------------------------------------
// Recipients (R21-R25, R28)
// ---------------------------------------------------------------------------------------

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
    let name = super::input::bounded_text("name", &body.name, 200, true, "invalid_name")?;
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
        super::input::reference("commitment_ref", body.commitment_ref.as_deref(), 256)?;
    if kind != RecipientKind::Authority && commitment_ref.is_none() {
        return Err(ApiError::Invalid {
            code: "commitment_required",
            message: "name the confidentiality / protection commitment the recipient signed".into(),
            clause: Some(Clause::r(21)),
        });
    }
    let policy_ref = super::input::reference("policy_ref", body.policy_ref.as_deref(), 256)?;
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
    let now = state.clock.now();
    let id = format!("rcp_{}", uuid::Uuid::now_v7().simple());
    let secret = match webhook_url {
        Some(_) => Some(WebhookSecret::generate().map_err(|e| ApiError::Internal(e.into()))?),
        None => None,
    };
    let webhook_secret = secret
        .as_ref()
        .map(|s| state.vault.seal_webhook_secret(&id, s))
        .transpose()?;
    let recipient = Recipient {
        id,
        name,
        kind,
        country,
        purposes,
        categories,
        commitment_ref,
        policy_ref,
        webhook_url,
        webhook_secret,
        created_at: now,
    };
    let a = audit(
        &actor,
        now,
        "recipient_register",
        true,
        &format!("recipient:{}", recipient.id),
        kind_policy.clause,
    );
    state.store.insert_recipient(&recipient, &a).await?;
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
    let secret = WebhookSecret::generate().map_err(|e| ApiError::Internal(e.into()))?;
    let sealed = state.vault.seal_webhook_secret(&id, &secret)?;
    let now = state.clock.now();
    let a = audit(
        &actor,
        now,
        "recipient_secret_rotate",
        true,
        &format!("recipient:{id}"),
        Clause::r(34),
    );
    if !state
        .store
        .set_webhook_secret_audited(&id, &sealed, &a)
        .await?
    {
        return Err(ApiError::not_found("recipient with a webhook"));
    }
    let recipient = state
        .store
        .recipient(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("recipient"))?;
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

// ---------------------------------------------------------------------------------------
// Transfers
// ---------------------------------------------------------------------------------------

/// A legal exception claimed instead of consent (R28).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LegalBasis {
    /// One of the six consent exceptions.
    pub exception: String,
    /// The legal reference (order number, statute).
    pub reference: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTransfer {
    pub subject: String,
    pub recipient: String,
    pub categories: Vec<String>,
    pub purpose: String,
    pub basis: Option<LegalBasis>,
    /// A legal prohibition on notifying the customer of a customer-data disclosure (R23).
    pub legal_prohibition_ref: Option<String>,
}

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

/// Decides one disclosure or transfer; records it in the register when it goes ahead.
#[utoipa::path(
    post, path = "/v1/transfers", tag = "sharing", security(("bearer" = [])),
    request_body = NewTransfer,
    responses((status = 201, body = TransferView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody))
)]
pub async fn transfer(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiJson(body): ApiJson<NewTransfer>,
) -> Result<(StatusCode, ApiJson<TransferView>), ApiError> {
    require(
        &actor,
        // Integrated systems transfer; disclosures to authorities on a legal ground are
        // the privacy office's (R28). The operator's administrators transfer nothing.
        &[Role::Service, Role::PrivacyOfficer],
        "transfer personal information",
    )?;
    let categories = categories(&body.categories)?;
    let purpose = Purpose::parse(&body.purpose)
        .map_err(|e| ApiError::invalid("invalid_purpose", e.to_string()))?;
    // A service discloses only what its token was created for (issue 14, R29).
    if actor.role() == Role::Service {
        if let Some(c) = categories
            .iter()
            .find(|c| !actor.scope().covers(**c, Some(purpose)))
        {
            return Err(ApiError::Forbidden {
                code: "token_scope",
                message: format!("this service token is not scoped to {c} data for {purpose}"),
                clause: Some(Clause::r(29)),
            });
        }
    }
    let (exception, legal_ref) = match &body.basis {
        None => (None, None),
        Some(b) => {
            let e = ConsentException::parse(&b.exception).map_err(|e| ApiError::Invalid {
                code: "invalid_exception",
                message: e.to_string(),
                clause: Some(Clause::r(28)),
            })?;
            let r = super::input::reference("basis.reference", Some(&b.reference), 256)?;
            (Some(e), r)
        }
    };
    let prohibition_ref = super::input::reference(
        "legal_prohibition_ref",
        body.legal_prohibition_ref.as_deref(),
        256,
    )?;
    let (subject, tenant) = super::tenants::subject_and_tenant(&state, &body.subject).await?;
    let now = state.clock.now();
    let mut entry = audit(&actor, now, "transfer", false, "", Clause::r(21));
    entry.tenant = Some(subject.tenant.to_string());
    entry.subject = Some(subject.id.to_string());
    entry.category = categories.first().map(ToString::to_string);
    entry.purpose = Some(purpose.to_string());
    // R19, R41: a closed, expired or erased account's data is not disclosed.
    if !matches!(
        tenant.state,
        tutela_core::tenant::TenantState::Trial | tutela_core::tenant::TenantState::Active
    ) {
        let clause = Clause::r(
            if tenant.state == tutela_core::tenant::TenantState::Expired {
                41
            } else {
                19
            },
        );
        entry.reason = "account_frozen".into();
        entry.clause = Some(clause.to_string());
        state.audit_writer.append(entry).await?;
        return Err(ApiError::Locked {
            code: "frozen",
            message: format!("the account is {}; its data is not disclosed", tenant.state),
            clause: Some(clause),
        });
    }
    // R19, R33: nothing of an erased subject leaves, and what the law keeps is frozen.
    if let Some(clause) = subject.hold(now).clause() {
        entry.reason = "subject_erased".into();
        entry.clause = Some(clause.to_string());
        state.audit_writer.append(entry).await?;
        return Err(ApiError::Locked {
            code: "subject_erased",
            message:
                "this subject's data was erased; what the law keeps is frozen and is not disclosed"
                    .into(),
            clause: Some(clause),
        });
    }
    // R21: an unregistered recipient receives nothing.
    let Some(recipient) = state.store.recipient(&body.recipient).await? else {
        entry.reason = "recipient_not_registered".into();
        state.audit_writer.append(entry).await?;
        return Err(ApiError::Forbidden {
            code: "recipient_not_registered",
            message: "only registered recipients receive personal information".into(),
            clause: Some(Clause::r(21)),
        });
    };
    // The subject's consents that matter: cross-border, and sharing with this offering.
    let events: Vec<ConsentEvent> = state
        .store
        .consents_of(&subject.id)
        .await?
        .into_iter()
        .map(|c| ConsentEvent {
            scope: c.scope,
            granted: c.granted,
            at: c.at,
        })
        .collect();
    let current = consent::current_state(&events);
    let granted = |scope: &ConsentScope| current.get(scope).is_some_and(|(g, _)| *g);
    let consents = TransferConsents {
        cross_border: granted(&ConsentScope::CrossBorder),
        third_party: granted(&ConsentScope::ThirdPartyOffering(recipient.id.clone())),
    };
    let d = transfer::decide_transfer(
        &state.policy,
        &TransferRequest {
            recipient: RecipientView {
                kind: recipient.kind,
                country: recipient.country,
                categories: &recipient.categories,
                purposes: &recipient.purposes,
                has_policy_ref: recipient.policy_ref.is_some(),
            },
            categories: &categories,
            purpose,
            consents,
            exception,
        },
    );
    entry.clause = Some(d.clause.to_string());
    entry.reason = d.reason.to_owned();
    let Some(basis) = d.basis else {
        state.audit_writer.append(entry).await?;
        return Err(ApiError::Forbidden {
            code: d.reason,
            message: format!(
                "transfer refused: {} ({})",
                d.reason.replace('_', " "),
                d.clause
            ),
            clause: Some(d.clause),
        });
    };
    // R23: the customer hears of a disclosure of its data before it completes, unless
    // the law forbids telling it (the prohibition's reference is recorded instead).
    let notice_id = if d.notice_required && prohibition_ref.is_none() {
        Some(
            super::contact::send_service_notice(
                &state,
                &actor,
                &subject,
                "customer-data-disclosure-notice",
                Clause::r(23),
            )
            .await?,
        )
    } else {
        None
    };
    entry.decision = "allow".into();
    entry.reason = format!("{}:{}", d.reason, recipient.id);
    let record = Transfer {
        id: format!("trf_{}", uuid::Uuid::now_v7().simple()),
        subject: subject.id.clone(),
        tenant: subject.tenant.clone(),
        recipient: recipient.id.clone(),
        recipient_kind: recipient.kind,
        country: recipient.country,
        categories,
        purpose,
        basis: basis.label(),
        legal_ref: legal_ref.filter(|_| matches!(basis, transfer::Basis::Exception(_))),
        policy_ref: recipient
            .policy_ref
            .clone()
            .filter(|_| recipient.kind == RecipientKind::ThirdPartyOffering),
        notice_id,
        prohibition_ref: prohibition_ref.filter(|_| d.notice_required),
        clause: d.clause.to_string(),
        at: now,
    };
    state.store.insert_transfer_audited(&record, &entry).await?;
    Ok((StatusCode::CREATED, ApiJson(transfer_view(&record))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterQuery {
    pub subject: Option<String>,
    pub recipient: Option<String>,
    pub country: Option<String>,
    /// RFC 3339; inclusive.
    pub from: Option<String>,
    /// RFC 3339; exclusive.
    pub to: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
    pub limit: Option<u32>,
}

fn time_param(name: &str, raw: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    raw.map(|t| {
        OffsetDateTime::parse(t, &Rfc3339).map_err(|_| {
            ApiError::invalid(
                "invalid_query",
                format!("`{name}` must be an RFC 3339 time"),
            )
        })
    })
    .transpose()
}

/// The transfer register, filtered by subject, recipient, country and time; JSON or CSV.
#[utoipa::path(
    get, path = "/v1/transfers", tag = "sharing", security(("bearer" = [])),
    params(
        ("subject" = Option<String>, Query), ("recipient" = Option<String>, Query),
        ("country" = Option<String>, Query), ("from" = Option<String>, Query),
        ("to" = Option<String>, Query), ("format" = Option<String>, Query, description = "json or csv"),
        ("limit" = Option<u32>, Query, description = "1 to 10000, default 1000"),
    ),
    responses((status = 200, body = [TransferView]), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody))
)]
pub async fn register(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiQuery(q): ApiQuery<RegisterQuery>,
) -> Result<Response, ApiError> {
    require(
        &actor,
        &[Role::PrivacyOfficer, Role::Auditor],
        "read the transfer register",
    )?;
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_query",
            "limit must be between 1 and 10000",
        ));
    }
    let filter = TransferFilter {
        subject: q
            .subject
            .as_deref()
            .map(SubjectId::parse)
            .transpose()
            .map_err(|e| ApiError::invalid("invalid_query", e.to_string()))?,
        recipient: q.recipient.clone(),
        country: q.country.as_deref().map(country).transpose()?,
        from: time_param("from", q.from.as_deref())?,
        to: time_param("to", q.to.as_deref())?,
        limit: i64::from(limit),
    };
    let rows = state.store.transfers(&filter).await?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(ApiJson(rows.iter().map(transfer_view).collect::<Vec<_>>()).into_response()),
        "csv" => {
            let mut out = String::from(
                "id,at,subject,recipient,recipient_kind,country,categories,purpose,basis,clause,legal_ref,policy_ref,notice_id,prohibition_ref\n",
            );
            for t in &rows {
                let v = transfer_view(t);
                // Every field is an id, vocabulary or reference without commas or quotes
                // except categories, which are quoted.
                out.push_str(&format!(
                    "{},{},{},{},{},{},\"{}\",{},{},{},{},{},{},{}\n",
                    v.id,
                    v.at,
                    v.subject,
                    v.recipient,
                    v.recipient_kind,
                    v.country,
                    v.categories.join(","),
                    v.purpose,
                    v.basis,
                    v.clause,
                    v.legal_ref.unwrap_or_default().replace([',', '"'], " "),
                    v.policy_ref.unwrap_or_default().replace([',', '"'], " "),
                    v.notice_id.unwrap_or_default(),
                    v.prohibition_ref
                        .unwrap_or_default()
                        .replace([',', '"'], " "),
                ));
            }
            let mut r = out.into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            r.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"transfers.csv\""),
            );
            Ok(r)
        }
        _ => Err(ApiError::invalid(
            "invalid_query",
            "format must be `json` or `csv`",
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Third-party complaints (R23)
// ---------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComplaint {
    /// The customer the complaint is about.
    pub tenant: String,
    /// The ticket in the operator's complaint system (its content stays there).
    pub complaint_ref: String,
}

/// Basic contact data of one of the customer's administrators: name and e-mail only.
#[derive(Debug, Serialize, ToSchema)]
pub struct BasicContact {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ComplaintRedirected {
    pub id: String,
    pub tenant: String,
    pub tenant_name: String,
    /// Notices sent to the customer's administrators about the complaint.
    pub notices: Vec<String>,
    /// What the third party may be given: the customer's basic contact data.
    pub contacts: Vec<BasicContact>,
}

/// Redirects a third party's complaint about a customer's data to the customer: the
/// customer's administrators are notified, and the third party gets only their basic
/// contact data (name, e-mail), read through the purpose-checked path (R23).
#[utoipa::path(
    post, path = "/v1/third-party-complaints", tag = "sharing", security(("bearer" = [])),
    request_body = NewComplaint,
    responses((status = 201, body = ComplaintRedirected), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody))
)]
pub async fn redirect_complaint(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiJson(body): ApiJson<NewComplaint>,
) -> Result<(StatusCode, ApiJson<ComplaintRedirected>), ApiError> {
    require(
        &actor,
        &[Role::Operator, Role::PrivacyOfficer],
        "redirect third-party complaints",
    )?;
    let complaint_ref = super::input::reference("complaint_ref", Some(&body.complaint_ref), 256)?
        .unwrap_or_default();
    let tenant_id =
        tutela_core::TenantId::parse(&body.tenant).map_err(|_| ApiError::not_found("tenant"))?;
    let tenant = state
        .cache
        .tenant(&state.store, &tenant_id)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    let now = state.clock.now();
    let admins: Vec<_> = state
        .store
        .subjects_of(&tenant_id, None, 50)
        .await?
        .into_iter()
        .filter(|s| s.kind == tutela_core::tenant::SubjectKind::Administrator)
        .collect();
    let mut notices = Vec::new();
    let mut contacts = Vec::new();
    // Redirecting a third party's complaint to the customer is the statement's own
    // obligation (R23): the reads name it as their basis.
    let complaint_basis =
        super::records::CheckedBasis::legal(&format!("third_party_complaint:{complaint_ref}"));
    for admin in &admins {
        // The customer hears of the complaint (a service notice, R9/R23).
        notices.push(
            super::contact::send_service_notice(
                &state,
                &actor,
                admin,
                "third-party-complaint-redirect",
                Clause::r(23),
            )
            .await?,
        );
        // Basic contact data only, through the purpose-checked, audited read.
        match super::records::read_record(
            &state,
            &actor,
            admin.id.as_str(),
            Category::Administrator,
            Purpose::LegalObligation,
            Some(&complaint_basis),
        )
        .await
        {
            Ok(view) => contacts.push(BasicContact {
                name: view.fields.get("name").cloned(),
                email: view.fields.get("email").cloned(),
            }),
            Err(ApiError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let complaint = tutela_store::sharing::Complaint {
        id: format!("cmp_{}", uuid::Uuid::now_v7().simple()),
        tenant: tenant_id.clone(),
        complaint_ref,
        notices: notices.clone(),
        received_by: actor.token().to_string(),
        at: now,
    };
    let mut a = audit(
        &actor,
        now,
        "third_party_complaint",
        true,
        "redirected_to_customer",
        Clause::r(23),
    );
    a.tenant = Some(tenant_id.to_string());
    state.store.insert_complaint_audited(&complaint, &a).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(ComplaintRedirected {
            id: complaint.id,
            tenant: tenant_id.to_string(),
            tenant_name: state
                .vault
                .tenant_name(&state.store, &tenant)
                .await?
                .as_str()
                .to_owned(),
            notices,
            contacts,
        }),
    ))
}
