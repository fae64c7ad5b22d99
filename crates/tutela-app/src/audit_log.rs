//! The audit log: entries are inserted with their action (see `api/records.rs`); the
//! sealer assigns tree indexes in (at, id) order, extends the Merkle tree, stores each
//! leaf hash, signs a tree head and hands it to the witness outside the database
//! (`witness.rs`). Verification recomputes everything from the stored rows, checks the
//! log against the witness (truncation, missing heads) and names the first bad index.
//!
//! Entries never hold personal data values: ids, vocabulary, decisions and clauses.

use crate::witness::{Witness, WitnessHead};
use anyhow::Context as _;
use std::path::Path;
use tokio::sync::Mutex;
use tutela_audit::{HashAlg, HeadSigner, MerkleTree, SignedTreeHead, TreeHead};
use tutela_store::Store;
use tutela_store::{AuditEntry, HeadRow};

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

/// The sealer's state: the tree so far, the signing key and the witness.
pub struct AuditLog {
    alg: HashAlg,
    signer: HeadSigner,
    tree: Mutex<MerkleTree>,
    witness: Witness,
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
    /// Opens the log: loads the signing key, rebuilds the tree from the stored leaf
    /// hashes (interior nodes are recomputed in memory; O(n) at start) and checks it
    /// against the witness's latest head. A log shorter than its witness, or different
    /// from it, is refused (it was truncated, rewritten, or restored from a backup:
    /// `tutela audit verify` says which). An empty witness starts at the latest head.
    pub async fn open(
        store: &Store,
        key_path: &Path,
        alg: HashAlg,
        witness: Witness,
    ) -> anyhow::Result<Self> {
        let signer = load_signer(key_path)?;
        let mut tree = MerkleTree::new(alg);
        catch_up(store, &mut tree).await?;
        let latest = store.latest_audit_head().await?;
        // A log keeps the hash it was started with: continuing a SHA-256 log with SM3 (or
        // the reverse) would leave heads no verifier could check.
        if let Some(head) = &latest {
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
        let witnessed = witness
            .latest()
            .with_context(|| format!("reading the audit witness {}", witness.path().display()))?;
        match (witnessed, latest) {
            (Some(w), _) => {
                check_against_witness(&tree, &w, signer.public_key()).with_context(|| {
                    format!(
                        "the audit log does not extend the head its witness {} holds; \
                         run `tutela audit verify` (after restoring a database backup, move \
                         the witness aside, keeping it as evidence of what was lost)",
                        witness.path().display()
                    )
                })?;
                tracing::debug!(
                    witnessed = w.size,
                    "the audit log extends its witnessed head"
                );
            }
            (None, Some(head)) => {
                let sth = SignedTreeHead {
                    head: TreeHead {
                        alg,
                        size: u64::try_from(head.size)?,
                        root: head
                            .root
                            .as_slice()
                            .try_into()
                            .context("stored head root has the wrong length")?,
                        signed_at_micros: micros(head.signed_at)?,
                    },
                    signature: head.signature.clone(),
                };
                tracing::warn!(
                    path = %witness.path().display(),
                    size = head.size,
                    "the audit witness holds no head yet; starting it at the latest signed head"
                );
                witness
                    .record(&[WitnessHead::new(&sth, signer.public_key())])
                    .await;
            }
            (None, None) => {}
        }
        Ok(Self {
            alg,
            signer,
            tree: Mutex::new(tree),
            witness,
        })
    }

    /// The witness signed heads go to.
    pub fn witness(&self) -> &Witness {
        &self.witness
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
        let mut heads = Vec::new();
        let sealed = self.seal_batches(store, now, &mut tree, &mut heads).await;
        // Only committed heads are witnessed (the witness never runs ahead of the log),
        // with any a failed write left before them: one append and one sync per pass,
        // still under the tree lock so the witness keeps the log's order.
        self.witness.record(&heads).await;
        sealed
    }

    /// The batches of one sealing pass; `heads` receives each committed head, also when
    /// a later batch fails.
    async fn seal_batches(
        &self,
        store: &Store,
        now: time::OffsetDateTime,
        tree: &mut MerkleTree,
        heads: &mut Vec<WitnessHead>,
    ) -> anyhow::Result<usize> {
        // Another replica may have sealed while this one did not hold the lease.
        catch_up(store, tree).await?;
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
                signed_at_micros: micros(now)?,
            };
            let sth = self.signer.sign(head);
            let row = HeadRow {
                size: i64::try_from(head.size)?,
                root: head.root.to_vec(),
                signature: sth.signature.clone(),
                signed_at: now,
            };
            store.seal_audit_batch(&batch, &row).await?;
            *tree = next;
            sealed += pending.len();
            heads.push(WitnessHead::new(&sth, self.signer.public_key()));
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

/// Unix microseconds, as heads sign them.
fn micros(t: time::OffsetDateTime) -> anyhow::Result<i64> {
    Ok(i64::try_from(t.unix_timestamp_nanos() / 1_000)?)
}

/// What is wrong between the log and one witnessed head.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessProblem {
    #[error("{0}")]
    Unreadable(#[from] crate::witness::WitnessError),
    #[error("the witnessed head of size {size} was signed by another key ({key}): this is not the log's witness, or its signing key was replaced")]
    OtherKey { size: u64, key: String },
    #[error("the witnessed head of size {size} uses hash `{hash}`, the log `{log}`")]
    OtherHash {
        size: u64,
        hash: String,
        log: &'static str,
    },
    #[error("the witnessed head of size {size} signed at {at} has an invalid signature")]
    BadSignature { size: u64, at: String },
    #[error("log truncated: the witness has {witnessed} entries signed at {at}, the database has {have}")]
    Truncated {
        witnessed: u64,
        at: String,
        have: u64,
    },
    #[error("entries 0..{size} do not match the witnessed head of size {size} signed at {at}: the log was rewritten")]
    Rewritten { size: u64, at: String },
}

impl WitnessProblem {
    /// The first index the problem concerns.
    fn index(&self) -> u64 {
        match self {
            WitnessProblem::Truncated { have, .. } => *have,
            _ => 0,
        }
    }
}

/// Whether `w` is a head of this log (its key, its hash, a valid signature) over entries
/// the tree holds with the same root.
pub fn check_against_witness(
    tree: &MerkleTree,
    w: &WitnessHead,
    public_key: &[u8],
) -> Result<(), WitnessProblem> {
    let (sth, key) = w.decode()?;
    if key != public_key {
        return Err(WitnessProblem::OtherKey {
            size: w.size,
            key: w.public_key.clone(),
        });
    }
    if sth.head.alg != tree.alg() {
        return Err(WitnessProblem::OtherHash {
            size: w.size,
            hash: w.hash.clone(),
            log: tree.alg().as_str(),
        });
    }
    if !sth.verify(public_key) {
        return Err(WitnessProblem::BadSignature {
            size: w.size,
            at: w.signed_at.clone(),
        });
    }
    match tree.root_at(w.size) {
        Err(_) => Err(WitnessProblem::Truncated {
            witnessed: w.size,
            at: w.signed_at.clone(),
            have: tree.size(),
        }),
        Ok(root) if root != sth.head.root => Err(WitnessProblem::Rewritten {
            size: w.size,
            at: w.signed_at.clone(),
        }),
        Ok(_) => Ok(()),
    }
}

/// What `verify` checks the database against besides itself.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The witness file (`witness::witness_file`).
    pub witness_file: std::path::PathBuf,
    /// `audit.head_grace_s`: entries older than this must be covered by a signed head.
    pub head_grace: time::Duration,
    pub now: time::OffsetDateTime,
}

impl VerifyOptions {
    /// The checks `config` asks for, as of `now`.
    pub fn from_config(
        config: &crate::config::Config,
        now: time::OffsetDateTime,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            witness_file: crate::witness::witness_file(config)?,
            head_grace: time::Duration::seconds(
                i64::try_from(config.audit.head_grace_s).unwrap_or(i64::MAX / 1_000_000),
            ),
            now,
        })
    }
}

