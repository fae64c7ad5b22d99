//! Signed, expiring, single-purpose links (issue 4: unsubscribe links, R15).
//!
//! A link token is `<purpose>.<field>...<expires>.<mac>`: readable, URL-safe, and bound by
//! an HMAC-SHA256 under a link key derived from the master key. Changing any part, or
//! using it after `expires` (Unix seconds), fails verification. The purpose is part of
//! the signed text, so a token minted for one purpose never verifies for another.

use crate::envelope::Key;

/// The key that signs links; derived, never stored.
pub struct LinkKey(ring::hmac::Key);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(..)")
    }
}

/// Why a link does not verify. Deliberately coarse: a caller learns nothing about which
/// part was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is not valid")]
    Invalid,
    #[error("the link has expired")]
    Expired,
}

fn is_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 80
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

impl LinkKey {
    /// Derives the link key from a master key (HMAC with a fixed label).
    pub fn derive(master: &Key) -> Self {
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, master.as_bytes());
        let tag = ring::hmac::sign(&k, b"tutela-link-key-v1");
        Self(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, tag.as_ref()))
    }

    /// Signs `purpose` and `fields` until `expires` (Unix seconds). Parts must be
    /// lower-case ASCII letters, digits, `_` or `-` (ids and vocabulary, never personal
    /// data values); returns `None` otherwise.
    pub fn sign(&self, purpose: &str, fields: &[&str], expires: i64) -> Option<String> {
        if !is_part(purpose) || !fields.iter().all(|f| is_part(f)) || expires < 0 {
            return None;
        }
        let mut text = String::from(purpose);
        for f in fields {
            text.push('.');
            text.push_str(f);
        }
        text.push('.');
        text.push_str(&expires.to_string());
        let mac = ring::hmac::sign(&self.0, text.as_bytes());
        Some(format!("{text}.{}", hex::encode(mac.as_ref())))
    }

    /// Verifies a token for `purpose` at `now` (Unix seconds); returns its fields.
    pub fn verify(&self, purpose: &str, token: &str, now: i64) -> Result<Vec<String>, LinkError> {
        let (text, mac_hex) = token.rsplit_once('.').ok_or(LinkError::Invalid)?;
        let mac = hex::decode(mac_hex).map_err(|_| LinkError::Invalid)?;
        ring::hmac::verify(&self.0, text.as_bytes(), &mac).map_err(|_| LinkError::Invalid)?;
        let mut parts: Vec<&str> = text.split('.').collect();
        let expires: i64 = parts
            .pop()
            .and_then(|e| e.parse().ok())
            .ok_or(LinkError::Invalid)?;
        if parts.first() != Some(&purpose) {
            return Err(LinkError::Invalid);
        }
        if now > expires {
            return Err(LinkError::Expired);
        }
        Ok(parts.iter().skip(1).map(|s| (*s).to_owned()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> LinkKey {
        LinkKey::derive(&Key::from_bytes([b; 32]))
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let k = key(1);
        let t = k
            .sign("unsub", &["sub_01", "marketing", "email"], 1_000)
            .unwrap();
        assert!(t.starts_with("unsub.sub_01.marketing.email.1000."));
        assert_eq!(
            k.verify("unsub", &t, 999).unwrap(),
            vec!["sub_01", "marketing", "email"]
        );
        assert_eq!(k.verify("unsub", &t, 1_000).unwrap().len(), 3);
        assert_eq!(k.verify("unsub", &t, 1_001), Err(LinkError::Expired));
    }

    #[test]
    fn forged_altered_or_repurposed_links_fail() {
        let k = key(1);
        let t = k
            .sign("unsub", &["sub_01", "marketing", "email"], 1_000)
            .unwrap();
        // Another key.
        assert_eq!(key(2).verify("unsub", &t, 0), Err(LinkError::Invalid));
        // Another subject, topic or a later expiry, with the old MAC.
        for (from, to) in [
            ("sub_01", "sub_02"),
            ("marketing", "surveys"),
            ("1000", "9999"),
        ] {
            let altered = t.replacen(from, to, 1);
            assert_eq!(
                k.verify("unsub", &altered, 0),
                Err(LinkError::Invalid),
                "{altered}"
            );
        }
        // Signed for one purpose, presented for another.
        let other = k.sign("verify", &["sub_01"], 1_000).unwrap();
        assert_eq!(k.verify("unsub", &other, 0), Err(LinkError::Invalid));
        for junk in ["", ".", "unsub", "unsub.x.zz", "a.b.c.d.e.f"] {
            assert_eq!(
                k.verify("unsub", junk, 0),
                Err(LinkError::Invalid),
                "{junk}"
            );
        }
        // Personal data values cannot be put into a link.
        assert_eq!(k.sign("unsub", &["li.na@example.cn"], 1), None);
    }
}
