//! The access decision: a pure function of (policy, actor, action, target, category,
//! purpose, consents, grants, basis, now) returning a [`Decision`] that says why and
//! cites the clause. A deny is a value, never an error. No IO: the caller loads the
//! subject's state, consents and grants, then asks.
//!
//! Order of rules (first match wins):
//! 1. scope (R2): other tenants' and other subjects' data is hidden (404);
//! 2. access rules (R29, R7; `[[access]]` in the policy): the role may use this purpose on
//!    this category for this action, and shows what the rule requires (its own grant,
//!    a named basis, its token's scope); a role without rules reads nothing personal;
//! 3. lifecycle (R19, R41): erased or expired tenants have no data; a closed tenant's
//!    data is frozen (423) except `legal_obligation` by a privacy officer; so is what
//!    the law keeps of an erased subject (R33), and nothing else of it is touched;
//! 4. deletion needs no purpose (R33); a privacy officer's read for a named request
//!    needs none either (R35); minors (R43): nothing is stored for a minor without
//!    guardian consent;
//! 5. successor purpose change (R27): a purpose changed by a successor controller needs
//!    the subject's fresh consent;
//! 6. purpose (R4, R5, R8, R11, R13, ...): prohibited purposes are denied whatever
//!    consent exists; declared ones are allowed (conditions passed on, and checked by
//!    [`apply_condition`] once the caller has the facts); undeclared ones need a current
//!    express consent for that purpose.

use crate::actor::{Actor, Role};
use crate::clause::Clause;
use crate::erasure::SubjectHold;
use crate::ids::{SubjectId, TenantId, TokenId};
use crate::policy::{AccessAction, AccessCondition, Policy, PurposeCondition, PurposeVerdict};
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
    /// The engineer (token) that requested it: only they act under it.
    pub holder: TokenId,
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
    /// What a privacy officer named as the reason for a read (R29).
    pub basis: Option<NamedBasis>,
    pub now: OffsetDateTime,
}

/// The obligation a privacy officer names for a read; the edge has checked it (an open,
/// verified request about this very subject, or a legal reference given with the
/// `legal_obligation` purpose).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamedBasis {
    /// Fulfilling a data-subject request about this subject (R33, R35).
    Request,
    /// A legal obligation with its reference; the purpose is `legal_obligation`.
    LegalObligation,
}

/// Decides one access.
pub fn decide(policy: &Policy, req: &Request<'_>) -> Decision {
    let d = decide_steps(policy, req);
    let grant = (d.is_allowed() && req.actor.role() == Role::Support)
        .then(|| covering_grant(req))
        .flatten();
    Decision { grant, ..d }
}

fn is_overseas_support(actor: &Actor) -> bool {
    actor.role() == Role::Support && actor.region() == Region::Overseas
}

