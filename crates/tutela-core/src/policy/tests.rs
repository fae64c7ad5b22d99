//! Policy loader tests: the shipped statement loads and encodes the seed faithfully; every
//! class of mistake is refused with file, line and key.

use super::*;
use crate::vocab::{Category, Purpose};

const SHIPPED: &str = include_str!("../../../../policy/statement.toml");

fn shipped() -> Policy {
    load("statement.toml", SHIPPED).unwrap()
}

#[test]
fn shipped_policy_loads_and_names_the_five_services_r1() {
    let p = shipped();
    for id in [
        "azure",
        "office365",
        "dynamics365",
        "power-platform",
        "intune",
    ] {
        let s = p.service(id).unwrap_or_else(|| panic!("{id} missing"));
        assert!(!s.preview, "{id} is generally available");
    }
    assert!(
        p.service("azure-preview").unwrap().preview,
        "R42 preview flag"
    );
    assert!(p.service("unknown").is_none());
}

#[test]
fn every_category_is_classified_r3() {
    let p = shipped();
    for c in Category::ALL {
        let cp = p.category(*c).unwrap();
        assert_eq!(cp.category, *c);
        assert!(!cp.fields.is_empty());
    }
    let sensitive: Vec<_> = p
        .categories
        .iter()
        .filter(|c| c.sensitive)
        .map(|c| c.category)
        .collect();
    assert_eq!(
        sensitive,
        vec![
            Category::Administrator,
            Category::RealName,
            Category::Payment,
            Category::Support,
            Category::Registration
        ]
    );
}

fn check_verdict(p: &Policy, c: Category, purpose: Purpose, expect: &str) {
    let got = match p.purpose_verdict(c, purpose) {
        PurposeVerdict::Declared(r) => format!("allow {}", r.clause),
        PurposeVerdict::Prohibited(x) => format!("never {}", x.clause),
        PurposeVerdict::Undeclared => "undeclared".to_owned(),
    };
    assert_eq!(got, expect, "{c} / {purpose}");
}

#[test]
fn purposes_per_category_follow_the_statement() {
    let p = shipped();
    use Category as C;
    use Purpose as P;
    // R5: customer data only for the services and compatible purposes, never marketing.
    check_verdict(&p, C::Customer, P::ProvideService, "allow R5");
    check_verdict(&p, C::Customer, P::ThreatProtection, "allow R5");
    check_verdict(&p, C::Customer, P::Marketing, "never R5");
    check_verdict(&p, C::Customer, P::Research, "undeclared");
    // R8, R9: administrator data.
    check_verdict(&p, C::Administrator, P::Transaction, "allow R8");
    check_verdict(&p, C::Administrator, P::FraudPrevention, "allow R8");
    check_verdict(&p, C::Administrator, P::ServiceCommunication, "allow R9");
    check_verdict(&p, C::Administrator, P::Research, "undeclared");
    // R11: payment data for transactions and fraud prevention only.
    check_verdict(&p, C::Payment, P::Transaction, "allow R11");
    check_verdict(&p, C::Payment, P::FraudPrevention, "allow R11");
    check_verdict(&p, C::Payment, P::Marketing, "never R11");
    check_verdict(&p, C::Payment, P::ServiceImprovement, "undeclared");
    // R13: support data.
    check_verdict(&p, C::Support, P::Support, "allow R13");
    check_verdict(&p, C::Support, P::Training, "allow R13");
    // R16, R17.
    check_verdict(&p, C::Cookie, P::Analytics, "allow R16");
    check_verdict(&p, C::Diagnostic, P::ServiceImprovement, "allow R17");
}

#[test]
fn conditions_ride_on_rules() {
    let p = shipped();
    let PurposeVerdict::Declared(r) = p.purpose_verdict(Category::Support, Purpose::Training)
    else {
        panic!("training on support data is declared");
    };
    assert_eq!(r.condition, Some(PurposeCondition::PiiRemoved));
    let PurposeVerdict::Declared(r) = p.purpose_verdict(Category::Cookie, Purpose::Analytics)
    else {
        panic!("analytics cookies are declared");
    };
    assert_eq!(r.condition, Some(PurposeCondition::CookieConsent));
}

#[test]
fn security_code_is_never_stored_r12() {
    let p = shipped();
    let pay = p.category(Category::Payment).unwrap();
    assert!(pay.never_store.iter().any(|f| f == "security_code"));
    assert_eq!(
        pay.never_store_clause.map(|c| c.to_string()),
        Some("R12".to_owned())
    );
}

