//! Records, the purpose-checked path of `DESIGN.md` (R3, R4, R7, R12, R13, R16, R19):
//! load the subject, decide (pure), and on a deny audit and refuse; on a read, fetch,
//! decrypt, redact what must not leave, and make the audit entry durable before the
//! data is returned. Every in-process reader of personal data goes through
//! [`read_record`]; writes and deletions ([`write_record`], [`delete_record`]) go
//! through the same decision and commit its audit entry with their change.

use crate::error::Error;
use crate::state::AppState;
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
use tutela_store::{AuditEntry, RecordExtras, SealedRecord, WrappedKeys};

/// A record as a read returns it: decrypted, redacted and masked as the decision and the
/// purpose require.
#[derive(Debug, Clone)]
pub struct Record {
    pub category: Category,
    pub service: String,
    pub version: i64,
    pub fields: BTreeMap<String, String>,
    /// The clause that allowed this read.
    pub clause: Clause,
}

/// A basis the privacy officer named, checked, with the note its audit entry carries
/// (ids and references only, never personal data).
#[derive(Debug, Clone)]
pub struct CheckedBasis {
    pub basis: NamedBasis,
    pub note: String,
}

impl CheckedBasis {
    /// A legal obligation with its reference (already validated as a reference).
    pub fn legal(reference: &str) -> Self {
        Self {
            basis: NamedBasis::LegalObligation,
            note: format!("legal_ref:{reference}"),
        }
    }
}

