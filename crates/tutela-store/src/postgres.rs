//! Everything PostgreSQL-specific: connection options, the migration tree, schema listing.

use crate::{Result, StoreError};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::time::Duration;

pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation: tenants, subjects, api tokens",
        include_str!("../migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        "vault: wrapped keys, encrypted records, audit entries",
        include_str!("../migrations/postgres/0002_vault.sql"),
    ),
    (
        3,
        "lookup: blind indexes of e-mail addresses and phone numbers",
        include_str!("../migrations/postgres/0003_lookup.sql"),
    ),
    (
        4,
        "consent: the append-only consent ledger",
        include_str!("../migrations/postgres/0004_consent.sql"),
    ),
    (
        5,
        "contact: preferences and the outbound message gate",
        include_str!("../migrations/postgres/0005_contact.sql"),
    ),
    (
        6,
        "cookie: website visitors' cookie consent",
        include_str!("../migrations/postgres/0006_cookie.sql"),
    ),
    (
        7,
        "successor: purpose changes under a new controller",
        include_str!("../migrations/postgres/0007_successor.sql"),
    ),
    (
        8,
        "grants: just-in-time support access",
        include_str!("../migrations/postgres/0008_grants.sql"),
    ),
    (
        9,
        "sharing: storage locations, recipients, the transfer register",
        include_str!("../migrations/postgres/0009_sharing.sql"),
    ),
    (
        10,
        "complaints: third-party complaints redirected to the customer",
        include_str!("../migrations/postgres/0010_complaints.sql"),
    ),
    (
        11,
        "record location: where each record is stored",
        include_str!("../migrations/postgres/0011_record_location.sql"),
    ),
    (
        12,
        "requests: data-subject requests",
        include_str!("../migrations/postgres/0012_requests.sql"),
    ),
    (
        13,
        "fulfilment: erasure, propagation outbox, one-time identity codes",
        include_str!("../migrations/postgres/0013_fulfilment.sql"),
    ),
    (
        14,
        "lifecycle: trials, closure, retention leases, anonymized aggregates, service terminations",
        include_str!("../migrations/postgres/0014_lifecycle.sql"),
    ),
    (
        15,
        "grants: explicit cover of personal information",
        include_str!("../migrations/postgres/0015_grant_personal_information.sql"),
    ),
    (
        16,
        "pii tokens: sealed originals of format-preserving tokens",
        include_str!("../migrations/postgres/0016_pii_tokens.sql"),
    ),
    (
        17,
        "least privilege: service token scopes, sealed grant reasons, incidents per tenant",
        include_str!("../migrations/postgres/0017_least_privilege.sql"),
    ),
    (
        18,
        "consents: provenance method of each ledger entry",
        include_str!("../migrations/postgres/0018_consent_provenance.sql"),
    ),
    (
        19,
        "hardening: single-use export links, sealed tenant names and waiver reasons",
        include_str!("../migrations/postgres/0019_hardening.sql"),
    ),
];

/// Advisory lock key that serialises migrations across replicas ("tutela" in ASCII).
pub(crate) const MIGRATION_LOCK: i64 = 0x7475_7465_6c61;

pub(crate) async fn connect(url: &str) -> Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(StoreError::Connect)
}

pub(crate) async fn schema_columns(pool: &PgPool) -> Result<Vec<(String, String)>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema()",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}
