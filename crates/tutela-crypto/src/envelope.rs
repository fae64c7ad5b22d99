//! Authenticated encryption of field values and wrapped keys.
//!
//! A sealed blob is `version (1) || cipher (1) || nonce (12) || ciphertext || tag (16)`.
//! The caller's associated data binds the blob to where it belongs (tenant, subject,
//! category, field): a ciphertext copied to another row or subject fails to open.
//! Nonces are random (96 bits) and come from a per-thread buffer of OS randomness,
//! refilled in 4 KiB blocks, so sealing a field costs no system call
//! (`shared/BASELINES.md`: 365 ns per OS call versus 31 M/s from a buffer).

use crate::RandomError;
use std::cell::RefCell;
use zeroize::{Zeroize as _, ZeroizeOnDrop, Zeroizing};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 2 + NONCE_LEN;

/// The field cipher. AES-256-GCM by default; SM4-GCM (GB/T 32907) as the Chinese
/// commercial cryptography option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cipher {
    #[default]
    Aes256Gcm,
    Sm4Gcm,
}

impl Cipher {
    fn id(self) -> u8 {
        match self {
            Cipher::Aes256Gcm => 1,
            Cipher::Sm4Gcm => 2,
        }
    }

    fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Cipher::Aes256Gcm),
            2 => Some(Cipher::Sm4Gcm),
            _ => None,
        }
    }

    /// Parses the configuration value (`aes-256-gcm` or `sm4-gcm`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "aes-256-gcm" => Some(Cipher::Aes256Gcm),
            "sm4-gcm" => Some(Cipher::Sm4Gcm),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Cipher::Aes256Gcm => "aes-256-gcm",
            Cipher::Sm4Gcm => "sm4-gcm",
        }
    }
}

/// A 256-bit symmetric key. SM4 uses its first 128 bits. Never printed.
///
/// The expanded AES key schedule is built once, on first use, and kept: rebuilding it
/// per field cost more than the encryption itself (see BENCHMARKS.md).
///
/// The raw key bytes are wiped on drop ([`ZeroizeOnDrop`]; `zeroize` writes volatilely,
/// so the compiler cannot drop the wipe as a dead store). Clones are keys of their own
/// and are wiped when they drop. ring's expanded schedule inside the cached
/// `LessSafeKey` is not: ring offers no way to wipe it and this workspace forbids
/// `unsafe`; it lives exactly as long as this key.
pub struct Key([u8; 32], std::sync::OnceLock<ring::aead::LessSafeKey>);

impl Clone for Key {
    fn clone(&self) -> Self {
        Self(self.0, std::sync::OnceLock::new())
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        crate::constant_time_eq(&self.0, &other.0)
    }
}

impl Eq for Key {}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(redacted)")
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for Key {}

// A compile-time check that `Key` keeps its wipe-on-drop promise: dropping the marker
// impl (with the `Drop` above) stops the build here.
const _: () = {
    const fn wiped_on_drop<T: ZeroizeOnDrop>() {}
    wiped_on_drop::<Key>();
};

impl Key {
    pub fn generate() -> Result<Self, RandomError> {
        Ok(Self::from_bytes(crate::random_bytes::<32>()?))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes, std::sync::OnceLock::new())
    }

    /// A key copied straight from a 32-byte slice (a decrypted or decoded buffer the
    /// caller wipes), so no intermediate array is left behind on the stack.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 32 {
            return None;
        }
        let mut key = Self([0; 32], std::sync::OnceLock::new());
        key.0.copy_from_slice(bytes);
        Some(key)
    }

    /// The prepared AES-256-GCM key.
    fn aes(&self) -> Result<&ring::aead::LessSafeKey, ring::error::Unspecified> {
        if let Some(k) = self.1.get() {
            return Ok(k);
        }
        let k = ring::aead::LessSafeKey::new(ring::aead::UnboundKey::new(
            &ring::aead::AES_256_GCM,
            &self.0,
        )?);
        Ok(self.1.get_or_init(|| k))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Why a blob could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("ciphertext is truncated or has an unknown format")]
    Format,
    #[error("ciphertext failed authentication (wrong key, wrong context, or tampered)")]
    Authentication,
}

thread_local! {
    static NONCE_POOL: RefCell<(Vec<u8>, usize)> = const { RefCell::new((Vec::new(), 0)) };
}

