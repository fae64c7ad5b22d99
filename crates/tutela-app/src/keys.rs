//! The vault: the key hierarchy (master -> tenant -> subject) applied to records. Field
//! values are sealed one by one under the subject's data key, each bound to
//! `subject/category/field/version`, then packed into one blob per record.

use anyhow::Context as _;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use tutela_core::lookup::{self, LookupKind};
use tutela_core::tenant::TenantName;
use tutela_core::{Category, SubjectId, TenantId};
use tutela_crypto::envelope::{self, Cipher, Key};
use tutela_crypto::keys::{self, KeyProvider, LocalKeyFile, MasterKeyCache};
use tutela_crypto::link::{LinkError, LinkKey};
use tutela_crypto::webhook::WebhookSecret;
use tutela_store::sharing::SealedSecret;
use tutela_store::tenants::{StoredName, Tenant};
use tutela_store::Store;

/// Field-level encryption for records.
pub struct Vault {
    cipher: Cipher,
    /// Master keys unwrapped once at start and held in memory (wiped on drop): sealing
    /// and opening never wait on the key provider.
    keys: MasterKeyCache,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vault({})", self.cipher.as_str())
    }
}

impl Vault {
    /// Reloads the master keys from the provider (on SIGHUP, after `tutela keys rotate`
    /// made a new one current and re-wrapped the tenant keys under it).
    pub async fn reload_master_keys(&self) -> Result<(), tutela_crypto::keys::KeyProviderError> {
        self.keys.refresh().await
    }

    /// Opens the local master-key file (creating it, 0600, on first run). Where it is
    /// comes from `app::master_key_file`, which also prepares its directory.
    pub async fn open_local(key_file: &Path, cipher: Cipher) -> anyhow::Result<Self> {
        let (file, created) = LocalKeyFile::open_or_create(key_file)
            .with_context(|| format!("opening the master key file {}", key_file.display()))?;
        if created {
            tracing::info!(path = %key_file.display(), "created a new local master key");
        }
        Self::open(Arc::new(file), cipher).await
    }

    /// Loads the master keys from `provider` (an external KMS, or the local file) once;
    /// from then on they are served from memory.
    pub async fn open(provider: Arc<dyn KeyProvider>, cipher: Cipher) -> anyhow::Result<Self> {
        let keys = MasterKeyCache::load(provider)
            .await
            .context("loading the master keys")?;
        Ok(Self { cipher, keys })
    }

    /// A fresh tenant key wrapped by the current master key: (master key id, key, wrapped).
    fn new_tenant_key(&self, tenant: &TenantId) -> anyhow::Result<(u32, Key, Vec<u8>)> {
        let (master_id, master) = self.keys.current();
        let (key, wrapped) =
            keys::new_wrapped_key(self.cipher, &master, &keys::tenant_key_aad(tenant.as_str()))?;
        Ok((master_id, key, wrapped))
    }

    async fn tenant_key(&self, store: &Store, tenant: &TenantId) -> anyhow::Result<Key> {
        let aad = keys::tenant_key_aad(tenant.as_str());
        let (id, wrapped) = match store.tenant_key(tenant).await? {
            Some(row) => row,
            None => {
                let (master_id, _, wrapped) = self.new_tenant_key(tenant)?;
                store
                    .insert_tenant_key(tenant, i64::from(master_id), &wrapped)
                    .await?
            }
        };
        let master = self
            .keys
            .by_id(u32::try_from(id).context("master key id out of range")?)?;
        Ok(envelope::unwrap_key(&master, &aad, &wrapped)?)
    }

    /// Inserts a new tenant. A name given in clear is sealed under a fresh tenant key
    /// (scope `name`), and the key row is inserted in the same transaction as the tenant
    /// row, so no tenant name is ever written in clear (R29). Returns the stored tenant.
    pub async fn insert_tenant(
        &self,
        store: &Store,
        mut tenant: Tenant,
        demo_key: Option<&str>,
    ) -> anyhow::Result<Tenant> {
        let StoredName::Clear(name) = &tenant.name else {
            anyhow::bail!("a new tenant's name arrives in clear, to be sealed here");
        };
        let (master_id, tk, wrapped) = self.new_tenant_key(&tenant.id)?;
        let sealed = self.seal_tenant_text_with(&tk, &tenant.id, TENANT_NAME, name.as_str())?;
        tenant.name = StoredName::Sealed(sealed);
        store
            .insert_tenant(&tenant, demo_key, Some((i64::from(master_id), &wrapped)))
            .await?;
        Ok(tenant)
    }

