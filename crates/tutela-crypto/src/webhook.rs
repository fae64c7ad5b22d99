//! Signed webhooks (issue 6; R34): how tutela signs what it sends to a recipient, and how
//! it checks what a recipient sends back (acknowledgements).
//!
//! Header `Tutela-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." || body)>`.
//! The timestamp is inside the MAC, so a captured request cannot be replayed later than
//! the receiver's tolerance; the idempotency key travels in its own header and in the
//! body, so a receiver can drop a retry it has already processed.

use crate::RandomError;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "tutela-signature";
/// The header that carries the delivery's idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// A recipient's webhook secret (32 random bytes; shown to the operator as hex, once).
/// Wiped from memory on drop, like [`crate::envelope::Key`].
#[derive(Clone)]
pub struct WebhookSecret([u8; 32]);

impl Drop for WebhookSecret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl zeroize::ZeroizeOnDrop for WebhookSecret {}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// Why a signature does not verify. Coarse on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing or malformed")]
    Malformed,
    #[error("the signature does not match the body")]
    Mismatch,
    #[error("the signature's timestamp is outside the allowed window")]
    Stale,
}

impl WebhookSecret {
    pub fn generate() -> Result<Self, RandomError> {
        crate::random_bytes().map(Self)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses the hex form handed to the operator.
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = zeroize::Zeroizing::new(hex::decode(s).ok()?);
        let mut secret = Self([0; 32]);
        secret
            .0
            .copy_from_slice(bytes.get(..32).filter(|_| bytes.len() == 32)?);
        Some(secret)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn mac(&self, timestamp: i64, body: &[u8]) -> ring::hmac::Tag {
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0);
        let mut ctx = ring::hmac::Context::with_key(&k);
        ctx.update(timestamp.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body);
        ctx.sign()
    }

    /// The signature header value for `body` sent at `timestamp` (Unix seconds).
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        format!(
            "t={timestamp},v1={}",
            hex::encode(self.mac(timestamp, body))
        )
    }

    /// Checks a signature header against `body`, accepting timestamps within
    /// `tolerance_secs` of `now`.
    pub fn verify(
        &self,
        header: &str,
        body: &[u8],
        now: i64,
        tolerance_secs: i64,
    ) -> Result<(), SignatureError> {
        let mut t = None;
        let mut v1 = None;
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", v)) => t = v.parse::<i64>().ok(),
                Some(("v1", v)) => v1 = hex::decode(v).ok(),
                _ => {}
            }
        }
        let (Some(t), Some(v1)) = (t, v1) else {
            return Err(SignatureError::Malformed);
        };
        let expected = self.mac(t, body);
        if !crate::constant_time_eq(expected.as_ref(), &v1) {
            return Err(SignatureError::Mismatch);
        }
        if (now - t).abs() > tolerance_secs {
            return Err(SignatureError::Stale);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_body_verifies_and_any_change_fails() {
        let s = WebhookSecret::from_bytes([7; 32]);
        let h = s.sign(1_000, b"{\"a\":1}");
        assert_eq!(s.verify(&h, b"{\"a\":1}", 1_010, 300), Ok(()));
        assert_eq!(
            s.verify(&h, b"{\"a\":2}", 1_010, 300),
            Err(SignatureError::Mismatch)
        );
        let other = WebhookSecret::from_bytes([8; 32]);
        assert_eq!(
            other.verify(&h, b"{\"a\":1}", 1_010, 300),
            Err(SignatureError::Mismatch)
        );
        // Moving the timestamp breaks the MAC; an old one is stale.
        let moved = h.replace("t=1000", "t=1200");
        assert_eq!(
            s.verify(&moved, b"{\"a\":1}", 1_200, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            s.verify(&h, b"{\"a\":1}", 2_000, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            s.verify("v1=zz", b"", 0, 300),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn the_hex_form_round_trips() {
        let s = WebhookSecret::generate().unwrap();
        let back = WebhookSecret::from_hex(&s.to_hex()).unwrap();
        assert_eq!(back.as_bytes(), s.as_bytes());
        assert!(WebhookSecret::from_hex("abcd").is_none());
    }
}
