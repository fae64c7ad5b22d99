//! Key providers and the key hierarchy: master key -> per-tenant key -> per-subject data
//! key, each wrapped by its parent with the owner's id as associated data. Deleting a
//! subject's wrapped data key (crypto-shredding) makes every copy of its fields, backups
//! included, unreadable.

use crate::envelope::{self, Cipher, Key, OpenError};
use crate::RandomError;
use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use zeroize::{ZeroizeOnDrop, Zeroizing};

/// What a [`KeyProvider`] returns: a boxed future, so the trait stays object-safe
/// (`Arc<dyn KeyProvider>`) while an implementation awaits a network call.
pub type KeyFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, KeyProviderError>> + Send + 'a>>;

/// Where master keys come from. The local key file is the default; an external KMS
/// implements this trait, awaiting its service instead of blocking a runtime worker.
///
/// A provider is asked only at start-up, on rotation and on an explicit refresh
/// ([`MasterKeyCache`]); encrypting and decrypting read the cache and never call it.
pub trait KeyProvider: Send + Sync {
    /// Every master key the provider holds, unwrapped, and which one is current.
    fn load(&self) -> KeyFuture<'_, MasterKeys>;
    /// Makes a new current master key (older ones stay, to unwrap what they wrapped)
    /// and returns its id.
    fn rotate(&self) -> KeyFuture<'_, u32>;
}

/// Why a master key is unavailable.
#[derive(Debug, thiserror::Error)]
pub enum KeyProviderError {
    #[error("cannot read or write the key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the key file {0} is malformed")]
    Malformed(PathBuf),
    #[error("no master key with id {0}")]
    UnknownKey(u32),
    #[error("two master keys have the id {0}")]
    DuplicateKey(u32),
    /// An external key service failed (or, for the key file, its blocking task did).
    #[error("the key service failed")]
    Service(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// A set of unwrapped master keys by id, one of them current. Each key wipes itself when
/// its last holder drops it, so a replaced set leaves nothing behind.
#[derive(Debug)]
pub struct MasterKeys {
    current: (u32, Arc<Key>),
    keys: BTreeMap<u32, Arc<Key>>,
}

impl ZeroizeOnDrop for MasterKeys {}

// A compile-time check that a cached key set wipes itself (its keys do: `Key` has the
// same check in `envelope`): dropping the marker stops the build here.
const _: () = {
    const fn wiped_on_drop<T: ZeroizeOnDrop>() {}
    wiped_on_drop::<MasterKeys>();
};

impl MasterKeys {
    /// The keys, with `current` among them; an id given twice is ambiguous and refused.
    pub fn new(
        current: u32,
        keys: impl IntoIterator<Item = (u32, Key)>,
    ) -> Result<Self, KeyProviderError> {
        let mut map = BTreeMap::new();
        for (id, key) in keys {
            if map.insert(id, Arc::new(key)).is_some() {
                return Err(KeyProviderError::DuplicateKey(id));
            }
        }
        let key = map
            .get(&current)
            .cloned()
            .ok_or(KeyProviderError::UnknownKey(current))?;
        Ok(Self {
            current: (current, key),
            keys: map,
        })
    }

    /// The current master key and its id (key ids change on rotation).
    pub fn current(&self) -> (u32, Arc<Key>) {
        (self.current.0, Arc::clone(&self.current.1))
    }

    /// A master key by id, for unwrapping keys wrapped before a rotation.
    pub fn by_id(&self, id: u32) -> Result<Arc<Key>, KeyProviderError> {
        self.keys
            .get(&id)
            .cloned()
            .ok_or(KeyProviderError::UnknownKey(id))
    }

    /// The highest id in the set (a new key takes the next one).
    fn max_id(&self) -> u32 {
        self.keys
            .keys()
            .next_back()
            .copied()
            .unwrap_or(self.current.0)
    }
}

/// The master keys in memory: loaded from a [`KeyProvider`] once, then served without
/// IO or awaiting on every seal and open. [`MasterKeyCache::rotate`] and
/// [`MasterKeyCache::refresh`] replace the set; readers holding a key from the old set
/// keep it until they drop it.
pub struct MasterKeyCache {
    provider: Arc<dyn KeyProvider>,
    keys: RwLock<Arc<MasterKeys>>,
}

impl std::fmt::Debug for MasterKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKeyCache(..)")
    }
}

impl MasterKeyCache {
    /// Loads the provider's keys (the only await before serving).
    pub async fn load(provider: Arc<dyn KeyProvider>) -> Result<Self, KeyProviderError> {
        let keys = provider.load().await?;
        Ok(Self {
            provider,
            keys: RwLock::new(Arc::new(keys)),
        })
    }