    /// A tenant's display name, opened (legacy clear rows as they are).
    pub async fn tenant_name(&self, store: &Store, tenant: &Tenant) -> anyhow::Result<TenantName> {
        match &tenant.name {
            StoredName::Clear(n) => Ok(n.clone()),
            StoredName::Sealed(sealed) => {
                let text = self
                    .open_tenant_text(store, &tenant.id, TENANT_NAME, sealed)
                    .await?;
                Ok(TenantName::parse(&text)?)
            }
        }
    }

    /// Seals every tenant name still stored in clear (rows written before schema 19)
    /// under its tenant key; run once at start-up. Returns how many it sealed.
    pub async fn reseal_legacy_tenant_names(&self, store: &Store) -> anyhow::Result<usize> {
        let mut sealed = 0;
        for (tenant, name) in store.tenants_with_clear_names().await? {
            let blob = self
                .seal_tenant_text(store, &tenant, TENANT_NAME, name.as_str())
                .await?;
            if store.seal_tenant_name(&tenant, &blob).await? {
                sealed += 1;
            }
        }
        Ok(sealed)
    }

    /// Seals free text that belongs to a tenant rather than to one subject (its display
    /// name, an officer's waiver reason, a support grant's reason) under the tenant key,
    /// bound to `scope`.
    pub async fn seal_tenant_text(
        &self,
        store: &Store,
        tenant: &TenantId,
        scope: &str,
        text: &str,
    ) -> anyhow::Result<Vec<u8>> {
        let tk = self.tenant_key(store, tenant).await?;
        self.seal_tenant_text_with(&tk, tenant, scope, text)
    }

    fn seal_tenant_text_with(
        &self,
        tk: &Key,
        tenant: &TenantId,
        scope: &str,
        text: &str,
    ) -> anyhow::Result<Vec<u8>> {
        Ok(envelope::seal(
            self.cipher,
            tk,
            &tenant_text_aad(tenant, scope),
            text.as_bytes(),
        )?)
    }

    /// Opens what [`Vault::seal_tenant_text`] sealed.
    pub async fn open_tenant_text(
        &self,
        store: &Store,
        tenant: &TenantId,
        scope: &str,
        sealed: &[u8],
    ) -> anyhow::Result<String> {
        self.tenant_texts(store, tenant).open(scope, sealed).await
    }

