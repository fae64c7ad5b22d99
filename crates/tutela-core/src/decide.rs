//! The access decision: a pure function of (policy, actor, action with its purpose,
//! target, category, grants, basis, now) returning an [`Outcome`]: a [`Decision`] that
//! says why ([`Reason`]) and cites the clause, or a [`ConsentQuestion`] when only the
//! subject's consent ledger can settle it. A deny is a value, never an error. No IO: the
//! caller loads the subject's state and grants, then asks; it reads the ledger only when
//! asked to, and [`resolve_consent`] finishes the decision from what it found.
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
//!
//! Steps 4 to 6 are the only ones a consent can change. When one of them needs the
//! ledger, [`decide`] stops there with [`Outcome::NeedsConsent`]: the question carries
//! what the rest of the rules decided, so answering it is a few comparisons, not a
//! second decision. A declared purpose of an adult's data that no successor changed,
//! the common read, never asks.

use crate::actor::{Actor, Role};
use crate::clause::Clause;
use crate::consent::{self, ConsentEvent, ConsentScope};
use crate::erasure::SubjectHold;
use crate::ids::{SubjectId, TenantId, TokenId};
use crate::policy::{AccessAction, AccessCondition, Policy, PurposeCondition, PurposeVerdict};
use crate::tenant::TenantState;
use crate::vocab::{Category, Purpose, Region};
use time::OffsetDateTime;

/// What the caller wants to do with the data. A read or a write is a use of the data and
/// names its purpose (R4); erasure is the subject's right, not a use, and names none (R33).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read(Purpose),
    Write(Purpose),
    Delete,
}

impl Action {
    /// The purpose of a read or a write; `None` for a deletion.
    pub fn purpose(self) -> Option<Purpose> {
        match self {
            Action::Read(p) | Action::Write(p) => Some(p),
            Action::Delete => None,
        }
    }

    /// The action's name in audit entries (`read`, `write`, `delete`).
    pub fn as_str(self) -> &'static str {
        self.access().as_str()
    }

    fn access(self) -> AccessAction {
        match self {
            Action::Read(_) => AccessAction::Read,
            Action::Write(_) => AccessAction::Write,
            Action::Delete => AccessAction::Delete,
        }
    }
}

closed_vocab!(
    /// Why a decision came out as it did: the `reason` of its audit entry and, for a
    /// 403, the `code` of the error body. The ids are a wire contract (API clients and
    /// stored audit entries use them): never rename one.
    Reason, "decision reason", {
        /// R2: a tenant admin asked about another tenant's subject (answered 404).
        OtherTenant = "other_tenant",
        /// R2: an end user asked about someone else (answered 404).
        OtherSubject = "other_subject",
        /// R29: the role has no access rules at all (auditors, ...).
        RoleReadsNoPersonalData = "role_reads_no_personal_data",
        /// R29: no access rule lets this role do this action for this purpose.
        RoleNotPermitted = "role_not_permitted",
        /// R7: a support engineer acts only under an approved grant of its own.
        OverseasAccessNeedsGrant = "overseas_access_needs_grant",
        /// The access rule requires a grant and none covers the access.
        GrantRequired = "grant_required",
        /// R29: a service token's scope does not cover the category or purpose.
        TokenScope = "token_scope",
        /// R29, R35: the privacy officer reads only naming a request or a legal obligation.
        BasisRequired = "basis_required",
        /// R19: the tenant's data is erased.
        Erased = "erased",
        /// R41: the trial ended without a subscription.
        TrialExpired = "trial_expired",
        /// R19: the tenant closed; its data is frozen.
        FrozenAfterClosure = "frozen_after_closure",
        /// R19: a privacy officer's read of frozen data for a legal obligation.
        LegalObligationWhileFrozen = "legal_obligation_while_frozen",
        /// R33: the subject's data is erased.
        SubjectErased = "subject_erased",
        /// R19: what the law keeps after a deletion request is frozen.
        FrozenAfterDeletion = "frozen_after_deletion",
        /// R33: a deletion, the subject's right.
        Erasure = "erasure",
        /// R35: a privacy officer's read to fulfil a request about this subject.
        RequestFulfilment = "request_fulfilment",
        /// R29: a privacy officer's read under a named legal obligation.
        NamedLegalObligation = "named_legal_obligation",
        /// R43: nothing is stored for a minor without a guardian's consent.
        MinorNeedsGuardianConsent = "minor_needs_guardian_consent",
        /// R27: a purpose a successor controller changed needs the subject's consent again.
        PurposeChangedNeedsReconsent = "purpose_changed_needs_reconsent",
        /// The category prohibits this purpose, whatever consent exists.
        PurposeProhibited = "purpose_prohibited",
        /// The category declares this purpose.
        PurposeDeclared = "purpose_declared",
        /// R4: an undeclared purpose with the subject's current express consent.
        ExpressConsent = "express_consent",
        /// R4: an undeclared purpose without it.
        PurposeNotDeclared = "purpose_not_declared",
        /// R9, R15: the subject's contact preference for the topic is off.
        ContactPreferenceOff = "contact_preference_off",
        /// R16: the visitor did not consent to analytics cookies.
        CookieConsentMissing = "cookie_consent_missing",
    }
);

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
    /// Why (no personal data); its id is the audit entry's reason.
    pub reason: Reason,
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

    fn allow(reason: Reason, clause: Clause, condition: Option<PurposeCondition>) -> Self {
        Self {
            effect: Effect::Allow,
            reason,
            clause,
            condition,
            grant: None,
        }
    }

    fn deny(how: Denial, reason: Reason, clause: Clause) -> Self {
        Self {
            effect: Effect::Deny(how),
            reason,
            clause,
            grant: None,
            condition: None,
        }
    }
}

