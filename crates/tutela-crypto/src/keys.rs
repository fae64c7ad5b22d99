//! Key providers and the key hierarchy: master key -> per-tenant key -> per-subject data
//! key, each wrapped by its parent with the owner's id as associated data. Deleting a
//! subject's wrapped data key (crypto-shredding) makes every copy of its fields, backups
//! included, unreadable.

use crate::envelope::{self, Cipher, Key, OpenError};
use crate::RandomError;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Where the master key comes from. The local key file is the default; an external KMS
/// implements this trait.
pub trait KeyProvider: Send + Sync {
    /// The current master key and its id (key ids change on rotation).
    fn master(&self) -> Result<(u32, Key), KeyProviderError>;
    /// A master key by id, for unwrapping keys wrapped before a rotation.
    fn master_by_id(&self, id: u32) -> Result<Key, KeyProviderError>;
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
    #[error("the key file has no master key with id {0}")]
    UnknownKey(u32),
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// Master keys in a local file, kept apart from the database: one line per key,
/// `<id> <64 hex>`, the last line current. Created on first use with mode 0600.
#[derive(Debug)]
pub struct LocalKeyFile {
    path: PathBuf,
    keys: Vec<(u32, [u8; 32])>,
}

impl LocalKeyFile {
    /// Opens the file, creating it with a fresh key when missing. The flag says whether
    /// it was created (so the caller can warn that a development key is in use).
    pub fn open_or_create(path: &Path) -> Result<(Self, bool), KeyProviderError> {
        let io = |source| KeyProviderError::Io {
            path: path.to_owned(),
            source,
        };
        if !path.exists() {
            let key = crate::random_bytes::<32>()?;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                opts.mode(0o600);
            }
            let mut f = opts.open(path).map_err(io)?;
            writeln!(f, "1 {}", hex::encode(key)).map_err(io)?;
            f.sync_all().map_err(io)?;
            return Ok((
                Self {
                    path: path.to_owned(),
                    keys: vec![(1, key)],
                },
                true,
            ));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let mut keys = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (id, hexkey) = line
                .trim()
                .split_once(' ')
                .ok_or_else(|| KeyProviderError::Malformed(path.to_owned()))?;
            let id: u32 = id
                .parse()
                .map_err(|_| KeyProviderError::Malformed(path.to_owned()))?;
            let bytes =
                hex::decode(hexkey).map_err(|_| KeyProviderError::Malformed(path.to_owned()))?;
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| KeyProviderError::Malformed(path.to_owned()))?;
            keys.push((id, key));
        }
        if keys.is_empty() {
            return Err(KeyProviderError::Malformed(path.to_owned()));
        }
        Ok((
            Self {
                path: path.to_owned(),
                keys,
            },
            false,
        ))
    }

    /// Adds a new current master key (old ones stay for unwrapping until re-wrapped).
    pub fn rotate(&mut self) -> Result<u32, KeyProviderError> {
        let id = self.keys.iter().map(|(i, _)| *i).max().unwrap_or(0) + 1;
        let key = crate::random_bytes::<32>()?;
        let io = |source| KeyProviderError::Io {
            path: self.path.clone(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        writeln!(f, "{id} {}", hex::encode(key)).map_err(io)?;
        f.sync_all().map_err(io)?;
        self.keys.push((id, key));
        Ok(id)
    }
}

impl KeyProvider for LocalKeyFile {
    fn master(&self) -> Result<(u32, Key), KeyProviderError> {
        self.keys
            .last()
            .map(|(id, k)| (*id, Key::from_bytes(*k)))
            .ok_or_else(|| KeyProviderError::Malformed(self.path.clone()))
    }

    fn master_by_id(&self, id: u32) -> Result<Key, KeyProviderError> {
        self.keys
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, k)| Key::from_bytes(*k))
            .ok_or(KeyProviderError::UnknownKey(id))
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
        assert_eq!(kf.master().unwrap(), again.master().unwrap());
    }

    #[test]
    fn rotation_rewraps_without_touching_data() {
        let dir = tempfile::tempdir().unwrap();
        let (mut kf, _) = LocalKeyFile::open_or_create(&dir.path().join("k")).unwrap();
        let (old_id, old) = kf.master().unwrap();
        let aad = tenant_key_aad("ten_a");
        let (tenant_key, wrapped) = new_wrapped_key(Cipher::Aes256Gcm, &old, &aad).unwrap();
        let field = envelope::seal(Cipher::Aes256Gcm, &tenant_key, b"f", b"value").unwrap();
        let new_id = kf.rotate().unwrap();
        assert_ne!(old_id, new_id);
        let (_, new) = kf.master().unwrap();
        let rewrapped = rewrap(
            Cipher::Aes256Gcm,
            &kf.master_by_id(old_id).unwrap(),
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
        assert_eq!(reloaded.master().unwrap().0, new_id);
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