    fn snapshot(&self) -> Arc<MasterKeys> {
        // A poisoned lock still holds a whole `Arc` (a swap cannot be half done).
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The current master key and its id, from memory.
    pub fn current(&self) -> (u32, Arc<Key>) {
        self.snapshot().current()
    }

    /// A master key by id, from memory.
    pub fn by_id(&self, id: u32) -> Result<Arc<Key>, KeyProviderError> {
        self.snapshot().by_id(id)
    }

    /// Reloads the keys from the provider (say, after another process rotated them).
    /// The old set keeps serving until the new one has arrived.
    pub async fn refresh(&self) -> Result<(), KeyProviderError> {
        let fresh = Arc::new(self.provider.load().await?);
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// Has the provider make a new current master key, then reloads, so the new key
    /// is served from here on. Returns its id.
    pub async fn rotate(&self) -> Result<u32, KeyProviderError> {
        let id = self.provider.rotate().await?;
        self.refresh().await?;
        Ok(id)
    }
}

/// Master keys in a local file, kept apart from the database: one line per key,
/// `<id> <64 hex>`, the last line current. Created on first use with mode 0600.
/// Reading and appending run on tokio's blocking pool, never on an async worker.
#[derive(Debug, Clone)]
pub struct LocalKeyFile {
    path: PathBuf,
}

impl LocalKeyFile {
    /// Opens the file, creating it with a fresh key when missing, and checks that it
    /// parses. The flag says whether it was created (so the caller can warn that a
    /// development key is in use). Blocking: for start-up and the command line.
    pub fn open_or_create(path: &Path) -> Result<(Self, bool), KeyProviderError> {
        let file = Self {
            path: path.to_owned(),
        };
        if !path.exists() {
            let key = Key::generate()?;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                opts.mode(0o600);
            }
            let mut f = opts.open(path).map_err(|e| file.io(e))?;
            file.append(&mut f, 1, &key)?;
            return Ok((file, true));
        }
        file.read()?;
        Ok((file, false))
    }

    fn io(&self, source: std::io::Error) -> KeyProviderError {
        KeyProviderError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn malformed(&self) -> KeyProviderError {
        KeyProviderError::Malformed(self.path.clone())
    }

    /// Writes `<id> <hex>` and syncs it; the hex line is wiped from memory after.
    fn append(&self, f: &mut std::fs::File, id: u32, key: &Key) -> Result<(), KeyProviderError> {
        let line = Zeroizing::new(format!("{id} {}\n", hex::encode(key.as_bytes())));
        f.write_all(line.as_bytes()).map_err(|e| self.io(e))?;
        f.sync_all().map_err(|e| self.io(e))
    }

    /// Reads and parses the whole file (blocking). The text and the decoded bytes are
    /// wiped once the keys are built.
    pub fn read(&self) -> Result<MasterKeys, KeyProviderError> {
        let text = Zeroizing::new(std::fs::read_to_string(&self.path).map_err(|e| self.io(e))?);
        let mut keys = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (id, hexkey) = line
                .trim()
                .split_once(' ')
                .ok_or_else(|| self.malformed())?;
            let id: u32 = id.parse().map_err(|_| self.malformed())?;
            let bytes = Zeroizing::new(hex::decode(hexkey).map_err(|_| self.malformed())?);
            keys.push((id, Key::from_slice(&bytes).ok_or_else(|| self.malformed())?));
        }
        let current = keys
            .last()
            .map(|(id, _)| *id)
            .ok_or_else(|| self.malformed())?;
        MasterKeys::new(current, keys).map_err(|e| match e {
            KeyProviderError::DuplicateKey(_) => self.malformed(),
            other => other,
        })
    }

    /// Appends a new current master key (blocking); returns its id.
    pub fn rotate_blocking(&self) -> Result<u32, KeyProviderError> {
        let keys = self.read()?;
        let id = keys
            .max_id()
            .checked_add(1)
            .ok_or_else(|| self.malformed())?;
        let key = Key::generate()?;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        self.append(&mut f, id, &key)?;
        Ok(id)
    }

    /// Runs `work` on tokio's blocking pool.
    async fn off_the_runtime<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Self) -> Result<T, KeyProviderError> + Send + 'static,
    ) -> Result<T, KeyProviderError> {
        let file = self.clone();
        tokio::task::spawn_blocking(move || work(&file))
            .await
            .map_err(|e| KeyProviderError::Service(Box::new(e)))?
    }
}

