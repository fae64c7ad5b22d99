//! Signed tree heads: the log's commitment to its size and root at a moment, signed with
//! Ed25519 over a fixed byte encoding anyone can rebuild.

use crate::{Hash, HashAlg};
use ring::signature::{Ed25519KeyPair, KeyPair as _, UnparsedPublicKey, ED25519};

/// Domain separation for head signatures.
pub const HEAD_DOMAIN: &[u8] = b"tutela-tree-head-v1\n";

/// A tree head before signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    pub alg: HashAlg,
    pub size: u64,
    pub root: Hash,
    /// When it was signed, Unix microseconds.
    pub signed_at_micros: i64,
}

impl TreeHead {
    /// `HEAD_DOMAIN || alg || 0x0a || size (u64 BE) || root (32) || signed_at (i64 BE)`.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD_DOMAIN.len() + 8 + 8 + 32 + 8);
        out.extend_from_slice(HEAD_DOMAIN);
        out.extend_from_slice(self.alg.as_str().as_bytes());
        out.push(b'\n');
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.root);
        out.extend_from_slice(&self.signed_at_micros.to_be_bytes());
        out
    }
}

/// A tree head with its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTreeHead {
    pub head: TreeHead,
    pub signature: Vec<u8>,
}

impl SignedTreeHead {
    /// Checks the signature against a raw 32-byte Ed25519 public key.
    pub fn verify(&self, public_key: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(&self.head.canonical_bytes(), &self.signature)
            .is_ok()
    }
}

/// Why a signing key could not be loaded or made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid or unusable Ed25519 signing key")]
pub struct KeyError;

/// Signs tree heads.
pub struct HeadSigner {
    key: Ed25519KeyPair,
}

impl std::fmt::Debug for HeadSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeadSigner(public {})", hex::encode(self.public_key()))
    }
}

impl HeadSigner {
    /// Generates a new key, returning the signer and its PKCS#8 document to store.
    pub fn generate() -> Result<(Self, Vec<u8>), KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError)?;
        let signer = Self::from_pkcs8(doc.as_ref())?;
        Ok((signer, doc.as_ref().to_vec()))
    }

    pub fn from_pkcs8(doc: &[u8]) -> Result<Self, KeyError> {
        Ok(Self {
            key: Ed25519KeyPair::from_pkcs8(doc).map_err(|_| KeyError)?,
        })
    }

    pub fn public_key(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    pub fn sign(&self, head: TreeHead) -> SignedTreeHead {
        SignedTreeHead {
            signature: self.key.sign(&head.canonical_bytes()).as_ref().to_vec(),
            head,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_heads_verify_and_any_change_breaks_them() {
        let (signer, pkcs8) = HeadSigner::generate().unwrap();
        let head = TreeHead {
            alg: HashAlg::Sha256,
            size: 10,
            root: [7; 32],
            signed_at_micros: 1_700_000_000_000_000,
        };
        let sth = signer.sign(head);
        assert!(sth.verify(signer.public_key()));
        let reloaded = HeadSigner::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(reloaded.public_key(), signer.public_key());
        for tampered in [
            TreeHead { size: 11, ..head },
            TreeHead {
                root: [8; 32],
                ..head
            },
            TreeHead {
                signed_at_micros: 1,
                ..head
            },
            TreeHead {
                alg: HashAlg::Sm3,
                ..head
            },
        ] {
            assert!(!SignedTreeHead {
                head: tampered,
                signature: sth.signature.clone()
            }
            .verify(signer.public_key()));
        }
        let (other, _) = HeadSigner::generate().unwrap();
        assert!(!sth.verify(other.public_key()));
    }
}