    /// An opener for several sealed texts of one tenant (a list of grants, a request's
    /// waivers): the tenant key is read once, when the first text needs it.
    pub fn tenant_texts<'a>(&'a self, store: &'a Store, tenant: &'a TenantId) -> TenantTexts<'a> {
        TenantTexts {
            vault: self,
            store,
            tenant,
            key: None,
        }
    }

    /// The subject's data key; created when `create` and missing. `None` when absent
    /// (never written, or crypto-shredded).
    pub async fn subject_key(
        &self,
        store: &Store,
        tenant: &TenantId,
        subject: &SubjectId,
        create: bool,
    ) -> anyhow::Result<Option<Key>> {
        let aad = keys::subject_key_aad(tenant.as_str(), subject.as_str());
        let existing = store.subject_key(subject).await?;
        if existing.is_none() && !create {
            return Ok(None);
        }
        // One tenant-key load serves both creating and unwrapping.
        let tk = self.tenant_key(store, tenant).await?;
        let wrapped = match existing {
            Some(w) => w,
            None => {
                let (_, wrapped) = keys::new_wrapped_key(self.cipher, &tk, &aad)?;
                // First writer wins: a concurrent insert's key is the one returned.
                store.insert_subject_key(subject, &wrapped).await?
            }
        };
        Ok(Some(envelope::unwrap_key(&tk, &aad, &wrapped)?))
    }

    /// A new data key for a subject, wrapped by the tenant key but not stored: an erasure
    /// re-seals what it keeps under it and swaps it in with the shred (R33).
    pub async fn fresh_subject_key(
        &self,
        store: &Store,
        tenant: &TenantId,
        subject: &SubjectId,
    ) -> anyhow::Result<(Key, Vec<u8>)> {
        let aad = keys::subject_key_aad(tenant.as_str(), subject.as_str());
        let tk = self.tenant_key(store, tenant).await?;
        let (_, wrapped) = keys::new_wrapped_key(self.cipher, &tk, &aad)?;
        let key = envelope::unwrap_key(&tk, &aad, &wrapped)?;
        Ok((key, wrapped))
    }

    /// The tenant's key for the PII `hash` operator (R13): derived from the tenant's
    /// index key, so the same value hashes the same across the tenant's support data
    /// (joins still work) and differently in every other tenant.
    pub async fn pii_hash_key(&self, store: &Store, tenant: &TenantId) -> anyhow::Result<[u8; 32]> {
        let index_key = keys::index_key_of(&self.tenant_key(store, tenant).await?);
        Ok(keys::blind_index(&index_key, "pii-hash-key", "v1"))
    }

    /// Keys for PII tokens of a tenant (R13): the token key (format-preserving tokens),
    /// the digest key (finding a token's row) and the tenant key that seals originals.
    pub async fn pii_token_keys(
        &self,
        store: &Store,
        tenant: &TenantId,
    ) -> anyhow::Result<([u8; 32], Key, Key)> {
        let tk = self.tenant_key(store, tenant).await?;
        let index_key = keys::index_key_of(&tk);
        let token_key = keys::blind_index(&index_key, "pii-token-key", "v1");
        let digest_key = Key::from_bytes(keys::blind_index(&index_key, "pii-token-digest", "v1"));
        Ok((token_key, digest_key, tk))
    }

    /// A keyed digest of a token (so the table does not list tokens).
    pub fn token_digest(&self, digest_key: &Key, kind: &str, token: &str) -> Vec<u8> {
        keys::blind_index(digest_key, kind, token).to_vec()
    }

    /// Seals a token's original under the tenant key.
    pub fn seal_token_value(
        &self,
        tenant_key: &Key,
        tenant: &TenantId,
        kind: &str,
        value: &str,
    ) -> anyhow::Result<Vec<u8>> {
        let aad = format!("tutela:pii-token:{tenant}:{kind}");
        Ok(envelope::seal(
            self.cipher,
            tenant_key,
            aad.as_bytes(),
            value.as_bytes(),
        )?)
    }

    /// Opens what [`Vault::seal_token_value`] sealed.
    pub fn open_token_value(
        &self,
        tenant_key: &Key,
        tenant: &TenantId,
        kind: &str,
        sealed: &[u8],
    ) -> anyhow::Result<String> {
        let aad = format!("tutela:pii-token:{tenant}:{kind}");
        Ok(String::from_utf8(envelope::open(
            tenant_key,
            aad.as_bytes(),
            sealed,
        )?)?)
    }

    /// Blind-index keys for the look-up fields of a record (e-mail, phone), under the
    /// tenant's index key. Values that cannot be normalised get no key.
    pub async fn lookup_keys(
        &self,
        store: &Store,
        tenant: &TenantId,
        fields: &BTreeMap<String, String>,
    ) -> anyhow::Result<Vec<(LookupKind, [u8; 32])>> {
        let wanted: Vec<(LookupKind, String)> = fields
            .iter()
            .filter_map(|(name, value)| {
                let kind = LookupKind::of_field(name)?;
                Some((kind, lookup::normalize(kind, value)?))
            })
            .collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let index_key = keys::index_key_of(&self.tenant_key(store, tenant).await?);
        Ok(wanted
            .into_iter()
            .map(|(kind, v)| (kind, keys::blind_index(&index_key, kind.as_str(), &v)))
            .collect())
    }

    /// The blind-index key to search for `value`, or `None` if it is not a valid value.
    pub async fn lookup_key(
        &self,
        store: &Store,
        tenant: &TenantId,
        kind: LookupKind,
        value: &str,
    ) -> anyhow::Result<Option<[u8; 32]>> {
        let Some(v) = lookup::normalize(kind, value) else {
            return Ok(None);
        };
        let index_key = keys::index_key_of(&self.tenant_key(store, tenant).await?);
        Ok(Some(keys::blind_index(&index_key, kind.as_str(), &v)))
    }

    /// Signs a link (see `tutela_crypto::link`) under the current master key; the key id
    /// travels as the first field so links survive a master-key rotation.
    pub fn sign_link(
        &self,
        purpose: &str,
        fields: &[&str],
        expires: i64,
    ) -> anyhow::Result<String> {
        let (id, master) = self.keys.current();
        let kid = id.to_string();
        let mut all = vec![kid.as_str()];
        all.extend_from_slice(fields);
        LinkKey::derive(&master)
            .sign(purpose, &all, expires)
            .context("link fields must be ids or vocabulary")
    }

    /// Verifies a link for `purpose` at `now` (Unix seconds) and returns its fields
    /// (without the key id). `Ok(Err(_))` is a bad or expired link, `Err` a key failure.
    pub fn verify_link(
        &self,
        purpose: &str,
        token: &str,
        now: i64,
    ) -> anyhow::Result<Result<Vec<String>, LinkError>> {
        let Some(kid) = token.split('.').nth(1).and_then(|k| k.parse::<u32>().ok()) else {
            return Ok(Err(LinkError::Invalid));
        };
        let Ok(master) = self.keys.by_id(kid) else {
            return Ok(Err(LinkError::Invalid));
        };
        Ok(LinkKey::derive(&master)
            .verify(purpose, token, now)
            .map(|fields| fields.into_iter().skip(1).collect()))
    }

    /// A fresh website visitor id (R16): `vis_<32 hex>.<master key id>.<32 hex tag>`,
    /// the tag from [`keys::visitor_id_tag`]. The key id lets ids outlive a rotation.
    pub fn issue_visitor_id(&self) -> anyhow::Result<String> {
        let (kid, master) = self.keys.current();
        let signed = format!(
            "vis_{}.{kid}",
            hex::encode(tutela_crypto::random_bytes::<16>()?)
        );
        let tag = keys::visitor_id_tag(&master, &signed);
        Ok(format!("{signed}.{}", hex::encode(tag)))
    }

    /// Whether `id` is a visitor id this server issued (unaltered), in constant time.
    pub fn visitor_id_valid(&self, id: &str) -> bool {
        let Some((signed, tag_hex)) = id.rsplit_once('.') else {
            return false;
        };
        let Some((base, kid)) = signed.split_once('.') else {
            return false;
        };
        let random_ok = base.strip_prefix("vis_").is_some_and(|r| {
            r.len() == 32
                && r.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        let Some(kid) = kid
            .parse::<u32>()
            .ok()
            .filter(|k| random_ok && k.to_string() == kid)
        else {
            return false;
        };
        let Ok(master) = self.keys.by_id(kid) else {
            return false;
        };
        // Compared as the lower-case hex the server issued: one spelling per id (an
        // upper-case tag would be an alias with its own history).
        tutela_crypto::constant_time_eq(
            hex::encode(keys::visitor_id_tag(&master, signed)).as_bytes(),
            tag_hex.as_bytes(),
        )
    }

    /// Seals a recipient's webhook secret under the current master key (R34).
    pub fn seal_webhook_secret(
        &self,
        recipient: &str,
        secret: &WebhookSecret,
    ) -> anyhow::Result<SealedSecret> {
        let (id, master) = self.keys.current();
        let sealed = envelope::seal(
            self.cipher,
            &master,
            &webhook_aad(recipient),
            secret.as_bytes(),
        )?;
        Ok(SealedSecret {
            key_id: i64::from(id),
            sealed,
        })
    }

    /// Opens what [`Vault::seal_webhook_secret`] sealed.
    pub fn open_webhook_secret(
        &self,
        recipient: &str,
        sealed: &SealedSecret,
    ) -> anyhow::Result<WebhookSecret> {
        let master = self
            .keys
            .by_id(u32::try_from(sealed.key_id).context("master key id out of range")?)?;
        let plain = envelope::open(&master, &webhook_aad(recipient), &sealed.sealed)?;
        let bytes: [u8; 32] = plain
            .try_into()
            .map_err(|_| anyhow::anyhow!("webhook secret has the wrong length"))?;
        Ok(WebhookSecret::from_bytes(bytes))
    }

    /// A keyed digest of a one-time identity code for `request` (R35), so the stored
    /// value cannot be brute-forced without the master key. The key id leads.
    pub fn code_digest(&self, request: &str, code: &str) -> anyhow::Result<Vec<u8>> {
        let (id, master) = self.keys.current();
        Ok(code_digest_with(id, &master, request, code))
    }

    /// Checks a one-time code against its stored digest, in constant time.
    pub fn code_matches(&self, request: &str, code: &str, digest: &[u8]) -> bool {
        let Some((kid, _)) = digest.split_first_chunk::<4>() else {
            return false;
        };
        let kid = u32::from_be_bytes(*kid);
        let Ok(master) = self.keys.by_id(kid) else {
            return false;
        };
        tutela_crypto::constant_time_eq(&code_digest_with(kid, &master, request, code), digest)
    }

    /// Unwraps a subject's data key from the chain loaded with its record.
    pub fn open_key_chain(
        &self,
        tenant: &TenantId,
        subject: &SubjectId,
        chain: &tutela_store::WrappedKeys,
    ) -> anyhow::Result<Key> {
        let master = self
            .keys
            .by_id(u32::try_from(chain.master_key_id).context("master key id out of range")?)?;
        let tk = envelope::unwrap_key(
            &master,
            &keys::tenant_key_aad(tenant.as_str()),
            &chain.tenant_key,
        )?;
        Ok(envelope::unwrap_key(
            &tk,
            &keys::subject_key_aad(tenant.as_str(), subject.as_str()),
            &chain.subject_key,
        )?)
    }

    /// Seals each field and packs them: `u16 name len, name, u32 blob len, blob` repeated.
    pub fn seal_fields(
        &self,
        key: &Key,
        subject: &SubjectId,
        category: Category,
        version: i64,
        fields: &BTreeMap<String, String>,
    ) -> anyhow::Result<Vec<u8>> {
        self.seal_in(key, subject, category.as_str(), version, fields)
    }

    /// Seals free text kept outside records (a request's details and response) under
    /// the subject's key, bound to `scope` (e.g. `request:<id>`).
    pub fn seal_notes(
        &self,
        key: &Key,
        subject: &SubjectId,
        scope: &str,
        notes: &BTreeMap<String, String>,
    ) -> anyhow::Result<Vec<u8>> {
        self.seal_in(key, subject, scope, 0, notes)
    }

    /// Opens what [`Vault::seal_notes`] sealed.
    pub fn open_notes(
        &self,
        key: &Key,
        subject: &SubjectId,
        scope: &str,
        packed: &[u8],
    ) -> anyhow::Result<BTreeMap<String, String>> {
        self.open_in(key, subject, scope, 0, packed)
    }

    fn seal_in(
        &self,
        key: &Key,
        subject: &SubjectId,
        scope: &str,
        version: i64,
        fields: &BTreeMap<String, String>,
    ) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        for (name, value) in fields {
            let aad = keys::field_aad(subject.as_str(), scope, name, version);
            let blob = envelope::seal(self.cipher, key, &aad, value.as_bytes())?;
            out.extend_from_slice(&u16::try_from(name.len())?.to_be_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&u32::try_from(blob.len())?.to_be_bytes());
            out.extend_from_slice(&blob);
        }
        Ok(out)
    }

    /// Opens a packed record; fails if any field was moved, altered, or its key shredded.
    pub fn open_fields(
        &self,
        key: &Key,
        subject: &SubjectId,
        category: Category,
        version: i64,
        packed: &[u8],
    ) -> anyhow::Result<BTreeMap<String, String>> {
        self.open_in(key, subject, category.as_str(), version, packed)
    }

    fn open_in(
        &self,
        key: &Key,
        subject: &SubjectId,
        scope: &str,
        version: i64,
        packed: &[u8],
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        let mut rest = packed;
        let take = |n: usize, rest: &mut &[u8]| -> anyhow::Result<Vec<u8>> {
            let (head, tail) = rest
                .split_at_checked(n)
                .context("sealed record is truncated")?;
            *rest = tail;
            Ok(head.to_vec())
        };
        while !rest.is_empty() {
            let name_len = u16::from_be_bytes(
                take(2, &mut rest)?
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("bad length"))?,
            );
            let name = String::from_utf8(take(usize::from(name_len), &mut rest)?)?;
            let blob_len = u32::from_be_bytes(
                take(4, &mut rest)?
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("bad length"))?,
            );
            let blob = take(usize::try_from(blob_len)?, &mut rest)?;
            let aad = keys::field_aad(subject.as_str(), scope, &name, version);
            let plain = envelope::open(key, &aad, &blob).context("opening a sealed field")?;
            out.insert(name, String::from_utf8(plain)?);
        }
        Ok(out)
    }
}

