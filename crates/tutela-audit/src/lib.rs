//! tutela-audit: a tamper-evident log in the shape of RFC 9162 (Certificate
//! Transparency v2) section 2.1.
//!
//! Leaves hash as `H(0x00 || entry)`, interior nodes as `H(0x01 || left || right)`, over
//! a left-balanced tree. [`MerkleTree`] keeps every complete subtree's hash, so appends are
//! amortised O(1) and proofs O(log n) without touching leaves; [`verify_inclusion`] and
//! [`verify_consistency`] are the RFC's algorithms, short enough that anyone can
//! re-implement them to check tutela's answers. Tree heads are signed with Ed25519 over a
//! fixed canonical encoding ([`TreeHead::canonical_bytes`]).
//!
//! The hash is SHA-256 by default; SM3 (GB/T 32905) is the Chinese commercial
//! cryptography option.

mod head;
mod tree;

pub use head::{HeadSigner, SignedTreeHead, TreeHead, HEAD_DOMAIN};
pub use tree::{verify_consistency, verify_inclusion, MerkleTree, ProofError};

/// A 32-byte hash value.
pub type Hash = [u8; 32];

/// The hash function of a log. Fixed for the lifetime of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashAlg {
    #[default]
    Sha256,
    Sm3,
}

impl HashAlg {
    /// `sha256` or `sm3`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(HashAlg::Sha256),
            "sm3" => Some(HashAlg::Sm3),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Sm3 => "sm3",
        }
    }

    /// Hashes the concatenation of `parts`.
    pub fn digest(self, parts: &[&[u8]]) -> Hash {
        match self {
            HashAlg::Sha256 => {
                let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
                for p in parts {
                    ctx.update(p);
                }
                let mut out = [0u8; 32];
                out.copy_from_slice(ctx.finish().as_ref());
                out
            }
            HashAlg::Sm3 => {
                use sm3::Digest as _;
                let mut h = sm3::Sm3::new();
                for p in parts {
                    h.update(p);
                }
                h.finalize().into()
            }
        }
    }

    /// `H(0x00 || entry)`.
    pub fn leaf(self, entry: &[u8]) -> Hash {
        self.digest(&[&[0x00], entry])
    }

    /// `H(0x01 || left || right)`.
    pub fn node(self, left: &Hash, right: &Hash) -> Hash {
        self.digest(&[&[0x01], left, right])
    }

    /// The root of the empty tree: `H()`.
    pub fn empty(self) -> Hash {
        self.digest(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // GB/T 32905-2016 appendix A example 1, and FIPS 180-2 for SHA-256.
        assert_eq!(
            hex::encode(HashAlg::Sm3.digest(&[b"abc"])),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert_eq!(
            hex::encode(HashAlg::Sha256.digest(&[b"a", b"bc"])),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn leaf_and_node_hashes_are_domain_separated() {
        let alg = HashAlg::Sha256;
        let (l, r) = (alg.leaf(b"x"), alg.leaf(b"y"));
        let mut concat = l.to_vec();
        concat.extend_from_slice(&r);
        assert_ne!(
            alg.node(&l, &r),
            alg.leaf(&concat),
            "a node can never pass for a leaf"
        );
    }
}
