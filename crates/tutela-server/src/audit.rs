//! The audit log: entries are inserted with their action (see `api/records.rs`); the
//! sealer assigns tree indexes in (at, id) order, extends the Merkle tree, stores each
//! leaf hash and signs a tree head. Verification recomputes everything from the stored
//! rows and names the first bad index.
//!
//! Entries never hold personal data values: ids, vocabulary, decisions and clauses.

use anyhow::Context as _;
use std::path::Path;
use tokio::sync::Mutex;
use tutela_audit::{HashAlg, HeadSigner, MerkleTree, SignedTreeHead, TreeHead};
use tutela_store::vault::{AuditEntry, HeadRow};
use tutela_store::Store;

/// Most entries sealed in one transaction.
const SEAL_BATCH: i64 = 2_000;

/// The canonical bytes of an entry, the input of its leaf hash. Fields are ids and
/// vocabulary (never containing a newline), one per line after a version tag.
pub fn entry_bytes(e: &AuditEntry, index: u64) -> Vec<u8> {
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    let micros = e.at.unix_timestamp_nanos() / 1_000;
    [
        // v2 binds the tree index into the leaf: an entry moved to another index (two
        // rows' indexes swapped in the database) no longer matches its leaf hash.
        "tutela-audit-entry-v2".to_owned(),
        index.to_string(),
        e.id.clone(),
        micros.to_string(),
        e.token_id.clone(),
        e.role.clone(),
        opt(&e.tenant),
        opt(&e.subject),
        opt(&e.category),
        opt(&e.purpose),
        e.action.clone(),
        e.decision.clone(),
        e.reason.clone(),
        opt(&e.clause),
    ]
    .join("\n")
    .into_bytes()
}

/// The sealer's state: the tree so far and the signing key.
pub struct AuditLog {
    alg: HashAlg,
    signer: HeadSigner,
    tree: Mutex<MerkleTree>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditLog({:?})", self.alg)
    }
}

/// Loads the head-signing key, creating it (PKCS#8, mode 0600) on first run.
pub fn load_signer(path: &Path) -> anyhow::Result<HeadSigner> {
    if path.exists() {
        let doc = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        return HeadSigner::from_pkcs8(&doc)
            .with_context(|| format!("{} is not an Ed25519 PKCS#8 key", path.display()));
    }
    let (signer, doc) = HeadSigner::generate()?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    use std::io::Write as _;
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(&doc)?;
    f.sync_all()?;
    tracing::warn!(path = %path.display(), "created a new audit head signing key");
    Ok(signer)
}

/// Extends `tree` with the leaves sealed in the database beyond its size.
async fn catch_up(store: &Store, tree: &mut MerkleTree) -> anyhow::Result<()> {
    loop {
        let batch = store
            .sealed_audit(i64::try_from(tree.size())?, 50_000)
            .await?;
        if batch.is_empty() {
            return Ok(());
        }
        for (e, leaf) in batch {
            let leaf: [u8; 32] = leaf
                .as_slice()
                .try_into()
                .context("stored leaf hash has the wrong length")?;
            anyhow::ensure!(
                e.seq == Some(i64::try_from(tree.size())?),
                "audit entries are not contiguous at index {}",
                tree.size()
            );
            tree.append_leaf_hash(leaf);
        }
    }
}

impl AuditLog {
    /// Opens the log: loads the signing key and rebuilds the tree from the stored leaf
    /// hashes (interior nodes are recomputed in memory; O(n) at start).
    pub async fn open(store: &Store, key_path: &Path, alg: HashAlg) -> anyhow::Result<Self> {
        let signer = load_signer(key_path)?;
        let mut tree = MerkleTree::new(alg);
        catch_up(store, &mut tree).await?;
        // A log keeps the hash it was started with: continuing a SHA-256 log with SM3 (or
        // the reverse) would leave heads no verifier could check.
        if let Some(head) = store.latest_audit_head().await? {
            let root = tree
                .root_at(u64::try_from(head.size)?)
                .map_err(|e| anyhow::anyhow!("{e:?}"))
                .context("the latest signed head is larger than the stored tree")?;
            anyhow::ensure!(
                root.as_slice() == head.root.as_slice(),
                "the stored audit tree does not match its latest signed head under audit.hash = `{}`: \
                 the log was started with the other hash, or it was altered (run `tutela audit verify`)",
                alg.as_str()
            );
        }
        Ok(Self {
            alg,
            signer,
            tree: Mutex::new(tree),
        })
    }

    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    pub fn public_key(&self) -> &[u8] {
        self.signer.public_key()
    }

