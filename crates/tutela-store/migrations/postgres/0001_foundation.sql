-- Foundation: tenants, subjects and API tokens (issue 2). Times are Unix microseconds.
CREATE TABLE tenants (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    state        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    frozen_until BIGINT,
    demo_key     TEXT UNIQUE
);

CREATE TABLE subjects (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    kind       TEXT NOT NULL,
    -- Julian day on which the subject comes of age (R43); NULL when no birth date was given.
    adult_on   BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX subjects_tenant ON subjects(tenant_id, id);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    secret_hash BYTEA NOT NULL,
    role        TEXT NOT NULL,
    tenant_id   TEXT REFERENCES tenants(id),
    subject_id  TEXT REFERENCES subjects(id),
    region      TEXT NOT NULL,
    label       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
