-- Account lifecycle and retention (issue 7; R19, R20, R41).

-- When a trial ends (R41) and when the account was closed (R19).
ALTER TABLE tenants ADD COLUMN trial_ends_at INTEGER;
ALTER TABLE tenants ADD COLUMN closed_at INTEGER;

-- The retention engine leases subjects it works on, so two replicas never process the
-- same subject; a crashed run's lease simply expires.
ALTER TABLE subjects ADD COLUMN retention_lease_until INTEGER;
ALTER TABLE subjects ADD COLUMN retention_lease_owner TEXT;
CREATE INDEX subjects_frozen ON subjects(frozen_until) WHERE frozen_until IS NOT NULL;
-- The engine walks a tenant's live subjects in id order; erased ones must not be rescanned.
CREATE INDEX subjects_live ON subjects(tenant_id, id) WHERE erased_at IS NULL;
-- Erasure clears a subject's sealed message parameters.
CREATE INDEX messages_subject ON messages(subject_id);
CREATE INDEX records_service ON records(service, subject_id);

-- What anonymization leaves (R19): counts per category, service, month and a generalized
-- attribute from a closed list. No subject, tenant or value can be read back from it.
CREATE TABLE anonymized_aggregates (
    category  TEXT NOT NULL,
    service   TEXT NOT NULL,
    period    TEXT NOT NULL,
    attribute TEXT NOT NULL,
    value     TEXT NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (category, service, period, attribute, value)
);

-- Service terminations (R20): announced to affected tenants, then the service's
-- personal information is deleted or anonymized after the effective date.
CREATE TABLE service_terminations (
    service      TEXT PRIMARY KEY,
    effective_at INTEGER NOT NULL,
    announced_at INTEGER NOT NULL,
    finished_at  INTEGER
);

-- Portal announcements to a tenant's administrators (R20).
CREATE TABLE announcements (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    effective_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX announcements_tenant ON announcements(tenant_id, created_at);
