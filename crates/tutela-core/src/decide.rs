//! The access decision: a pure function of (policy, actor, action, target, category,
//! purpose, consents, grants, now) returning a [`Decision`] that says why and cites the
//! clause. A deny is a value, never an error. No IO: the caller loads the subject's
//! state, consents and grants, then asks.
//!
//! Order of rules (first match wins):
//! 1. scope (R2): other tenants' and other subjects' data is hidden (404);
//!    auditors never read personal data;
//! 2. lifecycle (R19, R41): erased or expired tenants have no data; a closed tenant's
//!    data is frozen (423) except `legal_obligation` by a privacy officer; so is what
//!    the law keeps of an erased subject (R33), and nothing else of it is touched;
//! 3. overseas support (R7, R22): only under an active grant covering the category;
//! 4. deletion needs no purpose (R33); minors (R43): nothing is stored for a minor without guardian consent;
//! 5. successor purpose change (R27): a purpose changed by a successor controller needs
//!    the subject's fresh consent;
//! 6. purpose (R4, R5, R8, R11, R13, ...): prohibited purposes are denied whatever
//!    consent exists; declared ones are allowed (conditions passed on); undeclared ones
//!    need a current express consent for that purpose.

use crate::actor::{Actor, Role};
use crate::clause::Clause;
use crate::erasure::SubjectHold;
use crate::ids::{SubjectId, TenantId};
use crate::policy::{Policy, PurposeCondition, PurposeVerdict};
use crate::tenant::TenantState;
use crate::vocab::{Category, Purpose, Region};
use time::OffsetDateTime;

/// What the caller wants to do with the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Write,
    Delete,
}

/// How a denial should be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// 403: the role or the policy forbids it.
    Forbidden,
    /// 404: the caller may not learn that the data exists (R2).
    Hidden,
    /// 423: frozen under retention (R19).
    Frozen,
}

impl Decision {
    /// Whether a consent could turn this denial into an allow: an undeclared purpose
    /// (R4) or a minor's data without guardian consent (R43). Consents never turn an
    /// allow into a deny, so the edges may decide without consents first and consult the
    /// ledger only when this is true, keeping it off the common read path.
    pub fn depends_on_consent(&self) -> bool {
        matches!(
            self.reason,
            "purpose_not_declared" | "minor_needs_guardian_consent"
        )
    }

    /// Whether this denial is lifted by the subject's current express consent to the
    /// requested purpose alone (R4), so only that purpose's latest ledger entry matters.
    pub fn awaits_express_consent(&self) -> bool {
        self.reason == "purpose_not_declared"
    }
}

/// Allow, or deny and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny(Denial),
}

/// A decision with its reason and the clause that decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub effect: Effect,
    /// Stable snake_case reason code (no personal data).
    pub reason: &'static str,
    pub clause: Clause,
    /// A condition the caller must still honour (contact preferences, PII removal, ...).
    pub condition: Option<PurposeCondition>,
    /// The index in `Request::grants` of the grant that let an overseas engineer in
    /// (R7): the caller audits the access under that grant's id.
    pub grant: Option<usize>,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        self.effect == Effect::Allow
    }

    fn allow(reason: &'static str, clause: Clause, condition: Option<PurposeCondition>) -> Self {
        Self {
            effect: Effect::Allow,
            reason,
            clause,
            condition,
            grant: None,
        }
    }

    fn deny(how: Denial, reason: &'static str, clause: Clause) -> Self {
        Self {
            effect: Effect::Deny(how),
            reason,
            clause,
            grant: None,
            condition: None,
        }
    }
}

/// The subject whose data is touched, as loaded by the caller.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub tenant: &'a TenantId,
    pub subject: &'a SubjectId,
    pub tenant_state: TenantState,
    /// After a deletion request (R19, R33): frozen for what the law keeps, or erased.
    pub hold: SubjectHold,
    pub minor: bool,
}

/// An approved just-in-time support grant (R7), as loaded by the caller.
#[derive(Debug, Clone)]
pub struct GrantView {
    pub tenant: TenantId,
    pub categories: Vec<Category>,
    pub expires_at: OffsetDateTime,
    pub active: bool,
}

