//! Account lifecycle and retention (issue 7; R19, R20, R41): a pure state machine of
//! (tenant, event, now) and the rules that say which data is due for deletion or
//! anonymization. The retention engine (server) loads tenants and subjects, asks these
//! functions, and executes the answer in crash-safe batches.
//!
//! trial → active → closed (frozen until the longest retention ends) → erased;
//! trial → expired (kept `trial.retain_after_expiry_days`) → erased.

use crate::policy::{Policy, RetentionAction};
use crate::tenant::TenantState;
use crate::vocab::{Category, ServiceId};
use time::{Duration, OffsetDateTime};

/// What happens to a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantEvent {
    /// A trial customer buys (R41).
    Activate,
    /// The account is closed (R19): data frozen for its retention periods.
    Close,
    /// The trial ended without purchase (R41).
    ExpireTrial,
    /// Every retention period ended and the data is gone (R19, R41).
    Erase,
}

/// The lifecycle-relevant part of a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantLife {
    pub state: TenantState,
    pub trial_ends_at: Option<OffsetDateTime>,
    pub closed_at: Option<OffsetDateTime>,
    /// Closed or expired: nothing may be used until then; after it, nothing is left.
    pub frozen_until: Option<OffsetDateTime>,
}

/// Why an event does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("a tenant that is {0} cannot take this step")]
    WrongState(&'static str),
    #[error("the trial has not ended yet")]
    TrialNotEnded,
    #[error("retention periods have not all ended yet")]
    RetentionNotEnded,
}

/// The longest `after_closure_days` of any category: how long a closed account stays frozen.
pub fn longest_retention(policy: &Policy) -> Duration {
    Duration::days(i64::from(
        policy
            .categories
            .iter()
            .map(|c| c.retention.after_closure_days)
            .max()
            .unwrap_or(0),
    ))
}

impl TenantLife {
    pub fn apply(
        &self,
        event: TenantEvent,
        now: OffsetDateTime,
        policy: &Policy,
    ) -> Result<Self, LifecycleError> {
        use TenantState as S;
        let wrong = || LifecycleError::WrongState(self.state.as_str());
        match event {
            TenantEvent::Activate => match self.state {
                S::Trial => Ok(Self {
                    state: S::Active,
                    trial_ends_at: None,
                    ..*self
                }),
                _ => Err(wrong()),
            },
            TenantEvent::Close => match self.state {
                S::Trial | S::Active => Ok(Self {
                    state: S::Closed,
                    trial_ends_at: None,
                    closed_at: Some(now),
                    frozen_until: Some(now + longest_retention(policy)),
                }),
                _ => Err(wrong()),
            },
            TenantEvent::ExpireTrial => match (self.state, self.trial_ends_at) {
                (S::Trial, Some(end)) if now >= end => Ok(Self {
                    state: S::Expired,
                    frozen_until: Some(
                        end + Duration::days(i64::from(policy.trial.retain_after_expiry_days)),
                    ),
                    ..*self
                }),
                (S::Trial, _) => Err(LifecycleError::TrialNotEnded),
                _ => Err(wrong()),
            },
            TenantEvent::Erase => match (self.state, self.frozen_until) {
                (S::Closed | S::Expired, Some(until)) if now >= until => Ok(Self {
                    state: S::Erased,
                    ..*self
                }),
                (S::Closed | S::Expired, _) => Err(LifecycleError::RetentionNotEnded),
                _ => Err(wrong()),
            },
        }
    }

    /// Whether the trial has run out and the tenant should move to `expired` (R41).
    pub fn trial_has_ended(&self, now: OffsetDateTime) -> bool {
        self.state == TenantState::Trial && self.trial_ends_at.is_some_and(|end| now >= end)
    }

    /// Everything is due: the tenant's subjects are erased whole (key shredded).
    pub fn fully_due(&self, now: OffsetDateTime) -> bool {
        matches!(self.state, TenantState::Closed | TenantState::Expired)
            && self.frozen_until.is_some_and(|until| now >= until)
    }

