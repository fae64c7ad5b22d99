//! `PUT/GET/DELETE /v1/subjects/{subject}/records/{category}`: the purpose-checked path
//! of `DESIGN.md`. authenticate -> parse -> decide (pure) -> vault -> audit -> respond.
//! Every decision, allow or deny, leaves an audit entry; a write's entry commits with
//! the write, a read's entry is durable before the data leaves, and a failed audit write
//! fails the access.

use crate::api::{ApiJson, ApiPath, ApiQuery};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tutela_core::consent::{ConsentEvent, ConsentScope};
use tutela_core::contact::{self, PreferenceTopic};
use tutela_core::decide::{
    self, Action, ConditionFacts, Decision, Denial, Effect, NamedBasis, Outcome, Target,
};
use tutela_core::policy::PurposeCondition;
use tutela_core::request::RequestStatus;
use tutela_core::{tenant, Actor, Category, Clause, Purpose, Region, Role};
use tutela_store::subjects::Subject;
use tutela_store::vault::{AuditEntry, RecordExtras, SealedRecord, WrappedKeys};
use utoipa::ToSchema;

/// `PUT` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordWrite {
    /// The purpose of collecting this data (a purpose id of the policy).
    pub purpose: String,
    /// The online service the data belongs to (R1).
    pub service: String,
    /// Field name -> value; names must be declared for the category (R3).
    pub fields: BTreeMap<String, String>,
    /// A registered storage location for this record (R6); default: the default one.
    pub location: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordWritten {
    pub version: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordView {
    pub category: String,
    pub service: String,
    pub version: i64,
    pub fields: BTreeMap<String, String>,
    /// The clause that allowed this read.
    pub clause: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposeQuery {
    pub purpose: Option<String>,
    /// The privacy officer's basis: an open, identity-verified request about this
    /// subject (R29, R35). The purpose may then be omitted.
    pub request: Option<String>,
    /// The privacy officer's basis: the reference of a legal obligation, with
    /// `purpose=legal_obligation` (R29).
    pub legal_ref: Option<String>,
}

/// A basis the privacy officer named, checked, with the note its audit entry carries
/// (ids and references only, never personal data).
#[derive(Debug, Clone)]
pub(crate) struct CheckedBasis {
    pub basis: NamedBasis,
    pub note: String,
}

impl CheckedBasis {
    /// A legal obligation with its reference (already validated as a reference).
    pub(crate) fn legal(reference: &str) -> Self {
        Self {
            basis: NamedBasis::LegalObligation,
            note: format!("legal_ref:{reference}"),
        }
    }
}

/// Checks what a caller named as its basis. Only the privacy officer names one; a request
/// counts only while it is about this subject and its requester's identity is verified
/// and it is not finished (R35).
async fn named_basis(
    state: &AppState,
    actor: &Actor,
    raw_subject: &str,
    q: &PurposeQuery,
) -> Result<Option<CheckedBasis>, ApiError> {
    if q.request.is_none() && q.legal_ref.is_none() {
        return Ok(None);
    }
    if actor.role() != Role::PrivacyOfficer {
        return Err(ApiError::Invalid {
            code: "basis_not_applicable",
            message: "only the privacy officer names a request or legal reference as a basis"
                .into(),
            clause: Some(Clause::r(29)),
        });
    }
    if let Some(id) = q.request.as_deref() {
        let id = super::input::reference("request", Some(id), 64)?.unwrap_or_default();
        if q.purpose.is_some() {
            return Err(ApiError::Invalid {
                code: "purpose_with_request",
                message: "a read to fulfil a request names no purpose: the request is the basis"
                    .into(),
                clause: Some(Clause::r(35)),
            });
        }
        // The request must be the subject's own (or its controller's): one the privacy
        // office filed itself is no independent basis for reading (R29).
        let usable = state.store.request(&id).await?.filter(|r| {
            r.subject.as_str() == raw_subject
                && matches!(r.filed_role.as_str(), "end_user" | "tenant_admin")
                && matches!(
                    r.status,
                    RequestStatus::IdentityVerified | RequestStatus::InProgress
                )
        });
        return match usable {
            Some(r) => Ok(Some(CheckedBasis {
                basis: NamedBasis::Request,
                note: format!("request:{}", r.id),
            })),
            None => {
                // A refused basis is an attempt to read personal data: audited like any
                // denial (the subject hidden from view answers 404 instead).
                let (subject, _) = super::tenants::subject_and_tenant(state, raw_subject).await?;
                state
                    .audit_writer
                    .append(AuditEntry {
                        id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
                        at: state.clock.now(),
                        token_id: actor.token().to_string(),
                        role: actor.role().to_string(),
                        tenant: Some(subject.tenant.to_string()),
                        subject: Some(subject.id.to_string()),
                        category: None,
                        purpose: None,
                        action: "read".to_owned(),
                        decision: "deny".to_owned(),
                        reason: "basis_not_open".to_owned(),
                        clause: Some(Clause::r(35).to_string()),
                        seq: None,
                    })
                    .await?;
                Err(ApiError::Forbidden {
                    code: "basis_not_open",
                    message: "the request is not an open, identity-verified request filed by or for this subject"
                        .into(),
                    clause: Some(Clause::r(35)),
                })
            }
        };
    }
    let reference =
        super::input::reference("legal_ref", q.legal_ref.as_deref(), 200)?.unwrap_or_default();
    Ok(Some(CheckedBasis::legal(&reference)))
}

fn parse_category(raw: &str) -> Result<Category, ApiError> {
    Category::parse(raw).map_err(|e| ApiError::Invalid {
        code: "invalid_category",
        message: e.to_string(),
        clause: Some(Clause::r(3)),
    })
}

fn parse_purpose(raw: Option<&str>) -> Result<Purpose, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::Invalid {
        code: "purpose_required",
        message: "declare a purpose (`?purpose=` for reads, `purpose` in the body for writes)"
            .into(),
        clause: Some(Clause::r(4)),
    })?;
    Purpose::parse(raw).map_err(|e| ApiError::Invalid {
        code: "invalid_purpose",
        message: e.to_string(),
        clause: Some(Clause::r(4)),
    })
}

