//! Disclosures and transfers of personal information to recipients (issue 5; R6, R18,
//! R21-R25, R28): a pure decision of (policy, recipient, categories, purpose, the
//! subject's consents, a claimed legal exception).
//!
//! Order of rules (first match wins):
//! 1. the recipient's kind may receive these categories for this purpose, and the
//!    recipient was registered for them (R21);
//! 2. nothing leaves mainland China to a kind not allowed abroad, and a category that
//!    never leaves (customer data, R6) is refused abroad;
//! 3. an authority receives data only on a recorded legal ground (R28);
//! 4. abroad, kinds that need consent need the subject's `cross_border` consent or a
//!    legal exception (R18, R22); payment and fraud-prevention processors may receive
//!    as the statement discloses (R24);
//! 5. a third-party offering needs the subject's consent to share with that recipient
//!    or a legal exception, and the recipient's own policy reference (R25);
//! 6. otherwise the declared sharing of the statement applies (R21).
//!
//! Customer data disclosed to anyone needs a notice to the customer first (R23): the
//! decision says so and the edge sends it, unless a legal prohibition is recorded.

use crate::clause::Clause;
use crate::policy::{ConsentException, OverseasRule, Policy, RecipientKind};
use crate::vocab::{Category, Country, Purpose, Region};

/// A registered recipient, as the decision needs it.
#[derive(Debug, Clone, Copy)]
pub struct RecipientView<'a> {
    pub kind: RecipientKind,
    pub country: Country,
    pub categories: &'a [Category],
    pub purposes: &'a [Purpose],
    pub has_policy_ref: bool,
}

/// What the subject has consented to that matters here.
#[derive(Debug, Clone, Copy, Default)]
pub struct TransferConsents {
    /// A current `cross_border` consent (R18).
    pub cross_border: bool,
    /// A current `third_party_offering:<this recipient>` consent (R25).
    pub third_party: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct TransferRequest<'a> {
    pub recipient: RecipientView<'a>,
    pub categories: &'a [Category],
    pub purpose: Purpose,
    pub consents: TransferConsents,
    /// A legal exception claimed in place of consent (R28); the edge records its
    /// reference.
    pub exception: Option<ConsentException>,
}

/// On what the transfer rests, for the register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Sharing the statement declares for this kind and purpose (R21), in China.
    Declared,
    /// The subject's consent (R18, R22, R25).
    Consent,
    /// A legal exception (R28).
    Exception(ConsentException),
    /// Disclosed in the statement: payment and fraud-prevention processing abroad (R24).
    DisclosedAbroad,
}

