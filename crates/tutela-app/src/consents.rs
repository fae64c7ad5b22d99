//! The consent ledger (R4, R18, R25, R27, R43): recording an entry with its provenance,
//! and the ledger as the decision reads it.

use crate::error::Error;
use crate::state::AppState;
use tutela_core::consent::{self, Channel, ConsentEvent, ConsentScope, Evidence, ProvenanceError};
use tutela_core::{tenant, Actor, Clause, Purpose, Role};
use tutela_store::consents::{ConsentEntry, PurposeChange};
use tutela_store::subjects::Subject;
use tutela_store::AuditEntry;

/// A subject's ledger as the decision needs it.
pub async fn consent_events(
    state: &AppState,
    subject: &Subject,
) -> Result<Vec<ConsentEvent>, Error> {
    Ok(state
        .store
        .consents_of(&subject.id)
        .await?
        .into_iter()
        .map(|c| ConsentEvent {
            scope: c.scope,
            granted: c.granted,
            at: c.at,
        })
        .collect())
}

/// A consent entry to record, its input already parsed (R4, R18, R25, R43).
#[derive(Debug)]
pub struct NewEntry {
    pub scope: ConsentScope,
    /// `true` to grant, `false` to withdraw.
    pub granted: bool,
    /// The statement version the subject was shown (the caller checked it is in force).
    pub statement_version: String,
    pub channel: Channel,
    /// Given by the guardian of a minor (R43).
    pub guardian: bool,
    /// Reference to the guardian's verified identity (never the identity itself).
    pub guardian_ref: Option<String>,
    /// Evidence of the subject's (or guardian's) own act.
    pub evidence: Option<Evidence>,
}

/// Appends a consent or its withdrawal to `subject`'s ledger with its audit entry, after
/// the guardian rules (R43) and the provenance rule (`consent::provenance`: a grant on
/// the subject's behalf cites the subject's own act). Returns the entry's id.
pub async fn record(
    state: &AppState,
    actor: &Actor,
    subject: &Subject,
    new: NewEntry,
) -> Result<String, Error> {
    let NewEntry {
        scope,
        channel,
        guardian_ref,
        evidence,
        ..
    } = new;
    let by_guardian = new.guardian || scope == ConsentScope::Guardian;
    let now = state.clock.now();
    if by_guardian {
        if !tenant::is_minor(subject.adult_on, now.date()) {
            return Err(Error::Invalid {
                code: "not_a_minor",
                message: "guardian consent applies to subjects under 18 only".into(),
                clause: Some(Clause::r(43)),
            });
        }
        if guardian_ref.is_none() {
            return Err(Error::Invalid {
                code: "guardian_ref_required",
                message: "a guardian consent names the guardian's verified identity reference"
                    .into(),
                clause: Some(Clause::r(43)),
            });
        }
    } else if guardian_ref.is_some() {
        return Err(Error::invalid(
            "unexpected_guardian_ref",
            "`guardian_ref` belongs to a guardian consent (`guardian: true`)",
        ));
    }
    let by_subject = actor.role() == Role::EndUser && actor.subject() == Some(&subject.id);
    let method = consent::provenance(by_subject, by_guardian, new.granted, evidence.as_ref())
        .map_err(|e| match e {
            ProvenanceError::NotCitable(_) => Error::Invalid {
                code: "invalid_evidence",
                message: e.to_string(),
                clause: None,
            },
            ProvenanceError::EvidenceRequired | ProvenanceError::GuardianEvidenceRequired => {
                Error::Invalid {
                    code: "consent_evidence_required",
                    message: e.to_string(),
                    clause: Some(if by_guardian {
                        Clause::r(43)
                    } else {
                        clause_of(&scope)
                    }),
                }
            }
        })?;
    let entry = ConsentEntry {
        id: format!("con_{}", uuid::Uuid::now_v7().simple()),
        subject: subject.id.clone(),
        scope: scope.clone(),
        granted: new.granted,
        statement_version: new.statement_version,
        channel,
        token_id: actor.token().to_string(),
        role: actor.role().to_string(),
        method,
        guardian_ref,
        evidence_ref: evidence.map(|e| e.reference),
        at: now,
    };
    let audit = audit_entry(actor, subject, &entry);
    state.store.append_consent_audited(&entry, &audit).await?;
    Ok(entry.id)
}

