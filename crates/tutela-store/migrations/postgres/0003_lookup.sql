-- Blind indexes (issue 3, R29): keyed HMACs of normalised e-mail addresses and phone
-- numbers, so a subject can be found without either being stored in clear. The HMAC key
-- is derived from the tenant key; rows are written and removed with their record.
CREATE TABLE subject_lookup (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    kind       TEXT NOT NULL,
    digest     BYTEA NOT NULL,
    subject_id TEXT NOT NULL REFERENCES subjects(id),
    category   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind, digest, subject_id, category)
);
CREATE INDEX subject_lookup_record ON subject_lookup(subject_id, category);