fn nonce() -> Result<[u8; NONCE_LEN], RandomError> {
    NONCE_POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let (buf, pos) = &mut *pool;
        if *pos + NONCE_LEN > buf.len() {
            let fresh = crate::random_bytes::<4096>()?;
            *buf = fresh.to_vec();
            *pos = 0;
        }
        let mut out = [0u8; NONCE_LEN];
        out.copy_from_slice(buf.get(*pos..*pos + NONCE_LEN).ok_or(RandomError)?);
        // Each nonce is used once: wipe it from the pool as it leaves.
        if let Some(used) = buf.get_mut(*pos..*pos + NONCE_LEN) {
            used.fill(0);
        }
        *pos += NONCE_LEN;
        Ok(out)
    })
}

/// Encrypts `plaintext` under `key`, binding `aad`.
pub fn seal(
    cipher: Cipher,
    key: &Key,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, RandomError> {
    let nonce = nonce()?;
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    out.push(VERSION);
    out.push(cipher.id());
    out.extend_from_slice(&nonce);
    match cipher {
        Cipher::Aes256Gcm => {
            use ring::aead::{Aad, Nonce};
            let k = key.aes().map_err(|_| RandomError)?;
            // Encrypt in place in the output buffer, after the header.
            out.extend_from_slice(plaintext);
            let tag = k
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    out.get_mut(HEADER_LEN..).ok_or(RandomError)?,
                )
                .map_err(|_| RandomError)?;
            out.extend_from_slice(tag.as_ref());
        }
        Cipher::Sm4Gcm => {
            use aes_gcm::aead::{Aead, KeyInit, Payload};
            let k = Sm4Gcm::new_from_slice(key.as_bytes().get(..16).ok_or(RandomError)?)
                .map_err(|_| RandomError)?;
            let body = k
                .encrypt(
                    aes_gcm::Nonce::from_slice(&nonce),
                    Payload {
                        msg: plaintext,
                        aad,
                    },
                )
                .map_err(|_| RandomError)?;
            out.extend_from_slice(&body);
        }
    }
    Ok(out)
}

type Sm4Gcm = aes_gcm::AesGcm<sm4::Sm4, aes_gcm::aead::consts::U12>;

/// Which cipher sealed a blob, without opening it.
pub fn cipher_of(blob: &[u8]) -> Option<Cipher> {
    match blob {
        [VERSION, id, ..] => Cipher::from_id(*id),
        _ => None,
    }
}

/// Decrypts a blob sealed by [`seal`] with the same key and `aad`.
pub fn open(key: &Key, aad: &[u8], blob: &[u8]) -> Result<Vec<u8>, OpenError> {
    if blob.len() < HEADER_LEN + TAG_LEN {
        return Err(OpenError::Format);
    }
    let cipher = cipher_of(blob).ok_or(OpenError::Format)?;
    let nonce: [u8; NONCE_LEN] = blob
        .get(2..HEADER_LEN)
        .and_then(|n| n.try_into().ok())
        .ok_or(OpenError::Format)?;
    let body = blob.get(HEADER_LEN..).ok_or(OpenError::Format)?;
    match cipher {
        Cipher::Aes256Gcm => {
            use ring::aead::{Aad, Nonce};
            let k = key.aes().map_err(|_| OpenError::Format)?;
            let mut buf = body.to_vec();
            let plain_len = k
                .open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    &mut buf,
                )
                .map_err(|_| OpenError::Authentication)?
                .len();
            // The clear text is returned in the buffer it was decrypted in (minus the
            // tag), so no second copy of it is left behind unwiped.
            buf.truncate(plain_len);
            Ok(buf)
        }
        Cipher::Sm4Gcm => {
            use aes_gcm::aead::{Aead, KeyInit, Payload};
            let k = Sm4Gcm::new_from_slice(key.as_bytes().get(..16).ok_or(OpenError::Format)?)
                .map_err(|_| OpenError::Format)?;
            k.decrypt(
                aes_gcm::Nonce::from_slice(&nonce),
                Payload { msg: body, aad },
            )
            .map_err(|_| OpenError::Authentication)
        }
    }
}

/// Wraps (encrypts) a child key under a parent key, bound to `aad` (the child's owner).
pub fn wrap(cipher: Cipher, parent: &Key, aad: &[u8], child: &Key) -> Result<Vec<u8>, RandomError> {
    seal(cipher, parent, aad, child.as_bytes())
}

