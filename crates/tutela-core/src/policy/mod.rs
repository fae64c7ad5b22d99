//! The privacy statement in machine form (`policy/statement.toml`), validated at load.
//!
//! [`load`] turns TOML text into a [`Policy`] or a [`PolicyError`] naming file, line and
//! key. A loaded policy is complete by construction: every category, purpose, consent
//! exception and refusal ground of the vocabulary is described, every rule cites a clause,
//! and the purpose rules are compiled into a dense table so a decision is one index.

pub mod access;
mod load;
mod raw;

pub use access::{AccessAction, AccessCondition, AccessGrant, AccessRule, AccessTable};
pub use load::{load, PolicyError};

use crate::clause::Clause;
use crate::vocab::{Category, Purpose, Region, ServiceId};
use time::Date;

closed_vocab!(
    /// What happens to a category's data when its retention period ends (R19).
    RetentionAction, "retention action", {
        Delete = "delete",
        Anonymize = "anonymize",
    }
);

closed_vocab!(
    /// A condition a purpose rule carries beyond being declared.
    PurposeCondition, "purpose condition", {
        /// Marketing and feedback follow the subject's contact preferences (R9, R25).
        ContactPreference = "contact_preference",
        /// Training uses support data only after personal information is removed (R13).
        PiiRemoved = "pii_removed",
        /// Non-necessary cookies only with the visitor's consent (R16).
        CookieConsent = "cookie_consent",
    }
);

closed_vocab!(
    /// How a category may leave mainland China (R7, R18, R22, R24).
    OverseasRule, "overseas rule", {
        /// Never transferred; overseas access only under a just-in-time support grant (R7).
        SupportGrantOnly = "support_grant_only",
        /// Only with the subject's cross-border consent or a legal basis (R18, R22).
        ConsentOrBasis = "consent_or_basis",
    }
);

closed_vocab!(
    /// Kinds of recipient personal information may be disclosed to (R21-R25, R28).
    RecipientKind, "recipient kind", {
        Affiliate = "affiliate",
        Subprocessor = "subprocessor",
        PaymentProcessor = "payment_processor",
        FraudPrevention = "fraud_prevention",
        ThirdPartyOffering = "third_party_offering",
        Authority = "authority",
    }
);

closed_vocab!(
    /// The six cases in which sharing needs no consent (R28).
    ConsentException, "consent exception", {
        NationalSecurity = "national_security",
        PublicInterest = "public_interest",
        CriminalInvestigation = "criminal_investigation",
        VitalInterests = "vital_interests",
        SelfDisclosed = "self_disclosed",
        LawfullyPublic = "lawfully_public",
    }
);

closed_vocab!(
    /// The eight grounds on which a data-subject request may be refused (R36).
    RefusalGround, "refusal ground", {
        LegalObligation = "legal_obligation",
        NationalSecurity = "national_security",
        PublicInterest = "public_interest",
        CriminalInvestigation = "criminal_investigation",
        Abuse = "abuse",
        VitalInterests = "vital_interests",
        HarmToOthers = "harm_to_others",
        TradeSecret = "trade_secret",
    }
);

/// Text in both languages of the statement.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Bilingual {
    pub zh: String,
    pub en: String,
}

/// The statement's identity: version and "last updated" date (R44).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatementInfo {
    pub version: String,
    pub updated: Date,
    pub title: Bilingual,
    pub controller: Bilingual,
    pub contact: String,
}

/// An online service (R1), possibly a preview release (R42).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Service {
    pub id: ServiceId,
    pub name: Bilingual,
    pub preview: bool,
    /// Offered by a third party rather than the operator (R25).
    pub third_party: bool,
    pub clause: Clause,
}

/// A purpose allowed for a category, with the clause that allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PurposeRule {
    pub purpose: Purpose,
    pub clause: Clause,
    pub condition: Option<PurposeCondition>,
}

/// A purpose that is never allowed for a category, whatever consent exists (R5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Prohibition {
    pub purpose: Purpose,
    pub clause: Clause,
}

/// How long a category is kept after account closure, and what happens then (R19).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Retention {
    pub after_closure_days: u32,
    pub action: RetentionAction,
    pub clause: Clause,
    /// The law that requires keeping this category even when its subject asks for
    /// deletion (R19, R33): the data is then kept frozen for `after_closure_days`
    /// instead of deleted. `None`: a deletion request removes it at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legal_hold: Option<String>,
}

/// Everything the statement says about one category of personal information (R3).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CategoryPolicy {
    pub category: Category,
    pub name: Bilingual,
    pub sensitive: bool,
    pub clause: Clause,
    pub fields: Vec<String>,
    /// Field names that must never be stored, with the clause (R12: the security code).
    pub never_store: Vec<String>,
    pub never_store_clause: Option<Clause>,
    /// Where it must be stored (R6, R18).
    pub residency: Region,
    pub overseas: OverseasRule,
    pub overseas_clause: Clause,
    pub purposes: Vec<PurposeRule>,
    pub prohibited: Vec<Prohibition>,
    pub retention: Retention,
}