/// What [`decide`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// Decided without the consent ledger.
    Decided(Decision),
    /// Only the subject's consent ledger can settle it: read what the question names and
    /// pass it to [`resolve_consent`].
    NeedsConsent(ConsentQuestion),
}

/// What a decision waits for from the consent ledger (R4, R27, R43), and what it is once
/// every consent asked for is on record. Only [`decide`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentQuestion {
    purpose: Purpose,
    /// R43: a write of a minor's data needs a guardian's consent.
    guardian: bool,
    /// R27: the purpose was changed by a successor controller at this instant; it needs
    /// the subject's consent given since.
    changed_at: Option<OffsetDateTime>,
    /// R4: the purpose is undeclared for the category; it needs a current express consent.
    express: bool,
    /// The decision once every consent asked for is there: the rest of the rules, taken
    /// by `decide` already (it may still be a denial no consent lifts).
    then: Decision,
}

impl ConsentQuestion {
    /// The purpose whose latest ledger entry answers the question, unless
    /// [`Self::asks_guardian`].
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// Whether the guardian's consent is asked for too (R43): then the purpose's own entry
    /// is not enough and the caller passes the subject's ledger.
    pub fn asks_guardian(&self) -> bool {
        self.guardian
    }
}

/// Finishes a decision that needed the consent ledger. `events` are the subject's ledger
/// entries, or at least the latest one for the question's purpose (and the guardian's, if
/// [`ConsentQuestion::asks_guardian`]); the latest entry per scope counts, as in
/// [`consent::current_state`]. Pure and cheap: the rules were applied by [`decide`].
pub fn resolve_consent(q: &ConsentQuestion, events: &[ConsentEvent]) -> Decision {
    if q.guardian {
        let guardian = consent::latest(events, &ConsentScope::Guardian).is_some_and(|e| e.granted);
        if !guardian {
            return Decision::deny(
                Denial::Forbidden,
                Reason::MinorNeedsGuardianConsent,
                Clause::r(43),
            );
        }
    }
    let entry = consent::latest(events, &ConsentScope::Purpose(q.purpose));
    if let Some(changed_at) = q.changed_at {
        if !entry.is_some_and(|e| e.granted && e.at >= changed_at) {
            return Decision::deny(
                Denial::Forbidden,
                Reason::PurposeChangedNeedsReconsent,
                Clause::r(27),
            );
        }
    }
    if q.express && !entry.is_some_and(|e| e.granted) {
        return Decision::deny(Denial::Forbidden, Reason::PurposeNotDeclared, Clause::r(4));
    }
    q.then
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

/// The question asked of [`decide`].
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub actor: &'a Actor,
    pub action: Action,
    pub target: Target<'a>,
    pub category: Category,
    /// R27: when a successor controller changed the action's purpose (the edge's map of
    /// changed purposes); `None` when it never did.
    pub purpose_changed_at: Option<OffsetDateTime>,
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

/// Decides one access, or says which consents it waits for.
pub fn decide(policy: &Policy, req: &Request<'_>) -> Outcome {
    // The grant is named only on an allow: on the decision itself, or on what the
    // question becomes once its consents are there.
    let with_grant = |d: Decision| {
        let grant = (d.is_allowed() && req.actor.role() == Role::Support)
            .then(|| covering_grant(req))
            .flatten();
        Decision { grant, ..d }
    };
    match decide_steps(policy, req) {
        Outcome::Decided(d) => Outcome::Decided(with_grant(d)),
        Outcome::NeedsConsent(q) => Outcome::NeedsConsent(ConsentQuestion {
            then: with_grant(q.then),
            ..q
        }),
    }
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

/// Whether a privacy officer reads frozen data under the `legal_obligation` purpose
/// (R19): the one use that survives a freeze.
fn legal_read_of_frozen(req: &Request<'_>) -> bool {
    req.action == Action::Read(Purpose::LegalObligation) && req.actor.role() == Role::PrivacyOfficer
}

/// The rules in order, first match wins.
fn decide_steps(policy: &Policy, req: &Request<'_>) -> Outcome {
    let decided = Outcome::Decided;
    let actor = req.actor;
    let t = req.target;

    // 1. Scope (R2).
    match actor.role() {
        Role::TenantAdmin if actor.tenant() != Some(t.tenant) => {
            return decided(Decision::deny(
                Denial::Hidden,
                Reason::OtherTenant,
                Clause::r(2),
            ))
        }
        Role::EndUser if actor.subject() != Some(t.subject) || actor.tenant() != Some(t.tenant) => {
            return decided(Decision::deny(
                Denial::Hidden,
                Reason::OtherSubject,
                Clause::r(2),
            ))
        }
        _ => {}
    }

    // 2. Access rules (R29, R7).
    let named = match access_rule(policy, req) {
        Ok(named) => named,
        Err(denied) => return decided(denied),
    };

    // 3. Lifecycle (R19, R41).
    match t.tenant_state {
        TenantState::Erased => {
            return decided(Decision::deny(
                Denial::Forbidden,
                Reason::Erased,
                Clause::r(19),
            ))
        }
        TenantState::Expired => {
            return decided(Decision::deny(
                Denial::Forbidden,
                Reason::TrialExpired,
                Clause::r(41),
            ))
        }
        TenantState::Closed => {
            return decided(if legal_read_of_frozen(req) {
                Decision::allow(Reason::LegalObligationWhileFrozen, Clause::r(19), None)
            } else {
                Decision::deny(Denial::Frozen, Reason::FrozenAfterClosure, Clause::r(19))
            });
        }
        TenantState::Trial | TenantState::Active => {}
    }
    match t.hold {
        SubjectHold::None => {}
        SubjectHold::Erased => {
            return decided(Decision::deny(
                Denial::Forbidden,
                Reason::SubjectErased,
                Clause::r(33),
            ))
        }
        SubjectHold::Frozen { .. } => {
            return decided(if legal_read_of_frozen(req) {
                Decision::allow(Reason::LegalObligationWhileFrozen, Clause::r(19), None)
            } else {
                Decision::deny(Denial::Frozen, Reason::FrozenAfterDeletion, Clause::r(19))
            });
        }
    }

    // Erasure is the subject's right, not a use of the data: once the caller is in
    // scope and the data is not frozen, no purpose is needed (R33).
    let purpose = match req.action {
        Action::Read(p) | Action::Write(p) => p,
        Action::Delete => return decided(Decision::allow(Reason::Erasure, Clause::r(33), None)),
    };

    // A privacy officer who named the obligation reads whatever it covers: fulfilling a
    // verified request about this subject (R35), or a legal obligation with its
    // reference (R29). Neither is a business use of the data, so the category's
    // purpose rules do not apply.
    match named {
        Some(NamedBasis::Request) => {
            return decided(Decision::allow(
                Reason::RequestFulfilment,
                Clause::r(35),
                None,
            ))
        }
        Some(NamedBasis::LegalObligation) => {
            return decided(Decision::allow(
                Reason::NamedLegalObligation,
                Clause::r(29),
                None,
            ))
        }
        None => {}
    }

    // 4. Minors (R43): a write needs a guardian's consent.
    let guardian = matches!(req.action, Action::Write(_)) && t.minor;

    // 5. A purpose changed by a successor controller is unusable until the subject
    // consents again (R27), whatever the category declares.
    let changed_at = req.purpose_changed_at;

    // 6. Purpose (R4 and the category's own clauses).
    let (express, then) = match policy.purpose_verdict(req.category, purpose) {
        PurposeVerdict::Prohibited(p) => (
            false,
            Decision::deny(Denial::Forbidden, Reason::PurposeProhibited, p.clause),
        ),
        PurposeVerdict::Declared(r) => (
            false,
            Decision::allow(Reason::PurposeDeclared, r.clause, r.condition),
        ),
        PurposeVerdict::Undeclared => (
            true,
            Decision::allow(Reason::ExpressConsent, Clause::r(4), None),
        ),
    };
    if guardian || changed_at.is_some() || express {
        Outcome::NeedsConsent(ConsentQuestion {
            purpose,
            guardian,
            changed_at,
            express,
            then,
        })
    } else {
        decided(then)
    }
}

/// Step 2: the policy's access rule for (role, category, action, purpose) and what it
/// requires. `Ok(Some(basis))` when a privacy officer's read rests on the obligation it
/// named, which then needs no declared purpose.
fn access_rule(policy: &Policy, req: &Request<'_>) -> Result<Option<NamedBasis>, Decision> {
    let actor = req.actor;
    if !policy.access.role_has_rules(actor.role()) {
        return Err(Decision::deny(
            Denial::Forbidden,
            Reason::RoleReadsNoPersonalData,
            Clause::r(29),
        ));
    }
    let rule = match req.action.purpose() {
        Some(purpose) => {
            policy
                .access
                .lookup(actor.role(), req.category, req.action.access(), purpose)
        }
        None => policy.access.lookup_delete(actor.role(), req.category),
    };
    let Some(rule) = rule else {
        // Support engineers keep their long-standing reason code (R7).
        let (reason, clause) = if is_overseas_support(actor) {
            (Reason::OverseasAccessNeedsGrant, Clause::r(7))
        } else {
            (Reason::RoleNotPermitted, Clause::r(29))
        };
        return Err(Decision::deny(Denial::Forbidden, reason, clause));
    };
    let deny = |reason| Err(Decision::deny(Denial::Forbidden, reason, rule.clause));
    match rule.requires {
        None => Ok(None),
        Some(AccessCondition::Grant) => {
            if covering_grant(req).is_some() {
                Ok(None)
            } else if is_overseas_support(actor) {
                deny(Reason::OverseasAccessNeedsGrant)
            } else {
                deny(Reason::GrantRequired)
            }
        }
        Some(AccessCondition::TokenScope) => {
            if actor.scope().covers(req.category, req.action.purpose()) {
                Ok(None)
            } else {
                deny(Reason::TokenScope)
            }
        }
        Some(AccessCondition::NamedBasis) => match req.basis {
            Some(NamedBasis::Request) => Ok(Some(NamedBasis::Request)),
            Some(NamedBasis::LegalObligation)
                if req.action.purpose() == Some(Purpose::LegalObligation) =>
            {
                Ok(Some(NamedBasis::LegalObligation))
            }
            _ => deny(Reason::BasisRequired),
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
            ..Decision::deny(
                Denial::Forbidden,
                Reason::ContactPreferenceOff,
                Clause::r(9),
            )
        },
        (
            Some(PurposeCondition::CookieConsent),
            ConditionFacts::CookieConsent {
                analytics: None | Some(false),
            },
        ) => Decision {
            grant: d.grant,
            ..Decision::deny(
                Denial::Forbidden,
                Reason::CookieConsentMissing,
                Clause::r(16),
            )
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

    /// The action of a case; its purpose is the case's `purpose` (ignored for a deletion).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Act {
        Read,
        Write,
        Delete,
    }

    struct Case {
        role: Role,
        region: Region,
        action: Act,
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
        /// R27: when a successor changed the purpose.
        changed_at: Option<OffsetDateTime>,
        basis: Option<NamedBasis>,
        scope: Option<DataScope>,
    }

    fn base() -> Case {
        Case {
            role: Role::Service,
            region: Region::Cn,
            action: Act::Read,
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
            changed_at: None,
            basis: None,
            scope: None,
        }
    }

    /// When the case's consents were given: a day before `NOW`.
    const CONSENTED: OffsetDateTime = time::macros::datetime!(2026-11-27 09:00 UTC);

    /// What `decide` answers, before any consent is read.
    fn outcome(c: &Case) -> Outcome {
        let p = policy();
        let a = actor(c.role, c.region, c.scope.clone());
        let (tn, sb) = (ten(c.tenant), sub(c.subject));
        let action = match c.action {
            Act::Read => Action::Read(c.purpose),
            Act::Write => Action::Write(c.purpose),
            Act::Delete => Action::Delete,
        };
        decide(
            &p,
            &Request {
                actor: &a,
                action,
                target: Target {
                    tenant: &tn,
                    subject: &sb,
                    tenant_state: c.state,
                    hold: c.hold,
                    minor: c.minor,
                },
                category: c.category,
                purpose_changed_at: c.changed_at,
                grants: &c.grants,
                basis: c.basis,
                now: NOW,
            },
        )
    }

    /// The case's consent ledger: its express and guardian consents, given `CONSENTED`.
    fn ledger(c: &Case) -> Vec<ConsentEvent> {
        let granted = |scope| ConsentEvent {
            scope,
            granted: true,
            at: CONSENTED,
        };
        let mut events: Vec<ConsentEvent> = c
            .express
            .iter()
            .map(|p| granted(ConsentScope::Purpose(*p)))
            .collect();
        if c.guardian {
            events.push(granted(ConsentScope::Guardian));
        }
        events
    }

    /// The final decision, the ledger read only when the outcome asks for it.
    fn run(c: &Case) -> Decision {
        match outcome(c) {
            Outcome::Decided(d) => d,
            Outcome::NeedsConsent(q) => resolve_consent(&q, &ledger(c)),
        }
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
        for action in [Act::Read, Act::Write, Act::Delete] {
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
                action: Act::Write,
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
                action: Act::Write,
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
                action: Act::Write,
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
        for action in [Act::Read, Act::Write] {
            let d = run(&Case {
                action,
                scope: Some(DataScope::default()),
                ..base()
            });
            assert_eq!((d.effect, d.reason), (DENY, Reason::TokenScope));
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
                action: Act::Delete,
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
        assert_eq!((d.effect, d.reason), (DENY, Reason::BasisRequired));
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
                action: Act::Write,
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
        assert!(ask(Category::Payment, Purpose::Transaction, Act::Read).is_allowed());
        assert!(ask(Category::Payment, Purpose::Transaction, Act::Write).is_allowed());
        // Services delete nothing, whatever their scope: erasure is the request workflow's.
        let d = ask(Category::Payment, Purpose::Transaction, Act::Delete);
        assert_eq!((d.effect, d.reason), (DENY, Reason::RoleNotPermitted));
        for (c, p) in [
            (Category::Payment, Purpose::FraudPrevention),
            (Category::Customer, Purpose::Transaction),
            (Category::Administrator, Purpose::Transaction),
        ] {
            let d = ask(c, p, Act::Read);
            assert_eq!((d.effect, d.reason), (DENY, Reason::TokenScope), "{c}/{p}");
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
            (DENY, Reason::ContactPreferenceOff, Clause::r(9))
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
                action: Act::Write,
                minor: true,
                ..base()
            },
            DENY,
            "R43",
        );
        check(
            Case {
                action: Act::Write,
                minor: true,
                guardian: true,
                ..base()
            },
            Effect::Allow,
            "R11",
        );
        check(
            Case {
                action: Act::Read,
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
                action: Act::Delete,
                purpose: Purpose::Research,
                role: Role::TenantAdmin,
                ..base()
            },
            Effect::Allow,
            "R33",
        );
        check(
            Case {
                action: Act::Delete,
                role: Role::TenantAdmin,
                tenant: 2,
                ..base()
            },
            Effect::Deny(Denial::Hidden),
            "R2",
        );
        check(
            Case {
                action: Act::Delete,
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
        // Declared for payment, but changed by the successor: denied, citing R27, even
        // with a consent given before the change.
        let changed = |express: Vec<Purpose>, at| Case {
            changed_at: Some(at),
            express,
            ..base()
        };
        let after_the_consent = NOW - time::Duration::hours(1);
        check(
            changed(vec![], after_the_consent),
            Effect::Deny(Denial::Forbidden),
            "R27",
        );
        let d = run(&changed(vec![Purpose::Transaction], after_the_consent));
        assert_eq!(
            (d.effect, d.reason, d.clause),
            (DENY, Reason::PurposeChangedNeedsReconsent, Clause::r(27))
        );
        // A consent given since the change lifts it; the category's rules then apply.
        let before_the_consent = CONSENTED - time::Duration::days(30);
        check(
            changed(vec![Purpose::Transaction], before_the_consent),
            Effect::Allow,
            "R11",
        );
        check(base(), Effect::Allow, "R11");
        // A prohibited purpose stays prohibited once consented again.
        let d = run(&Case {
            purpose: Purpose::Marketing,
            ..changed(vec![Purpose::Marketing], before_the_consent)
        });
        assert_eq!((d.effect, d.reason), (DENY, Reason::PurposeProhibited));
    }

    /// The common read never waits on the ledger: a declared purpose of an adult's data
    /// that no successor changed is decided at once, and so is everything a consent cannot
    /// change (issue 4: the ledger is not read for declared purposes).
    #[test]
    fn declared_purposes_never_ask_for_consent() {
        let p = policy();
        for c in Category::ALL {
            for purpose in Purpose::ALL {
                for action in [Act::Read, Act::Write, Act::Delete] {
                    let o = outcome(&Case {
                        category: *c,
                        purpose: *purpose,
                        action,
                        ..base()
                    });
                    let undeclared =
                        matches!(p.purpose_verdict(*c, *purpose), PurposeVerdict::Undeclared);
                    let asks = matches!(o, Outcome::NeedsConsent(_));
                    assert_eq!(
                        asks,
                        undeclared && action != Act::Delete,
                        "{c}/{purpose} {action:?}: {o:?}"
                    );
                }
            }
        }
        // A minor's data is read without asking; only a write asks for the guardian.
        let minor = |action| {
            outcome(&Case {
                minor: true,
                action,
                ..base()
            })
        };
        assert!(matches!(minor(Act::Read), Outcome::Decided(d) if d.is_allowed()));
        assert!(matches!(minor(Act::Write), Outcome::NeedsConsent(q) if q.asks_guardian()));
        // Denials before the purpose step do not ask either.
        for early in [
            Case {
                role: Role::Auditor,
                purpose: Purpose::Research,
                ..base()
            },
            Case {
                state: TenantState::Closed,
                purpose: Purpose::Research,
                ..base()
            },
            Case {
                action: Act::Delete,
                minor: true,
                changed_at: Some(NOW),
                ..base()
            },
        ] {
            assert!(matches!(outcome(&early), Outcome::Decided(_)));
        }
    }

    /// An undeclared purpose asks for the purpose's own latest entry (R4): a current grant
    /// allows, a withdrawal or nothing denies; the question names the purpose, and the
    /// purpose's entry alone answers it.
    #[test]
    fn an_undeclared_purpose_asks_for_its_consent_entry_r4() {
        let research = Case {
            category: Category::Administrator,
            purpose: Purpose::Research,
            ..base()
        };
        let Outcome::NeedsConsent(q) = outcome(&research) else {
            panic!("an undeclared purpose needs consent");
        };
        assert_eq!(q.purpose(), Purpose::Research);
        assert!(!q.asks_guardian());
        let entry = |granted, at| ConsentEvent {
            scope: ConsentScope::Purpose(Purpose::Research),
            granted,
            at,
        };
        let denied = Decision::deny(Denial::Forbidden, Reason::PurposeNotDeclared, Clause::r(4));
        assert_eq!(resolve_consent(&q, &[]), denied);
        assert_eq!(resolve_consent(&q, &[entry(false, CONSENTED)]), denied);
        assert_eq!(
            resolve_consent(&q, &[entry(true, CONSENTED)]),
            Decision::allow(Reason::ExpressConsent, Clause::r(4), None)
        );
        // The latest entry counts, whatever the order given.
        let later = CONSENTED + time::Duration::hours(1);
        assert_eq!(
            resolve_consent(&q, &[entry(false, later), entry(true, CONSENTED)]),
            denied
        );
        assert!(resolve_consent(&q, &[entry(false, CONSENTED), entry(true, later)]).is_allowed());
        // Another purpose's consent, or a guardian's, does not answer it.
        let other = ConsentEvent {
            scope: ConsentScope::Purpose(Purpose::Analytics),
            granted: true,
            at: CONSENTED,
        };
        let guardian = ConsentEvent {
            scope: ConsentScope::Guardian,
            ..other.clone()
        };
        assert_eq!(resolve_consent(&q, &[other, guardian]), denied);
    }

    /// A support engineer's consent-based access names its grant once resolved (R7):
    /// customer data for the `support` purpose, which customer data does not declare.
    #[test]
    fn the_grant_survives_the_consent_question_r7() {
        let case = Case {
            role: Role::Support,
            region: Region::Overseas,
            category: Category::Customer,
            purpose: Purpose::Support,
            express: vec![Purpose::Support],
            grants: vec![GrantView {
                tenant: ten(1),
                holder: TokenId::from_bytes([0; 16]),
                categories: vec![Category::Customer],
                expires_at: NOW + time::Duration::minutes(30),
                active: true,
            }],
            ..base()
        };
        assert!(matches!(outcome(&case), Outcome::NeedsConsent(_)));
        let d = run(&case);
        assert_eq!(
            (d.effect, d.reason, d.grant),
            (Effect::Allow, Reason::ExpressConsent, Some(0))
        );
        // Denied for want of consent: no grant named.
        let d = run(&Case {
            express: vec![],
            ..case
        });
        assert_eq!(
            (d.effect, d.reason, d.grant),
            (DENY, Reason::PurposeNotDeclared, None)
        );
    }

    /// What the rules say about consents, in order, written out naively: the decision
    /// and its question must agree with it for every category, purpose, action, minor,
    /// ledger and purpose change (R4, R27, R43).
    #[test]
    fn consent_steps_match_naive_reference() {
        let p = policy();
        let times = [None, Some(CONSENTED - time::Duration::DAY), Some(NOW)];
        for c in Category::ALL {
            for purpose in Purpose::ALL {
                let verdict = p.purpose_verdict(*c, *purpose);
                for action in [Act::Read, Act::Write] {
                    for minor in [false, true] {
                        for guardian in [false, true] {
                            for consented in [false, true] {
                                for changed_at in times {
                                    let expected = if action == Act::Write && minor && !guardian {
                                        Reason::MinorNeedsGuardianConsent
                                    } else if changed_at
                                        .is_some_and(|at| !consented || CONSENTED < at)
                                    {
                                        Reason::PurposeChangedNeedsReconsent
                                    } else {
                                        match verdict {
                                            PurposeVerdict::Prohibited(_) => {
                                                Reason::PurposeProhibited
                                            }
                                            PurposeVerdict::Declared(_) => Reason::PurposeDeclared,
                                            PurposeVerdict::Undeclared if consented => {
                                                Reason::ExpressConsent
                                            }
                                            PurposeVerdict::Undeclared => {
                                                Reason::PurposeNotDeclared
                                            }
                                        }
                                    };
                                    let d = run(&Case {
                                        category: *c,
                                        purpose: *purpose,
                                        action,
                                        minor,
                                        guardian,
                                        express: if consented { vec![*purpose] } else { vec![] },
                                        changed_at,
                                        ..base()
                                    });
                                    assert_eq!(
                                        d.reason, expected,
                                        "{c}/{purpose} {action:?} minor={minor} guardian={guardian} consented={consented} changed={changed_at:?}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Consents only ever turn a denial into an allow, and a question is asked only when
    /// its answer matters: with every consent the decision is never narrower than with
    /// none, and the two differ.
    #[test]
    fn consents_only_lift_denials_and_questions_matter() {
        for c in Category::ALL {
            for purpose in Purpose::ALL {
                for action in [Act::Read, Act::Write] {
                    for minor in [false, true] {
                        for changed_at in [None, Some(CONSENTED - time::Duration::DAY)] {
                            let case = Case {
                                category: *c,
                                purpose: *purpose,
                                action,
                                minor,
                                changed_at,
                                ..base()
                            };
                            let Outcome::NeedsConsent(q) = outcome(&case) else {
                                continue;
                            };
                            let everything = ledger(&Case {
                                express: Purpose::ALL.to_vec(),
                                guardian: true,
                                ..base()
                            });
                            let without = resolve_consent(&q, &[]);
                            let with = resolve_consent(&q, &everything);
                            assert!(!without.is_allowed(), "{c}/{purpose}: {without:?}");
                            assert_ne!(with, without, "{c}/{purpose}");
                        }
                    }
                }
            }
        }
    }

    /// The reason ids are a wire contract (error `code`s, audit entries): each variant
    /// keeps today's id, shows as it, and reads back from it.
    #[test]
    fn reason_ids_are_the_wire_codes() {
        let table = [
            (Reason::OtherTenant, "other_tenant"),
            (Reason::OtherSubject, "other_subject"),
            (
                Reason::RoleReadsNoPersonalData,
                "role_reads_no_personal_data",
            ),
            (Reason::RoleNotPermitted, "role_not_permitted"),
            (
                Reason::OverseasAccessNeedsGrant,
                "overseas_access_needs_grant",
            ),
            (Reason::GrantRequired, "grant_required"),
            (Reason::TokenScope, "token_scope"),
            (Reason::BasisRequired, "basis_required"),
            (Reason::Erased, "erased"),
            (Reason::TrialExpired, "trial_expired"),
            (Reason::FrozenAfterClosure, "frozen_after_closure"),
            (
                Reason::LegalObligationWhileFrozen,
                "legal_obligation_while_frozen",
            ),
            (Reason::SubjectErased, "subject_erased"),
            (Reason::FrozenAfterDeletion, "frozen_after_deletion"),
            (Reason::Erasure, "erasure"),
            (Reason::RequestFulfilment, "request_fulfilment"),
            (Reason::NamedLegalObligation, "named_legal_obligation"),
            (
                Reason::MinorNeedsGuardianConsent,
                "minor_needs_guardian_consent",
            ),
            (
                Reason::PurposeChangedNeedsReconsent,
                "purpose_changed_needs_reconsent",
            ),
            (Reason::PurposeProhibited, "purpose_prohibited"),
            (Reason::PurposeDeclared, "purpose_declared"),
            (Reason::ExpressConsent, "express_consent"),
            (Reason::PurposeNotDeclared, "purpose_not_declared"),
            (Reason::ContactPreferenceOff, "contact_preference_off"),
            (Reason::CookieConsentMissing, "cookie_consent_missing"),
        ];
        // Every variant is in the table, so a new one must state its id here.
        assert_eq!(table.len(), Reason::COUNT);
        for (reason, id) in table {
            assert_eq!(reason.as_str(), id);
            assert_eq!(reason.to_string(), id);
            assert_eq!(Reason::parse(id), Ok(reason));
            assert_eq!(serde_json::to_string(&reason).unwrap(), format!("\"{id}\""));
            assert_eq!(
                serde_json::from_str::<Reason>(&format!("\"{id}\"")).unwrap(),
                reason
            );
        }
        assert!(Reason::parse("Purpose_Not_Declared").is_err());
        assert!(Reason::parse("").is_err());
    }

    /// The audit names of actions, and the purpose a read or write carries.
    #[test]
    fn an_action_carries_its_purpose() {
        let p = Purpose::Marketing;
        assert_eq!(Action::Read(p).purpose(), Some(p));
        assert_eq!(Action::Write(p).purpose(), Some(p));
        assert_eq!(Action::Delete.purpose(), None);
        assert_eq!(
            [Action::Read(p), Action::Write(p), Action::Delete].map(Action::as_str),
            ["read", "write", "delete"]
        );
    }
}
