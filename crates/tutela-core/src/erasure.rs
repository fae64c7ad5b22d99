//! Erasure of one subject (issue 6; R19, R33, R34): what a deletion request removes, what
//! the law makes us keep (frozen, with its ground), and the subject's state afterwards.
//! Pure: the edge loads the subject's categories and applies the plan in one transaction.
//!
//! Crypto-shredding comes first in spirit: the subject's data key is always destroyed,
//! so every copy of every deleted field (backups included) becomes unreadable. What must
//! be kept is re-sealed under a fresh key first, so the shred never reaches it.

use crate::clause::Clause;
use crate::policy::Policy;
use crate::vocab::Category;
use time::{Duration, OffsetDateTime};

/// A category kept after a deletion because a law requires it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalHold {
    pub category: Category,
    pub until: OffsetDateTime,
    /// The law, as the policy names it (`retention.legal_hold`).
    pub ground: String,
}

/// What erasing a subject does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasurePlan {
    /// Removed now (rows deleted, key shredded).
    pub delete: Vec<Category>,
    /// Kept frozen under a new key until their hold ends.
    pub keep: Vec<LegalHold>,
}

impl ErasurePlan {
    /// The subject stays frozen until the last hold ends (R19); `None` when nothing is kept.
    pub fn frozen_until(&self) -> Option<OffsetDateTime> {
        self.keep.iter().map(|h| h.until).max()
    }

    /// The grounds of every hold, in one line for the subject row and the answer.
    pub fn ground(&self) -> Option<String> {
        (!self.keep.is_empty()).then(|| {
            self.keep
                .iter()
                .map(|h| format!("{}: {}", h.category, h.ground))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// Plans the erasure of a subject holding `present` categories at `now`: categories whose
/// retention names a legal hold are kept for their retention period; the rest go.
pub fn plan(policy: &Policy, present: &[Category], now: OffsetDateTime) -> ErasurePlan {
    let mut delete = Vec::new();
    let mut keep = Vec::new();
    for &category in present {
        let retention = policy.category(category).map(|c| &c.retention);
        match retention.and_then(|r| r.legal_hold.as_ref().map(|g| (r, g))) {
            Some((r, ground)) if r.after_closure_days > 0 => keep.push(LegalHold {
                category,
                until: now + Duration::days(i64::from(r.after_closure_days)),
                ground: ground.clone(),
            }),
            _ => delete.push(category),
        }
    }
    ErasurePlan { delete, keep }
}

/// Where a subject stands after (or without) an erasure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubjectHold {
    /// Nothing was erased.
    #[default]
    None,
    /// Erased; what the law keeps is frozen until then (R19).
    Frozen { until: OffsetDateTime },
    /// Erased, nothing kept: no data may be written again for this subject.
    Erased,
}

impl SubjectHold {
    /// The hold in force at `now`: a freeze that has ended leaves the subject erased (the
    /// retention engine then removes what was kept).
    pub fn at(erased: bool, frozen_until: Option<OffsetDateTime>, now: OffsetDateTime) -> Self {
        match (erased, frozen_until) {
            (false, _) => SubjectHold::None,
            (true, Some(until)) if now < until => SubjectHold::Frozen { until },
            (true, _) => SubjectHold::Erased,
        }
    }

    /// The clause that governs the subject's data after erasure.
    pub fn clause(self) -> Option<Clause> {
        match self {
            SubjectHold::None => None,
            SubjectHold::Frozen { .. } => Some(Clause::r(19)),
            SubjectHold::Erased => Some(Clause::r(33)),
        }
    }
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

    #[test]
    fn deletion_keeps_only_what_a_law_requires_r19_r33() {
        let p = policy();
        let plan = plan(
            &p,
            &[
                Category::Administrator,
                Category::Payment,
                Category::Support,
            ],
            T0,
        );
        assert_eq!(
            plan.delete,
            vec![Category::Administrator, Category::Support]
        );
        assert_eq!(plan.keep.len(), 1);
        let hold = &plan.keep[0];
        assert_eq!(hold.category, Category::Payment);
        assert_eq!(hold.until, T0 + Duration::days(1095));
        assert!(hold.ground.contains("E-Commerce Law"));
        assert_eq!(plan.frozen_until(), Some(T0 + Duration::days(1095)));
        assert!(plan.ground().is_some_and(|g| g.starts_with("payment: ")));
    }

    #[test]
    fn nothing_held_means_nothing_frozen() {
        let plan = plan(&policy(), &[Category::Administrator, Category::Cookie], T0);
        assert!(plan.keep.is_empty());
        assert_eq!(plan.frozen_until(), None);
        assert_eq!(plan.ground(), None);
    }

    #[test]
    fn a_freeze_ends_in_erasure() {
        let until = T0 + Duration::days(10);
        assert_eq!(SubjectHold::at(false, None, T0), SubjectHold::None);
        assert_eq!(
            SubjectHold::at(true, Some(until), T0),
            SubjectHold::Frozen { until }
        );
        assert_eq!(
            SubjectHold::at(true, Some(until), until),
            SubjectHold::Erased
        );
        assert_eq!(SubjectHold::at(true, None, T0), SubjectHold::Erased);
    }
}
