//! The consent ledger's domain (issue 4): what a consent is about, through which channel
//! it was given, and the current state derived from the append-only history.
//!
//! Consent is evidence. Entries are never changed or removed; a withdrawal is a new entry.
//! The current state per scope is the latest entry for it, so the same history always
//! yields the same answer (R4, R18, R22, R25, R43).

use crate::vocab::Purpose;
use std::collections::BTreeMap;
use std::fmt;
use time::OffsetDateTime;

/// What a consent is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConsentScope {
    /// Use of the subject's data for a purpose outside a category's declared ones (R4).
    Purpose(Purpose),
    /// Transfer of personal information out of mainland China (R18, R22).
    CrossBorder,
    /// Sharing with a named third-party offering (R25): the recipient id.
    ThirdPartyOffering(String),
    /// A guardian's consent for a minor (R43).
    Guardian,
}

/// Why a scope string is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a consent scope: expected a purpose id, `cross_border`, `guardian` or `third_party_offering:<recipient>`")]
pub struct ScopeError(String);

impl ConsentScope {
    pub fn parse(raw: &str) -> Result<Self, ScopeError> {
        let bad = || ScopeError(raw.chars().take(64).collect());
        match raw {
            "cross_border" => Ok(ConsentScope::CrossBorder),
            "guardian" => Ok(ConsentScope::Guardian),
            _ => {
                if let Some(recipient) = raw.strip_prefix("third_party_offering:") {
                    let ok = !recipient.is_empty()
                        && recipient.len() <= 64
                        && recipient
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    return ok
                        .then(|| ConsentScope::ThirdPartyOffering(recipient.to_owned()))
                        .ok_or_else(bad);
                }
                Purpose::parse(raw)
                    .map(ConsentScope::Purpose)
                    .map_err(|_| bad())
            }
        }
    }
}

impl fmt::Display for ConsentScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsentScope::Purpose(p) => write!(f, "{p}"),
            ConsentScope::CrossBorder => f.write_str("cross_border"),
            ConsentScope::ThirdPartyOffering(r) => write!(f, "third_party_offering:{r}"),
            ConsentScope::Guardian => f.write_str("guardian"),
        }
    }
}

closed_vocab!(
    /// How a consent or withdrawal reached the operator.
    Channel, "channel", {
        /// The administrator portal.
        Portal = "portal",
        /// An integrated system calling the API.
        Api = "api",
        /// A signed link in an e-mail.
        EmailLink = "email_link",
        /// A signed paper form, scanned (the evidence reference names it).
        Paper = "paper",
    }
);

closed_vocab!(
    /// How an entry came to be recorded: the subject's own act it rests on (issue 14;
    /// R4, R18, R25, R43). A service or tenant admin grants a consent only by citing an
    /// evidence method ([`ConsentMethod::is_evidence`]) and a reference to the act; the
    /// other values are set by tutela itself and never accepted from a caller.
    ConsentMethod, "consent method", {
        /// The subject's own token recorded it: the recording is the subject's act.
        SubjectSelf = "subject_self",
        /// A form the subject (or guardian) signed; the reference names the document.
        SignedForm = "signed_form",
        /// The subject acted in an authenticated portal or app session; the reference
        /// names the session.
        PortalSession = "portal_session",
        /// The subject confirmed through a signed e-mail link; the reference names the
        /// message.
        EmailConfirmation = "email_confirmation",
        /// The subject said so in a recorded call; the reference names the recording.
        RecordedCall = "recorded_call",
        /// The subject's written instruction (letter, ticket); the reference names it.
        WrittenInstruction = "written_instruction",
        /// A bare `evidence_ref` without a stated method: the subject's act is named by
        /// the reference only.
        ReferenceOnly = "reference_only",
        /// No act of the subject cited: only ever a withdrawal recorded by a service or
        /// tenant admin (withdrawing narrows processing, so it needs no evidence).
        Unevidenced = "unevidenced",
        /// Recorded before tutela kept provenance (schema 0018); nothing is known of how.
        LegacyUnrecorded = "legacy_unrecorded",
    }
);