/// The subject's consent state relevant to a decision.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsentView<'a> {
    /// Purposes with a current (not withdrawn) express consent (R4).
    pub express: &'a [Purpose],
    /// A guardian's consent is on record (R43).
    pub guardian: bool,
    /// R27: the purpose was changed by a successor controller and this subject has not
    /// consented to it again since. The edge computes it (see
    /// [`crate::consent::reconsented_since`]) only for changed purposes.
    pub reconsent_missing: bool,
}

/// The question asked of [`decide`].
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub actor: &'a Actor,
    pub action: Action,
    pub target: Target<'a>,
    pub category: Category,
    pub purpose: Purpose,
    pub consents: ConsentView<'a>,
    pub grants: &'a [GrantView],
    pub now: OffsetDateTime,
}

/// Decides one access.
pub fn decide(policy: &Policy, req: &Request<'_>) -> Decision {
    let d = decide_steps(policy, req);
    let grant = (d.is_allowed() && is_overseas_support(req.actor))
        .then(|| covering_grant(req))
        .flatten();
    Decision { grant, ..d }
}

fn is_overseas_support(actor: &Actor) -> bool {
    actor.role() == Role::Support && actor.region() == Region::Overseas
}

/// The first active, unexpired grant for the target's tenant covering the category.
fn covering_grant(req: &Request<'_>) -> Option<usize> {
    req.grants.iter().position(|g| {
        g.active
            && g.tenant == *req.target.tenant
            && g.categories.contains(&req.category)
            && req.now < g.expires_at
    })
}