fn audit_entry(
    state: &AppState,
    actor: &Actor,
    subject: &Subject,
    category: Category,
    purpose: Option<Purpose>,
    action: Action,
    d: &Decision,
) -> AuditEntry {
    AuditEntry {
        id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
        at: state.clock.now(),
        token_id: actor.token().to_string(),
        role: actor.role().to_string(),
        tenant: Some(subject.tenant.to_string()),
        subject: Some(subject.id.to_string()),
        category: Some(category.to_string()),
        purpose: purpose.map(|p| p.to_string()),
        action: action.as_str().to_owned(),
        decision: if d.is_allowed() { "allow" } else { "deny" }.to_owned(),
        reason: d.reason.to_string(),
        clause: Some(d.clause.to_string()),
        seq: None,
    }
}

fn denial_error(d: &Decision) -> ApiError {
    let message = format!(
        "denied: {} ({})",
        d.reason.as_str().replace('_', " "),
        d.clause
    );
    match d.effect {
        Effect::Deny(Denial::Hidden) => ApiError::not_found("subject"),
        Effect::Deny(Denial::Frozen) => ApiError::Locked {
            code: "frozen",
            message,
            clause: Some(d.clause),
        },
        _ => ApiError::Forbidden {
            code: d.reason.as_str(),
            message,
            clause: Some(d.clause),
        },
    }
}

/// What [`authorize`] allowed.
struct Authorized {
    subject: Subject,
    decision: Decision,
    /// The audit entry, not yet written: the caller commits it with its work.
    audit: AuditEntry,
    /// For a read allowed by express consent: the record and its keys, fetched in the
    /// same query as the consent entry.
    prefetched: Option<(SealedRecord, WrappedKeys)>,
    /// Personal information must be removed before the data leaves: training use (R13),
    /// or an overseas engineer's grant that does not cover it (R7, R22).
    redact: bool,
}

/// Support-data fields that identify a person whatever they contain: withheld whole in a
/// redacted view. Free-text fields are scanned and their findings replaced (R13).
const IDENTIFYING_SUPPORT_FIELDS: &[&str] = &["contact", "chat_personalization"];

/// The redacted view of support data (R7, R13, R22).
fn redact_fields(fields: &mut BTreeMap<String, String>) {
    let redactor = tutela_pii::Redactor::new(tutela_pii::Operator::Tag);
    let mut spans = Vec::new();
    for (name, value) in fields.iter_mut() {
        if IDENTIFYING_SUPPORT_FIELDS.contains(&name.as_str()) {
            *value = "<REDACTED>".to_owned();
            continue;
        }
        let mut out = String::with_capacity(value.len());
        for (n, line) in value.split('\n').enumerate() {
            if n > 0 {
                out.push('\n');
            }
            spans.clear();
            tutela_pii::scan_line(line, &mut spans);
            redactor.redact_line(line, &spans, &mut out);
        }
        *value = out;
    }
}