/// The first active, unexpired grant requested by this engineer for the target's tenant
/// covering the category: a grant is never shared with another engineer.
fn covering_grant(req: &Request<'_>) -> Option<usize> {
    req.grants.iter().position(|g| {
        g.active
            && g.holder == *req.actor.token()
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
        Role::TenantAdmin if actor.tenant() != Some(t.tenant) => {
            return Decision::deny(Denial::Hidden, "other_tenant", Clause::r(2))
        }
        Role::EndUser if actor.subject() != Some(t.subject) || actor.tenant() != Some(t.tenant) => {
            return Decision::deny(Denial::Hidden, "other_subject", Clause::r(2))
        }
        _ => {}
    }

    // 2. Access rules (R29, R7).
    let named = match access_rule(policy, req) {
        Ok(named) => named,
        Err(denied) => return denied,
    };

    // 3. Lifecycle (R19, R41).
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

    // Erasure is the subject's right, not a use of the data: once the caller is in
    // scope and the data is not frozen, no purpose is needed (R33).
    if req.action == Action::Delete {
        return Decision::allow("erasure", Clause::r(33), None);
    }

    // A privacy officer who named the obligation reads whatever it covers: fulfilling a
    // verified request about this subject (R35), or a legal obligation with its
    // reference (R29). Neither is a business use of the data, so the category's
    // purpose rules do not apply.
    match named {
        Some(NamedBasis::Request) => {
            return Decision::allow("request_fulfilment", Clause::r(35), None)
        }
        Some(NamedBasis::LegalObligation) => {
            return Decision::allow("named_legal_obligation", Clause::r(29), None)
        }
        None => {}
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

/// Step 2: the policy's access rule for (role, category, action, purpose) and what it
/// requires. `Ok(Some(basis))` when a privacy officer's read rests on the obligation it
/// named, which then needs no declared purpose.
fn access_rule(policy: &Policy, req: &Request<'_>) -> Result<Option<NamedBasis>, Decision> {
    let actor = req.actor;
    let action = match req.action {
        Action::Read => AccessAction::Read,
        Action::Write => AccessAction::Write,
        Action::Delete => AccessAction::Delete,
    };
    if !policy.access.role_has_rules(actor.role()) {
        return Err(Decision::deny(
            Denial::Forbidden,
            "role_reads_no_personal_data",
            Clause::r(29),
        ));
    }
    let Some(rule) = policy
        .access
        .lookup(actor.role(), req.category, action, req.purpose)
    else {
        // Support engineers keep their long-standing reason code (R7).
        let (reason, clause) = if is_overseas_support(actor) {
            ("overseas_access_needs_grant", Clause::r(7))
        } else {
            ("role_not_permitted", Clause::r(29))
        };
        return Err(Decision::deny(Denial::Forbidden, reason, clause));
    };
    match rule.requires {
        None => Ok(None),
        Some(AccessCondition::Grant) => {
            if covering_grant(req).is_some() {
                Ok(None)
            } else if is_overseas_support(actor) {
                Err(Decision::deny(
                    Denial::Forbidden,
                    "overseas_access_needs_grant",
                    rule.clause,
                ))
            } else {
                Err(Decision::deny(
                    Denial::Forbidden,
                    "grant_required",
                    rule.clause,
                ))
            }
        }
        Some(AccessCondition::TokenScope) => {
            let purpose = (req.action != Action::Delete).then_some(req.purpose);
            if actor.scope().covers(req.category, purpose) {
                Ok(None)
            } else {
                Err(Decision::deny(
                    Denial::Forbidden,
                    "token_scope",
                    rule.clause,
                ))
            }
        }
        Some(AccessCondition::NamedBasis) => match req.basis {
            Some(NamedBasis::Request) => Ok(Some(NamedBasis::Request)),
            Some(NamedBasis::LegalObligation) if req.purpose == Purpose::LegalObligation => {
                Ok(Some(NamedBasis::LegalObligation))
            }
            _ => Err(Decision::deny(
                Denial::Forbidden,
                "basis_required",
                rule.clause,
            )),
        },
    }
}

/// What the caller found out for a decision's condition (loaded only when the decision
/// carries one, so common reads cost nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionFacts {
    /// The subject's contact preference for the topic of this purpose (marketing for
    /// `marketing`, surveys for `feedback`): on for at least one channel (R9, R15).
    ContactPreference { opted_in: bool },
    /// The visitor's current choice for analytics cookies (R16); `None`: never asked.
    CookieConsent { analytics: Option<bool> },
}

/// Applies a condition the caller has the facts for: an allow whose condition is not met
/// becomes a deny citing the statement's clause. Conditions other than these two (PII
/// removal) are honoured by transforming the data, not by denying.
pub fn apply_condition(d: Decision, facts: ConditionFacts) -> Decision {
    if !d.is_allowed() {
        return d;
    }
    match (d.condition, facts) {
        (
            Some(PurposeCondition::ContactPreference),
            ConditionFacts::ContactPreference { opted_in: false },
        ) => Decision {
            grant: d.grant,
            ..Decision::deny(Denial::Forbidden, "contact_preference_off", Clause::r(9))
        },
        (
            Some(PurposeCondition::CookieConsent),
            ConditionFacts::CookieConsent {
                analytics: None | Some(false),
            },
        ) => Decision {
            grant: d.grant,
            ..Decision::deny(Denial::Forbidden, "cookie_consent_missing", Clause::r(16))
        },
        _ => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::DataScope;

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
    /// An actor of `role`; a service is scoped to `scope`, or to everything when `None`
    /// (tests of the later steps are not about the token's scope).
    fn actor(role: Role, region: Region, scope: Option<DataScope>) -> Actor {
        let (tenant, subject) = match role {
            Role::TenantAdmin => (Some(ten(1)), None),
            Role::EndUser => (Some(ten(1)), Some(sub(1))),
            _ => (None, None),
        };
        let a = Actor::new(TokenId::from_bytes([0; 16]), role, tenant, subject, region).unwrap();
        if role != Role::Service {
            return a;
        }
        let scope =
            scope.unwrap_or_else(|| DataScope::new(Purpose::ALL.to_vec(), Category::ALL.to_vec()));
        a.with_scope(scope).unwrap()
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
        basis: Option<NamedBasis>,
        scope: Option<DataScope>,
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
            basis: None,
            scope: None,
        }
    }

    fn run(c: &Case) -> Decision {
        let p = policy();
        let a = actor(c.role, c.region, c.scope.clone());
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
                basis: c.basis,
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
                    role: Role::TenantAdmin,
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
                basis: Some(NamedBasis::LegalObligation),
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
                basis: Some(NamedBasis::LegalObligation),
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
                basis: Some(NamedBasis::LegalObligation),
                action: Action::Write,
                ..base()
            },
            DENY,
            "R29",
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
            holder: TokenId::from_bytes([0; 16]),
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
        // Engineers in China need a grant of their own too (R29, issue 14).
        check(
            Case {
                region: Region::Cn,
                ..overseas()
            },
            DENY,
            "R7",
        );
        check(
            Case {
                region: Region::Cn,
                grants: vec![grant(1, true, 30)],
                ..overseas()
            },
            Effect::Allow,
            "R5",
        );
        // A grant another engineer requested is not this engineer's.
        let mut theirs = grant(1, true, 30);
        theirs.holder = TokenId::from_bytes([9; 16]);
        check(
            Case {
                grants: vec![theirs],
                ..overseas()
            },
            DENY,
            "R7",
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
                grants: vec![grant(1, true, 30)],
                ..overseas()
            })
            .grant,
            Some(0)
        );
    }

    /// The access rules of the shipped policy, role by role (R29, issue 14).
    #[test]
    fn least_privilege_per_role_r29() {
        // An unscoped service token reads and writes nothing personal.
        for action in [Action::Read, Action::Write] {
            let d = run(&Case {
                action,
                scope: Some(DataScope::default()),
                ..base()
            });
            assert_eq!((d.effect, d.reason), (DENY, "token_scope"));
        }
        // The auditor reads nothing personal.
        check(
            Case {
                role: Role::Auditor,
                ..base()
            },
            DENY,
            "R29",
        );
        // The operator administers accounts but reads no customer content or payment.
        for (category, purpose, effect) in [
            (
                Category::Administrator,
                Purpose::AccountAdmin,
                Effect::Allow,
            ),
            (Category::Customer, Purpose::ProvideService, DENY),
            (Category::Payment, Purpose::Transaction, DENY),
            (Category::Support, Purpose::Support, DENY),
            (Category::Administrator, Purpose::Marketing, DENY),
        ] {
            let d = run(&Case {
                role: Role::Operator,
                category,
                purpose,
                ..base()
            });
            assert_eq!(
                d.effect, effect,
                "operator {category}/{purpose}: {}",
                d.reason
            );
        }
        check(
            Case {
                role: Role::Operator,
                category: Category::Administrator,
                action: Action::Delete,
                ..base()
            },
            DENY,
            "R29",
        );
        // The privacy officer reads only naming a request or a legal obligation.
        let officer = || Case {
            role: Role::PrivacyOfficer,
            category: Category::Customer,
            purpose: Purpose::ProvideService,
            ..base()
        };
        let d = run(&officer());
        assert_eq!((d.effect, d.reason), (DENY, "basis_required"));
        check(
            Case {
                basis: Some(NamedBasis::Request),
                ..officer()
            },
            Effect::Allow,
            "R35",
        );
        // A legal basis goes only with the legal_obligation purpose.
        check(
            Case {
                basis: Some(NamedBasis::LegalObligation),
                ..officer()
            },
            DENY,
            "R29",
        );
        check(
            Case {
                basis: Some(NamedBasis::LegalObligation),
                category: Category::Administrator,
                purpose: Purpose::LegalObligation,
                ..officer()
            },
            Effect::Allow,
            "R29",
        );
        // A named legal obligation reaches categories that declare no such purpose.
        check(
            Case {
                basis: Some(NamedBasis::LegalObligation),
                purpose: Purpose::LegalObligation,
                ..officer()
            },
            Effect::Allow,
            "R29",
        );
        check(
            Case {
                basis: Some(NamedBasis::Request),
                action: Action::Write,
                ..officer()
            },
            DENY,
            "R29",
        );
        // A request basis does not thaw frozen data (R19).
        check(
            Case {
                basis: Some(NamedBasis::Request),
                state: TenantState::Closed,
                ..officer()
            },
            Effect::Deny(Denial::Frozen),
            "R19",
        );
    }

    #[test]
    fn a_service_acts_only_within_its_token_scope_r29() {
        let ask = |category, purpose, action| {
            run(&Case {
                category,
                purpose,
                action,
                scope: Some(DataScope::new(
                    vec![Purpose::Transaction],
                    vec![Category::Payment],
                )),
                ..base()
            })
        };
        assert!(ask(Category::Payment, Purpose::Transaction, Action::Read).is_allowed());
        assert!(ask(Category::Payment, Purpose::Transaction, Action::Write).is_allowed());
        // Services delete nothing, whatever their scope: erasure is the request workflow's.
        let d = ask(Category::Payment, Purpose::Transaction, Action::Delete);
        assert_eq!((d.effect, d.reason), (DENY, "role_not_permitted"));
        for (c, p) in [
            (Category::Payment, Purpose::FraudPrevention),
            (Category::Customer, Purpose::Transaction),
            (Category::Administrator, Purpose::Transaction),
        ] {
            let d = ask(c, p, Action::Read);
            assert_eq!((d.effect, d.reason), (DENY, "token_scope"), "{c}/{p}");
        }
    }

    #[test]
    fn unmet_conditions_deny_with_the_statements_clause_r9_r16() {
        let marketing = run(&Case {
            category: Category::Administrator,
            purpose: Purpose::Marketing,
            ..base()
        });
        assert_eq!(
            marketing.condition,
            Some(PurposeCondition::ContactPreference)
        );
        let off = apply_condition(
            marketing,
            ConditionFacts::ContactPreference { opted_in: false },
        );
        assert_eq!(
            (off.effect, off.reason, off.clause),
            (DENY, "contact_preference_off", Clause::r(9))
        );
        let on = apply_condition(
            marketing,
            ConditionFacts::ContactPreference { opted_in: true },
        );
        assert!(on.is_allowed());
        let analytics = run(&Case {
            category: Category::Cookie,
            purpose: Purpose::Analytics,
            ..base()
        });
        for refused in [None, Some(false)] {
            let d = apply_condition(
                analytics,
                ConditionFacts::CookieConsent { analytics: refused },
            );
            assert_eq!((d.effect, d.clause), (DENY, Clause::r(16)));
        }
        assert!(apply_condition(
            analytics,
            ConditionFacts::CookieConsent {
                analytics: Some(true)
            }
        )
        .is_allowed());
        // A denial stays a denial.
        let denied = run(&Case {
            role: Role::Auditor,
            ..base()
        });
        assert_eq!(
            apply_condition(denied, ConditionFacts::ContactPreference { opted_in: true }),
            denied
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
                role: Role::TenantAdmin,
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
                role: Role::TenantAdmin,
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
