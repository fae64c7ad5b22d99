//! Clause ids: the stable requirement ids R1..R45 of `REQUIREMENTS.md`, each tied to a
//! section of the privacy statement. Every policy rule and every decision cites one.

use std::fmt;

/// The highest requirement id the statement defines.
pub const MAX_CLAUSE: u8 = 45;

/// A requirement id `R1`..`R45`.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Clause(u8); // INVARIANT: 1..=MAX_CLAUSE

/// A string that is not a clause id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown clause id `{0}` (expected R1 to R45)")]
pub struct ClauseError(String);

impl Clause {
    pub fn parse(s: &str) -> Result<Self, ClauseError> {
        let err = || ClauseError(s.chars().take(16).collect());
        let digits = s.strip_prefix('R').ok_or_else(err)?;
        if digits.is_empty()
            || digits.starts_with('0')
            || digits.len() > 2
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        let n: u8 = digits.parse().map_err(|_| err())?;
        if (1..=MAX_CLAUSE).contains(&n) {
            Ok(Self(n))
        } else {
            Err(err())
        }
    }

    /// The clause `R{n}`, for code that cites a fixed requirement.
    ///
    /// Only for literals in code; out-of-range numbers are clamped into range so this
    /// never produces an invalid value.
    pub const fn r(n: u8) -> Self {
        if n == 0 {
            Self(1)
        } else if n > MAX_CLAUSE {
            Self(MAX_CLAUSE)
        } else {
            Self(n)
        }
    }

    pub fn number(self) -> u8 {
        self.0
    }

    /// Every clause id, R1..R45.
    pub fn all() -> impl Iterator<Item = Clause> {
        (1..=MAX_CLAUSE).map(Clause)
    }
}

impl TryFrom<String> for Clause {
    type Error = ClauseError;
    fn try_from(s: String) -> Result<Self, ClauseError> {
        Self::parse(&s)
    }
}

impl From<Clause> for String {
    fn from(c: Clause) -> String {
        c.to_string()
    }
}

impl fmt::Display for Clause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "R{}", self.0)
    }
}

impl fmt::Debug for Clause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Clause(R{})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(input: &str, expect: Option<u8>) {
        assert_eq!(
            Clause::parse(input).ok().map(Clause::number),
            expect,
            "{input:?}"
        );
    }

    #[test]
    fn clause_ids() {
        check("R1", Some(1));
        check("R45", Some(45));
        check("R19", Some(19));
        check("R0", None);
        check("R46", None);
        check("R01", None);
        check("r4", None);
        check("R", None);
        check("R+4", None);
        check("R100", None);
        check("", None);
    }

    #[test]
    fn const_constructor_is_clamped() {
        assert_eq!(Clause::r(19).to_string(), "R19");
        assert_eq!(Clause::r(0).number(), 1);
        assert_eq!(Clause::r(99).number(), 45);
    }

    proptest! {
        #[test]
        fn display_round_trips(n in 1u8..=45) {
            let c = Clause::parse(&format!("R{n}")).unwrap();
            prop_assert_eq!(Clause::parse(&c.to_string()), Ok(c));
        }

        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = Clause::parse(&s);
        }
    }
}