/// Unwraps a key wrapped by [`wrap`].
pub fn unwrap_key(parent: &Key, aad: &[u8], wrapped: &[u8]) -> Result<Key, OpenError> {
    // The clear key bytes are wiped as soon as they are copied into the key.
    let bytes = Zeroizing::new(open(parent, aad, wrapped)?);
    Key::from_slice(&bytes).ok_or(OpenError::Format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_with_both_ciphers() {
        for cipher in [Cipher::Aes256Gcm, Cipher::Sm4Gcm] {
            let key = Key::generate().unwrap();
            let blob = seal(
                cipher,
                &key,
                b"ten_a/sub_b/payment/card_number",
                b"4111111111111111",
            )
            .unwrap();
            assert_eq!(cipher_of(&blob), Some(cipher));
            assert_eq!(
                open(&key, b"ten_a/sub_b/payment/card_number", &blob).unwrap(),
                b"4111111111111111"
            );
            assert!(
                !blob.windows(16).any(|w| w == b"4111111111111111"),
                "no plaintext in the blob"
            );
        }
    }

    #[test]
    fn moved_ciphertext_fails_to_open() {
        let key = Key::generate().unwrap();
        let blob = seal(Cipher::Aes256Gcm, &key, b"sub_a/email", b"a@example.cn").unwrap();
        assert_eq!(
            open(&key, b"sub_b/email", &blob),
            Err(OpenError::Authentication)
        );
        assert_eq!(
            open(&key, b"sub_a/phone", &blob),
            Err(OpenError::Authentication)
        );
        assert_eq!(
            open(&Key::generate().unwrap(), b"sub_a/email", &blob),
            Err(OpenError::Authentication)
        );
    }

    #[test]
    fn tampering_and_truncation_are_detected() {
        let key = Key::generate().unwrap();
        for cipher in [Cipher::Aes256Gcm, Cipher::Sm4Gcm] {
            let blob = seal(cipher, &key, b"x", b"hello").unwrap();
            for i in 0..blob.len() {
                let mut bad = blob.clone();
                bad[i] ^= 0x01;
                assert!(open(&key, b"x", &bad).is_err(), "{cipher:?} byte {i}");
            }
            assert_eq!(open(&key, b"x", &blob[..10]), Err(OpenError::Format));
        }
    }

    #[test]
    fn nonces_do_not_repeat() {
        let key = Key::generate().unwrap();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..5000 {
            let blob = seal(Cipher::Aes256Gcm, &key, b"", b"").unwrap();
            assert!(seen.insert(blob[2..14].to_vec()));
        }
    }

    #[test]
    fn wrapped_keys_unwrap_only_in_their_context() {
        let master = Key::generate().unwrap();
        let tenant = Key::generate().unwrap();
        let w = wrap(Cipher::Aes256Gcm, &master, b"tenant:ten_a", &tenant).unwrap();
        assert_eq!(unwrap_key(&master, b"tenant:ten_a", &w).unwrap(), tenant);
        assert!(unwrap_key(&master, b"tenant:ten_b", &w).is_err());
    }

    #[test]
    fn keys_come_only_from_32_byte_slices() {
        assert_eq!(Key::from_slice(&[7; 32]), Some(Key::from_bytes([7; 32])));
        assert!(Key::from_slice(&[7; 31]).is_none());
        assert!(Key::from_slice(&[7; 33]).is_none());
    }

    #[test]
    fn unwrapping_rejects_a_wrapped_value_of_the_wrong_length() {
        let parent = Key::generate().unwrap();
        let not_a_key = seal(Cipher::Aes256Gcm, &parent, b"k", &[1; 16]).unwrap();
        assert_eq!(
            unwrap_key(&parent, b"k", &not_a_key),
            Err(OpenError::Format)
        );
    }

    #[test]
    fn keys_never_print() {
        assert_eq!(format!("{:?}", Key::from_bytes([9; 32])), "Key(redacted)");
    }

    proptest! {
        #[test]
        fn open_never_panics_on_garbage(blob in proptest::collection::vec(any::<u8>(), 0..100)) {
            let key = Key::from_bytes([1; 32]);
            let _ = open(&key, b"aad", &blob);
        }

        #[test]
        fn any_plaintext_round_trips(data in proptest::collection::vec(any::<u8>(), 0..300), sm4 in any::<bool>()) {
            let key = Key::from_bytes([3; 32]);
            let c = if sm4 { Cipher::Sm4Gcm } else { Cipher::Aes256Gcm };
            let blob = seal(c, &key, b"ctx", &data).unwrap();
            prop_assert_eq!(open(&key, b"ctx", &blob).unwrap(), data);
        }
    }
}