    /// The categories whose retention has ended at `now`, with what happens to them:
    /// after closure, each category on its own period (R19); after a trial, everything
    /// at once with the trial's action (R41).
    pub fn due_categories(
        &self,
        policy: &Policy,
        now: OffsetDateTime,
    ) -> Vec<(Category, RetentionAction)> {
        match (self.state, self.closed_at, self.frozen_until) {
            (TenantState::Closed, Some(closed), _) => policy
                .categories
                .iter()
                .filter(|c| {
                    now >= closed + Duration::days(i64::from(c.retention.after_closure_days))
                })
                .map(|c| (c.category, c.retention.action))
                .collect(),
            (TenantState::Expired, _, Some(until)) if now >= until => policy
                .categories
                .iter()
                .map(|c| (c.category, policy.trial.action))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// A service that ends (R20): after `effective_at` its personal information is deleted
/// or anonymized, each category by its own retention action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    pub service: ServiceId,
    pub effective_at: OffsetDateTime,
}

impl Termination {
    pub fn is_due(&self, now: OffsetDateTime) -> bool {
        now >= self.effective_at
    }
}

/// What to do with one category's records of a subject whose retention ended.
pub fn action_for(
    policy: &Policy,
    category: Category,
    due: &[(Category, RetentionAction)],
) -> Option<RetentionAction> {
    due.iter()
        .find(|(c, _)| *c == category)
        .map(|(_, a)| *a)
        .or_else(|| {
            // A category the lifecycle did not list (a subject's frozen hold ending):
            // its own retention action.
            policy.category(category).map(|c| c.retention.action)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-29 08:00 UTC);

    fn policy() -> Policy {
        crate::policy::load(
            "statement.toml",
            include_str!("../../../policy/statement.toml"),
        )
        .unwrap()
    }

    fn active() -> TenantLife {
        TenantLife {
            state: TenantState::Active,
            trial_ends_at: None,
            closed_at: None,
            frozen_until: None,
        }
    }

    #[test]
    fn closing_freezes_until_the_longest_retention_then_erases_r19() {
        let p = policy();
        let closed = active().apply(TenantEvent::Close, T0, &p).unwrap();
        assert_eq!(closed.state, TenantState::Closed);
        assert_eq!(closed.frozen_until, Some(T0 + Duration::days(1095)));
        assert_eq!(
            closed.apply(TenantEvent::Erase, T0 + Duration::days(100), &p),
            Err(LifecycleError::RetentionNotEnded)
        );
        assert_eq!(
            closed.apply(TenantEvent::Close, T0, &p),
            Err(LifecycleError::WrongState("closed"))
        );
        let erased = closed
            .apply(TenantEvent::Erase, T0 + Duration::days(1095), &p)
            .unwrap();
        assert_eq!(erased.state, TenantState::Erased);
        assert!(erased.apply(TenantEvent::Activate, T0, &p).is_err());
    }

    #[test]
    fn categories_fall_due_one_by_one_after_closure_r19() {
        let p = policy();
        let closed = active().apply(TenantEvent::Close, T0, &p).unwrap();
        assert!(closed.due_categories(&p, T0).is_empty());
        let at_180 = closed.due_categories(&p, T0 + Duration::days(180));
        let names: Vec<&str> = at_180.iter().map(|(c, _)| c.as_str()).collect();
        assert!(names.contains(&"support") && names.contains(&"cookie"));
        assert!(!names.contains(&"payment"));
        assert!(at_180.contains(&(Category::Diagnostic, RetentionAction::Anonymize)));
        assert!(!closed.fully_due(T0 + Duration::days(180)));
        let all = closed.due_categories(&p, T0 + Duration::days(1095));
        assert_eq!(all.len(), p.categories.len());
        assert!(all.contains(&(Category::Payment, RetentionAction::Anonymize)));
        assert!(closed.fully_due(T0 + Duration::days(1095)));
    }

    #[test]
    fn a_trial_expires_then_its_data_is_deleted_after_the_grace_period_r41() {
        let p = policy();
        let trial = TenantLife {
            state: TenantState::Trial,
            trial_ends_at: Some(T0),
            ..active()
        };
        assert_eq!(
            trial.apply(TenantEvent::ExpireTrial, T0 - Duration::days(1), &p),
            Err(LifecycleError::TrialNotEnded)
        );
        assert!(trial.trial_has_ended(T0));
        let expired = trial.apply(TenantEvent::ExpireTrial, T0, &p).unwrap();
        assert_eq!(expired.state, TenantState::Expired);
        assert_eq!(expired.frozen_until, Some(T0 + Duration::days(30)));
        assert!(expired
            .due_categories(&p, T0 + Duration::days(29))
            .is_empty());
        let due = expired.due_categories(&p, T0 + Duration::days(30));
        assert!(due.iter().all(|(_, a)| *a == RetentionAction::Delete));
        assert_eq!(due.len(), p.categories.len());
        // Buying during the trial keeps everything.
        let bought = trial.apply(TenantEvent::Activate, T0, &p).unwrap();
        assert_eq!(bought.state, TenantState::Active);
        assert!(!bought.trial_has_ended(T0 + Duration::days(999)));
    }
}