impl KeyProvider for LocalKeyFile {
    fn load(&self) -> KeyFuture<'_, MasterKeys> {
        Box::pin(self.off_the_runtime(Self::read))
    }

    fn rotate(&self) -> KeyFuture<'_, u32> {
        Box::pin(self.off_the_runtime(Self::rotate_blocking))
    }
}

/// Associated data for a tenant key wrapped by the master key.
pub fn tenant_key_aad(tenant: &str) -> Vec<u8> {
    format!("tutela/tenant-key/{tenant}").into_bytes()
}

/// Associated data for a subject data key wrapped by its tenant key.
pub fn subject_key_aad(tenant: &str, subject: &str) -> Vec<u8> {
    format!("tutela/subject-key/{tenant}/{subject}").into_bytes()
}

/// Associated data for a field value: binds it to its subject, category, field and
/// record version, so a ciphertext moved anywhere else fails to open.
pub fn field_aad(subject: &str, category: &str, field: &str, version: i64) -> Vec<u8> {
    format!("tutela/field/{subject}/{category}/{field}/{version}").into_bytes()
}

/// Makes and wraps a new child key.
pub fn new_wrapped_key(
    cipher: Cipher,
    parent: &Key,
    aad: &[u8],
) -> Result<(Key, Vec<u8>), RandomError> {
    let child = Key::generate()?;
    let wrapped = envelope::wrap(cipher, parent, aad, &child)?;
    Ok((child, wrapped))
}

/// Re-wraps a key from an old parent to a new one without touching data it protects
/// (master key rotation).
pub fn rewrap(
    cipher: Cipher,
    old: &Key,
    new: &Key,
    aad: &[u8],
    wrapped: &[u8],
) -> Result<Vec<u8>, RewrapError> {
    let child = envelope::unwrap_key(old, aad, wrapped)?;
    Ok(envelope::wrap(cipher, new, aad, &child)?)
}

/// Why a re-wrap failed.
#[derive(Debug, thiserror::Error)]
pub enum RewrapError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// The blind-index key of a tenant, derived from its tenant key (HMAC-SHA256 with a
/// fixed label), so look-ups die with the tenant key and need no key of their own.
pub fn index_key_of(tenant_key: &Key) -> Key {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, tenant_key.as_bytes());
    let tag = ring::hmac::sign(&k, b"tutela-blind-index-key-v1");
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    Key::from_bytes(out)
}