#[test]
fn residency_and_overseas_rules_r6_r18() {
    let p = shipped();
    for c in &p.categories {
        assert_eq!(
            c.residency,
            crate::vocab::Region::Cn,
            "{} is stored in China (R18)",
            c.category
        );
    }
    assert_eq!(
        p.category(Category::Customer).unwrap().overseas,
        OverseasRule::SupportGrantOnly
    );
}

#[test]
fn legal_lists_are_complete_r28_r36() {
    let p = shipped();
    assert_eq!(p.consent_exceptions.len(), 6);
    assert_eq!(p.refusal_grounds.len(), 8);
    assert!(p
        .refusal_grounds
        .iter()
        .all(|g| !g.text.zh.is_empty() && !g.text.en.is_empty()));
    assert_eq!(p.requests.answer_within_days, 30);
}

#[test]
fn recipient_kinds_r21_r25() {
    let p = shipped();
    let pay = p.recipient_kind(RecipientKind::PaymentProcessor).unwrap();
    assert!(pay.overseas_allowed && !pay.overseas_needs_consent, "R24");
    assert!(
        p.recipient_kind(RecipientKind::ThirdPartyOffering)
            .unwrap()
            .requires_policy_ref,
        "R25"
    );
    assert!(
        !p.recipient_kind(RecipientKind::Authority)
            .unwrap()
            .overseas_allowed
    );
}

#[test]
fn clause_index_covers_the_policy_clauses() {
    let p = shipped();
    let idx = p.clause_index();
    assert_eq!(idx.len(), 45);
    let encoded: Vec<String> = idx
        .iter()
        .filter(|(_, at)| !at.is_empty())
        .map(|(c, _)| c.to_string())
        .collect();
    for id in [
        "R1", "R3", "R5", "R8", "R9", "R11", "R12", "R13", "R16", "R17", "R19", "R21", "R22",
        "R24", "R25", "R28", "R35", "R36", "R41", "R42",
    ] {
        assert!(encoded.iter().any(|e| e == id), "{id} not encoded");
    }
}

/// Replaces the first occurrence of `from` in the shipped file and expects a load error
/// mentioning `needle` at `line`.
fn check_error(from: &str, to: &str, needle: &str) -> PolicyError {
    assert!(
        SHIPPED.contains(from),
        "fixture text {from:?} not in the shipped policy"
    );
    let text = SHIPPED.replacen(from, to, 1);
    let err = load("bad.toml", &text).expect_err("must be refused");
    let shown = err.to_string();
    assert!(shown.starts_with("bad.toml:"), "{shown}");
    assert!(shown.contains(needle), "{shown} should mention {needle}");
    let expected_line = SHIPPED.split(from).next().unwrap().matches('\n').count() + 1;
    if !from.starts_with('[') {
        assert_eq!(err.line, expected_line, "{shown}");
    }
    err
}

#[test]
fn unknown_purpose_names_file_line_and_key() {
    let err = check_error(
        "{ id = \"fraud_prevention\", clause = \"R11\" }",
        "{ id = \"fraud_prevent\", clause = \"R11\" }",
        "unknown purpose `fraud_prevent`",
    );
    assert_eq!(err.key, "categories.payment.purposes");
}

#[test]
fn unknown_category_is_refused() {
    check_error(
        "id = \"diagnostic\"\nname_zh = \"诊断数据\"",
        "id = \"health\"\nname_zh = \"诊断数据\"",
        "unknown category `health`",
    );
}

#[test]
fn unknown_clause_is_refused() {
    let err = check_error(
        "clause = \"R17\"\nfields",
        "clause = \"R99\"\nfields",
        "unknown clause id `R99`",
    );
    assert_eq!(err.key, "categories.diagnostic.clause");
}

#[test]
fn unknown_key_is_refused() {
    check_error(
        "clause = \"R16\"\nfields",
        "sensitivity = 1\nclause = \"R16\"\nfields",
        "unknown field `sensitivity`",
    );
}

#[test]
fn missing_category_is_refused() {
    let start = SHIPPED.find("[[categories]]\nid = \"cookie\"").unwrap();
    let end = SHIPPED[start..].find("# ----").unwrap() + start;
    let text = format!("{}{}", &SHIPPED[..start], &SHIPPED[end..]);
    let err = load("x.toml", &text).unwrap_err();
    assert!(
        err.to_string()
            .contains("category `cookie` is not classified"),
        "{err}"
    );
}

#[test]
fn missing_refusal_ground_is_refused() {
    let text = SHIPPED.replacen("id = \"trade_secret\"", "id = \"abuse\"", 1);
    let err = load("x.toml", &text).unwrap_err();
    assert!(err.to_string().contains("duplicate `abuse`"), "{err}");
}

#[test]
fn allowed_and_prohibited_at_once_is_refused() {
    check_error(
        "  { id = \"analytics\", clause = \"R5\" },",
        "  { id = \"provide_service\", clause = \"R5\" },",
        "both allowed and prohibited",
    );
}

