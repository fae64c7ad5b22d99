//! The audit log's witness outside the database (issue 14, R29).
//!
//! Whoever holds the database can cut off the newest audit entries together with the
//! heads that signed them, or delete every head, and the log alone still verifies. So the
//! sealer also hands every signed tree head to a witness the database does not contain:
//!
//! - a file (`audit.witness_file`) outside the data directory, one JSON line per head
//!   ([`WitnessHead`]), appended and fsynced after the head's transaction committed;
//! - optionally a webhook (`audit.witness_webhook`) that receives the latest head as a
//!   JSON POST (best effort: a failure is logged and the newest head is sent again on
//!   the next head or after [`WEBHOOK_RETRY`]; sealing never waits for it).
//!
//! `tutela audit verify` ([`crate::audit_log::verify`]) then checks the database against the
//! file: it must hold at least as many entries as the latest witnessed head, the same
//! root over them, and a signed head at least that large.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::io::{BufRead as _, Read as _, Seek as _, Write as _};
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tutela_audit::{HashAlg, SignedTreeHead, TreeHead};

use crate::config::Config;

/// How long one webhook POST may take.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// A failed webhook POST is retried after this long when no newer head arrives sooner.
pub const WEBHOOK_RETRY: Duration = Duration::from_secs(30);
/// Heads kept in memory while the witness file cannot be written (the newest are kept:
/// a later head covers every earlier one).
const MAX_PENDING: usize = 10_000;

/// One signed tree head as the witness stores it (one JSON line) and the webhook
/// receives it. `signature` is Ed25519 over `tutela_audit::TreeHead::canonical_bytes` of
/// (`hash`, `size`, `root_hash`, `signed_at` in whole microseconds), by `public_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessHead {
    pub size: u64,
    /// Hex.
    pub root_hash: String,
    /// Hex.
    pub signature: String,
    /// The raw 32-byte Ed25519 public key, hex: it identifies the log.
    pub public_key: String,
    /// `sha256` or `sm3`.
    pub hash: String,
    /// RFC 3339, microsecond precision.
    pub signed_at: String,
}

/// Why a witness line is not a usable signed head.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    #[error(
        "not a witness line (JSON with size, root_hash, signature, public_key, hash, signed_at)"
    )]
    Malformed,
    #[error("`{0}` is not valid")]
    Field(&'static str),
}

impl WitnessHead {
    /// The witness form of a head `public_key` signed.
    pub fn new(sth: &SignedTreeHead, public_key: &[u8]) -> Self {
        let signed_at = time::OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(sth.head.signed_at_micros) * 1_000,
        )
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
        Self {
            size: sth.head.size,
            root_hash: hex::encode(sth.head.root),
            signature: hex::encode(&sth.signature),
            public_key: hex::encode(public_key),
            hash: sth.head.alg.as_str().to_owned(),
            signed_at,
        }
    }

    /// Parses one line of the witness file.
    pub fn parse_line(line: &str) -> Result<Self, WitnessError> {
        serde_json::from_str(line).map_err(|_| WitnessError::Malformed)
    }

    /// The line as written to the file (no newline).
    pub fn to_line(&self) -> String {
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// When it was signed.
    pub fn signed_at(&self) -> Result<time::OffsetDateTime, WitnessError> {
        time::OffsetDateTime::parse(
            &self.signed_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|_| WitnessError::Field("signed_at"))
    }

    /// The signed head and the key it claims, decoded (not yet verified).
    pub fn decode(&self) -> Result<(SignedTreeHead, Vec<u8>), WitnessError> {
        let alg = HashAlg::parse(&self.hash).ok_or(WitnessError::Field("hash"))?;
        let root: [u8; 32] = hex::decode(&self.root_hash)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or(WitnessError::Field("root_hash"))?;
        let signature =
            hex::decode(&self.signature).map_err(|_| WitnessError::Field("signature"))?;
        let public_key =
            hex::decode(&self.public_key).map_err(|_| WitnessError::Field("public_key"))?;
        let micros = i64::try_from(self.signed_at()?.unix_timestamp_nanos() / 1_000)
            .map_err(|_| WitnessError::Field("signed_at"))?;
        Ok((
            SignedTreeHead {
                head: TreeHead {
                    alg,
                    size: self.size,
                    root,
                    signed_at_micros: micros,
                },
                signature,
            },
            public_key,
        ))
    }

    /// The root, decoded.
    pub fn root(&self) -> Result<tutela_audit::Hash, WitnessError> {
        self.decode().map(|(sth, _)| sth.head.root)
    }
}