/// The scope of a tenant's sealed display name.
const TENANT_NAME: &str = "name";

/// See [`Vault::tenant_texts`].
pub struct TenantTexts<'a> {
    vault: &'a Vault,
    store: &'a Store,
    tenant: &'a TenantId,
    key: Option<Key>,
}

impl TenantTexts<'_> {
    /// Opens one text sealed under the tenant key with `scope`.
    pub async fn open(&mut self, scope: &str, sealed: &[u8]) -> anyhow::Result<String> {
        let key = match &self.key {
            Some(k) => k,
            None => self
                .key
                .insert(self.vault.tenant_key(self.store, self.tenant).await?),
        };
        let plain = envelope::open(key, &tenant_text_aad(self.tenant, scope), sealed)
            .context("opening sealed tenant text")?;
        Ok(String::from_utf8(plain)?)
    }
}

fn tenant_text_aad(tenant: &TenantId, scope: &str) -> Vec<u8> {
    format!("tutela/tenant-text/{tenant}/{scope}").into_bytes()
}

fn webhook_aad(recipient: &str) -> Vec<u8> {
    format!("tutela:webhook-secret:{recipient}").into_bytes()
}

fn code_digest_with(kid: u32, master: &Key, request: &str, code: &str) -> Vec<u8> {
    let mut out = kid.to_be_bytes().to_vec();
    out.extend_from_slice(&keys::one_time_code_digest(master, request, code));
    out
}