/// The rules in order, first match wins.
fn decide_steps(policy: &Policy, req: &Request<'_>) -> Decision {
    let actor = req.actor;
    let t = req.target;

    // 1. Scope (R2).
    match actor.role() {
        Role::Auditor => {
            return Decision::deny(
                Denial::Forbidden,
                "role_reads_no_personal_data",
                Clause::r(29),
            )
        }
        Role::TenantAdmin if actor.tenant() != Some(t.tenant) => {
            return Decision::deny(Denial::Hidden, "other_tenant", Clause::r(2))
        }
        Role::EndUser if actor.subject() != Some(t.subject) || actor.tenant() != Some(t.tenant) => {
            return Decision::deny(Denial::Hidden, "other_subject", Clause::r(2))
        }
        _ => {}
    }

    // 2. Lifecycle (R19, R41).
    match t.tenant_state {
        TenantState::Erased => return Decision::deny(Denial::Forbidden, "erased", Clause::r(19)),
        TenantState::Expired => {
            return Decision::deny(Denial::Forbidden, "trial_expired", Clause::r(41))
        }
        TenantState::Closed => {
            let legal = req.purpose == Purpose::LegalObligation
                && actor.role() == Role::PrivacyOfficer
                && req.action == Action::Read;
            if !legal {
                return Decision::deny(Denial::Frozen, "frozen_after_closure", Clause::r(19));
            }
            return Decision::allow("legal_obligation_while_frozen", Clause::r(19), None);
        }
        TenantState::Trial | TenantState::Active => {}
    }
    match t.hold {
        SubjectHold::None => {}
        SubjectHold::Erased => {
            return Decision::deny(Denial::Forbidden, "subject_erased", Clause::r(33))
        }
        SubjectHold::Frozen { .. } => {
            let legal = req.purpose == Purpose::LegalObligation
                && actor.role() == Role::PrivacyOfficer
                && req.action == Action::Read;
            if !legal {
                return Decision::deny(Denial::Frozen, "frozen_after_deletion", Clause::r(19));
            }
            return Decision::allow("legal_obligation_while_frozen", Clause::r(19), None);
        }
    }

    // 3. Overseas support access only under an active grant (R7).
    if is_overseas_support(actor) && (covering_grant(req).is_none() || req.action != Action::Read) {
        return Decision::deny(
            Denial::Forbidden,
            "overseas_access_needs_grant",
            Clause::r(7),
        );
    }

    // Erasure is the subject's right, not a use of the data: once the caller is in
    // scope and the data is not frozen, no purpose is needed (R33).
    if req.action == Action::Delete {
        return Decision::allow("erasure", Clause::r(33), None);
    }

    // 4. Minors (R43).
    if req.action == Action::Write && t.minor && !req.consents.guardian {
        return Decision::deny(
            Denial::Forbidden,
            "minor_needs_guardian_consent",
            Clause::r(43),
        );
    }

    // 5. A purpose changed by a successor controller is unusable until the subject
    // consents again (R27), whatever the category declares.
    if req.consents.reconsent_missing {
        return Decision::deny(
            Denial::Forbidden,
            "purpose_changed_needs_reconsent",
            Clause::r(27),
        );
    }

    // 6. Purpose (R4 and the category's own clauses).
    match policy.purpose_verdict(req.category, req.purpose) {
        PurposeVerdict::Prohibited(p) => {
            Decision::deny(Denial::Forbidden, "purpose_prohibited", p.clause)
        }
        PurposeVerdict::Declared(r) => Decision::allow("purpose_declared", r.clause, r.condition),
        PurposeVerdict::Undeclared => {
            if req.consents.express.contains(&req.purpose) {
                Decision::allow("express_consent", Clause::r(4), None)
            } else {
                Decision::deny(Denial::Forbidden, "purpose_not_declared", Clause::r(4))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TokenId;

    const SHIPPED: &str = include_str!("../../../policy/statement.toml");
    const NOW: OffsetDateTime = time::macros::datetime!(2026-11-28 09:00 UTC);

    fn policy() -> Policy {
        crate::policy::load("statement.toml", SHIPPED).unwrap()
    }
    fn ten(n: u8) -> TenantId {
        TenantId::from_bytes([n; 16])
    }
    fn sub(n: u8) -> SubjectId {
        SubjectId::from_bytes([n; 16])
    }
    fn actor(role: Role, region: Region) -> Actor {
        let (tenant, subject) = match role {
            Role::TenantAdmin => (Some(ten(1)), None),
            Role::EndUser => (Some(ten(1)), Some(sub(1))),
            _ => (None, None),
        };
        Actor::new(TokenId::from_bytes([0; 16]), role, tenant, subject, region).unwrap()
    }

    struct Case {
        role: Role,
        region: Region,
        action: Action,
        tenant: u8,
        subject: u8,
        state: TenantState,
        hold: SubjectHold,
        minor: bool,
        category: Category,
        purpose: Purpose,
        express: Vec<Purpose>,
        guardian: bool,
        grants: Vec<GrantView>,
        reconsent_missing: bool,
    }

    fn base() -> Case {
        Case {
            role: Role::Service,
            region: Region::Cn,
            action: Action::Read,
            tenant: 1,
            subject: 1,
            state: TenantState::Active,
            hold: SubjectHold::None,
            minor: false,
            category: Category::Payment,
            purpose: Purpose::Transaction,
            express: vec![],
            guardian: false,
            grants: vec![],
            reconsent_missing: false,
        }
    }

    fn run(c: &Case) -> Decision {
        let p = policy();
        let a = actor(c.role, c.region);
        let (tn, sb) = (ten(c.tenant), sub(c.subject));
        decide(
            &p,
            &Request {
                actor: &a,
                action: c.action,
                target: Target {
                    tenant: &tn,
                    subject: &sb,
                    tenant_state: c.state,
                    hold: c.hold,
                    minor: c.minor,
                },
                category: c.category,
                purpose: c.purpose,
                consents: ConsentView {
                    express: &c.express,
                    guardian: c.guardian,
                    reconsent_missing: c.reconsent_missing,
                },
                grants: &c.grants,
                now: NOW,
            },
        )
    }

    fn check(c: Case, effect: Effect, clause: &str) {
        let d = run(&c);
        assert_eq!(
            (d.effect, d.clause.to_string().as_str()),
            (effect, clause),
            "{}",
            d.reason
        );
    }

    const DENY: Effect = Effect::Deny(Denial::Forbidden);

    #[test]
    fn purposes_r5_r8_r11() {
        check(base(), Effect::Allow, "R11");
        check(
            Case {
                purpose: Purpose::FraudPrevention,
                ..base()
            },
            Effect::Allow,
            "R11",
        );
        check(
            Case {
                purpose: Purpose::ServiceImprovement,
                ..base()
            },
            DENY,
            "R4",
        );
        check(
            Case {
                purpose: Purpose::Marketing,
                ..base()
            },
            DENY,
            "R11",
        );
        check(
            Case {
                category: Category::Customer,
                purpose: Purpose::Marketing,
                express: vec![Purpose::Marketing],
                ..base()
            },
            DENY,
            "R5",
        );
        check(
            Case {
                category: Category::Administrator,
                purpose: Purpose::AccountAdmin,
                ..base()
            },
            Effect::Allow,
            "R8",
        );
    }

    #[test]
    fn undeclared_purpose_needs_express_consent_r4() {
        let research = Case {
            category: Category::Administrator,
            purpose: Purpose::Research,
            ..base()
        };
        check(research, DENY, "R4");
        check(
            Case {
                category: Category::Administrator,
                purpose: Purpose::Research,
                express: vec![Purpose::Research],
                ..base()
            },
            Effect::Allow,
            "R4",
        );
    }

    #[test]
    fn conditions_are_passed_on() {
        let d = run(&Case {
            category: Category::Support,
            purpose: Purpose::Training,
            ..base()
        });
        assert_eq!(d.condition, Some(PurposeCondition::PiiRemoved));
    }

    #[test]
    fn scope_r2() {
        check(
            Case {
                role: Role::TenantAdmin,
                tenant: 2,
                ..base()
            },
            Effect::Deny(Denial::Hidden),
            "R2",
        );
        check(
            Case {
                role: Role::TenantAdmin,
                ..base()
            },
            Effect::Allow,
            "R11",
        );
        check(
            Case {
                role: Role::EndUser,
                subject: 2,
                ..base()
            },
            Effect::Deny(Denial::Hidden),
            "R2",
        );
        check(
            Case {
                role: Role::EndUser,
                ..base()
            },
            Effect::Allow,
            "R11",
        );
        check(
            Case {
                role: Role::Auditor,
                ..base()
            },
            DENY,
            "R29",
        );
    }

    #[test]
    fn what_a_deletion_keeps_is_frozen_and_the_rest_is_gone_r19_r33() {
        let frozen = SubjectHold::Frozen {
            until: NOW + time::Duration::days(30),
        };
        for action in [Action::Read, Action::Write, Action::Delete] {
            check(
                Case {
                    hold: frozen,
                    action,
                    ..base()
                },
                Effect::Deny(Denial::Frozen),
                "R19",
            );
        }
        check(
            Case {
                hold: frozen,
                role: Role::PrivacyOfficer,
                purpose: Purpose::LegalObligation,
                ..base()
            },
            Effect::Allow,
            "R19",
        );
        check(
            Case {
                hold: SubjectHold::Erased,
                action: Action::Write,
                ..base()
            },
            DENY,
            "R33",
        );
    }

    #[test]
    fn frozen_after_closure_r19() {
        check(
            Case {
                state: TenantState::Closed,
                ..base()
            },
            Effect::Deny(Denial::Frozen),
            "R19",
        );
        check(
            Case {
                state: TenantState::Closed,
                role: Role::PrivacyOfficer,
                purpose: Purpose::LegalObligation,
                ..base()
            },
            Effect::Allow,
            "R19",
        );
        check(
            Case {
                state: TenantState::Closed,
                role: Role::PrivacyOfficer,
                purpose: Purpose::LegalObligation,
                action: Action::Write,
                ..base()
            },
            Effect::Deny(Denial::Frozen),
            "R19",
        );
        check(
            Case {
                state: TenantState::Expired,
                ..base()
            },
            DENY,
            "R41",
        );
    }

    #[test]
    fn overseas_support_needs_an_active_grant_r7() {
        let overseas = || Case {
            role: Role::Support,
            region: Region::Overseas,
            category: Category::Customer,
            purpose: Purpose::Troubleshooting,
            ..base()
        };
        check(overseas(), DENY, "R7");
        let grant = |tenant: u8, active: bool, minutes: i64| GrantView {
            tenant: ten(tenant),
            categories: vec![Category::Customer],
            expires_at: NOW + time::Duration::minutes(minutes),
            active,
        };
        check(
            Case {
                grants: vec![grant(1, true, 30)],
                ..overseas()
            },
            Effect::Allow,
            "R5",
        );
        check(
            Case {
                grants: vec![grant(1, false, 30)],
                ..overseas()
            },
            DENY,
            "R7",
        );
        check(
            Case {
                grants: vec![grant(1, true, -1)],
                ..overseas()
            },
            DENY,
            "R7",
        );
        check(
            Case {
                grants: vec![grant(2, true, 30)],
                ..overseas()
            },
            DENY,
            "R7",
        );
        check(
            Case {
                grants: vec![grant(1, true, 30)],
                category: Category::Payment,
                ..overseas()
            },
            DENY,
            "R7",
        );
        check(
            Case {
                grants: vec![grant(1, true, 30)],
                action: Action::Write,
                ..overseas()
            },
            DENY,
            "R7",
        );
        check(
            Case {
                region: Region::Cn,
                ..overseas()
            },
            Effect::Allow,
            "R5",
        );
        // The decision names the grant the access rests on, for the audit trail.
        let d = run(&Case {
            grants: vec![grant(2, true, 30), grant(1, true, 30)],
            ..overseas()
        });
        assert!(d.is_allowed());
        assert_eq!(d.grant, Some(1));
        assert_eq!(
            run(&Case {
                region: Region::Cn,
                ..overseas()
            })
            .grant,
            None
        );
    }

    #[test]
    fn minors_need_guardian_consent_to_store_r43() {
        check(
            Case {
                action: Action::Write,
                minor: true,
                ..base()
            },
            DENY,
            "R43",
        );
        check(
            Case {
                action: Action::Write,
                minor: true,
                guardian: true,
                ..base()
            },
            Effect::Allow,
            "R11",
        );
        check(
            Case {
                action: Action::Read,
                minor: true,
                ..base()
            },
            Effect::Allow,
            "R11",
        );
    }

    #[test]
    fn deletion_needs_scope_not_purpose_r33() {
        check(
            Case {
                action: Action::Delete,
                purpose: Purpose::Research,
                ..base()
            },
            Effect::Allow,
            "R33",
        );
        check(
            Case {
                action: Action::Delete,
                role: Role::TenantAdmin,
                tenant: 2,
                ..base()
            },
            Effect::Deny(Denial::Hidden),
            "R2",
        );
        check(
            Case {
                action: Action::Delete,
                state: TenantState::Closed,
                ..base()
            },
            Effect::Deny(Denial::Frozen),
            "R19",
        );
    }

    /// Exhaustive comparison of the purpose step with a naive scan of the rules.
    #[test]
    fn purpose_step_matches_naive_reference() {
        let p = policy();
        for c in Category::ALL {
            let cp = p.category(*c).unwrap();
            for purpose in Purpose::ALL {
                for consented in [false, true] {
                    let naive = if cp.prohibited.iter().any(|x| x.purpose == *purpose) {
                        false
                    } else if cp.purposes.iter().any(|r| r.purpose == *purpose) {
                        true
                    } else {
                        consented
                    };
                    let express = if consented { vec![*purpose] } else { vec![] };
                    let d = run(&Case {
                        category: *c,
                        purpose: *purpose,
                        express,
                        ..base()
                    });
                    assert_eq!(d.is_allowed(), naive, "{c}/{purpose} consented={consented}");
                }
            }
        }
    }

    #[test]
    fn a_purpose_changed_by_a_successor_is_denied_until_reconsent_r27() {
        // Declared for payment, but changed by the successor: denied, citing R27.
        check(
            Case {
                reconsent_missing: true,
                ..base()
            },
            Effect::Deny(Denial::Forbidden),
            "R27",
        );
        check(base(), Effect::Allow, "R11");
    }

    /// Consents only ever turn a denial into an allow, and only the denials that say so:
    /// the edges rely on this to consult the ledger lazily.
    #[test]
    fn consents_only_lift_denials_that_depend_on_them() {
        for c in Category::ALL {
            for purpose in Purpose::ALL {
                for action in [Action::Read, Action::Write] {
                    for minor in [false, true] {
                        let without = run(&Case {
                            category: *c,
                            purpose: *purpose,
                            action,
                            minor,
                            ..base()
                        });
                        let with = run(&Case {
                            category: *c,
                            purpose: *purpose,
                            action,
                            minor,
                            express: Purpose::ALL.to_vec(),
                            guardian: true,
                            ..base()
                        });
                        if without.is_allowed() {
                            assert!(with.is_allowed(), "{c}/{purpose}");
                        }
                        if with != without {
                            assert!(without.depends_on_consent(), "{c}/{purpose}: {without:?}");
                        }
                    }
                }
            }
        }
    }
}
