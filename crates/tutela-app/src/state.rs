//! The shared state every handler sees.

use crate::config::Config;
use crate::metrics::Metrics;
use std::sync::Arc;
use tutela_core::{Clock, Policy};
use tutela_store::Store;

/// Cheap to clone: everything inside is shared.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub policy: Arc<Policy>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
    pub vault: Arc<crate::keys::Vault>,
    pub audit: Arc<crate::audit_log::AuditLog>,
    /// Tokens, subjects and tenants for the read path (never personal data values).
    pub cache: Arc<crate::cache::ReadCache>,
    /// Group commit for the audit entries of reads and denials.
    pub audit_writer: crate::audit_writer::AuditWriter,
    /// Wakes the outbox sender when new notices are queued (R34).
    pub outbox_wake: Arc<tokio::sync::Notify>,
}