impl Basis {
    pub fn label(self) -> String {
        match self {
            Basis::Declared => "declared".to_owned(),
            Basis::Consent => "consent".to_owned(),
            Basis::Exception(e) => format!("exception:{e}"),
            Basis::DisclosedAbroad => "disclosed_abroad".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferDecision {
    /// `None` when refused.
    pub basis: Option<Basis>,
    pub reason: &'static str,
    pub clause: Clause,
    /// Customer data: the customer must be notified before the disclosure completes
    /// (R23).
    pub notice_required: bool,
}

impl TransferDecision {
    pub fn is_allowed(&self) -> bool {
        self.basis.is_some()
    }
}

pub fn decide_transfer(policy: &Policy, req: &TransferRequest<'_>) -> TransferDecision {
    let notice_required = req.categories.contains(&Category::Customer);
    let refuse = |reason, clause| TransferDecision {
        basis: None,
        reason,
        clause,
        notice_required,
    };
    let allow = |basis, reason, clause| TransferDecision {
        basis: Some(basis),
        reason,
        clause,
        notice_required,
    };
    let r = req.recipient;
    let Some(kind) = policy.recipient_kind(r.kind) else {
        return refuse("recipient_kind_unknown", Clause::r(21));
    };

    // 1. What the kind may receive, and what this recipient was registered for (R21).
    if req.categories.is_empty()
        || req.categories.iter().any(|c| !kind.categories.contains(c))
        || !kind.purposes.contains(&req.purpose)
    {
        return refuse("not_shared_with_this_kind", kind.clause);
    }
    if req.categories.iter().any(|c| !r.categories.contains(c))
        || !r.purposes.contains(&req.purpose)
    {
        return refuse("recipient_not_registered_for_this", Clause::r(21));
    }

    // 2. What never leaves mainland China: kinds not allowed abroad, and categories
    // that stay (customer data, R6; overseas access only under a support grant, R7).
    let abroad = r.country.region() == Region::Overseas;
    if abroad {
        if !kind.overseas_allowed {
            return refuse("recipient_kind_not_allowed_abroad", kind.clause);
        }
        for c in req.categories {
            if let Some(cp) = policy.category(*c) {
                if cp.overseas == OverseasRule::SupportGrantOnly {
                    return refuse("category_stays_in_china", Clause::r(6));
                }
            }
        }
    }

    // 3. Authorities: only on a recorded legal ground (R28).
    if r.kind == RecipientKind::Authority {
        return match req.exception {
            Some(e) => allow(Basis::Exception(e), "legal_exception", Clause::r(28)),
            None => refuse("legal_ground_required", Clause::r(28)),
        };
    }

    // 4. Leaving mainland China: consent or a legal basis, or the disclosed processing.
    if abroad {
        if kind.overseas_needs_consent {
            if let Some(e) = req.exception {
                return allow(Basis::Exception(e), "legal_exception", Clause::r(28));
            }
            // The category's own overseas clause (R18 administrator data, R22 support
            // data, ...), the first that applies.
            let clause = req
                .categories
                .iter()
                .find_map(|c| policy.category(*c).map(|cp| cp.overseas_clause))
                .unwrap_or(Clause::r(18));
            if !req.consents.cross_border {
                return refuse("cross_border_consent_required", clause);
            }
            if r.kind != RecipientKind::ThirdPartyOffering {
                return allow(Basis::Consent, "cross_border_consent", clause);
            }
        } else {
            return allow(
                Basis::DisclosedAbroad,
                "disclosed_processing_abroad",
                kind.clause,
            );
        }
    }

    // 5. Third-party offerings (R25).
    if r.kind == RecipientKind::ThirdPartyOffering {
        if !r.has_policy_ref {
            return refuse("third_party_policy_required", Clause::r(25));
        }
        if let Some(e) = req.exception {
            return allow(Basis::Exception(e), "legal_exception", Clause::r(28));
        }
        if !req.consents.third_party {
            return refuse("third_party_consent_required", Clause::r(25));
        }
        return allow(Basis::Consent, "third_party_consent", Clause::r(25));
    }

    // 6. Declared sharing within China (R21).
    allow(Basis::Declared, "declared_sharing", kind.clause)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        crate::policy::load(
            "statement.toml",
            include_str!("../../../policy/statement.toml"),
        )
        .unwrap()
    }

    fn country(s: &str) -> Country {
        Country::parse(s).unwrap()
    }

    fn run(
        kind: RecipientKind,
        where_: &str,
        categories: &[Category],
        purpose: Purpose,
        consents: TransferConsents,
        exception: Option<ConsentException>,
    ) -> TransferDecision {
        let p = policy();
        let k = p.recipient_kind(kind).unwrap();
        decide_transfer(
            &p,
            &TransferRequest {
                recipient: RecipientView {
                    kind,
                    country: country(where_),
                    categories: &k.categories,
                    purposes: &k.purposes,
                    has_policy_ref: true,
                },
                categories,
                purpose,
                consents,
                exception,
            },
        )
    }

    const NONE: TransferConsents = TransferConsents {
        cross_border: false,
        third_party: false,
    };
    const CROSS: TransferConsents = TransferConsents {
        cross_border: true,
        third_party: false,
    };

    #[test]
    fn overseas_transfers_need_cross_border_consent_or_a_legal_basis_r18_r22() {
        use Category::*;
        let d = run(
            RecipientKind::Subprocessor,
            "US",
            &[Support],
            Purpose::Support,
            NONE,
            None,
        );
        assert!(!d.is_allowed());
        assert_eq!(
            (d.reason, d.clause),
            ("cross_border_consent_required", Clause::r(22))
        );
        let d = run(
            RecipientKind::Affiliate,
            "SG",
            &[Administrator],
            Purpose::AccountAdmin,
            NONE,
            None,
        );
        assert_eq!(d.clause, Clause::r(18));
        let d = run(
            RecipientKind::Subprocessor,
            "US",
            &[Support],
            Purpose::Support,
            CROSS,
            None,
        );
        assert_eq!(d.basis, Some(Basis::Consent));
        let d = run(
            RecipientKind::Subprocessor,
            "US",
            &[Support],
            Purpose::Support,
            NONE,
            Some(ConsentException::VitalInterests),
        );
        assert_eq!(
            d.basis,
            Some(Basis::Exception(ConsentException::VitalInterests))
        );
        // Within China the declared sharing applies.
        let d = run(
            RecipientKind::Subprocessor,
            "CN",
            &[Support],
            Purpose::Support,
            NONE,
            None,
        );
        assert_eq!(d.basis, Some(Basis::Declared));
    }

    #[test]
    fn payment_processing_abroad_is_disclosed_and_needs_no_consent_r24() {
        let d = run(
            RecipientKind::PaymentProcessor,
            "US",
            &[Category::Payment, Category::Administrator],
            Purpose::Transaction,
            NONE,
            None,
        );
        assert_eq!(d.basis, Some(Basis::DisclosedAbroad));
        assert_eq!(d.clause, Clause::r(24));
        // But only for what the kind receives.
        let d = run(
            RecipientKind::PaymentProcessor,
            "US",
            &[Category::Payment],
            Purpose::Marketing,
            NONE,
            None,
        );
        assert_eq!(d.reason, "not_shared_with_this_kind");
    }

    #[test]
    fn customer_data_never_leaves_china_and_needs_a_notice_r6_r23() {
        let d = run(
            RecipientKind::Authority,
            "CN",
            &[Category::Customer],
            Purpose::LegalObligation,
            NONE,
            None,
        );
        assert_eq!(
            (d.reason, d.clause),
            ("legal_ground_required", Clause::r(28))
        );
        let d = run(
            RecipientKind::Authority,
            "CN",
            &[Category::Customer],
            Purpose::LegalObligation,
            NONE,
            Some(ConsentException::CriminalInvestigation),
        );
        assert!(d.is_allowed());
        assert!(d.notice_required, "R23: the customer is told first");
        let d = run(
            RecipientKind::Authority,
            "US",
            &[Category::Customer],
            Purpose::LegalObligation,
            NONE,
            Some(ConsentException::NationalSecurity),
        );
        // Authorities abroad are not a kind the statement shares with.
        assert!(!d.is_allowed());
    }

    #[test]
    fn third_party_offerings_need_consent_and_their_policy_r25() {
        use Category::Administrator;
        let d = run(
            RecipientKind::ThirdPartyOffering,
            "CN",
            &[Administrator],
            Purpose::ProvideService,
            NONE,
            None,
        );
        assert_eq!(
            (d.reason, d.clause),
            ("third_party_consent_required", Clause::r(25))
        );
        let consent = TransferConsents {
            cross_border: false,
            third_party: true,
        };
        let d = run(
            RecipientKind::ThirdPartyOffering,
            "CN",
            &[Administrator],
            Purpose::ProvideService,
            consent,
            None,
        );
        assert_eq!(d.basis, Some(Basis::Consent));
        // Abroad it also needs the cross-border consent.
        let d = run(
            RecipientKind::ThirdPartyOffering,
            "US",
            &[Administrator],
            Purpose::ProvideService,
            consent,
            None,
        );
        assert_eq!(d.reason, "cross_border_consent_required");
        let both = TransferConsents {
            cross_border: true,
            third_party: true,
        };
        let d = run(
            RecipientKind::ThirdPartyOffering,
            "US",
            &[Administrator],
            Purpose::ProvideService,
            both,
            None,
        );
        assert!(d.is_allowed());
    }

    #[test]
    fn recipients_get_only_what_they_were_registered_for_r21() {
        let p = policy();
        let d = decide_transfer(
            &p,
            &TransferRequest {
                recipient: RecipientView {
                    kind: RecipientKind::Affiliate,
                    country: Country::CN,
                    categories: &[Category::Support],
                    purposes: &[Purpose::Support],
                    has_policy_ref: false,
                },
                categories: &[Category::Payment],
                purpose: Purpose::Transaction,
                consents: TransferConsents::default(),
                exception: None,
            },
        );
        assert_eq!(
            (d.reason, d.clause),
            ("recipient_not_registered_for_this", Clause::r(21))
        );
    }
}