/// The clause a consent scope answers to.
fn clause_of(scope: &ConsentScope) -> Clause {
    match scope {
        ConsentScope::Purpose(_) => Clause::r(4),
        ConsentScope::CrossBorder => Clause::r(18),
        ConsentScope::ThirdPartyOffering(_) => Clause::r(25),
        ConsentScope::Guardian => Clause::r(43),
    }
}

fn audit_entry(actor: &Actor, subject: &Subject, c: &ConsentEntry) -> AuditEntry {
    AuditEntry {
        id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
        at: c.at,
        token_id: actor.token().to_string(),
        role: actor.role().to_string(),
        tenant: Some(subject.tenant.to_string()),
        subject: Some(subject.id.to_string()),
        category: None,
        purpose: Some(c.scope.to_string()),
        action: if c.granted {
            "consent_grant"
        } else {
            "consent_withdraw"
        }
        .to_owned(),
        decision: "allow".to_owned(),
        // The channel and the provenance method: vocabulary values only, never the
        // evidence reference.
        reason: format!("consent_via_{}:{}", c.channel, c.method),
        clause: Some(clause_of(&c.scope).to_string()),
        seq: None,
    }
}

/// A subject's consent ledger for a caller who may read it: the subject, every entry
/// oldest first, and the latest entry per scope (ties: the later in ledger order).
pub async fn ledger(
    state: &AppState,
    actor: &Actor,
    raw_subject: &str,
) -> Result<(Subject, Vec<ConsentEntry>, Vec<ConsentEntry>), Error> {
    let subject = crate::subjects::subject_in_scope(
        state,
        raw_subject,
        |s| actor.may_view_consents(&s.tenant, &s.id),
        "read consents",
    )
    .await?;
    let history = state.store.consents_of(&subject.id).await?;
    let events: Vec<ConsentEvent> = history
        .iter()
        .map(|c| ConsentEvent {
            scope: c.scope.clone(),
            granted: c.granted,
            at: c.at,
        })
        .collect();
    let current_scopes = consent::current_state(&events);
    // The latest entry per scope (ties: the later in ledger order).
    let current = current_scopes
        .keys()
        .filter_map(|scope| history.iter().rev().find(|c| &c.scope == scope))
        .cloned()
        .collect();
    Ok((subject, history, current))
}

/// Records that a successor controller changed `purposes` (R27; the caller checked the
/// role and the input): one row and audit entry per purpose; the decision's cached map
/// of changed purposes is dropped so reconsent is asked at once.
pub async fn record_purpose_changes(
    state: &AppState,
    actor: &Actor,
    purposes: Vec<Purpose>,
    controller: String,
    reason: String,
    notice_ref: Option<String>,
) -> Result<Vec<PurposeChange>, Error> {
    let now = state.clock.now();
    let rows: Vec<(PurposeChange, AuditEntry)> = purposes
        .into_iter()
        .map(|purpose| {
            let change = PurposeChange {
                id: format!("pch_{}", uuid::Uuid::now_v7().simple()),
                purpose,
                controller: controller.clone(),
                reason: reason.clone(),
                notice_ref: notice_ref.clone(),
                at: now,
            };
            let audit = AuditEntry {
                id: format!("aud_{}", uuid::Uuid::now_v7().simple()),
                at: now,
                token_id: actor.token().to_string(),
                role: actor.role().to_string(),
                tenant: None,
                subject: None,
                category: None,
                purpose: Some(purpose.to_string()),
                action: "purpose_change".to_owned(),
                decision: "allow".to_owned(),
                reason: "successor_controller".to_owned(),
                clause: Some(Clause::r(27).to_string()),
                seq: None,
            };
            (change, audit)
        })
        .collect();
    state.store.insert_purpose_changes_audited(&rows).await?;
    state.cache.forget_changed_purposes();
    Ok(rows.into_iter().map(|(c, _)| c).collect())
}