/// The shared front of every record route: load the subject, decide, and on a deny
/// write the audit entry and answer with the clause.
async fn authorize(
    state: &AppState,
    actor: &Actor,
    raw_subject: &str,
    category: Category,
    action: Action,
    basis: Option<&CheckedBasis>,
) -> Result<Authorized, ApiError> {
    let (subject, tenant) = super::tenants::subject_and_tenant(state, raw_subject).await?;
    let now = state.clock.now();
    let target = Target {
        tenant: &subject.tenant,
        subject: &subject.id,
        tenant_state: tenant.state,
        hold: subject.hold(now),
        minor: tenant::is_minor(subject.adult_on, now.date()),
    };
    // R7, R29: a support engineer acts only under an approved, unexpired grant of its own.
    let (grant_views, grant_ids) = if actor.role() == Role::Support {
        super::grants::active_grant_views(state, &subject.tenant).await?
    } else {
        (Vec::new(), Vec::new())
    };
    let purpose = action.purpose();
    // R27: a purpose changed by a successor controller needs this subject's consent
    // given after the change. The map is small and cached; usually empty.
    let purpose_changed_at = match purpose {
        Some(p) => state
            .cache
            .changed_purposes(&state.store)
            .await?
            .get(&p)
            .copied(),
        None => None,
    };
    let outcome = decide::decide(
        &state.policy,
        &decide::Request {
            actor,
            action,
            target,
            category,
            purpose_changed_at,
            grants: &grant_views,
            basis: basis.map(|b| b.basis),
            now,
        },
    );
    // The ledger is read only when the decision asks for it: an undeclared purpose (R4),
    // a minor's write (R43) or a purpose a successor changed (R27). Declared purposes,
    // the common case, cost no extra query.
    let mut prefetched = None;
    let mut d = match outcome {
        Outcome::Decided(d) => d,
        Outcome::NeedsConsent(q) => {
            // A read waiting only on its purpose's consent (R4, R27): one query brings
            // the record, its keys and that purpose's latest consent entry, so consent
            // costs no extra round trip.
            let joined = if matches!(action, Action::Read(_)) && !q.asks_guardian() {
                state
                    .store
                    .record_with_keys_and_consent(&subject.id, category, q.purpose().as_str())
                    .await?
            } else {
                None
            };
            match joined {
                Some((record, chain, latest)) => {
                    let latest = latest.map(|(granted, at)| ConsentEvent {
                        scope: ConsentScope::Purpose(q.purpose()),
                        granted,
                        at,
                    });
                    prefetched = Some((record, chain));
                    decide::resolve_consent(&q, latest.as_slice())
                }
                None => {
                    let events = super::consents::consent_events(state, &subject).await?;
                    decide::resolve_consent(&q, &events)
                }
            }
        }
    };
    // R9, R15: marketing and feedback uses follow the subject's contact preferences.
    if d.condition == Some(PurposeCondition::ContactPreference) {
        let opted_in = match purpose.and_then(PreferenceTopic::of_purpose) {
            Some(topic) => {
                contact::opted_in(&state.store.preferences_of(&subject.id).await?, topic)
            }
            None => false,
        };
        d = decide::apply_condition(d, ConditionFacts::ContactPreference { opted_in });
    }
    let request_read = basis.is_some_and(|b| b.basis == NamedBasis::Request);
    let logged_purpose = purpose.filter(|_| !request_read);
    let mut audit = audit_entry(state, actor, &subject, category, logged_purpose, action, &d);
    // An access under a grant is audited with the grant's id, so the customer can list
    // every access made under each grant; an officer's read names its basis.
    let mut grant_covers_pi = true;
    if let Some((id, covers)) = d.grant.and_then(|i| grant_ids.get(i)) {
        audit.reason = format!("grant:{id}");
        grant_covers_pi = *covers;
    } else if let Some(b) = basis.filter(|_| d.is_allowed()) {
        audit.reason = b.note.clone();
    }
    // Overseas engineers see support data without personal information unless the
    // customer approved it (R7, R22).
    let overseas = actor.region() == Region::Overseas;
    let redact = d.condition == Some(PurposeCondition::PiiRemoved)
        || (category == Category::Support && overseas && !grant_covers_pi);
    if !d.is_allowed() {
        state.audit_writer.append(audit).await?;
        return Err(denial_error(&d));
    }
    Ok(Authorized {
        subject,
        decision: d,
        audit,
        prefetched,
        redact,
    })
}

