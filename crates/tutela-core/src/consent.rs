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

/// The purposes with a current express consent, and whether a guardian consent stands:
/// what [`crate::decide`] needs.
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
    current_state(events)
        .get(&ConsentScope::Purpose(purpose))
        .is_some_and(|(granted, at)| *granted && *at >= changed_at)
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
