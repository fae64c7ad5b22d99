//! The `closed_vocab!` macro: a closed set of snake_case ids as a Rust enum with
//! parsing, serde, a dense index for decision tables and a typed error.

/// A string that is not one of a closed vocabulary's ids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{given}` (expected one of: {expected})")]
pub struct UnknownId {
    pub kind: &'static str,
    /// The rejected input, truncated; vocabulary ids are never personal data.
    pub given: String,
    pub expected: String,
}

pub(crate) fn truncated(s: &str) -> String {
    s.chars().take(64).collect()
}

#[macro_export]
#[doc(hidden)]
macro_rules! closed_vocab {
    ($(#[$doc:meta])* $name:ident, $kind:literal, { $($(#[$vdoc:meta])* $variant:ident = $id:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "&'static str")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order (the order of the decision tables).
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Number of values; the width of a decision table.
            pub const COUNT: usize = Self::ALL.len();

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $id),+ }
            }

            /// Dense index for table look-ups.
            pub fn index(self) -> usize {
                self as usize
            }

            pub fn parse(s: &str) -> Result<Self, $crate::macros::UnknownId> {
                match s {
                    $($id => Ok($name::$variant),)+
                    _ => Err($crate::macros::UnknownId {
                        kind: $kind,
                        given: $crate::macros::truncated(s),
                        expected: [$($id),+].join(", "),
                    }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::macros::UnknownId;
            fn try_from(s: String) -> Result<Self, $crate::macros::UnknownId> {
                Self::parse(&s)
            }
        }

        impl From<$name> for &'static str {
            fn from(v: $name) -> &'static str {
                v.as_str()
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::macros::UnknownId;
            fn from_str(s: &str) -> Result<Self, $crate::macros::UnknownId> {
                Self::parse(s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