/// Absolute, with every existing prefix canonicalized (symbolic links resolved) and `.`
/// and `..` applied, so two spellings of one place compare equal even when the file
/// itself does not exist yet.
pub fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let abs = std::path::absolute(path)?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if out.exists() {
                    out.push("..");
                    out = out.canonicalize()?;
                } else {
                    out.pop();
                }
            }
            other => {
                out.push(other);
                if let Ok(canonical) = out.canonicalize() {
                    out = canonical;
                }
            }
        }
    }
    Ok(out)
}

/// The witness file in effect, resolved; an error when it lies inside the data directory
/// (a witness there is copied, lost or cut off together with the database).
pub fn witness_file(config: &Config) -> anyhow::Result<PathBuf> {
    let data = resolve(&config.data_dir)
        .with_context(|| format!("resolving data_dir {}", config.data_dir.display()))?;
    let path = match &config.audit.witness_file {
        Some(p) => {
            resolve(p).with_context(|| format!("resolving audit.witness_file {}", p.display()))?
        }
        None => config
            .beside_data_dir("tutela-witness", ".heads")
            .with_context(|| {
                format!(
                    "audit.witness_file must be set: the data directory {} has no parent \
                     directory to keep the witness beside",
                    data.display()
                )
            })?,
    };
    anyhow::ensure!(
        !path.starts_with(&data),
        "audit.witness_file {} lies inside the data directory {}: the witness must be kept \
         where the database is not (other disk, host or backup), or truncating the log \
         could cut it off too",
        path.display(),
        data.display()
    );
    Ok(path)
}

/// Appends `heads` as lines and fsyncs (the directory too when the file is new).
pub fn append(path: &Path, heads: &[WitnessHead]) -> std::io::Result<()> {
    if heads.is_empty() {
        return Ok(());
    }
    let created = !path.exists();
    let mut opts = std::fs::OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    let mut buf = String::new();
    for h in heads {
        buf.push_str(&h.to_line());
        buf.push('\n');
    }
    f.write_all(buf.as_bytes())?;
    f.sync_data()?;
    if created {
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
    }
    Ok(())
}

/// What reading a witness file found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Lines that were not a witness head (a write torn by a crash), skipped.
    pub skipped: usize,
    /// Lines read as heads.
    pub heads: usize,
}

/// Calls `each(line_number, head)` for every head in the file, in order, until it
/// returns `Some`; a missing file has no heads.
pub fn scan<T>(
    path: &Path,
    mut each: impl FnMut(usize, WitnessHead) -> Option<T>,
) -> std::io::Result<(Scan, Option<T>)> {
    let mut scan = Scan::default();
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((scan, None)),
        Err(e) => return Err(e),
    };
    let mut line = String::new();
    let mut reader = std::io::BufReader::new(f);
    let mut number = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok((scan, None));
        }
        number += 1;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        match WitnessHead::parse_line(text) {
            Ok(head) => {
                scan.heads += 1;
                if let Some(found) = each(number, head) {
                    return Ok((scan, Some(found)));
                }
            }
            Err(_) => scan.skipped += 1,
        }
    }
}

/// The last head in the file, reading only its tail (the whole file when the tail holds
/// no readable head).
pub fn latest(path: &Path) -> std::io::Result<Option<WitnessHead>> {
    const TAIL: u64 = 64 * 1024;
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    f.seek(std::io::SeekFrom::Start(len.saturating_sub(TAIL)))?;
    let mut bytes = Vec::new();
    f.take(TAIL).read_to_end(&mut bytes)?;
    let found = String::from_utf8_lossy(&bytes)
        .lines()
        .rev()
        .find_map(|l| WitnessHead::parse_line(l.trim()).ok());
    if found.is_some() || len <= TAIL {
        return Ok(found);
    }
    let mut last = None;
    scan(path, |_, head| {
        last = Some(head);
        None::<()>
    })?;
    Ok(last)
}

