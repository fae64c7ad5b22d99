//! The closed vocabularies of the statement: data categories (R3), purposes, regions,
//! countries and service ids. Categories and purposes are closed sets known to the code,
//! because the decision tables are indexed by them; services are open (the operator
//! registers them in the policy, R1) but their ids must be well-formed slugs.

use std::fmt;

pub use crate::macros::UnknownId;

closed_vocab!(
    /// A category of stored personal information (R3). Every stored field belongs to one.
    Category, "category", {
        /// Data customers put into the online services (R5, R6, R7).
        Customer = "customer",
        /// Account contacts and subscription administrators (R8, R9).
        Administrator = "administrator",
        /// Business licence, administrator mobile, ID card scan (R10, R32).
        RealName = "real_name",
        /// Payment instruments and billing details (R11, R12).
        Payment = "payment",
        /// Support requests and troubleshooter output (R13, R15).
        Support = "support",
        /// Registration data from websites, events and surveys (definition of personal data).
        Registration = "registration",
        /// Diagnostic data sent by local agents (R17).
        Diagnostic = "diagnostic",
        /// Cookie and similar-technology data (R16).
        Cookie = "cookie",
    }
);

closed_vocab!(
    /// Why personal information is processed. Each category allows a declared set (R4).
    Purpose, "purpose", {
        ProvideService = "provide_service",
        Troubleshooting = "troubleshooting",
        ServiceImprovement = "service_improvement",
        ThreatProtection = "threat_protection",
        Transaction = "transaction",
        AccountAdmin = "account_admin",
        FraudPrevention = "fraud_prevention",
        ServiceCommunication = "service_communication",
        Marketing = "marketing",
        Feedback = "feedback",
        Support = "support",
        Training = "training",
        RealNameVerification = "real_name_verification",
        LegalObligation = "legal_obligation",
        Authentication = "authentication",
        Analytics = "analytics",
        Research = "research",
        Preferences = "preferences",
    }
);

closed_vocab!(
    /// Where a caller or a storage location is, for residency and cross-border rules (R6, R7, R18).
    Region, "region", {
        /// Mainland China.
        Cn = "cn",
        /// Anywhere outside mainland China (including Hong Kong, Macao and Taiwan, which
        /// are outside the mainland for personal-information export purposes).
        Overseas = "overseas",
    }
);

/// An ISO 3166-1 alpha-2 country code, upper case (`CN`, `US`, `SG`, ...).
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Country([u8; 2]); // INVARIANT: two ASCII upper-case letters

/// A string that is not an ISO 3166-1 alpha-2 code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid country code: expected two upper-case letters (ISO 3166-1 alpha-2), e.g. CN or US"
)]
pub struct CountryError;

impl Country {
    pub const CN: Country = Country(*b"CN");

    pub fn parse(s: &str) -> Result<Self, CountryError> {
        match s.as_bytes() {
            [a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Ok(Country([*a, *b])),
            _ => Err(CountryError),
        }
    }

    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII by the invariant, so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    /// The region this country belongs to for residency rules: only `CN` is mainland China.
    pub fn region(self) -> Region {
        if self == Self::CN {
            Region::Cn
        } else {
            Region::Overseas
        }
    }
}

impl TryFrom<String> for Country {
    type Error = CountryError;
    fn try_from(s: String) -> Result<Self, CountryError> {
        Self::parse(&s)
    }
}

impl From<Country> for String {
    fn from(c: Country) -> String {
        c.as_str().to_owned()
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Country({})", self.as_str())
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The id of an online service the operator runs or resells (R1): a lowercase slug.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServiceId(String); // INVARIANT: 1..=64 chars of [a-z0-9_-], starting with a letter

/// A string that is not a valid service id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid service id: expected 1 to 64 characters of a-z, 0-9, `_` or `-`, starting with a letter")]
pub struct ServiceIdError;

impl ServiceId {
    pub fn parse(s: &str) -> Result<Self, ServiceIdError> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ServiceIdError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ServiceId {
    type Error = ServiceIdError;
    fn try_from(s: String) -> Result<Self, ServiceIdError> {
        Self::parse(&s)
    }
}

impl From<ServiceId> for String {
    fn from(s: ServiceId) -> String {
        s.0
    }
}

impl fmt::Debug for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceId({})", self.0)
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_category_round_trips() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Ok(*c));
            assert_eq!(Category::ALL[c.index()], *c);
        }
        assert_eq!(Category::COUNT, 8);
    }

    #[test]
    fn every_purpose_round_trips() {
        for p in Purpose::ALL {
            assert_eq!(Purpose::parse(p.as_str()), Ok(*p));
            assert_eq!(Purpose::ALL[p.index()], *p);
        }
    }

    #[test]
    fn unknown_purpose_lists_the_known_ones() {
        let err = Purpose::parse("marketting").unwrap_err();
        assert!(err.to_string().contains("unknown purpose `marketting`"));
        assert!(err.to_string().contains("marketing"));
    }

    #[test]
    fn serde_refuses_unknown_category() {
        let ok: Category = serde_json::from_str("\"real_name\"").unwrap();
        assert_eq!(ok, Category::RealName);
        assert!(serde_json::from_str::<Category>("\"health\"").is_err());
    }

    fn check_country(input: &str, region: Option<Region>) {
        assert_eq!(
            Country::parse(input).ok().map(Country::region),
            region,
            "{input:?}"
        );
    }

    #[test]
    fn countries() {
        check_country("CN", Some(Region::Cn));
        check_country("US", Some(Region::Overseas));
        check_country("HK", Some(Region::Overseas));
        check_country("cn", None);
        check_country("CHN", None);
        check_country("", None);
    }

    fn check_service(input: &str, ok: bool) {
        assert_eq!(ServiceId::parse(input).is_ok(), ok, "{input:?}");
    }

    #[test]
    fn service_ids() {
        check_service("azure", true);
        check_service("office365", true);
        check_service("power-platform", true);
        check_service("dynamics_365", true);
        check_service("Azure", false);
        check_service("1azure", false);
        check_service("", false);
        check_service("a b", false);
        check_service(&"a".repeat(65), false);
    }

    proptest! {
        #[test]
        fn service_id_parse_matches_invariant(s in "\\PC{0,70}") {
            if let Ok(id) = ServiceId::parse(&s) {
                prop_assert!(id.as_str().len() <= 64);
                prop_assert!(id.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'));
            }
        }

        #[test]
        fn category_parse_never_panics(s in "\\PC*") {
            let _ = Category::parse(&s);
        }
    }
}
