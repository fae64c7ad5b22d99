//! Contact preferences and the send gate (issue 4; R9, R15).
//!
//! Every outgoing message to a subject passes [`may_send`]. Service communications
//! (subscription, billing, important updates, security) go out while the service is used
//! and cannot be turned off (R9); marketing follows the marketing preference, surveys and
//! feedback requests the survey preference, per channel (R9, R15). Both default to off:
//! nothing promotional is sent until the subject (or its tenant admin) turns it on.

use crate::clause::Clause;
use crate::tenant::TenantState;
use std::collections::BTreeMap;

closed_vocab!(
    /// What an outgoing message is.
    MessageKind, "message kind", {
        /// Subscription, billing, important updates, security notices (R9).
        Service = "service",
        Marketing = "marketing",
        Survey = "survey",
        /// Requests for feedback on a support case or service (R9, R15).
        Feedback = "feedback",
    }
);

closed_vocab!(
    /// How a message reaches the subject.
    ContactChannel, "contact channel", {
        Email = "email",
        Phone = "phone",
        Sms = "sms",
    }
);

closed_vocab!(
    /// A preference a subject controls.
    PreferenceTopic, "preference", {
        Marketing = "marketing",
        /// Surveys and feedback requests.
        Surveys = "surveys",
    }
);

impl MessageKind {
    /// The preference that governs this kind; `None` for service communications.
    pub fn topic(self) -> Option<PreferenceTopic> {
        match self {
            MessageKind::Service => None,
            MessageKind::Marketing => Some(PreferenceTopic::Marketing),
            MessageKind::Survey | MessageKind::Feedback => Some(PreferenceTopic::Surveys),
        }
    }
}

/// A subject's stored preferences: (topic, channel) -> allowed. Missing means off.
pub type Preferences = BTreeMap<(PreferenceTopic, ContactChannel), bool>;

impl PreferenceTopic {
    /// The preference a use of contact data for `purpose` follows (R9, R15): marketing
    /// for `marketing`, surveys for `feedback`; `None` for every other purpose.
    pub fn of_purpose(purpose: crate::vocab::Purpose) -> Option<Self> {
        match purpose {
            crate::vocab::Purpose::Marketing => Some(PreferenceTopic::Marketing),
            crate::vocab::Purpose::Feedback => Some(PreferenceTopic::Surveys),
            _ => None,
        }
    }
}

/// Whether the subject allows `topic` over at least one channel.
pub fn opted_in(prefs: &Preferences, topic: PreferenceTopic) -> bool {
    prefs.iter().any(|((t, _), on)| *t == topic && *on)
}

/// The send gate's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendDecision {
    pub send: bool,
    /// Stable reason code.
    pub reason: &'static str,
    pub clause: Clause,
}

/// May a message of `kind` go to a subject over `channel`? Pure: the caller loads the
/// preferences and the tenant's state.
pub fn may_send(
    kind: MessageKind,
    channel: ContactChannel,
    prefs: &Preferences,
    tenant_state: TenantState,
) -> SendDecision {
    let no = |reason, clause| SendDecision {
        send: false,
        reason,
        clause,
    };
    // An erased or expired account has nobody left to write to; a closed one still
    // gets service notices (closure, retention, deletion) but nothing promotional.
    match tenant_state {
        TenantState::Erased | TenantState::Expired => {
            return no("account_gone", Clause::r(19));
        }
        TenantState::Closed if kind != MessageKind::Service => {
            return no("service_no_longer_used", Clause::r(9));
        }
        _ => {}
    }
    match kind.topic() {
        None => SendDecision {
            send: true,
            reason: "service_communication",
            clause: Clause::r(9),
        },
        Some(topic) => {
            let clause = match topic {
                PreferenceTopic::Marketing => Clause::r(9),
                PreferenceTopic::Surveys => Clause::r(15),
            };
            if prefs.get(&(topic, channel)).copied().unwrap_or(false) {
                SendDecision {
                    send: true,
                    reason: "preference_allows",
                    clause,
                }
            } else {
                no("preference_off", clause)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_mail_always_goes_while_the_service_is_used_r9() {
        let none = Preferences::new();
        for state in [TenantState::Trial, TenantState::Active, TenantState::Closed] {
            let d = may_send(MessageKind::Service, ContactChannel::Email, &none, state);
            assert!(d.send, "{state:?}");
            assert_eq!(d.clause, Clause::r(9));
        }
        assert!(
            !may_send(
                MessageKind::Service,
                ContactChannel::Email,
                &none,
                TenantState::Erased
            )
            .send
        );
    }

    #[test]
    fn promotional_mail_follows_the_preference_per_channel_r9_r15() {
        let mut prefs = Preferences::new();
        let active = TenantState::Active;
        // Off by default.
        assert!(
            !may_send(
                MessageKind::Marketing,
                ContactChannel::Email,
                &prefs,
                active
            )
            .send
        );
        prefs.insert((PreferenceTopic::Marketing, ContactChannel::Email), true);
        prefs.insert((PreferenceTopic::Surveys, ContactChannel::Sms), true);
        assert!(
            may_send(
                MessageKind::Marketing,
                ContactChannel::Email,
                &prefs,
                active
            )
            .send
        );
        assert!(!may_send(MessageKind::Marketing, ContactChannel::Sms, &prefs, active).send);
        let survey = may_send(MessageKind::Survey, ContactChannel::Sms, &prefs, active);
        assert!(survey.send);
        assert_eq!(survey.clause, Clause::r(15));
        assert!(may_send(MessageKind::Feedback, ContactChannel::Sms, &prefs, active).send);
        assert!(!may_send(MessageKind::Survey, ContactChannel::Email, &prefs, active).send);
        // A closed account gets no promotion even when opted in.
        assert!(
            !may_send(
                MessageKind::Marketing,
                ContactChannel::Email,
                &prefs,
                TenantState::Closed
            )
            .send
        );
    }
}