/// What a kind of recipient may receive (R21-R25, R28).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecipientKindPolicy {
    pub kind: RecipientKind,
    pub name: Bilingual,
    pub categories: Vec<Category>,
    pub purposes: Vec<Purpose>,
    /// May be located outside mainland China.
    pub overseas_allowed: bool,
    /// Overseas recipients of this kind need the subject's cross-border consent or a legal
    /// basis; `false` where the statement itself is the basis (R24).
    pub overseas_needs_consent: bool,
    /// Must name its own privacy policy (R25).
    pub requires_policy_ref: bool,
    pub clause: Clause,
}

/// A legal ground with the statement's wording.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ground<K> {
    pub id: K,
    pub text: Bilingual,
    pub clause: Clause,
}

/// Trial data retention (R41).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TrialPolicy {
    pub retain_after_expiry_days: u32,
    pub action: RetentionAction,
    pub clause: Clause,
}

/// Data-subject request handling (R35, R45).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RequestPolicy {
    pub answer_within_days: u32,
    pub clause: Clause,
}

/// The verdict of the purpose table for one (category, purpose) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurposeVerdict {
    /// Declared for the category.
    Declared(PurposeRule),
    /// Never allowed, whatever consent exists.
    Prohibited(Prohibition),
    /// Not declared: allowed only after notice and express consent (R4).
    Undeclared,
}

/// A loaded, validated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub statement: StatementInfo,
    pub services: Vec<Service>,
    pub purposes: Vec<(Purpose, Bilingual)>,
    pub categories: Vec<CategoryPolicy>, // INVARIANT: one per Category, in Category::ALL order
    pub recipient_kinds: Vec<RecipientKindPolicy>, // INVARIANT: one per RecipientKind, in order
    pub consent_exceptions: Vec<Ground<ConsentException>>,
    pub refusal_grounds: Vec<Ground<RefusalGround>>,
    pub trial: TrialPolicy,
    pub requests: RequestPolicy,
    /// Who may use which purposes on which categories (R29), as written.
    pub access_rules: Vec<AccessRule>,
    /// The same rules compiled for `decide`.
    pub access: AccessTable,
    /// `table[category][purpose]`, compiled at load so a decision is one look-up.
    table: Vec<PurposeVerdict>,
}

impl Policy {
    pub fn category(&self, c: Category) -> Option<&CategoryPolicy> {
        self.categories.get(c.index())
    }

    pub fn recipient_kind(&self, k: RecipientKind) -> Option<&RecipientKindPolicy> {
        self.recipient_kinds.get(k.index())
    }

    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id.as_str() == id)
    }

    /// The compiled verdict for using `category` data for `purpose` (R4, R5, R8, R11, R13).
    pub fn purpose_verdict(&self, category: Category, purpose: Purpose) -> PurposeVerdict {
        self.table
            .get(category.index() * Purpose::COUNT + purpose.index())
            .copied()
            .unwrap_or(PurposeVerdict::Undeclared)
    }

    /// Every clause the policy encodes, with the places that cite it.
    pub fn clause_index(&self) -> Vec<(Clause, Vec<String>)> {
        let mut out: Vec<(Clause, Vec<String>)> = Clause::all().map(|c| (c, Vec::new())).collect();
        let mut cite = |c: Clause, at: String| {
            if let Some((_, places)) = out.get_mut(usize::from(c.number()) - 1) {
                if !places.contains(&at) {
                    places.push(at);
                }
            }
        };
        for s in &self.services {
            cite(s.clause, format!("services.{}", s.id));
        }
        for c in &self.categories {
            cite(c.clause, format!("categories.{}", c.category));
            cite(
                c.overseas_clause,
                format!("categories.{}.overseas", c.category),
            );
            cite(
                c.retention.clause,
                format!("categories.{}.retention", c.category),
            );
            if let Some(cl) = c.never_store_clause {
                cite(cl, format!("categories.{}.never_store", c.category));
            }
            for r in &c.purposes {
                cite(r.clause, format!("categories.{}.purposes", c.category));
            }
            for p in &c.prohibited {
                cite(p.clause, format!("categories.{}.prohibited", c.category));
            }
        }
        for k in &self.recipient_kinds {
            cite(k.clause, format!("recipient_kinds.{}", k.kind));
        }
        for g in &self.consent_exceptions {
            cite(g.clause, "consent_exceptions".to_owned());
        }
        for g in &self.refusal_grounds {
            cite(g.clause, "refusal_grounds".to_owned());
        }
        cite(self.trial.clause, "trial".to_owned());
        cite(self.requests.clause, "requests".to_owned());
        for r in &self.access_rules {
            cite(r.clause, format!("access.{}", r.role));
        }
        out
    }
}

#[cfg(test)]
mod tests;
