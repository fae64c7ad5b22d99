-- Just-in-time support access (issue 5; R7, R22). The stored state is pending, active,
-- denied or ended; expiry follows from pending_until / expires_at and the clock.
CREATE TABLE grants (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    incident         TEXT NOT NULL,
    categories       TEXT NOT NULL,
    reason           TEXT NOT NULL,
    duration_minutes INTEGER NOT NULL,
    requested_by     TEXT NOT NULL,
    requested_at     INTEGER NOT NULL,
    pending_until    INTEGER NOT NULL,
    state            TEXT NOT NULL,
    decided_by       TEXT,
    decided_at       INTEGER,
    expires_at       INTEGER,
    ended_at         INTEGER
);
CREATE INDEX grants_tenant ON grants(tenant_id, state);
CREATE INDEX grants_incident ON grants(incident, state);

-- Accesses made under a grant are audited with reason 'grant:<id>'; the customer lists
-- them by that reason.
CREATE INDEX audit_entries_reason ON audit_entries(reason, at);
