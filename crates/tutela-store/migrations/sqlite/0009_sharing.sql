-- Residency, recipients and the transfer register (issue 5; R6, R17, R18, R21-R25, R28).
-- Storage locations: where data may be kept; customer data only in mainland China (R6).
CREATE TABLE storage_locations (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    region     TEXT NOT NULL,
    country    TEXT NOT NULL,
    categories TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Registered recipients: only these may receive personal information (R21).
CREATE TABLE recipients (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    country        TEXT NOT NULL,
    purposes       TEXT NOT NULL,
    categories     TEXT NOT NULL,
    commitment_ref TEXT,
    policy_ref     TEXT,
    webhook_url    TEXT,
    created_at     INTEGER NOT NULL
);

-- The transfer register: every disclosure that went ahead, with its basis. Grows
-- without bound: keyed and indexed by time for partitioning.
CREATE TABLE transfers (
    id              TEXT PRIMARY KEY,
    subject_id      TEXT NOT NULL REFERENCES subjects(id),
    tenant_id       TEXT NOT NULL,
    recipient_id    TEXT NOT NULL REFERENCES recipients(id),
    recipient_kind  TEXT NOT NULL,
    country         TEXT NOT NULL,
    categories      TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    basis           TEXT NOT NULL,
    legal_ref       TEXT,
    policy_ref      TEXT,
    notice_id       TEXT,
    prohibition_ref TEXT,
    clause          TEXT NOT NULL,
    at              INTEGER NOT NULL
);
CREATE INDEX transfers_at ON transfers(at, id);
CREATE INDEX transfers_subject ON transfers(subject_id, at);
CREATE INDEX transfers_recipient ON transfers(recipient_id, at);
CREATE INDEX transfers_country ON transfers(country, at);