/// The running witness: the file, heads not yet written to it, and the webhook sender.
pub struct Witness {
    path: PathBuf,
    pending: Mutex<Vec<WitnessHead>>,
    webhook: Option<tokio::sync::watch::Sender<Option<WitnessHead>>>,
}

impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Witness({})", self.path.display())
    }
}

impl Witness {
    /// A witness writing to `path` only. Creates the file's directory (0700) when missing,
    /// and ends a line a crash left unterminated so the next head starts a line of its own.
    pub fn file(path: PathBuf) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.exists()) {
            crate::startup::ensure_data_dir(dir)?;
        }
        if let Ok(mut f) = std::fs::File::open(&path) {
            let len = f.metadata()?.len();
            if len > 0 {
                f.seek(std::io::SeekFrom::Start(len - 1))?;
                let mut last = [0u8; 1];
                f.read_exact(&mut last)?;
                if last != *b"\n" {
                    tracing::warn!(path = %path.display(), "the audit witness ends in a torn line; ending it");
                    let mut f = std::fs::OpenOptions::new().append(true).open(&path)?;
                    f.write_all(b"\n")?;
                    f.sync_data()?;
                }
            }
        }
        Ok(Self {
            path,
            pending: Mutex::new(Vec::new()),
            webhook: None,
        })
    }

    /// The configured witness: the file (see [`witness_file`]) and, when
    /// `audit.witness_webhook` is set, a task POSTing each new head. Needs a Tokio runtime.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let path = witness_file(config)?;
        let mut witness = Self::file(path)?;
        if let Some(url) = &config.audit.witness_webhook {
            let url = reqwest::Url::parse(url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
                .with_context(|| "audit.witness_webhook must be an http:// or https:// URL")?;
            let client = crate::outbox::http_client(WEBHOOK_TIMEOUT)?;
            let (tx, rx) = tokio::sync::watch::channel(None);
            tracing::info!(
                origin = %url.origin().ascii_serialization(),
                "signed audit heads are also posted to the witness webhook"
            );
            tokio::spawn(run_webhook(client, url, rx));
            witness.webhook = Some(tx);
        }
        Ok(witness)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last head in the file.
    pub fn latest(&self) -> std::io::Result<Option<WitnessHead>> {
        latest(&self.path)
    }

    /// Heads signed but not yet in the file (its writes failed).
    pub fn pending(&self) -> usize {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Hands `heads` (committed to the database) to the witness: appends them, with any
    /// earlier ones a failed write left, to the file; passes the newest to the webhook.
    /// A failed write is logged and retried on the next call; it never fails sealing.
    pub async fn record(&self, heads: &[WitnessHead]) {
        if let (Some(tx), Some(newest)) = (&self.webhook, heads.last()) {
            tx.send_replace(Some(newest.clone()));
        }
        let batch = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending.extend_from_slice(heads);
            std::mem::take(&mut *pending)
        };
        if batch.is_empty() {
            return;
        }
        let path = self.path.clone();
        let result = tokio::task::spawn_blocking(move || {
            let written = append(&path, &batch);
            (batch, written)
        })
        .await;
        match result {
            Ok((_, Ok(()))) => {}
            Ok((batch, Err(e))) => {
                tracing::error!(
                    path = %self.path.display(),
                    error = %e,
                    heads = batch.len(),
                    "cannot write signed heads to the audit witness; will retry"
                );
                let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
                let mut kept = batch;
                kept.append(&mut pending);
                let excess = kept.len().saturating_sub(MAX_PENDING);
                kept.drain(..excess);
                *pending = kept;
            }
            Err(e) => tracing::error!(error = %e, "the audit witness write task failed"),
        }
    }
}

