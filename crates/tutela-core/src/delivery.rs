//! The propagation outbox (issue 6; R34): every recipient that got a subject's data hears
//! of its deletion and acknowledges it. Pure rules: who must be told, how an attempt's
//! outcome moves a delivery, and when the next attempt is due. The server sends the
//! webhooks and stores the rows; a delivery's id is its idempotency key.

use crate::vocab::Category;
use std::collections::BTreeSet;
use time::{Duration, OffsetDateTime};

closed_vocab!(
    /// Where one recipient's notification stands.
    DeliveryStatus, "delivery status", {
        /// Not yet accepted by the recipient; retried with backoff.
        Pending = "pending",
        /// Accepted (2xx) without an acknowledgement; retried until acknowledged.
        Delivered = "delivered",
        /// The recipient confirmed the deletion.
        Acknowledged = "acknowledged",
        /// The privacy officer recorded why this recipient cannot acknowledge.
        Waived = "waived",
        /// The recipient has no webhook: the officer records its acknowledgement.
        Manual = "manual",
    }
);

impl DeliveryStatus {
    /// Acknowledged or waived: nothing more to do.
    pub fn is_settled(self) -> bool {
        matches!(self, DeliveryStatus::Acknowledged | DeliveryStatus::Waived)
    }

    /// Still to be sent (again).
    pub fn is_sendable(self) -> bool {
        matches!(self, DeliveryStatus::Pending | DeliveryStatus::Delivered)
    }
}

/// A request completes only once every recipient acknowledged or was waived (R34).
pub fn all_settled(statuses: impl IntoIterator<Item = DeliveryStatus>) -> bool {
    statuses.into_iter().all(DeliveryStatus::is_settled)
}

/// A recipient as the outbox sees it.
#[derive(Debug, Clone)]
pub struct RecipientScope<'a> {
    pub id: &'a str,
    pub categories: &'a [Category],
}

/// Who must hear of a subject's deletion: every recipient in the transfer register for
/// that subject, and every recipient configured for a category the subject had (a
/// processor gets that category's data without a per-subject transfer entry).
pub fn recipients_to_notify<'a>(
    transferred_to: impl IntoIterator<Item = &'a str>,
    configured: &[RecipientScope<'a>],
    subject_categories: &[Category],
) -> BTreeSet<&'a str> {
    let mut out: BTreeSet<&str> = transferred_to.into_iter().collect();
    for r in configured {
        if r.categories.iter().any(|c| subject_categories.contains(c)) {
            out.insert(r.id);
        }
    }
    out
}

/// What one webhook attempt produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// 2xx with an acknowledgement body.
    Acknowledged,
    /// 2xx without one.
    Accepted,
    /// Anything else: transport error, timeout, non-2xx.
    Failed,
}

/// Retry spacing: doubling from `base`, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::seconds(30),
            max: Duration::hours(6),
        }
    }
}

impl Backoff {
    /// The wait after the `attempts`-th failed (or unacknowledged) attempt.
    pub fn delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        let factor = 1i32.checked_shl(doublings).unwrap_or(i32::MAX);
        self.base
            .checked_mul(factor)
            .map_or(self.max, |d| d.min(self.max))
    }
}

/// A delivery after an attempt: its status, attempt count and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterAttempt {
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: OffsetDateTime,
}

/// Moves a delivery on after one attempt at `now`.
pub fn after_attempt(
    status: DeliveryStatus,
    attempts: u32,
    outcome: AttemptOutcome,
    now: OffsetDateTime,
    backoff: Backoff,
) -> AfterAttempt {
    let attempts = attempts.saturating_add(1);
    let status = match (status, outcome) {
        // Settled deliveries never move back (a late retry result is ignored).
        (s, _) if s.is_settled() => s,
        (_, AttemptOutcome::Acknowledged) => DeliveryStatus::Acknowledged,
        (_, AttemptOutcome::Accepted) | (DeliveryStatus::Delivered, AttemptOutcome::Failed) => {
            DeliveryStatus::Delivered
        }
        (_, AttemptOutcome::Failed) => DeliveryStatus::Pending,
    };
    AfterAttempt {
        status,
        attempts,
        next_attempt_at: now + backoff.delay(attempts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-29 08:00 UTC);

    #[test]
    fn recipients_are_the_register_and_the_configured_processors_r34() {
        let pay = [Category::Payment];
        let sup = [Category::Support];
        let configured = [
            RecipientScope {
                id: "rcp_pay",
                categories: &pay,
            },
            RecipientScope {
                id: "rcp_sup",
                categories: &sup,
            },
        ];
        let who = recipients_to_notify(["rcp_aff"], &configured, &[Category::Payment]);
        assert_eq!(who.into_iter().collect::<Vec<_>>(), ["rcp_aff", "rcp_pay"]);
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let b = Backoff::default();
        assert_eq!(b.delay(1), Duration::seconds(30));
        assert_eq!(b.delay(2), Duration::seconds(60));
        assert_eq!(b.delay(3), Duration::seconds(120));
        assert_eq!(b.delay(40), Duration::hours(6));
    }

    #[test]
    fn outcomes_move_a_delivery_and_acks_are_final() {
        let b = Backoff::default();
        let failed = after_attempt(DeliveryStatus::Pending, 0, AttemptOutcome::Failed, T0, b);
        assert_eq!(failed.status, DeliveryStatus::Pending);
        assert_eq!(failed.attempts, 1);
        assert_eq!(failed.next_attempt_at, T0 + Duration::seconds(30));
        let accepted = after_attempt(failed.status, 1, AttemptOutcome::Accepted, T0, b);
        assert_eq!(accepted.status, DeliveryStatus::Delivered);
        let still = after_attempt(accepted.status, 2, AttemptOutcome::Failed, T0, b);
        assert_eq!(
            still.status,
            DeliveryStatus::Delivered,
            "accepted stays accepted"
        );
        let acked = after_attempt(still.status, 3, AttemptOutcome::Acknowledged, T0, b);
        assert_eq!(acked.status, DeliveryStatus::Acknowledged);
        let late = after_attempt(acked.status, 4, AttemptOutcome::Failed, T0, b);
        assert_eq!(late.status, DeliveryStatus::Acknowledged);
    }

    #[test]
    fn completion_waits_for_every_recipient() {
        use DeliveryStatus as D;
        assert!(all_settled([D::Acknowledged, D::Waived]));
        assert!(!all_settled([D::Acknowledged, D::Delivered]));
        assert!(!all_settled([D::Manual]));
        assert!(all_settled([]));
    }
}
