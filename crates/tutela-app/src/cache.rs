//! Read-path caches: tokens, subjects and tenants (issue 3).
//!
//! Every purpose-checked read needs the caller's token, the subject and its tenant's
//! state. Loading them from the database on each request cost three queries, each a
//! thread hand-off in sqlx's SQLite driver, and capped reads at about 2,000/s here. They
//! change rarely, so they are cached for a short time:
//!
//! - changes made through this process invalidate at once (`forget_*`);
//! - changes made by another process (a second replica, the CLI) are seen within the
//!   configured `cache.ttl_ms` (default 1 s); `0` turns caching off.
//!
//! Personal data values and keys are never cached here: records and data keys are read
//! from the database on every access, so a crypto-shred takes effect everywhere at once.
//! Only hits are cached: an unknown token or subject is looked up again each time.
//!
//! Staleness is measured on the monotonic clock, not the injected business clock: it
//! bounds how old a copy may be, and moving the business clock in a test must not keep a
//! stale copy alive or expire a fresh one.

use quick_cache::sync::Cache;
use std::collections::BTreeMap;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tutela_core::{Purpose, SubjectId, TenantId, TokenId};

/// Purpose -> the latest time a successor controller changed it.
pub type ChangedPurposes = BTreeMap<Purpose, time::OffsetDateTime>;
use tutela_store::subjects::Subject;
use tutela_store::tenants::Tenant;
use tutela_store::tokens::Token;
use tutela_store::Store;

/// One bounded map whose entries expire `ttl` after they were loaded.
struct Expiring<K, V> {
    ttl: Duration,
    map: Option<Cache<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Expiring<K, V> {
    fn new(ttl: Duration, capacity: usize) -> Self {
        let map = (!ttl.is_zero() && capacity > 0).then(|| Cache::new(capacity));
        Self { ttl, map }
    }

    fn get(&self, key: &K) -> Option<V> {
        let (loaded, v) = self.map.as_ref()?.get(key)?;
        (loaded.elapsed() < self.ttl).then_some(v)
    }

    fn put(&self, key: K, value: V) {
        if let Some(map) = &self.map {
            map.insert(key, (Instant::now(), value));
        }
    }

    fn forget(&self, key: &K) {
        if let Some(map) = &self.map {
            map.remove(key);
        }
    }
}

/// The caches of one process.
pub struct ReadCache {
    /// Purpose -> when a successor controller last changed it (R27). One small map.
    changed_purposes: Expiring<(), Arc<ChangedPurposes>>,
    tokens: Expiring<TokenId, Token>,
    subjects: Expiring<SubjectId, Subject>,
    tenants: Expiring<TenantId, Tenant>,
}

impl std::fmt::Debug for ReadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReadCache(ttl {:?})", self.tokens.ttl)
    }
}

impl ReadCache {
    pub fn new(config: &crate::config::CacheConfig) -> Self {
        let ttl = Duration::from_millis(config.ttl_ms);
        Self {
            changed_purposes: Expiring::new(ttl, 1),
            tokens: Expiring::new(ttl, config.capacity),
            subjects: Expiring::new(ttl, config.capacity),
            tenants: Expiring::new(ttl, config.capacity),
        }
    }

    pub async fn token(&self, store: &Store, id: &TokenId) -> tutela_store::Result<Option<Token>> {
        if let Some(t) = self.tokens.get(id) {
            return Ok(Some(t));
        }
        let found = store.token(id).await?;
        if let Some(t) = &found {
            self.tokens.put(id.clone(), t.clone());
        }
        Ok(found)
    }

    pub async fn subject(
        &self,
        store: &Store,
        id: &SubjectId,
    ) -> tutela_store::Result<Option<Subject>> {
        if let Some(s) = self.subjects.get(id) {
            return Ok(Some(s));
        }
        let found = store.subject(id).await?;
        if let Some(s) = &found {
            self.subjects.put(id.clone(), s.clone());
        }
        Ok(found)
    }

    pub async fn tenant(
        &self,
        store: &Store,
        id: &TenantId,
    ) -> tutela_store::Result<Option<Tenant>> {
        if let Some(t) = self.tenants.get(id) {
            return Ok(Some(t));
        }
        let found = store.tenant(id).await?;
        if let Some(t) = &found {
            self.tenants.put(id.clone(), t.clone());
        }
        Ok(found)
    }

    /// The purposes changed by a successor controller, with the latest change time.
    pub async fn changed_purposes(
        &self,
        store: &Store,
    ) -> tutela_store::Result<Arc<ChangedPurposes>> {
        if let Some(m) = self.changed_purposes.get(&()) {
            return Ok(m);
        }
        let mut map = ChangedPurposes::new();
        for c in store.purpose_changes().await? {
            let at = map.entry(c.purpose).or_insert(c.at);
            *at = (*at).max(c.at);
        }
        let map = Arc::new(map);
        self.changed_purposes.put((), map.clone());
        Ok(map)
    }

    /// After a purpose change is recorded through this process.
    pub fn forget_changed_purposes(&self) {
        self.changed_purposes.forget(&());
    }

    /// After a token is revoked through this process.
    pub fn forget_token(&self, id: &TokenId) {
        self.tokens.forget(id);
    }

    /// After a subject changes (birth date, erasure) through this process.
    pub fn forget_subject(&self, id: &SubjectId) {
        self.subjects.forget(id);
    }

    /// After a tenant's state changes (frozen, closed, erased) through this process.
    pub fn forget_tenant(&self, id: &TenantId) {
        self.tenants.forget(id);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn entries_expire_and_can_be_forgotten() {
        let c: Expiring<u32, &str> = Expiring::new(Duration::from_millis(50), 10);
        c.put(1, "one");
        assert_eq!(c.get(&1), Some("one"));
        c.forget(&1);
        assert_eq!(c.get(&1), None);
        c.put(2, "two");
        let deadline = Instant::now() + Duration::from_millis(60);
        while Instant::now() < deadline {
            std::hint::spin_loop();
        }
        assert_eq!(c.get(&2), None, "an entry older than the ttl is not served");
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let c: Expiring<u32, &str> = Expiring::new(Duration::ZERO, 10);
        c.put(1, "one");
        assert_eq!(c.get(&1), None);
    }
}
