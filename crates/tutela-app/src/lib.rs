//! tutela-app: the service layer between the HTTP API (`tutela-server`), the CLI and the
//! store.
//!
//! It owns what tutela *does*, with no knowledge of HTTP: the shared [`AppState`] (store,
//! keys, clock, policy, caches, audit log and writer, outbox), opening it
//! ([`startup::open_state`]), and the use cases and queries that more than one handler or
//! command needs, each returning a typed [`Error`] that the HTTP crate maps to its
//! response shape. The background jobs (audit sealer, outbox sender, retention
//! scheduler) live here too, because they are use cases on a timer.

pub mod audit_log;
pub mod audit_writer;
pub mod cache;
pub mod config;
pub mod consents;
pub mod contact;
pub mod cookies;
pub mod deliveries;
pub mod demo;
pub mod erasure;
pub mod error;
pub mod exports;
pub mod grants;
pub mod identity_codes;
pub mod ids;
pub mod keys;
pub mod lifecycle;
pub mod metrics;
pub mod outbox;
pub mod records;
pub mod redaction;
pub mod requests;
pub mod retention_engine;
pub mod seed;
pub mod sharing;
pub mod startup;
pub mod state;
pub mod subjects;
pub mod tenants;
pub mod tokens;
pub mod witness;

pub use config::Config;
pub use error::Error;
pub use state::AppState;

/// Times as tutela writes them everywhere (responses, audit details, notices): RFC 3339.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