/// What `tutela audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub entries: u64,
    pub heads: usize,
    pub unsealed: usize,
    /// Heads read from the witness file, and lines in it that were not heads (skipped).
    pub witness_heads: usize,
    pub witness_skipped: usize,
    /// The latest witnessed head: its size and when it was signed.
    pub witnessed: Option<(u64, String)>,
    /// The first bad index and what is wrong there.
    pub problem: Option<(u64, String)>,
}

/// Recomputes the whole log from the database, checks every signed head, then checks
/// the log against its witness (issue 14, R29): every witnessed head verifies and matches
/// the recomputed tree (a log shorter than its latest witnessed head was truncated), the
/// database's latest head is at least the witness's latest (a consistency proof between
/// the two, RFC 9162 2.1.4, verified), and no entry older than the grace period is
/// outside every signed head.
pub async fn verify(
    store: &Store,
    alg: HashAlg,
    public_key: &[u8],
    options: &VerifyOptions,
) -> anyhow::Result<VerifyReport> {
    let heads = store.audit_heads().await?;
    let claimed = heads.last().map_or(Ok(0), |h| u64::try_from(h.size))?;
    let mut tree = MerkleTree::new(alg);
    let mut problem: Option<(u64, String)> = None;
    // The oldest sealed entry beyond the latest head.
    let mut oldest_unsigned: Option<time::OffsetDateTime> = None;
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
            if index >= claimed && oldest_unsigned.is_none_or(|t| e.at < t) {
                oldest_unsigned = Some(e.at);
            }
            tree.append_leaf_hash(leaf);
        }
    }
    let mut covered = 0u64;
    let mut latest_root: Option<[u8; 32]> = None;
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
                signed_at_micros: micros(h.signed_at)?,
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
            Ok(r) if r == root => {
                covered = size;
                latest_root = Some(root);
            }
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

    // The witness: every head in it.
    let path = options.witness_file.clone();
    let key = public_key.to_vec();
    // The tree moves into the blocking task and comes back with the scan.
    let (scan, found, tree) = tokio::task::spawn_blocking(move || {
        // The largest witnessed head: lines from replicas that lost the lease just after
        // sealing may arrive slightly out of order.
        let mut largest: Option<WitnessHead> = None;
        let (scan, bad) = crate::witness::scan(&path, |line, w| {
            match check_against_witness(&tree, &w, &key) {
                // Truncation is judged on the largest head (below).
                Ok(()) | Err(WitnessProblem::Truncated { .. }) => {}
                Err(p) => return Some((p.index(), format!("witness line {line}: {p}"))),
            }
            if largest.as_ref().is_none_or(|l| w.size > l.size) {
                largest = Some(w);
            }
            None
        })?;
        Ok::<_, std::io::Error>((scan, bad.map(Err).or(largest.map(Ok)), tree))
    })
    .await?
    .with_context(|| {
        format!(
            "reading the audit witness {}",
            options.witness_file.display()
        )
    })?;
    let mut witnessed = None;
    if problem.is_none() {
        match found {
            Some(Err(p)) => problem = Some(p),
            Some(Ok(w)) => {
                witnessed = Some((w.size, w.signed_at.clone()));
                if let Err(p) = check_against_witness(&tree, &w, public_key) {
                    problem = Some((p.index(), p.to_string()));
                } else if covered < w.size {
                    problem = Some((
                        covered,
                        if heads.is_empty() {
                            format!(
                                "signed heads missing: the witness has a head of size {} signed at {}, the database has no signed head",
                                w.size, w.signed_at
                            )
                        } else {
                            format!(
                                "signed heads missing: the witness has a head of size {} signed at {}, the database's latest head has size {covered}",
                                w.size, w.signed_at
                            )
                        },
                    ));
                } else if let Some(db_root) = latest_root {
                    // The database's latest head extends the witnessed one: check the
                    // consistency proof between them as any outside verifier would.
                    let proof = tree.consistency_proof(w.size, covered)?;
                    let witnessed_root = w.root()?;
                    if tutela_audit::verify_consistency(
                        alg,
                        w.size,
                        covered,
                        &witnessed_root,
                        &db_root,
                        &proof,
                    )
                    .is_err()
                    {
                        problem = Some((
                            0,
                            format!(
                                "the database's latest head (size {covered}) is not consistent with the witnessed head of size {} signed at {}",
                                w.size, w.signed_at
                            ),
                        ));
                    }
                }
            }
            None if !heads.is_empty() => {
                problem = Some((
                    0,
                    format!(
                        "the witness {} holds no signed head, but the database has {} (the latest of size {covered}): the witness was lost or is not this log's",
                        options.witness_file.display(),
                        heads.len()
                    ),
                ));
            }
            None => {}
        }
    }

    // Entries no head signed: sealed beyond the latest head, or not sealed at all.
    let unsealed = store.unsealed_audit(i64::MAX).await?;
    if problem.is_none() {
        let oldest = match (oldest_unsigned, unsealed.iter().map(|e| e.at).min()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(oldest) = oldest.filter(|t| options.now - *t > options.head_grace) {
            let unsigned = tree.size().saturating_sub(covered) + unsealed.len() as u64;
            problem = Some((
                covered,
                format!(
                    "{unsigned} entries are signed by no head, the oldest written at {}, more than audit.head_grace_s = {} s ago: the heads that signed them were deleted, or the sealer has not run",
                    crate::rfc3339(oldest),
                    options.head_grace.whole_seconds()
                ),
            ));
        }
    }
    Ok(VerifyReport {
        entries: tree.size(),
        heads: heads.len(),
        unsealed: unsealed.len(),
        witness_heads: scan.heads,
        witness_skipped: scan.skipped,
        witnessed,
        problem,
    })
}

/// The sealer loop: takes the lease when free, seals every second while holding it, and
/// on `stop` seals once more and returns.
pub async fn run_sealer(state: crate::AppState, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut lease: Option<tutela_store::SealerLease> = None;
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = &mut stop => true,
        };
        if let Some(held) = &mut lease {
            if !held.is_held().await {
                tracing::warn!("lost the audit sealer lease; another replica may seal now");
                lease = None;
            }
        }
        if lease.is_none() {
            match state.store.try_sealer_lease().await {
                Ok(Some(l)) => {
                    tracing::info!("this replica seals the audit log");
                    lease = Some(l);
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "cannot ask for the audit sealer lease"),
            }
        }
        if lease.is_some() {
            let started = std::time::Instant::now();
            match state.audit.seal_once(&state.store, state.clock.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(
                    entries = n,
                    millis = started.elapsed().as_millis(),
                    "audit entries sealed"
                ),
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "audit sealing failed; will retry")
                }
            }
        }
        if stopping {
            if let Some(l) = lease {
                l.release().await;
            }
            return;
        }
    }
}
