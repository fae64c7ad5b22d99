//! API bearer tokens. A token is `tutela_<id>_<secret>`: the id (32 hex) names the stored
//! row, the secret (64 hex, 256 bits) is shown once and only its SHA-256 is stored. A
//! fast hash is right here: the secret is random and high-entropy, so there is nothing
//! to brute-force, and authentication runs on every request.

use crate::{constant_time_eq, random_bytes, sha256, RandomError};

const PREFIX: &str = "tutela_";

/// A freshly minted token: the string to show once, and what to store.
pub struct MintedToken {
    /// The full bearer token. Print once, never store or log.
    pub bearer: String,
    pub id: [u8; 16],
    pub secret_hash: [u8; 32],
}

impl std::fmt::Debug for MintedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MintedToken({}, secret redacted)", hex::encode(self.id))
    }
}

/// Mints a token with the given 128-bit id.
pub fn mint(id: [u8; 16]) -> Result<MintedToken, RandomError> {
    let secret = random_bytes::<32>()?;
    let secret_hex = hex::encode(secret);
    Ok(MintedToken {
        bearer: format!("{PREFIX}{}_{secret_hex}", hex::encode(id)),
        id,
        secret_hash: sha256(secret_hex.as_bytes()),
    })
}

/// A bearer token split into its parts; says nothing about validity yet.
#[derive(PartialEq, Eq)]
pub struct PresentedToken<'a> {
    /// The id as 32 lowercase hex characters.
    pub id_hex: &'a str,
    secret_hex: &'a str,
}

impl std::fmt::Debug for PresentedToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PresentedToken({}, secret redacted)", self.id_hex)
    }
}

/// Splits a bearer string; `None` when it is not shaped like a tutela token.
pub fn parse(bearer: &str) -> Option<PresentedToken<'_>> {
    let rest = bearer.strip_prefix(PREFIX)?;
    let (id_hex, secret_hex) = rest.split_once('_')?;
    let hex_ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    (hex_ok(id_hex, 32) && hex_ok(secret_hex, 64)).then_some(PresentedToken { id_hex, secret_hex })
}

impl PresentedToken<'_> {
    /// Does the presented secret match the stored hash? Constant time.
    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        constant_time_eq(&sha256(self.secret_hex.as_bytes()), stored_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_token_verifies_and_others_do_not() {
        let t = mint([7; 16]).unwrap();
        let p = parse(&t.bearer).unwrap();
        assert_eq!(p.id_hex, hex::encode([7u8; 16]));
        assert!(p.matches(&t.secret_hash));
        let other = mint([7; 16]).unwrap();
        assert!(!p.matches(&other.secret_hash));
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        assert!(parse("").is_none());
        assert!(parse("Bearer x").is_none());
        assert!(parse(&format!("tutela_{}_{}", "0".repeat(32), "0".repeat(63))).is_none());
        assert!(parse(&format!("tutela_{}_{}", "G".repeat(32), "0".repeat(64))).is_none());
        assert!(parse(&format!("tutela_{}_{}", "0".repeat(32), "0".repeat(64))).is_some());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let t = mint([1; 16]).unwrap();
        let secret = t.bearer.rsplit('_').next().unwrap().to_owned();
        assert!(!format!("{t:?}").contains(&secret));
        assert!(!format!("{:?}", parse(&t.bearer).unwrap()).contains(&secret));
    }
}
