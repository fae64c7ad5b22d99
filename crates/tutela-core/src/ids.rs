//! Opaque identifiers. Each kind has its own prefix so an id of one kind can never be
//! passed where another is expected, even as a string in a URL.
//!
//! Shape: `<prefix>_<32 lowercase hex>`; the 128 bits come from the caller (the server
//! uses UUIDv7 so ids sort by creation time, which keeps B-tree inserts local).

use std::fmt;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id: expected `{prefix}_` followed by 32 lowercase hex digits")]
pub struct IdError {
    pub kind: &'static str,
    pub prefix: &'static str,
}

fn valid(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|hex| {
            hex.len() == 32
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

fn encode(prefix: &str, bytes: [u8; 16]) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(prefix.len() + 33);
    s.push_str(prefix);
    s.push('_');
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String); // INVARIANT: valid($0, PREFIX)

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// Builds a fresh id from 128 bits supplied by the caller.
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(encode($prefix, bytes))
            }

            pub fn parse(s: &str) -> Result<Self, IdError> {
                if valid(s, $prefix) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(IdError { kind: $kind, prefix: $prefix })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

opaque_id!(
    /// A customer of the operator: the controller of its end users' data (R2).
    TenantId, "ten", "tenant"
);
opaque_id!(
    /// A natural person whose personal information tutela holds.
    SubjectId, "sub", "subject"
);
opaque_id!(
    /// An API token's public identifier (the secret part is never stored).
    TokenId, "tok", "token"
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(input: &str, ok: bool) {
        assert_eq!(TenantId::parse(input).is_ok(), ok, "{input:?}");
    }

    #[test]
    fn tenant_id_shapes() {
        check("ten_0123456789abcdef0123456789abcdef", true);
        check("ten_0123456789ABCDEF0123456789abcdef", false);
        check("sub_0123456789abcdef0123456789abcdef", false);
        check("ten_0123456789abcdef0123456789abcde", false);
        check("ten0123456789abcdef0123456789abcdef0", false);
        check("", false);
        check("ten_", false);
    }

    proptest! {
        #[test]
        fn from_bytes_always_parses(bytes in any::<[u8; 16]>()) {
            let id = SubjectId::from_bytes(bytes);
            prop_assert_eq!(SubjectId::parse(id.as_str()), Ok(id.clone()));
            prop_assert!(TenantId::parse(id.as_str()).is_err());
        }

        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = TokenId::parse(&s);
        }
    }
}
