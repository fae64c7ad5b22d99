-- The vault (issue 3): wrapped keys, encrypted records, audit entries.
-- Per-tenant keys wrapped by a master key (by id, so rotation can re-wrap).
CREATE TABLE tenant_keys (
    tenant_id     TEXT PRIMARY KEY REFERENCES tenants(id),
    master_key_id BIGINT NOT NULL,
    wrapped       BYTEA NOT NULL
);

-- Per-subject data keys wrapped by the tenant key. Deleting a row crypto-shreds the
-- subject's fields everywhere, backups included.
CREATE TABLE subject_keys (
    subject_id TEXT PRIMARY KEY REFERENCES subjects(id),
    wrapped    BYTEA NOT NULL
);

-- One row per (subject, category): every field sealed separately, packed into one blob.
CREATE TABLE records (
    subject_id TEXT NOT NULL REFERENCES subjects(id),
    category   TEXT NOT NULL,
    version    BIGINT NOT NULL,
    service    TEXT NOT NULL,
    fields     BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (subject_id, category)
);

-- Every decision, allow and deny. Never a data value: ids, vocabulary and codes only.
CREATE TABLE audit_entries (
    id          TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    token_id    TEXT NOT NULL,
    role        TEXT NOT NULL,
    tenant_id   TEXT,
    subject_id  TEXT,
    category    TEXT,
    purpose     TEXT,
    action      TEXT NOT NULL,
    decision    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    clause      TEXT,
    -- Assigned by the sealer, in (at, id) order: the entry's index in the Merkle tree,
    -- and its leaf hash H(0x00 || canonical entry).
    seq         BIGINT UNIQUE,
    leaf_hash   BYTEA
);
CREATE INDEX audit_entries_subject ON audit_entries(subject_id, at);
CREATE INDEX audit_entries_unsealed ON audit_entries(at, id) WHERE seq IS NULL;

-- Signed tree heads (Ed25519 over tutela_audit::TreeHead::canonical_bytes).
CREATE TABLE audit_heads (
    size      BIGINT PRIMARY KEY,
    root      BYTEA NOT NULL,
    signature BYTEA NOT NULL,
    signed_at BIGINT NOT NULL
);