/// Luhn check for payment card numbers (R11); spaces and dashes are ignored.
fn luhn_ok(number: &str) -> bool {
    let digits: Vec<u32> = number
        .chars()
        .filter(|c| *c != ' ' && *c != '-')
        .map(|c| c.to_digit(10))
        .collect::<Option<_>>()
        .unwrap_or_default();
    if !(12..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Masks a card number to its last four digits (R12).
fn mask_card(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let last4: String = digits.iter().skip(digits.len().saturating_sub(4)).collect();
    format!("{}{last4}", "*".repeat(digits.len().saturating_sub(4)))
}

/// Stores a record, sealed under the subject's data key.
#[utoipa::path(
    put, path = "/v1/subjects/{subject}/records/{category}", tag = "records", security(("bearer" = [])),
    params(("subject" = String, Path), ("category" = String, Path)),
    request_body = RecordWrite,
    responses((status = 200, body = RecordWritten), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody), (status = 423, body = crate::error::ErrorBody))
)]
pub async fn put_record(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath((raw_subject, raw_category)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<RecordWrite>,
) -> Result<ApiJson<RecordWritten>, ApiError> {
    let category = parse_category(&raw_category)?;
    let purpose = parse_purpose(Some(&body.purpose))?;
    let policy = &state.policy;
    if policy.service(&body.service).is_none() {
        return Err(ApiError::Invalid {
            code: "unknown_service",
            message: "the service is not registered in the policy".into(),
            clause: Some(Clause::r(1)),
        });
    }
    let cp = policy
        .category(category)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("category missing from policy")))?;
    if body.fields.is_empty() {
        return Err(ApiError::invalid(
            "no_fields",
            "a record needs at least one field",
        ));
    }
    for name in body.fields.keys() {
        if cp.never_store.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return Err(ApiError::Invalid {
                code: "never_stored",
                message: format!(
                    "`{name}` is never stored (the security code of a payment instrument)"
                ),
                clause: cp.never_store_clause.or(Some(Clause::r(12))),
            });
        }
        if !cp.fields.contains(name) {
            return Err(ApiError::Invalid {
                code: "undeclared_field",
                message: format!(
                    "field `{}` is not declared for category `{category}` (declared: {})",
                    name.chars().take(64).collect::<String>(),
                    cp.fields.join(", ")
                ),
                clause: Some(Clause::r(3)),
            });
        }
    }
    // R12: a security code is never stored, not even written into a free-text field of
    // payment data or of a support case (where customers paste card details).
    if matches!(category, Category::Payment | Category::Support) {
        if let Some((name, _)) = body.fields.iter().find(|(name, value)| {
            *name != "card_number" && tutela_pii::mentions_security_code(value)
        }) {
            return Err(ApiError::Invalid {
                code: "security_code_in_text",
                message: format!(
                    "`{name}` contains what looks like a card security code; it is never stored"
                ),
                clause: cp.never_store_clause.or(Some(Clause::r(12))),
            });
        }
    }
    // R16: a cookie record names a visitor the server issued, so the analytics condition
    // reads that visitor's own choices.
    if let Some(visitor) = body
        .fields
        .get("visitor_id")
        .filter(|_| category == Category::Cookie)
    {
        if !state.vault.visitor_id_valid(visitor) {
            return Err(ApiError::Invalid {
                code: "invalid_visitor_id",
                message: "visitor_id must be an id issued by POST /v1/cookie-consents/visitors"
                    .into(),
                clause: Some(Clause::r(16)),
            });
        }
        // Collecting cookie data for analytics needs the visitor's consent too.
        if purpose == Purpose::Analytics
            && analytics_choice(&state, Some(visitor)).await? != Some(true)
        {
            return Err(ApiError::Forbidden {
                code: "cookie_consent_missing",
                message: "the visitor has not consented to analytics cookies".into(),
                clause: Some(Clause::r(16)),
            });
        }
    }
    if let Some(card) = body
        .fields
        .get("card_number")
        .filter(|_| category == Category::Payment)
    {
        if !luhn_ok(card) {
            return Err(ApiError::Invalid {
                code: "invalid_card_number",
                message: "card_number fails the Luhn check".into(),
                clause: Some(Clause::r(11)),
            });
        }
    }
    // R6: a record goes only to a location registered for its category, and a
    // China-only category never to a location abroad.
    if let Some(id) = body.location.as_deref() {
        let location =
            state
                .store
                .storage_location(id)
                .await?
                .ok_or_else(|| ApiError::Invalid {
                    code: "unknown_location",
                    message: "no storage location with this id".into(),
                    clause: Some(Clause::r(6)),
                })?;
        if location.region == Region::Overseas && cp.residency == Region::Cn {
            return Err(ApiError::Forbidden {
                code: "residency_violation",
                message: format!("{category} data must be stored in mainland China"),
                clause: Some(Clause::r(6)),
            });
        }
        if !location.categories.contains(&category) {
            return Err(ApiError::Invalid {
                code: "location_not_for_category",
                message: format!("this storage location is not registered for {category} data"),
                clause: Some(Clause::r(6)),
            });
        }
    }
    let Authorized { subject, audit, .. } = authorize(
        &state,
        &actor,
        &raw_subject,
        category,
        Action::Write(purpose),
        None,
    )
    .await?;
    let key = state
        .vault
        .subject_key(&state.store, &subject.tenant, &subject.id, true)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no data key after create")))?;
    // A support engineer adds to the customer's support record; it never replaces or
    // removes what is there (R13, R29): its fields are merged in, and text for a field
    // that already has some is appended on a new line.
    let mut fields = body.fields;
    let existing = if actor.role() == Role::Support {
        state.store.record_with_keys(&subject.id, category).await?
    } else {
        None
    };
    let current = match &existing {
        Some((record, _)) => record.version,
        None => state.store.record_version(&subject.id, category).await?,
    };
    if let Some((record, _)) = existing {
        // Sealed under the subject's key, which `key` already is.
        let mut merged =
            state
                .vault
                .open_fields(&key, &subject.id, category, record.version, &record.fields)?;
        for (name, value) in fields {
            match merged.get_mut(&name) {
                Some(old) => {
                    old.push('\n');
                    old.push_str(&value);
                }
                None => {
                    merged.insert(name, value);
                }
            }
        }
        fields = merged;
    }
    let version = current + 1;
    let sealed = state
        .vault
        .seal_fields(&key, &subject.id, category, version, &fields)?;
    let record = SealedRecord {
        subject: subject.id.clone(),
        category,
        version,
        service: body.service.clone(),
        fields: sealed,
        updated_at: state.clock.now(),
    };
    let lookup_keys = state
        .vault
        .lookup_keys(&state.store, &subject.tenant, &fields)
        .await?;
    let lookups = RecordExtras {
        tenant: &subject.tenant,
        keys: &lookup_keys,
        location: body.location.as_deref(),
    };
    if !state
        .store
        .put_record_audited(&record, current, &audit, &lookups)
        .await?
    {
        return Err(ApiError::Conflict {
            code: "concurrent_write",
            message: "the record changed while this write was prepared; retry".into(),
            clause: None,
        });
    }
    Ok(ApiJson(RecordWritten { version }))
}