/// What a master-key rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationReport {
    pub new_master_key_id: u32,
    pub rewrapped: usize,
}

/// Rotates the local master key: adds a new current key to the key file, then re-wraps
/// every tenant key still wrapped by an older one. Field data is never re-encrypted and
/// stays readable. Re-running finishes an interrupted rotation (it re-wraps whatever is
/// not yet on the current key). Running servers pick the new key up on restart.
pub async fn rotate_master(
    store: &Store,
    key_file: &Path,
    cipher: Cipher,
) -> anyhow::Result<RotationReport> {
    let (file, _) =
        LocalKeyFile::open_or_create(key_file).context("opening the master key file")?;
    let keys = MasterKeyCache::load(Arc::new(file)).await?;
    let new_id = keys.rotate().await?;
    let (_, new_key) = keys.current();
    let mut rewrapped = 0;
    for (tenant, old_id, wrapped) in store.all_tenant_keys().await? {
        if old_id == i64::from(new_id) {
            continue;
        }
        let old_key = keys.by_id(u32::try_from(old_id).context("master key id out of range")?)?;
        let aad = keys::tenant_key_aad(tenant.as_str());
        let fresh = keys::rewrap(cipher, &old_key, &new_key, &aad, &wrapped)
            .with_context(|| format!("re-wrapping the key of tenant {tenant}"))?;
        if store
            .rewrap_tenant_key(&tenant, old_id, i64::from(new_id), &fresh)
            .await?
        {
            rewrapped += 1;
        }
    }
    Ok(RotationReport {
        new_master_key_id: new_id,
        rewrapped,
    })
}