#[test]
fn answer_period_beyond_thirty_days_is_refused_r35() {
    check_error(
        "answer_within_days = 30",
        "answer_within_days = 45",
        "within 30 days",
    );
}

#[test]
fn syntax_error_has_a_line() {
    let text = SHIPPED.replacen("[trial]", "[trial", 1);
    let err = load("x.toml", &text).unwrap_err();
    assert!(err.line > 1, "{err}");
}

/// The compiled table agrees with a naive scan of the rules (the reference model).
#[test]
fn compiled_table_matches_naive_reference() {
    let p = shipped();
    for c in Category::ALL {
        let cp = p.category(*c).unwrap();
        for purpose in Purpose::ALL {
            let naive = if let Some(r) = cp.purposes.iter().find(|r| r.purpose == *purpose) {
                PurposeVerdict::Declared(*r)
            } else if let Some(x) = cp.prohibited.iter().find(|x| x.purpose == *purpose) {
                PurposeVerdict::Prohibited(*x)
            } else {
                PurposeVerdict::Undeclared
            };
            assert_eq!(p.purpose_verdict(*c, *purpose), naive, "{c}/{purpose}");
        }
    }
}

/// The access rules (issue 14, R29) are validated like the rest of the statement.
#[test]
fn access_rules_are_validated_r29() {
    // A condition on a role it cannot apply to.
    let e = check_error(
        "requires = \"named_basis\"\nclause",
        "requires = \"grant\"\nclause",
        "applies only to role `support`",
    );
    assert_eq!(e.key, "access.5.requires");
    check_error(
        "role = \"operator\"\ncategories = [\"administrator\", \"registration\"]",
        "role = \"janitor\"\ncategories = [\"administrator\", \"registration\"]",
        "unknown role `janitor`",
    );
    check_error(
        "purposes = [\"account_admin\", \"service_communication\"]\nactions",
        "purposes = [\"account_admin\", \"account_admin\"]\nactions",
        "listed twice",
    );
    check_error(
        "purposes = [\"account_admin\", \"service_communication\"]\nactions",
        "purposes = []\nactions",
        "at least one id",
    );
    // No rules at all would deny everything: refused, not silently accepted.
    let start = SHIPPED.find("\n[[access]]").unwrap();
    let e = load("statement.toml", SHIPPED.get(..start).unwrap()).unwrap_err();
    assert!(e.message.contains("no [[access]] rules"), "{e}");
}

/// The shipped rules: least privilege per role (R29).
#[test]
fn shipped_access_rules_give_each_role_only_its_share_r29() {
    use crate::policy::{AccessAction, AccessCondition};
    use crate::Role;
    let p = shipped();
    let rule = |role, c, a, purpose| p.access.lookup(role, c, a, purpose);
    assert!(!p.access.role_has_rules(Role::Auditor));
    assert!(rule(
        Role::Operator,
        Category::Customer,
        AccessAction::Read,
        Purpose::ProvideService
    )
    .is_none());
    assert!(rule(
        Role::Operator,
        Category::Payment,
        AccessAction::Read,
        Purpose::Transaction
    )
    .is_none());
    assert!(rule(
        Role::Operator,
        Category::Administrator,
        AccessAction::Read,
        Purpose::AccountAdmin
    )
    .is_some());
    for c in Category::ALL {
        assert_eq!(
            rule(
                Role::PrivacyOfficer,
                *c,
                AccessAction::Read,
                Purpose::LegalObligation
            )
            .map(|g| g.requires),
            Some(Some(AccessCondition::NamedBasis))
        );
        assert!(rule(
            Role::PrivacyOfficer,
            *c,
            AccessAction::Write,
            Purpose::LegalObligation
        )
        .is_none());
        assert!(rule(Role::Support, *c, AccessAction::Delete, Purpose::Support).is_none());
        // Services delete nothing: erasure is the request workflow's (R33).
        assert!(rule(
            Role::Service,
            *c,
            AccessAction::Delete,
            Purpose::Transaction
        )
        .is_none());
        assert_eq!(
            rule(Role::Service, *c, AccessAction::Read, Purpose::Transaction).map(|g| g.requires),
            Some(Some(AccessCondition::TokenScope))
        );
    }
    assert_eq!(
        rule(
            Role::Support,
            Category::Customer,
            AccessAction::Read,
            Purpose::Troubleshooting
        )
        .map(|g| g.requires),
        Some(Some(AccessCondition::Grant))
    );
    assert!(rule(
        Role::Support,
        Category::RealName,
        AccessAction::Read,
        Purpose::Support
    )
    .is_none());
}
