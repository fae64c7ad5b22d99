-- Format-preserving PII tokens handed out by POST /v1/redact (issue 8; R13): the
-- original of each, sealed under the tenant key, found by a keyed digest of the token.
CREATE TABLE pii_tokens (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    token_digest BYTEA NOT NULL,
    kind         TEXT NOT NULL,
    sealed_value BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, token_digest)
);