impl ConsentMethod {
    /// May a caller cite this method as evidence of the subject's (or guardian's) act?
    /// The others are derived by tutela: `subject_self` from the token, `reference_only`
    /// from a bare `evidence_ref`, `unevidenced` and `legacy_unrecorded` from the lack of
    /// evidence.
    pub fn is_evidence(self) -> bool {
        matches!(
            self,
            ConsentMethod::SignedForm
                | ConsentMethod::PortalSession
                | ConsentMethod::EmailConfirmation
                | ConsentMethod::RecordedCall
                | ConsentMethod::WrittenInstruction
        )
    }
}

/// Evidence a caller cites for an entry: how the subject (or guardian) acted, and a
/// reference to that act (a document, session or message id; never its content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// `None` for a bare `evidence_ref` (recorded as `reference_only`).
    pub method: Option<ConsentMethod>,
    pub reference: String,
}

/// Why an entry's provenance is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProvenanceError {
    /// A grant recorded by anyone but the consenting person needs evidence of that
    /// person's own act.
    #[error("a consent recorded on the subject's behalf needs evidence of the subject's own act (`evidence` or `evidence_ref`)")]
    EvidenceRequired,
    /// A guardian's consent needs evidence of the guardian's act, whoever records it.
    #[error("a guardian consent needs evidence of the guardian's own act (`evidence` or `evidence_ref`)")]
    GuardianEvidenceRequired,
    /// The method is one tutela derives itself, not one a caller can cite.
    #[error("`{0}` is not a method a caller can cite (signed_form, portal_session, email_confirmation, recorded_call, written_instruction; subject_self only from the subject's own token)")]
    NotCitable(ConsentMethod),
}

/// The provenance method of a new entry (issue 14; R4, R18, R25, R43).
///
/// * `by_subject`: the subject's own token records it.
/// * `by_guardian`: the act is a guardian's (a guardian consent, or `guardian: true`);
///   then the subject's own token is not the consenting person either.
///
/// A grant stands on the consenting person's own act: the recording itself when the
/// subject records its own consent (`subject_self`), otherwise cited evidence. A
/// withdrawal only narrows processing, so it needs none: a service's or tenant admin's
/// withdrawal without evidence is recorded as `unevidenced`.
pub fn provenance(
    by_subject: bool,
    by_guardian: bool,
    granted: bool,
    evidence: Option<&Evidence>,
) -> Result<ConsentMethod, ProvenanceError> {
    let own_act = by_subject && !by_guardian;
    match evidence.map(|e| e.method) {
        Some(Some(m)) if m.is_evidence() => Ok(m),
        Some(Some(ConsentMethod::SubjectSelf)) if own_act => Ok(ConsentMethod::SubjectSelf),
        Some(Some(m)) => Err(ProvenanceError::NotCitable(m)),
        // A guardian's consent names how the guardian gave it (a signed form, a recorded
        // call...); a bare reference is not enough, whoever records it, the minor's own
        // token included (R43).
        Some(None) if by_guardian && granted => Err(ProvenanceError::GuardianEvidenceRequired),
        Some(None) if own_act => Ok(ConsentMethod::SubjectSelf),
        Some(None) => Ok(ConsentMethod::ReferenceOnly),
        None if own_act => Ok(ConsentMethod::SubjectSelf),
        None if !granted && by_subject => Ok(ConsentMethod::SubjectSelf),
        None if !granted => Ok(ConsentMethod::Unevidenced),
        None if by_guardian => Err(ProvenanceError::GuardianEvidenceRequired),
        None => Err(ProvenanceError::EvidenceRequired),
    }
}

/// One ledger entry as the derivation needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentEvent {
    pub scope: ConsentScope,
    pub granted: bool,
    pub at: OffsetDateTime,
}

/// The current state per scope: the latest entry wins; entries at the same instant are
/// taken in the order given (the ledger's order).
pub fn current_state(events: &[ConsentEvent]) -> BTreeMap<ConsentScope, (bool, OffsetDateTime)> {
    let mut state = BTreeMap::new();
    for e in events {
        let newer = state
            .get(&e.scope)
            .is_none_or(|(_, at): &(bool, OffsetDateTime)| e.at >= *at);
        if newer {
            state.insert(e.scope.clone(), (e.granted, e.at));
        }
    }
    state
}

