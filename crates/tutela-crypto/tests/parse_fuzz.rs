//! Property tests of the parsers that see untrusted text (issue 14, "Proof"): bearer
//! tokens (every request's `Authorization` header) and signed links (`/u/{token}`,
//! `/d/{token}`). Arbitrary input never panics; what is minted or signed parses back.
//! `PROPTEST_CASES` sets the number of cases (default 256).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation should panic with context"
)]

use proptest::prelude::*;
use tutela_crypto::envelope::Key;
use tutela_crypto::link::{LinkError, LinkKey};
use tutela_crypto::token;

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(any::<u8>(), 0..128)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        "tutela_[0-9a-fA-F_]{0,100}",
        "[a-z0-9_.-]{0,40}\\.[0-9]{0,12}\\.[0-9a-f]{0,66}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn bearer_parsing_never_panics_and_accepts_only_the_shape_r29(s in any_text()) {
        if let Some(p) = token::parse(&s) {
            prop_assert_eq!(s.len(), "tutela_".len() + 32 + 1 + 64);
            prop_assert!(s.starts_with("tutela_"));
            prop_assert_eq!(p.id_hex.len(), 32);
            prop_assert!(p.id_hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            // A random secret never matches a stored hash of zeros.
            prop_assert!(!p.matches(&[0u8; 32]));
        }
    }

    #[test]
    fn a_minted_token_parses_and_matches_only_its_own_hash_r29(id in any::<[u8; 16]>()) {
        let t = token::mint(id).unwrap();
        let p = token::parse(&t.bearer).unwrap();
        prop_assert_eq!(p.id_hex, hex::encode(id));
        prop_assert!(p.matches(&t.secret_hash));
        let mut other = t.secret_hash;
        other[0] ^= 1;
        prop_assert!(!p.matches(&other));
    }

    #[test]
    fn link_verification_never_panics_and_forgeries_fail_r15(
        s in any_text(),
        purpose in "[a-z_-]{1,12}",
        now in any::<i64>(),
    ) {
        let key = LinkKey::derive(&Key::from_bytes([7; 32]));
        // Without the key, no text verifies (the MAC is 256 bits).
        prop_assert!(key.verify(&purpose, &s, now).is_err());
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires_and_only_for_its_purpose_r15(
        purpose in "[a-z0-9_-]{1,20}",
        fields in proptest::collection::vec("[a-z0-9_-]{1,20}", 0..4),
        expires in 0i64..4_000_000_000,
        now in 0i64..4_000_000_000,
        tamper in any::<prop::sample::Index>(),
    ) {
        let key = LinkKey::derive(&Key::from_bytes([9; 32]));
        let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
        let link = key.sign(&purpose, &refs, expires).unwrap();
        match key.verify(&purpose, &link, now) {
            Ok(got) => {
                prop_assert!(now <= expires);
                prop_assert_eq!(got, fields.clone());
            }
            Err(e) => {
                prop_assert!(now > expires);
                prop_assert_eq!(e, LinkError::Expired);
            }
        }
        let other = format!("{purpose}x");
        prop_assert!(key.verify(&other, &link, 0).is_err());
        // Any one changed character makes it fail.
        let mut bytes = link.into_bytes();
        let i = tamper.index(bytes.len());
        bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
        let changed = String::from_utf8(bytes).unwrap();
        prop_assert!(key.verify(&purpose, &changed, 0).is_err());
    }
}