/// A keyed look-up token for a value (HMAC-SHA256 under a dedicated index key), so a
/// subject can be found by e-mail or phone without storing either in clear. Values are
/// normalised (trimmed, lower-cased) so equal addresses match.
pub fn blind_index(index_key: &Key, kind: &str, value: &str) -> [u8; 32] {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, index_key.as_bytes());
    let mut ctx = ring::hmac::Context::with_key(&k);
    ctx.update(kind.as_bytes());
    ctx.update(&[0]);
    ctx.update(value.trim().to_lowercase().as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// A keyed digest of a one-time code issued for `context` (e.g. a request id), under a
/// key derived from the master key: a stolen database alone cannot brute-force the
/// six-digit space.
pub fn one_time_code_digest(master: &Key, context: &str, code: &str) -> [u8; 32] {
    let k = derived_hmac_key(master, b"tutela-one-time-code-key-v1");
    let mut ctx = ring::hmac::Context::with_key(&k);
    ctx.update(context.as_bytes());
    ctx.update(&[0]);
    ctx.update(code.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// An HMAC key derived from the master key for one use, named by `label`.
fn derived_hmac_key(master: &Key, label: &[u8]) -> ring::hmac::Key {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, master.as_bytes());
    let derived = ring::hmac::sign(&k, label);
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref())
}

/// The tag that signs a website visitor's id (R16): HMAC-SHA256 under a key derived from
/// the master key (fixed label), truncated to 128 bits. The server issues ids, so a
/// browser cannot pick (or guess) another visitor's id to append choices to its history.
pub fn visitor_id_tag(master: &Key, signed_text: &str) -> [u8; 16] {
    let k = derived_hmac_key(master, b"tutela-visitor-id-key-v1");
    let tag = ring::hmac::sign(&k, signed_text.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(tag.as_ref().get(..16).unwrap_or(&[0u8; 16]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// A stand-in for an external KMS: every call awaits (a gate the test opens, then a
    /// timer), as a network call would, and counts itself.
    struct AwaitingKms {
        gate: tokio::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
        keys: Mutex<Vec<(u32, [u8; 32])>>,
        loads: AtomicUsize,
    }

    impl AwaitingKms {
        fn new(gate: tokio::sync::oneshot::Receiver<()>) -> Arc<Self> {
            Arc::new(Self {
                gate: tokio::sync::Mutex::new(Some(gate)),
                keys: Mutex::new(vec![(1, [1; 32])]),
                loads: AtomicUsize::new(0),
            })
        }

        async fn round_trip(&self) {
            if let Some(gate) = self.gate.lock().await.take() {
                gate.await.unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    impl KeyProvider for AwaitingKms {
        fn load(&self) -> KeyFuture<'_, MasterKeys> {
            Box::pin(async move {
                self.round_trip().await;
                self.loads.fetch_add(1, Ordering::SeqCst);
                let keys = self.keys.lock().unwrap().clone();
                let current = keys.last().unwrap().0;
                MasterKeys::new(
                    current,
                    keys.into_iter().map(|(id, k)| (id, Key::from_bytes(k))),
                )
            })
        }

        fn rotate(&self) -> KeyFuture<'_, u32> {
            Box::pin(async move {
                self.round_trip().await;
                let mut keys = self.keys.lock().unwrap();
                let id = keys.last().unwrap().0 + 1;
                keys.push((id, [u8::try_from(id).unwrap(); 32]));
                Ok(id)
            })
        }
    }

    // `tokio::test` runs on one thread: had `load` blocked it, the test itself could
    // never have run again to open the gate, and it would hang instead of passing.
    #[tokio::test]
    async fn an_awaiting_provider_loads_without_blocking_the_runtime() {
        let (open, gate) = tokio::sync::oneshot::channel();
        let kms = AwaitingKms::new(gate);
        let loading = tokio::spawn(MasterKeyCache::load(kms.clone()));
        tokio::task::yield_now().await;
        assert!(!loading.is_finished(), "the load is parked on the gate");
        assert_eq!(kms.loads.load(Ordering::SeqCst), 0);
        open.send(()).unwrap();
        let cache = loading.await.unwrap().unwrap();
        assert_eq!(kms.loads.load(Ordering::SeqCst), 1);
        assert_eq!(cache.current(), (1, Arc::new(Key::from_bytes([1; 32]))));
    }

    #[tokio::test]
    async fn cached_keys_are_served_without_asking_the_provider_again() {
        let (open, gate) = tokio::sync::oneshot::channel();
        open.send(()).unwrap();
        let kms = AwaitingKms::new(gate);
        let cache = MasterKeyCache::load(kms.clone()).await.unwrap();
        for _ in 0..1000 {
            assert_eq!(cache.current().0, 1);
            assert_eq!(*cache.by_id(1).unwrap(), Key::from_bytes([1; 32]));
            assert!(matches!(
                cache.by_id(2),
                Err(KeyProviderError::UnknownKey(2))
            ));
        }
        assert_eq!(kms.loads.load(Ordering::SeqCst), 1, "one load, at start");
    }

    #[tokio::test]
    async fn rotation_through_the_cache_serves_the_new_key_and_keeps_the_old() {
        let (open, gate) = tokio::sync::oneshot::channel();
        open.send(()).unwrap();
        let kms = AwaitingKms::new(gate);
        let cache = MasterKeyCache::load(kms.clone()).await.unwrap();
        let (_, before) = cache.current();
        assert_eq!(cache.rotate().await.unwrap(), 2);
        assert_eq!(cache.current(), (2, Arc::new(Key::from_bytes([2; 32]))));
        assert_eq!(cache.by_id(1).unwrap(), before, "the old key still unwraps");
        assert_eq!(
            *before,
            Key::from_bytes([1; 32]),
            "a held key outlives the swap"
        );
    }

    #[test]
    fn a_key_set_must_contain_its_current_key_once() {
        assert!(matches!(
            MasterKeys::new(2, [(1, Key::from_bytes([1; 32]))]),
            Err(KeyProviderError::UnknownKey(2))
        ));
        assert!(matches!(
            MasterKeys::new(
                1,
                [(1, Key::from_bytes([1; 32])), (1, Key::from_bytes([2; 32]))]
            ),
            Err(KeyProviderError::DuplicateKey(1))
        ));
    }

    #[test]
    fn key_file_is_created_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let (kf, created) = LocalKeyFile::open_or_create(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let (again, created) = LocalKeyFile::open_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(
            kf.read().unwrap().current(),
            again.read().unwrap().current()
        );
    }

    #[tokio::test]
    async fn rotation_rewraps_without_touching_data() {
        let dir = tempfile::tempdir().unwrap();
        let (kf, _) = LocalKeyFile::open_or_create(&dir.path().join("k")).unwrap();
        let cache = MasterKeyCache::load(Arc::new(kf)).await.unwrap();
        let (old_id, old) = cache.current();
        let aad = tenant_key_aad("ten_a");
        let (tenant_key, wrapped) = new_wrapped_key(Cipher::Aes256Gcm, &old, &aad).unwrap();
        let field = envelope::seal(Cipher::Aes256Gcm, &tenant_key, b"f", b"value").unwrap();
        let new_id = cache.rotate().await.unwrap();
        assert_ne!(old_id, new_id);
        let (current_id, new) = cache.current();
        assert_eq!(current_id, new_id, "the cache serves the rotated key");
        let rewrapped = rewrap(
            Cipher::Aes256Gcm,
            &cache.by_id(old_id).unwrap(),
            &new,
            &aad,
            &wrapped,
        )
        .unwrap();
        let recovered = envelope::unwrap_key(&new, &aad, &rewrapped).unwrap();
        assert_eq!(
            envelope::open(&recovered, b"f", &field).unwrap(),
            b"value",
            "old data stays readable"
        );
        assert!(envelope::unwrap_key(&new, &aad, &wrapped).is_err());
        let (reloaded, _) = LocalKeyFile::open_or_create(&dir.path().join("k")).unwrap();
        assert_eq!(reloaded.read().unwrap().current().0, new_id);
    }

    #[tokio::test]
    async fn a_rotation_by_another_process_is_served_after_a_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let (kf, _) = LocalKeyFile::open_or_create(&path).unwrap();
        let cache = MasterKeyCache::load(Arc::new(kf)).await.unwrap();
        let (elsewhere, _) = LocalKeyFile::open_or_create(&path).unwrap();
        let new_id = elsewhere.rotate_blocking().unwrap();
        assert_eq!(cache.current().0, 1, "served from memory until refreshed");
        assert!(cache.by_id(new_id).is_err());
        cache.refresh().await.unwrap();
        assert_eq!(cache.current().0, new_id);
        assert_eq!(
            cache.current().1,
            elsewhere.read().unwrap().by_id(new_id).unwrap()
        );
    }

    #[test]
    fn key_files_with_a_repeated_id_are_malformed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("twice");
        let line = format!("1 {}\n", hex::encode([3u8; 32]));
        std::fs::write(&path, format!("{line}{line}")).unwrap();
        assert!(matches!(
            LocalKeyFile::open_or_create(&path),
            Err(KeyProviderError::Malformed(_))
        ));
    }

    #[test]
    fn shredding_the_data_key_makes_fields_unreadable() {
        let master = Key::generate().unwrap();
        let (tenant, _) =
            new_wrapped_key(Cipher::Aes256Gcm, &master, &tenant_key_aad("t")).unwrap();
        let (dek, wrapped_dek) =
            new_wrapped_key(Cipher::Aes256Gcm, &tenant, &subject_key_aad("t", "s")).unwrap();
        let aad = field_aad("s", "administrator", "email", 1);
        let blob = envelope::seal(Cipher::Aes256Gcm, &dek, &aad, b"zhang@example.cn").unwrap();
        drop(dek);
        drop(wrapped_dek); // the only copy of the data key is gone
                           // Without the data key no other key in the hierarchy opens the field.
        assert!(envelope::open(&tenant, &aad, &blob).is_err());
        assert!(envelope::open(&master, &aad, &blob).is_err());
    }

    #[test]
    fn malformed_key_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad");
        std::fs::write(&path, "1 nothex\n").unwrap();
        assert!(matches!(
            LocalKeyFile::open_or_create(&path),
            Err(KeyProviderError::Malformed(_))
        ));
    }

    #[test]
    fn blind_index_matches_normalised_values_only() {
        let k = Key::from_bytes([5; 32]);
        assert_eq!(
            blind_index(&k, "email", " Li.Lei@Example.CN "),
            blind_index(&k, "email", "li.lei@example.cn")
        );
        assert_ne!(
            blind_index(&k, "email", "li.lei@example.cn"),
            blind_index(&k, "phone", "li.lei@example.cn")
        );
        assert_ne!(
            blind_index(&k, "email", "a@x.cn"),
            blind_index(&Key::from_bytes([6; 32]), "email", "a@x.cn")
        );
    }
}
