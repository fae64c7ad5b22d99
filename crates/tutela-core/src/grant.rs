//! Just-in-time support access grants (issue 5; R7, R22): the lifecycle as a pure
//! function of (grant, event, now).
//!
//! A `support` engineer asks for access to one tenant's categories, tied to an incident.
//! The request is `pending` until the tenant's admin approves or denies it, and lapses if
//! nobody answers in time. An approved grant is `active` for a bounded time; resolving the
//! incident ends it at once. Only an active, unexpired grant lets an overseas engineer read
//! (see [`crate::decide`]).

use time::{Duration, OffsetDateTime};

closed_vocab!(
    /// The stored state of a grant. Expiry is not stored: it follows from the clock.
    GrantState, "grant state", {
        Pending = "pending",
        Active = "active",
        Denied = "denied",
        /// Ended by resolving its incident (or withdrawn).
        Ended = "ended",
    }
);

/// The state as of now: stored state plus expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantStatus {
    Pending,
    Active,
    Denied,
    Ended,
    /// Pending too long, or active past its end.
    Expired,
}

impl GrantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantStatus::Pending => "pending",
            GrantStatus::Active => "active",
            GrantStatus::Denied => "denied",
            GrantStatus::Ended => "ended",
            GrantStatus::Expired => "expired",
        }
    }
}

/// The lifecycle-relevant part of a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantLife {
    pub state: GrantState,
    /// A pending request lapses at this time.
    pub pending_until: OffsetDateTime,
    /// How long access lasts once approved.
    pub duration: Duration,
    /// Set on approval: access ends at this time.
    pub expires_at: Option<OffsetDateTime>,
}

/// What can happen to a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantEvent {
    Approve,
    Deny,
    /// The incident was resolved: access ends at once.
    Resolve,
}

/// Why an event does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a grant that is {status} cannot be {event}")]
pub struct GrantTransitionError {
    pub status: &'static str,
    pub event: &'static str,
}

impl GrantLife {
    pub fn status(&self, now: OffsetDateTime) -> GrantStatus {
        match self.state {
            GrantState::Pending if now >= self.pending_until => GrantStatus::Expired,
            GrantState::Pending => GrantStatus::Pending,
            GrantState::Active => match self.expires_at {
                Some(end) if now < end => GrantStatus::Active,
                _ => GrantStatus::Expired,
            },
            GrantState::Denied => GrantStatus::Denied,
            GrantState::Ended => GrantStatus::Ended,
        }
    }

    /// Applies `event` at `now`, or says why it cannot.
    pub fn apply(
        &self,
        event: GrantEvent,
        now: OffsetDateTime,
    ) -> Result<Self, GrantTransitionError> {
        let status = self.status(now);
        let refuse = |event: &'static str| GrantTransitionError {
            status: status.as_str(),
            event,
        };
        match (event, status) {
            (GrantEvent::Approve, GrantStatus::Pending) => Ok(Self {
                state: GrantState::Active,
                expires_at: Some(now + self.duration),
                ..*self
            }),
            (GrantEvent::Approve, _) => Err(refuse("approved")),
            (GrantEvent::Deny, GrantStatus::Pending) => Ok(Self {
                state: GrantState::Denied,
                ..*self
            }),
            (GrantEvent::Deny, _) => Err(refuse("denied")),
            (GrantEvent::Resolve, GrantStatus::Pending | GrantStatus::Active) => Ok(Self {
                state: GrantState::Ended,
                expires_at: self.expires_at.map(|e| e.min(now)),
                ..*self
            }),
            (GrantEvent::Resolve, _) => Err(refuse("ended")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-29 08:00 UTC);

    fn pending() -> GrantLife {
        GrantLife {
            state: GrantState::Pending,
            pending_until: T0 + Duration::days(4),
            duration: Duration::hours(8),
            expires_at: None,
        }
    }

    #[test]
    fn approved_grants_are_active_for_their_duration_r7() {
        let g = pending()
            .apply(GrantEvent::Approve, T0 + Duration::hours(1))
            .unwrap();
        assert_eq!(g.status(T0 + Duration::hours(2)), GrantStatus::Active);
        assert_eq!(g.status(T0 + Duration::hours(9)), GrantStatus::Expired);
        assert_eq!(g.expires_at, Some(T0 + Duration::hours(9)));
    }

    #[test]
    fn unanswered_requests_lapse_and_cannot_be_approved_late() {
        let late = T0 + Duration::days(4);
        assert_eq!(pending().status(late), GrantStatus::Expired);
        assert!(pending().apply(GrantEvent::Approve, late).is_err());
    }

    #[test]
    fn resolving_the_incident_ends_access_at_once_r7() {
        let active = pending().apply(GrantEvent::Approve, T0).unwrap();
        let at = T0 + Duration::minutes(30);
        let ended = active.apply(GrantEvent::Resolve, at).unwrap();
        assert_eq!(ended.status(at), GrantStatus::Ended);
        assert_eq!(ended.expires_at, Some(at));
        // Nothing brings it back.
        assert!(ended.apply(GrantEvent::Approve, at).is_err());
        assert!(ended.apply(GrantEvent::Resolve, at).is_err());
    }

    #[test]
    fn only_pending_requests_can_be_denied() {
        let denied = pending().apply(GrantEvent::Deny, T0).unwrap();
        assert_eq!(denied.status(T0), GrantStatus::Denied);
        assert!(denied.apply(GrantEvent::Approve, T0).is_err());
        let active = pending().apply(GrantEvent::Approve, T0).unwrap();
        let err = active.apply(GrantEvent::Deny, T0).unwrap_err();
        assert_eq!(err.to_string(), "a grant that is active cannot be denied");
    }
}