    /// Seals everything waiting; returns how many entries were sealed. One sealer runs
    /// per process (the mutex); the tree only advances after the batch committed.
    pub async fn seal_once(
        &self,
        store: &Store,
        now: time::OffsetDateTime,
    ) -> anyhow::Result<usize> {
        let mut tree = self.tree.lock().await;
        // Another replica may have sealed while this one did not hold the lease.
        catch_up(store, &mut tree).await?;
        let mut sealed = 0;
        loop {
            let pending = store.unsealed_audit(SEAL_BATCH).await?;
            if pending.is_empty() {
                return Ok(sealed);
            }
            let mut next = tree.clone();
            let mut batch = Vec::with_capacity(pending.len());
            for e in &pending {
                let leaf = self.alg.leaf(&entry_bytes(e, next.size()));
                let seq = next.append_leaf_hash(leaf);
                batch.push((e.id.clone(), i64::try_from(seq)?, leaf.to_vec()));
            }
            let head = TreeHead {
                alg: self.alg,
                size: next.size(),
                root: next.root(),
                signed_at_micros: i64::try_from(now.unix_timestamp_nanos() / 1_000)?,
            };
            let sth = self.signer.sign(head);
            let row = HeadRow {
                size: i64::try_from(head.size)?,
                root: head.root.to_vec(),
                signature: sth.signature,
                signed_at: now,
            };
            store.seal_audit_batch(&batch, &row).await?;
            *tree = next;
            sealed += pending.len();
        }
    }

    /// An inclusion proof for `index` against the tree of `size` entries.
    pub async fn inclusion(
        &self,
        index: u64,
        size: u64,
    ) -> Result<
        (
            tutela_audit::Hash,
            Vec<tutela_audit::Hash>,
            tutela_audit::Hash,
        ),
        tutela_audit::ProofError,
    > {
        let tree = self.tree.lock().await;
        let path = tree.inclusion_proof(index, size)?;
        let leaf = tree
            .leaf_hash(index)
            .ok_or(tutela_audit::ProofError::IndexOutOfRange { index, size })?;
        Ok((leaf, path, tree.root_at(size)?))
    }

    /// A consistency proof between two sizes.
    pub async fn consistency(
        &self,
        first: u64,
        second: u64,
    ) -> Result<Vec<tutela_audit::Hash>, tutela_audit::ProofError> {
        self.tree.lock().await.consistency_proof(first, second)
    }
}

/// What `tutela audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub entries: u64,
    pub heads: usize,
    pub unsealed: usize,
    /// The first bad index and what is wrong there.
    pub problem: Option<(u64, String)>,
}

/// Recomputes the whole log from the database and checks every signed head.
pub async fn verify(
    store: &Store,
    alg: HashAlg,
    public_key: &[u8],
) -> anyhow::Result<VerifyReport> {
    let mut tree = MerkleTree::new(alg);
    let mut problem: Option<(u64, String)> = None;
    'pages: loop {
        let batch = store
            .sealed_audit(i64::try_from(tree.size())?, 50_000)
            .await?;
        if batch.is_empty() {
            break;
        }
        for (e, stored_leaf) in batch {
            let index = tree.size();
            if e.seq != Some(i64::try_from(index)?) {
                problem = Some((index, "entry missing (the sequence has a gap)".to_owned()));
                break 'pages;
            }
            let leaf = alg.leaf(&entry_bytes(&e, index));
            if leaf.as_slice() != stored_leaf.as_slice() {
                problem = Some((
                    index,
                    "entry changed, moved or reordered after sealing (leaf hash mismatch)"
                        .to_owned(),
                ));
                break 'pages;
            }
            tree.append_leaf_hash(leaf);
        }
    }
    let heads = store.audit_heads().await?;
    let mut covered = 0u64;
    for h in &heads {
        let size = u64::try_from(h.size)?;
        let root: [u8; 32] = h
            .root
            .as_slice()
            .try_into()
            .context("stored head root has the wrong length")?;
        let sth = SignedTreeHead {
            head: TreeHead {
                alg,
                size,
                root,
                signed_at_micros: i64::try_from(h.signed_at.unix_timestamp_nanos() / 1_000)?,
            },
            signature: h.signature.clone(),
        };
        if !sth.verify(public_key) {
            problem.get_or_insert((
                covered,
                format!("signed head of size {size} has an invalid signature"),
            ));
            break;
        }
        match tree.root_at(size) {
            Ok(r) if r == root => covered = size,
            Ok(_) => {
                problem.get_or_insert((
                    covered,
                    format!(
                        "entries {covered}..{size} do not match the signed head of size {size}"
                    ),
                ));
                break;
            }
            Err(_) => {
                problem.get_or_insert((
                    tree.size(),
                    format!("the signed head of size {size} covers entries that are missing"),
                ));
                break;
            }
        }
    }
    let unsealed = store.unsealed_audit(i64::MAX).await?.len();
    Ok(VerifyReport {
        entries: tree.size(),
        heads: heads.len(),
        unsealed,
        problem,
    })
}