/// Reads a record for a declared purpose.
#[utoipa::path(
    get, path = "/v1/subjects/{subject}/records/{category}", tag = "records", security(("bearer" = [])),
    params(
        ("subject" = String, Path),
        ("category" = String, Path),
        ("purpose" = Option<String>, Query, description = "The purpose of the read; required unless `request` names the basis"),
        ("request" = Option<String>, Query, description = "Privacy officer only: an open, identity-verified request about this subject (R29, R35)"),
        ("legal_ref" = Option<String>, Query, description = "Privacy officer only, with purpose=legal_obligation: the legal obligation's reference (R29)"),
    ),
    responses((status = 200, body = RecordView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody), (status = 423, body = crate::error::ErrorBody))
)]
pub async fn get_record(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath((raw_subject, raw_category)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<PurposeQuery>,
) -> Result<ApiJson<RecordView>, ApiError> {
    let category = parse_category(&raw_category)?;
    let basis = named_basis(&state, &actor, &raw_subject, &q).await?;
    // A read for a named request needs no purpose: the right of access is not a use.
    // (`named_basis` refused a purpose beside a request; the placeholder keeps card
    // numbers masked, R12, and is not logged.)
    let purpose = match &basis {
        Some(b) if b.basis == NamedBasis::Request => Purpose::LegalObligation,
        _ => parse_purpose(q.purpose.as_deref())?,
    };
    Ok(ApiJson(
        read_record(
            &state,
            &actor,
            &raw_subject,
            category,
            purpose,
            basis.as_ref(),
        )
        .await?,
    ))
}

/// The purpose-checked read: decide, fetch, decrypt, and make the audit entry durable
/// before returning. Every in-process reader of personal data goes through here.
pub(crate) async fn read_record(
    state: &AppState,
    actor: &Actor,
    raw_subject: &str,
    category: Category,
    purpose: Purpose,
    basis: Option<&CheckedBasis>,
) -> Result<RecordView, ApiError> {
    let Authorized {
        subject,
        decision: d,
        audit,
        prefetched,
        redact,
    } = authorize(
        state,
        actor,
        raw_subject,
        category,
        Action::Read(purpose),
        basis,
    )
    .await?;
    let found = match prefetched {
        Some(p) => Some(p),
        None => state.store.record_with_keys(&subject.id, category).await?,
    };
    let Some((record, chain)) = found else {
        state.audit_writer.append(audit).await?;
        return Err(ApiError::NotFound {
            code: "not_found",
            message: format!("no {category} record for this subject"),
        });
    };
    let key = state
        .vault
        .open_key_chain(&subject.tenant, &subject.id, &chain)?;
    let mut fields =
        state
            .vault
            .open_fields(&key, &subject.id, category, record.version, &record.fields)?;
    // R16: cookie data is used for analytics only while the visitor consents to it.
    if d.condition == Some(PurposeCondition::CookieConsent) {
        let analytics = analytics_choice(state, fields.get("visitor_id")).await?;
        let checked = decide::apply_condition(d, ConditionFacts::CookieConsent { analytics });
        if !checked.is_allowed() {
            let mut denied = audit;
            denied.decision = "deny".to_owned();
            denied.reason = checked.reason.to_string();
            denied.clause = Some(checked.clause.to_string());
            state.audit_writer.append(denied).await?;
            return Err(denial_error(&checked));
        }
    }
    if redact {
        redact_fields(&mut fields);
    }
    // R12: card numbers are shown masked unless the purpose is the transaction itself.
    if purpose != Purpose::Transaction {
        if let Some(card) = fields.get_mut("card_number") {
            *card = mask_card(card);
        }
    }
    // The audit entry is durable before any data leaves (fail closed).
    state.audit_writer.append(audit).await?;
    Ok(RecordView {
        category: category.to_string(),
        service: record.service,
        version: record.version,
        fields,
        clause: d.clause.to_string(),
    })
}

/// A visitor's latest choice for analytics cookies (R16); `None` when it never chose
/// (or the record names no visitor).
async fn analytics_choice(
    state: &AppState,
    visitor: Option<&String>,
) -> Result<Option<bool>, ApiError> {
    Ok(match visitor {
        Some(v) => state
            .store
            .cookie_consents_of(v)
            .await?
            .last()
            .map(|c| c.analytics),
        None => None,
    })
}

/// Deletes a record (R33: erasure needs no purpose, only scope and an unfrozen account).
#[utoipa::path(
    delete, path = "/v1/subjects/{subject}/records/{category}", tag = "records", security(("bearer" = [])),
    params(("subject" = String, Path), ("category" = String, Path)),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 423, body = crate::error::ErrorBody))
)]
pub async fn delete_record(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    ApiPath((raw_subject, raw_category)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let category = parse_category(&raw_category)?;
    // Deletion declares no purpose (R33).
    let Authorized { subject, audit, .. } =
        authorize(&state, &actor, &raw_subject, category, Action::Delete, None).await?;
    if state
        .store
        .delete_record_audited(&subject.id, category, &audit)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound {
            code: "not_found",
            message: format!("no {category} record for this subject"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn() {
        for (n, ok) in [
            ("4111111111111111", true),
            ("4111 1111 1111 1111", true),
            ("4111111111111112", false),
            ("6212 2611 0000 0000 003", false),
            ("abc", false),
            ("4111", false),
        ] {
            assert_eq!(luhn_ok(n), ok, "{n}");
        }
    }

    #[test]
    fn masking_keeps_last_four() {
        assert_eq!(mask_card("4111 1111 1111 1234"), "************1234");
        assert_eq!(mask_card("12"), "12");
    }
}
