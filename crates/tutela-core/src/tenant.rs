//! Tenants (the operator's customers, the controllers of their end users' data) and the
//! subjects registered under them (R2).

use time::{Date, Month};

closed_vocab!(
    /// What kind of customer a tenant is.
    TenantKind, "tenant kind", {
        Enterprise = "enterprise",
        Individual = "individual",
    }
);

closed_vocab!(
    /// Where a tenant is in its lifecycle (R19, R41).
    TenantState, "tenant state", {
        /// Trying the services before purchase (R41).
        Trial = "trial",
        /// Using the services.
        Active = "active",
        /// Account closed: data frozen until the retention period ends (R19).
        Closed = "closed",
        /// Trial ended without purchase (R41).
        Expired = "expired",
        /// Retention ended: personal information deleted or anonymized (R19).
        Erased = "erased",
    }
);

closed_vocab!(
    /// What a subject is to its tenant.
    SubjectKind, "subject kind", {
        /// An account contact or subscription administrator (R8).
        Administrator = "administrator",
        /// A user of the tenant's own services (R2, R26).
        EndUser = "end_user",
        /// Any other contact person.
        Contact = "contact",
    }
);

/// A tenant's display name: 1 to 200 characters after trimming, no control characters.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
#[serde(into = "String")]
pub struct TenantName(String);

/// Why a tenant name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tenant name: expected 1 to 200 characters without control characters")]
pub struct TenantNameError;

impl TenantName {
    pub fn parse(s: &str) -> Result<Self, TenantNameError> {
        let t = s.trim();
        let n = t.chars().count();
        if (1..=200).contains(&n) && !t.chars().any(char::is_control) {
            Ok(Self(t.to_owned()))
        } else {
            Err(TenantNameError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<TenantName> for String {
    fn from(n: TenantName) -> String {
        n.0
    }
}

impl std::fmt::Debug for TenantName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TenantName({} chars)", self.0.chars().count())
    }
}

/// The age of majority in the People's Republic of China (R43).
pub const AGE_OF_MAJORITY: i32 = 18;

/// Why a birth date was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BirthDateError {
    #[error("birth_date must be a calendar date in the form YYYY-MM-DD")]
    Format,
    #[error("birth_date is in the future")]
    Future,
    #[error("birth_date is more than 150 years ago")]
    TooOld,
}

/// Parses and sanity-checks a birth date against `today`.
pub fn parse_birth_date(s: &str, today: Date) -> Result<Date, BirthDateError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let d = Date::parse(s, &format).map_err(|_| BirthDateError::Format)?;
    if d > today {
        return Err(BirthDateError::Future);
    }
    if today.year() - d.year() > 150 {
        return Err(BirthDateError::TooOld);
    }
    Ok(d)
}

/// The first day on which someone born on `birth` is an adult (R43). A 29 February
/// birthday comes of age on 1 March in non-leap years.
pub fn adult_on(birth: Date) -> Date {
    let year = birth.year() + AGE_OF_MAJORITY;
    Date::from_calendar_date(year, birth.month(), birth.day())
        .or_else(|_| Date::from_calendar_date(year, Month::March, 1))
        .unwrap_or(Date::MAX)
}

/// Is someone who comes of age on `adult_on` still a minor on `today`? (R43)
pub fn is_minor(adult_on: Option<Date>, today: Date) -> bool {
    adult_on.is_some_and(|a| today < a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn check_minor(birth: Date, today: Date, minor: bool) {
        assert_eq!(
            is_minor(Some(adult_on(birth)), today),
            minor,
            "{birth} on {today}"
        );
    }

    #[test]
    fn minors() {
        check_minor(date!(2010 - 05 - 01), date!(2026 - 11 - 28), true);
        check_minor(date!(2008 - 11 - 28), date!(2026 - 11 - 28), false);
        check_minor(date!(2008 - 11 - 29), date!(2026 - 11 - 28), true);
        check_minor(date!(2008 - 02 - 29), date!(2026 - 02 - 28), true);
        check_minor(date!(2008 - 02 - 29), date!(2026 - 03 - 01), false);
        assert!(!is_minor(None, date!(2026 - 11 - 28)));
    }

    #[test]
    fn birth_dates() {
        let today = date!(2026 - 11 - 28);
        assert_eq!(
            parse_birth_date("2010-05-01", today),
            Ok(date!(2010 - 05 - 01))
        );
        assert_eq!(
            parse_birth_date("2027-01-01", today),
            Err(BirthDateError::Future)
        );
        assert_eq!(
            parse_birth_date("1850-01-01", today),
            Err(BirthDateError::TooOld)
        );
        assert_eq!(
            parse_birth_date("2010-02-30", today),
            Err(BirthDateError::Format)
        );
        assert_eq!(
            parse_birth_date("01/05/2010", today),
            Err(BirthDateError::Format)
        );
    }

    #[test]
    fn tenant_names() {
        assert_eq!(
            TenantName::parse("  蓝云示例公司 ").unwrap().as_str(),
            "蓝云示例公司"
        );
        assert!(TenantName::parse("").is_err());
        assert!(TenantName::parse("   ").is_err());
        assert!(TenantName::parse("a\u{0}b").is_err());
        assert!(TenantName::parse(&"x".repeat(201)).is_err());
    }
}