/// Checks a request named by the privacy officer as the basis of a read (R29, R35): it
/// counts only while it is about this subject, filed by the subject or its tenant's
/// admin, identity verified and not finished. A refused basis is audited like any
/// denial.
pub async fn request_basis(
    state: &AppState,
    actor: &Actor,
    raw_subject: &str,
    id: &str,
) -> Result<CheckedBasis, Error> {
    // The request must be the subject's own (or its controller's): one the privacy
    // office filed itself is no independent basis for reading (R29).
    let usable = state.store.request(id).await?.filter(|r| {
        r.subject.as_str() == raw_subject
            && matches!(r.filed_role.as_str(), "end_user" | "tenant_admin")
            && matches!(
                r.status,
                RequestStatus::IdentityVerified | RequestStatus::InProgress
            )
    });
    match usable {
        Some(r) => Ok(CheckedBasis {
            basis: NamedBasis::Request,
            note: format!("request:{}", r.id),
        }),
        None => {
            // A refused basis is an attempt to read personal data: audited like any
            // denial (the subject hidden from view answers 404 instead).
            let (subject, _) = crate::subjects::subject_and_tenant(state, raw_subject).await?;
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
            Err(Error::Forbidden {
                code: "basis_not_open",
                message: "the request is not an open, identity-verified request filed by or for this subject"
                    .into(),
                clause: Some(Clause::r(35)),
            })
        }
    }
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

/// The error a denial answers with: hidden subjects look absent (R2), frozen data is
/// locked (R19), anything else is forbidden with its reason and clause.
fn denial_error(d: &Decision) -> Error {
    let message = format!(
        "denied: {} ({})",
        d.reason.as_str().replace('_', " "),
        d.clause
    );
    match d.effect {
        Effect::Deny(Denial::Hidden) => Error::not_found("subject"),
        Effect::Deny(Denial::Frozen) => Error::Locked {
            code: "frozen",
            message,
            clause: Some(d.clause),
        },
        _ => Error::Forbidden {
            code: d.reason.as_str(),
            message,
            clause: Some(d.clause),
        },
    }
}

/// What `authorize` allowed.
struct Authorized {
    pub subject: Subject,
    pub decision: Decision,
    /// The audit entry, not yet written: the caller commits it with its work.
    pub audit: AuditEntry,
    /// For a read allowed by express consent: the record and its keys, fetched in the
    /// same query as the consent entry.
    pub prefetched: Option<(SealedRecord, WrappedKeys)>,
    /// Personal information must be removed before the data leaves: training use (R13),
    /// or an overseas engineer's grant that does not cover it (R7, R22).
    pub redact: bool,
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
) -> Result<Authorized, Error> {
    let (subject, tenant) = crate::subjects::subject_and_tenant(state, raw_subject).await?;
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
        crate::grants::active_grant_views(state, &subject.tenant).await?
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
                    let events = crate::consents::consent_events(state, &subject).await?;
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

/// The purpose-checked read: decide, fetch, decrypt, and make the audit entry durable
/// before returning. Every in-process reader of personal data goes through here.
pub async fn read_record(
    state: &AppState,
    actor: &Actor,
    raw_subject: &str,
    category: Category,
    purpose: Purpose,
    basis: Option<&CheckedBasis>,
) -> Result<Record, Error> {
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
        return Err(Error::NotFound {
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
    Ok(Record {
        category,
        service: record.service,
        version: record.version,
        fields,
        clause: d.clause,
    })
}

/// A visitor's latest choice for analytics cookies (R16); `None` when it never chose
/// (or the record names no visitor).
async fn analytics_choice(
    state: &AppState,
    visitor: Option<&String>,
) -> Result<Option<bool>, Error> {
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

/// Masks a card number to its last four digits (R12).
fn mask_card(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let last4: String = digits.iter().skip(digits.len().saturating_sub(4)).collect();
    format!("{}{last4}", "*".repeat(digits.len().saturating_sub(4)))
}

/// What a caller writes into a record: its service, its fields, and optionally the
/// registered storage location it goes to (R6).
#[derive(Debug, Clone)]
pub struct RecordInput {
    pub service: String,
    pub fields: BTreeMap<String, String>,
    pub location: Option<String>,
}

/// Stores a record for `purpose`, sealed under the subject's data key, after checking
/// it against the policy (service R1, declared fields R3, never-stored values R12,
/// issued visitor ids R16, card numbers R11, storage location R6) and `decide`; its
/// audit entry commits with it. Returns the new version.
pub async fn write_record(
    state: &AppState,
    actor: &Actor,
    raw_subject: &str,
    category: Category,
    purpose: Purpose,
    input: RecordInput,
) -> Result<i64, Error> {
    let policy = &state.policy;
    if policy.service(&input.service).is_none() {
        return Err(Error::Invalid {
            code: "unknown_service",
            message: "the service is not registered in the policy".into(),
            clause: Some(Clause::r(1)),
        });
    }
    let cp = policy
        .category(category)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("category missing from policy")))?;
    if input.fields.is_empty() {
        return Err(Error::invalid(
            "no_fields",
            "a record needs at least one field",
        ));
    }
    for name in input.fields.keys() {
        if cp.never_store.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return Err(Error::Invalid {
                code: "never_stored",
                message: format!(
                    "`{name}` is never stored (the security code of a payment instrument)"
                ),
                clause: cp.never_store_clause.or(Some(Clause::r(12))),
            });
        }
        if !cp.fields.contains(name) {
            return Err(Error::Invalid {
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
        if let Some((name, _)) = input.fields.iter().find(|(name, value)| {
            *name != "card_number" && tutela_pii::mentions_security_code(value)
        }) {
            return Err(Error::Invalid {
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
    if let Some(visitor) = input
        .fields
        .get("visitor_id")
        .filter(|_| category == Category::Cookie)
    {
        if !state.vault.visitor_id_valid(visitor) {
            return Err(Error::Invalid {
                code: "invalid_visitor_id",
                message: "visitor_id must be an id issued by POST /v1/cookie-consents/visitors"
                    .into(),
                clause: Some(Clause::r(16)),
            });
        }
        // Collecting cookie data for analytics needs the visitor's consent too.
        if purpose == Purpose::Analytics
            && analytics_choice(state, Some(visitor)).await? != Some(true)
        {
            return Err(Error::Forbidden {
                code: "cookie_consent_missing",
                message: "the visitor has not consented to analytics cookies".into(),
                clause: Some(Clause::r(16)),
            });
        }
    }
    if let Some(card) = input
        .fields
        .get("card_number")
        .filter(|_| category == Category::Payment)
    {
        if !luhn_ok(card) {
            return Err(Error::Invalid {
                code: "invalid_card_number",
                message: "card_number fails the Luhn check".into(),
                clause: Some(Clause::r(11)),
            });
        }
    }
    // R6: a record goes only to a location registered for its category, and a
    // China-only category never to a location abroad.
    if let Some(id) = input.location.as_deref() {
        let location = state
            .store
            .storage_location(id)
            .await?
            .ok_or_else(|| Error::Invalid {
                code: "unknown_location",
                message: "no storage location with this id".into(),
                clause: Some(Clause::r(6)),
            })?;
        if location.region == Region::Overseas && cp.residency == Region::Cn {
            return Err(Error::Forbidden {
                code: "residency_violation",
                message: format!("{category} data must be stored in mainland China"),
                clause: Some(Clause::r(6)),
            });
        }
        if !location.categories.contains(&category) {
            return Err(Error::Invalid {
                code: "location_not_for_category",
                message: format!("this storage location is not registered for {category} data"),
                clause: Some(Clause::r(6)),
            });
        }
    }
    let Authorized { subject, audit, .. } = authorize(
        state,
        actor,
        raw_subject,
        category,
        Action::Write(purpose),
        None,
    )
    .await?;
    let key = state
        .vault
        .subject_key(&state.store, &subject.tenant, &subject.id, true)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("no data key after create")))?;
    // A support engineer adds to the customer's support record; it never replaces or
    // removes what is there (R13, R29): its fields are merged in, and text for a field
    // that already has some is appended on a new line.
    let mut fields = input.fields;
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
        service: input.service.clone(),
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
        location: input.location.as_deref(),
    };
    if !state
        .store
        .put_record_audited(&record, current, &audit, &lookups)
        .await?
    {
        return Err(Error::Conflict {
            code: "concurrent_write",
            message: "the record changed while this write was prepared; retry".into(),
            clause: None,
        });
    }
    Ok(version)
}

/// Deletes a record (R33: erasure needs no purpose, only scope and an unfrozen account);
/// its audit entry commits with the deletion.
pub async fn delete_record(
    state: &AppState,
    actor: &Actor,
    raw_subject: &str,
    category: Category,
) -> Result<(), Error> {
    // Deletion declares no purpose (R33).
    let Authorized { subject, audit, .. } =
        authorize(state, actor, raw_subject, category, Action::Delete, None).await?;
    if state
        .store
        .delete_record_audited(&subject.id, category, &audit)
        .await?
    {
        Ok(())
    } else {
        Err(Error::NotFound {
            code: "not_found",
            message: format!("no {category} record for this subject"),
        })
    }
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
