//! The Merkle tree with stored subtree hashes, and the RFC 9162 proof algorithms.

use crate::{Hash, HashAlg};

/// Why a proof could not be produced or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {requested} is larger than the log ({size})")]
    SizeOutOfRange { requested: u64, size: u64 },
    #[error("the proof does not match the root hash")]
    Mismatch,
    #[error("the proof has the wrong length")]
    Malformed,
}

/// Largest power of two strictly below `n` (n >= 2).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// An append-only Merkle tree that keeps the hash of every complete (power-of-two,
/// aligned) subtree: `levels[i][j]` covers leaves `j*2^i .. (j+1)*2^i`.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    alg: HashAlg,
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    pub fn new(alg: HashAlg) -> Self {
        Self {
            alg,
            levels: vec![Vec::new()],
        }
    }

    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends an entry (hashing it as a leaf); returns its index.
    pub fn append(&mut self, entry: &[u8]) -> u64 {
        let leaf = self.alg.leaf(entry);
        self.append_leaf_hash(leaf)
    }

    /// Appends an already computed leaf hash; returns its index.
    pub fn append_leaf_hash(&mut self, leaf: Hash) -> u64 {
        let index = self.size();
        let mut level = 0usize;
        let mut hash = leaf;
        let mut pos = index;
        loop {
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            let Some(row) = self.levels.get_mut(level) else {
                break;
            };
            row.push(hash);
            // A right child completes its parent.
            if pos & 1 == 0 {
                break;
            }
            let (Some(left), Some(right)) = (row.get(row.len().wrapping_sub(2)), row.last()) else {
                break;
            };
            hash = self.alg.node(left, right);
            pos >>= 1;
            level += 1;
        }
        index
    }

    /// The hash of leaves `a..b` as RFC 9162 defines MTH over that slice.
    fn subtree(&self, a: u64, b: u64) -> Option<Hash> {
        let n = b.checked_sub(a)?;
        if n == 0 || b > self.size() {
            return None;
        }
        if n.is_power_of_two() && a.is_multiple_of(n) {
            let level = n.trailing_zeros() as usize;
            return self
                .levels
                .get(level)?
                .get(usize::try_from(a >> level).ok()?)
                .copied();
        }
        let k = split_point(n);
        Some(
            self.alg
                .node(&self.subtree(a, a + k)?, &self.subtree(a + k, b)?),
        )
    }

    /// The leaf hash at `index`.
    pub fn leaf_hash(&self, index: u64) -> Option<Hash> {
        self.levels
            .first()?
            .get(usize::try_from(index).ok()?)
            .copied()
    }

    /// The root of the first `size` leaves (any size up to the current one).
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        if size > self.size() {
            return Err(ProofError::SizeOutOfRange {
                requested: size,
                size: self.size(),
            });
        }
        if size == 0 {
            return Ok(self.alg.empty());
        }
        self.subtree(0, size).ok_or(ProofError::Malformed)
    }

    /// The current root.
    pub fn root(&self) -> Hash {
        self.root_at(self.size())
            .unwrap_or_else(|_| self.alg.empty())
    }

    /// The audit path of leaf `index` in the tree of the first `size` leaves (RFC 9162 2.1.3.1).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        if size > self.size() {
            return Err(ProofError::SizeOutOfRange {
                requested: size,
                size: self.size(),
            });
        }
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        let mut path = Vec::new();
        let (mut a, mut b) = (0u64, size);
        // Walk down from the root, collecting siblings, then reverse (leaf first).
        while b - a > 1 {
            let k = split_point(b - a);
            if index < a + k {
                path.push(self.subtree(a + k, b).ok_or(ProofError::Malformed)?);
                b = a + k;
            } else {
                path.push(self.subtree(a, a + k).ok_or(ProofError::Malformed)?);
                a += k;
            }
        }
        path.reverse();
        Ok(path)
    }

    /// The consistency proof between the trees of `first` and `second` leaves (RFC 9162 2.1.4.1).
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, ProofError> {
        if second > self.size() {
            return Err(ProofError::SizeOutOfRange {
                requested: second,
                size: self.size(),
            });
        }
        if first > second {
            return Err(ProofError::SizeOutOfRange {
                requested: first,
                size: second,
            });
        }
        if first == 0 || first == second {
            return Ok(Vec::new());
        }
        let mut path = Vec::new();
        let (mut m, mut a, mut b, mut whole) = (first, 0u64, second, true);
        loop {
            let n = b - a;
            if m == n {
                if !whole {
                    path.push(self.subtree(a, b).ok_or(ProofError::Malformed)?);
                }
                break;
            }
            let k = split_point(n);
            if m <= k {
                path.push(self.subtree(a + k, b).ok_or(ProofError::Malformed)?);
                b = a + k;
            } else {
                path.push(self.subtree(a, a + k).ok_or(ProofError::Malformed)?);
                m -= k;
                a += k;
                whole = false;
            }
        }
        path.reverse();
        Ok(path)
    }
}

