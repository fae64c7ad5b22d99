-- The vault (issue 3): wrapped keys, encrypted records, audit entries.
-- Per-tenant keys wrapped by a master key (by id, so rotation can re-wrap).
CREATE TABLE tenant_keys (
    tenant_id     TEXT PRIMARY KEY REFERENCES tenants(id),
    master_key_id INTEGER NOT NULL,
    wrapped       BLOB NOT NULL
);

-- Per-subject data keys wrapped by the tenant key. Deleting a row crypto-shreds the
-- subject's fields everywhere, backups included.
CREATE TABLE subject_keys (
    subject_id TEXT PRIMARY KEY REFERENCES subjects(id),
    wrapped    BLOB NOT NULL
);

-- One row per (subject, category): every field sealed separately, packed into one blob.
CREATE TABLE records (
    subject_id TEXT NOT NULL REFERENCES subjects(id),
    category   TEXT NOT NULL,
    version    INTEGER NOT NULL,
    service    TEXT NOT NULL,
    fields     BLOB NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (subject_id, category)
);

-- Every decision, allow and deny. Never a data value: ids, vocabulary and codes only.
CREATE TABLE audit_entries (
    id          TEXT PRIMARY KEY,
    at          INTEGER NOT NULL,
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
    seq         INTEGER UNIQUE,
    leaf_hash   BLOB
);
CREATE INDEX audit_entries_subject ON audit_entries(subject_id, at);
CREATE INDEX audit_entries_unsealed ON audit_entries(at, id) WHERE seq IS NULL;

-- Signed tree heads (Ed25519 over tutela_audit::TreeHead::canonical_bytes).
CREATE TABLE audit_heads (
    size      INTEGER PRIMARY KEY,
    root      BLOB NOT NULL,
    signature BLOB NOT NULL,
    signed_at INTEGER NOT NULL
);