/// POSTs the newest head whenever one arrives; after a failure, again after
/// [`WEBHOOK_RETRY`] unless a newer head comes first. Ends when the witness is dropped.
async fn run_webhook(
    client: reqwest::Client,
    url: reqwest::Url,
    mut heads: tokio::sync::watch::Receiver<Option<WitnessHead>>,
) {
    let mut delivered: Option<u64> = None;
    let mut failed = false;
    loop {
        if failed {
            tokio::select! {
                changed = heads.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(WEBHOOK_RETRY) => {}
            }
        } else if heads.changed().await.is_err() {
            return;
        }
        let Some(head) = heads.borrow_and_update().clone() else {
            continue;
        };
        if delivered.is_some_and(|size| size >= head.size) {
            failed = false;
            continue;
        }
        let sent = client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(head.to_line())
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().is_success() => {
                delivered = Some(head.size);
                failed = false;
            }
            Ok(resp) => {
                tracing::warn!(
                    status = resp.status().as_u16(),
                    size = head.size,
                    "the audit witness webhook refused a signed head; will retry"
                );
                failed = true;
            }
            Err(e) => {
                // Without the URL: it may carry a secret.
                tracing::warn!(error = %e.without_url(), size = head.size, "cannot post a signed head to the audit witness webhook; will retry");
                failed = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tutela_audit::HeadSigner;

    fn signed(signer: &HeadSigner, size: u64, micros: i64) -> WitnessHead {
        let sth = signer.sign(TreeHead {
            alg: HashAlg::Sha256,
            size,
            root: [size as u8; 32],
            signed_at_micros: micros,
        });
        WitnessHead::new(&sth, signer.public_key())
    }

    #[test]
    fn a_witness_line_round_trips_and_its_signature_verifies_r29() {
        let (signer, _) = HeadSigner::generate().unwrap();
        let head = signed(&signer, 120, 1_700_000_000_123_456);
        let line = head.to_line();
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        for key in [
            "size",
            "root_hash",
            "signature",
            "public_key",
            "hash",
            "signed_at",
        ] {
            assert!(v.get(key).is_some(), "{key} missing from {line}");
        }
        assert_eq!(v["signed_at"], "2023-11-14T22:13:20.123456Z");
        let back = WitnessHead::parse_line(&line).unwrap();
        assert_eq!(back, head);
        let (sth, key) = back.decode().unwrap();
        assert_eq!(key, signer.public_key());
        assert_eq!(sth.head.signed_at_micros, 1_700_000_000_123_456);
        assert!(sth.verify(&key));
        // Any changed field breaks the signature or the line.
        let mut bigger = back.clone();
        bigger.size = 121;
        let (sth, key) = bigger.decode().unwrap();
        assert!(!sth.verify(&key));
        let mut later = back.clone();
        later.signed_at = "2023-11-14T22:13:21.123456Z".into();
        let (sth, key) = later.decode().unwrap();
        assert!(!sth.verify(&key));
        for bad in [
            "",
            "{}",
            "not json",
            &line.replace("\"hash\"", "\"extra\":1,\"hash\""),
        ] {
            assert_eq!(
                WitnessHead::parse_line(bad),
                Err(WitnessError::Malformed),
                "{bad}"
            );
        }
        let mut bad_root = back;
        bad_root.root_hash = "00".into();
        assert_eq!(bad_root.decode(), Err(WitnessError::Field("root_hash")));
    }

    #[test]
    fn the_file_is_appended_one_line_per_head_and_the_last_is_the_latest_r29() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w").join("log.heads");
        let (signer, _) = HeadSigner::generate().unwrap();
        let witness = Witness::file(path.clone()).unwrap();
        assert_eq!(witness.latest().unwrap(), None);
        assert_eq!(scan(&path, |_, _| None::<()>).unwrap().0.heads, 0);
        let heads: Vec<_> = (1..=3).map(|n| signed(&signer, n * 10, n as i64)).collect();
        append(&path, &heads[..2]).unwrap();
        append(&path, &heads[2..]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.ends_with('\n'));
        assert_eq!(witness.latest().unwrap(), Some(heads[2].clone()));
        let mut seen = Vec::new();
        let (s, _) = scan(&path, |n, h| {
            seen.push((n, h.size));
            None::<()>
        })
        .unwrap();
        assert_eq!(seen, vec![(1, 10), (2, 20), (3, 30)]);
        assert_eq!((s.heads, s.skipped), (3, 0));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the witness is private: {mode:o}");
        }
        // A crash mid-write leaves a torn line: reopening ends it, the next head starts a
        // line of its own, and readers skip the fragment.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&heads[2].to_line().as_bytes()[..40]).unwrap();
        drop(f);
        assert_eq!(latest(&path).unwrap(), Some(heads[2].clone()));
        let _reopened = Witness::file(path.clone()).unwrap();
        let next = signed(&signer, 40, 4);
        append(&path, std::slice::from_ref(&next)).unwrap();
        assert_eq!(latest(&path).unwrap(), Some(next));
        let (s, _) = scan(&path, |_, _| None::<()>).unwrap();
        assert_eq!((s.heads, s.skipped), (4, 1));
    }

    #[test]
    fn the_latest_head_is_found_in_a_long_file_r29() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.heads");
        let (signer, _) = HeadSigner::generate().unwrap();
        let heads: Vec<_> = (1..=2_000).map(|n| signed(&signer, n, n as i64)).collect();
        append(&path, &heads).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 64 * 1024);
        assert_eq!(latest(&path).unwrap().map(|h| h.size), Some(2_000));
    }

    fn config(data_dir: &Path, witness: Option<&Path>) -> Config {
        let mut c = Config {
            data_dir: data_dir.to_owned(),
            ..Config::default()
        };
        c.audit.witness_file = witness.map(Path::to_owned);
        c
    }

    #[test]
    fn a_witness_inside_the_data_directory_is_refused_naming_the_key_r29() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        let inside = [
            data.join("witness.heads"),
            data.join("sub/deeper/witness.heads"),
            // Other spellings of the same place.
            root.path().join("elsewhere/../data/witness.heads"),
            data.join("./sub/../witness.heads"),
        ];
        for w in &inside {
            let err = witness_file(&config(&data, Some(w)))
                .unwrap_err()
                .to_string();
            assert!(err.contains("audit.witness_file"), "{err}");
            assert!(err.contains("inside the data directory"), "{err}");
        }
        #[cfg(unix)]
        {
            // A symbolic link pointing into the data directory is inside it too.
            let link = root.path().join("link");
            std::os::unix::fs::symlink(&data, &link).unwrap();
            let err = witness_file(&config(&data, Some(&link.join("w.heads"))))
                .unwrap_err()
                .to_string();
            assert!(err.contains("inside the data directory"), "{err}");
            // And a data directory reached through a link is the same directory.
            let err = witness_file(&config(&link, Some(&data.join("w.heads"))))
                .unwrap_err()
                .to_string();
            assert!(err.contains("inside the data directory"), "{err}");
        }
        // Beside the data directory (a name sharing its prefix) is outside.
        let beside = root.path().join("data-witness/w.heads");
        let resolved = witness_file(&config(&data, Some(&beside))).unwrap();
        assert_eq!(resolved, resolve(&beside).unwrap());
        assert!(resolved.is_absolute());
    }

    #[test]
    fn the_default_witness_lies_beside_the_data_directory_r29() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("tutela-data");
        let path = witness_file(&config(&data, None)).unwrap();
        assert_eq!(
            path,
            resolve(root.path())
                .unwrap()
                .join("tutela-witness")
                .join("tutela-data.heads")
        );
        // A relative data directory resolves against the working directory.
        let path = witness_file(&config(Path::new("./tutela-data"), None)).unwrap();
        assert!(path.is_absolute());
        assert!(
            path.ends_with("tutela-witness/tutela-data.heads"),
            "{}",
            path.display()
        );
        // The file system root has no parent to put it beside.
        let err = witness_file(&config(Path::new("/"), None))
            .unwrap_err()
            .to_string();
        assert!(err.contains("audit.witness_file must be set"), "{err}");
    }
}