/// Verifies an inclusion proof (RFC 9162 2.1.3.2).
pub fn verify_inclusion(
    alg: HashAlg,
    index: u64,
    size: u64,
    leaf: &Hash,
    path: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if snode == 0 {
            return Err(ProofError::Malformed);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = alg.node(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = alg.node(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode == 0 && r == *root {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

/// Verifies a consistency proof between two tree heads (RFC 9162 2.1.4.2).
pub fn verify_consistency(
    alg: HashAlg,
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    path: &[Hash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::Malformed);
    }
    if first == second {
        return if path.is_empty() && first_root == second_root {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    if first == 0 {
        return if path.is_empty() {
            Ok(())
        } else {
            Err(ProofError::Malformed)
        };
    }
    if path.is_empty() {
        return Err(ProofError::Malformed);
    }
    let mut nodes: Vec<Hash> = Vec::with_capacity(path.len() + 1);
    if first.is_power_of_two() {
        nodes.push(*first_root);
    }
    nodes.extend_from_slice(path);
    let (mut fnode, mut snode) = (first - 1, second - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let mut iter = nodes.iter();
    let Some(start) = iter.next() else {
        return Err(ProofError::Malformed);
    };
    let (mut fr, mut sr) = (*start, *start);
    for c in iter {
        if snode == 0 {
            return Err(ProofError::Malformed);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = alg.node(c, &fr);
            sr = alg.node(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = alg.node(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if fr == *first_root && sr == *second_root && snode == 0 {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The RFC's recursive definition, straight from the text: the reference model.
    fn naive_mth(alg: HashAlg, leaves: &[Vec<u8>]) -> Hash {
        match leaves.len() {
            0 => alg.empty(),
            1 => alg.leaf(&leaves[0]),
            n => {
                let k = split_point(n as u64) as usize;
                alg.node(&naive_mth(alg, &leaves[..k]), &naive_mth(alg, &leaves[k..]))
            }
        }
    }

    fn entries(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("entry-{i}").into_bytes()).collect()
    }

    fn tree(alg: HashAlg, leaves: &[Vec<u8>]) -> MerkleTree {
        let mut t = MerkleTree::new(alg);
        for (i, e) in leaves.iter().enumerate() {
            assert_eq!(t.append(e), i as u64);
        }
        t
    }

    #[test]
    fn empty_tree_root_is_hash_of_nothing() {
        let t = MerkleTree::new(HashAlg::Sha256);
        assert_eq!(
            hex::encode(t.root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn roots_match_the_rfc_definition_for_every_size_and_prefix() {
        for alg in [HashAlg::Sha256, HashAlg::Sm3] {
            let all = entries(70);
            let t = tree(alg, &all);
            for n in 0..=70 {
                assert_eq!(
                    t.root_at(n as u64).unwrap(),
                    naive_mth(alg, &all[..n]),
                    "{alg:?} size {n}"
                );
            }
        }
    }

    #[test]
    fn every_inclusion_proof_verifies_and_a_wrong_one_does_not() {
        let all = entries(37);
        let t = tree(HashAlg::Sha256, &all);
        for size in 1..=37u64 {
            let root = t.root_at(size).unwrap();
            for i in 0..size {
                let path = t.inclusion_proof(i, size).unwrap();
                let leaf = t.leaf_hash(i).unwrap();
                verify_inclusion(HashAlg::Sha256, i, size, &leaf, &path, &root).unwrap();
                let other = HashAlg::Sha256.leaf(b"forged");
                assert!(verify_inclusion(HashAlg::Sha256, i, size, &other, &path, &root).is_err());
                if size > 1 {
                    assert!(
                        verify_inclusion(
                            HashAlg::Sha256,
                            (i + 1) % size,
                            size,
                            &leaf,
                            &path,
                            &root
                        )
                        .is_err()
                            || all[i as usize] == all[((i + 1) % size) as usize]
                    );
                }
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_a_rewritten_history_does_not() {
        let all = entries(33);
        let t = tree(HashAlg::Sha256, &all);
        let mut altered = all.clone();
        altered[3] = b"rewritten".to_vec();
        let t2 = tree(HashAlg::Sha256, &altered);
        for second in 1..=33u64 {
            for first in 0..=second {
                let proof = t.consistency_proof(first, second).unwrap();
                let (r1, r2) = (t.root_at(first).unwrap(), t.root_at(second).unwrap());
                verify_consistency(HashAlg::Sha256, first, second, &r1, &r2, &proof).unwrap();
                if first > 3 && first < second {
                    // The old head came from an honest log; the new one rewrote entry 3.
                    let forged = t2.consistency_proof(first, second).unwrap();
                    let fr2 = t2.root_at(second).unwrap();
                    assert!(
                        verify_consistency(HashAlg::Sha256, first, second, &r1, &fr2, &forged)
                            .is_err()
                    );
                }
            }
        }
    }

    #[test]
    fn out_of_range_requests_are_errors() {
        let t = tree(HashAlg::Sha256, &entries(4));
        assert!(matches!(
            t.inclusion_proof(4, 4),
            Err(ProofError::IndexOutOfRange { .. })
        ));
        assert!(matches!(
            t.inclusion_proof(0, 5),
            Err(ProofError::SizeOutOfRange { .. })
        ));
        assert!(t.consistency_proof(3, 2).is_err());
        assert!(t.root_at(5).is_err());
    }

    proptest! {
        #[test]
        fn proofs_verify_for_random_trees(n in 1usize..300, seed in any::<u64>()) {
            let all = entries(n);
            let t = tree(HashAlg::Sha256, &all);
            let size = 1 + seed % n as u64;
            let i = seed.rotate_left(17) % size;
            let path = t.inclusion_proof(i, size).unwrap();
            prop_assert!(verify_inclusion(HashAlg::Sha256, i, size, &t.leaf_hash(i).unwrap(), &path, &t.root_at(size).unwrap()).is_ok());
            let first = seed.rotate_left(31) % (size + 1);
            let proof = t.consistency_proof(first, size).unwrap();
            prop_assert!(verify_consistency(HashAlg::Sha256, first, size, &t.root_at(first).unwrap(), &t.root_at(size).unwrap(), &proof).is_ok());
        }
    }
}