/// The latest entry for one scope, the one [`current_state`] keeps for it (of entries at
/// the same instant, the last given), found without building the whole state: what
/// [`crate::decide::resolve_consent`] reads.
pub fn latest<'a>(events: &'a [ConsentEvent], scope: &ConsentScope) -> Option<&'a ConsentEvent> {
    events
        .iter()
        .filter(|e| e.scope == *scope)
        .fold(None, |kept, e| match kept {
            Some(k) if e.at < k.at => Some(k),
            _ => Some(e),
        })
}

/// The purposes with a current express consent, and whether a guardian consent stands.
pub fn granted_purposes(events: &[ConsentEvent]) -> (Vec<Purpose>, bool) {
    let state = current_state(events);
    let purposes = state
        .iter()
        .filter_map(|(scope, (granted, _))| match scope {
            ConsentScope::Purpose(p) if *granted => Some(*p),
            _ => None,
        })
        .collect();
    let guardian = state
        .get(&ConsentScope::Guardian)
        .is_some_and(|(granted, _)| *granted);
    (purposes, guardian)
}

/// R27: after a successor controller changed the purpose `purpose` at `changed_at`,
/// has the subject consented to it again since? The latest entry for the purpose must be
/// a grant made at or after the change.
pub fn reconsented_since(
    events: &[ConsentEvent],
    purpose: Purpose,
    changed_at: OffsetDateTime,
) -> bool {
    latest(events, &ConsentScope::Purpose(purpose)).is_some_and(|e| e.granted && e.at >= changed_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn ev(scope: &str, granted: bool, at: OffsetDateTime) -> ConsentEvent {
        ConsentEvent {
            scope: ConsentScope::parse(scope).unwrap(),
            granted,
            at,
        }
    }

    #[test]
    fn scopes_parse_and_print_round_trip() {
        for s in [
            "research",
            "cross_border",
            "guardian",
            "third_party_offering:acme-maps_1",
        ] {
            assert_eq!(ConsentScope::parse(s).unwrap().to_string(), s);
        }
        for bad in [
            "",
            "nonsense",
            "third_party_offering:",
            "third_party_offering:a b",
            "Research",
        ] {
            assert!(ConsentScope::parse(bad).is_err(), "{bad}");
        }
    }

    fn cited(method: Option<ConsentMethod>) -> Evidence {
        Evidence {
            method,
            reference: "doc-1".into(),
        }
    }

    #[test]
    fn a_grant_on_the_subjects_behalf_needs_evidence_of_its_act_r4_r43() {
        use ConsentMethod as M;
        // The subject's own token: the recording is its act.
        assert_eq!(provenance(true, false, true, None), Ok(M::SubjectSelf));
        assert_eq!(
            provenance(true, false, true, Some(&cited(None))),
            Ok(M::SubjectSelf)
        );
        assert_eq!(
            provenance(true, false, true, Some(&cited(Some(M::SignedForm)))),
            Ok(M::SignedForm)
        );
        // A service or tenant admin: only with cited evidence.
        assert_eq!(
            provenance(false, false, true, None),
            Err(ProvenanceError::EvidenceRequired)
        );
        assert_eq!(
            provenance(false, false, true, Some(&cited(Some(M::RecordedCall)))),
            Ok(M::RecordedCall)
        );
        assert_eq!(
            provenance(false, false, true, Some(&cited(None))),
            Ok(M::ReferenceOnly)
        );
        // Derived methods are never cited.
        for m in [
            M::SubjectSelf,
            M::ReferenceOnly,
            M::Unevidenced,
            M::LegacyUnrecorded,
        ] {
            assert_eq!(
                provenance(false, false, true, Some(&cited(Some(m)))),
                Err(ProvenanceError::NotCitable(m)),
                "{m}"
            );
        }
        // A guardian's act needs evidence whoever records it, the minor's token included.
        for by_subject in [true, false] {
            assert_eq!(
                provenance(by_subject, true, true, None),
                Err(ProvenanceError::GuardianEvidenceRequired)
            );
            assert_eq!(
                provenance(by_subject, true, true, Some(&cited(Some(M::SubjectSelf)))),
                Err(ProvenanceError::NotCitable(M::SubjectSelf))
            );
            assert_eq!(
                provenance(by_subject, true, true, Some(&cited(Some(M::SignedForm)))),
                Ok(M::SignedForm)
            );
            // A bare reference does not say how the guardian consented.
            assert_eq!(
                provenance(by_subject, true, true, Some(&cited(None))),
                Err(ProvenanceError::GuardianEvidenceRequired)
            );
        }
        // Withdrawals need none.
        assert_eq!(provenance(true, false, false, None), Ok(M::SubjectSelf));
        assert_eq!(provenance(true, true, false, None), Ok(M::SubjectSelf));
        assert_eq!(provenance(false, false, false, None), Ok(M::Unevidenced));
        assert_eq!(provenance(false, true, false, None), Ok(M::Unevidenced));
        assert_eq!(
            provenance(
                false,
                false,
                false,
                Some(&cited(Some(M::WrittenInstruction)))
            ),
            Ok(M::WrittenInstruction)
        );
    }

    #[test]
    fn the_latest_entry_per_scope_wins_r4() {
        let t1 = datetime!(2026-11-01 00:00 UTC);
        let t2 = datetime!(2026-11-02 00:00 UTC);
        let t3 = datetime!(2026-11-03 00:00 UTC);
        let history = [
            ev("research", true, t1),
            ev("analytics", true, t1),
            ev("research", false, t2),
            ev("guardian", true, t3),
        ];
        let (purposes, guardian) = granted_purposes(&history);
        assert_eq!(purposes, vec![Purpose::Analytics]);
        assert!(guardian);
        // Order of arrival does not matter, only time.
        let mut reversed = history.to_vec();
        reversed.reverse();
        assert_eq!(granted_purposes(&reversed).0, vec![Purpose::Analytics]);
        // Re-granting after a withdrawal restores it.
        let mut again = history.to_vec();
        again.push(ev("research", true, t3));
        assert_eq!(granted_purposes(&again).0.len(), 2);
    }

    /// `latest` keeps, per scope, what `current_state` keeps, ties included.
    #[test]
    fn latest_agrees_with_the_current_state() {
        let t1 = datetime!(2026-11-01 00:00 UTC);
        let t2 = datetime!(2026-11-02 00:00 UTC);
        let histories = [
            vec![],
            vec![ev("research", true, t1)],
            vec![ev("research", true, t2), ev("research", false, t1)],
            vec![ev("research", false, t1), ev("research", true, t1)],
            vec![ev("research", true, t1), ev("research", false, t1)],
            vec![
                ev("guardian", true, t1),
                ev("research", true, t2),
                ev("guardian", false, t2),
                ev("analytics", true, t1),
            ],
        ];
        let scopes = ["research", "guardian", "analytics", "marketing"]
            .map(|s| ConsentScope::parse(s).unwrap());
        for history in &histories {
            let state = current_state(history);
            for scope in &scopes {
                assert_eq!(
                    latest(history, scope).map(|e| (e.granted, e.at)),
                    state.get(scope).copied(),
                    "{scope} in {history:?}"
                );
            }
        }
    }

    #[test]
    fn a_successors_purpose_change_needs_a_fresh_consent_r27() {
        let before = datetime!(2026-10-01 00:00 UTC);
        let change = datetime!(2026-11-01 00:00 UTC);
        let after = datetime!(2026-11-05 00:00 UTC);
        let p = Purpose::ServiceImprovement;
        assert!(!reconsented_since(&[], p, change));
        assert!(!reconsented_since(
            &[ev("service_improvement", true, before)],
            p,
            change
        ));
        assert!(reconsented_since(
            &[ev("service_improvement", true, after)],
            p,
            change
        ));
        assert!(!reconsented_since(
            &[
                ev("service_improvement", true, after),
                ev("service_improvement", false, after + time::Duration::DAY)
            ],
            p,
            change
        ));
    }
}
