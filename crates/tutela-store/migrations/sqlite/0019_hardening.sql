-- Issue 14 hardening (R29, R33, R35).
-- Access-export download links are single use: each prepared link is a row, consumed
-- (used_at set) in the transaction that audits the download, so two downloads of one
-- link cannot both succeed.
CREATE TABLE export_links (
    id          TEXT PRIMARY KEY,
    request_id  TEXT NOT NULL REFERENCES requests(id),
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    used_by     TEXT
);
CREATE INDEX export_links_request ON export_links(request_id);
-- A tenant's display name (a person's name for an individual tenant) sealed under the
-- tenant key. `name` keeps '' for sealed rows; rows written before this version are
-- re-sealed once at start-up (`tenant_names::reseal_legacy`).
ALTER TABLE tenants ADD COLUMN name_sealed BLOB;
-- The officer's free-text reason for waiving a recipient's acknowledgement, sealed under
-- the tenant key. Older rows keep their clear `waived_reason` and are read as they are.
ALTER TABLE deliveries ADD COLUMN waived_reason_sealed BLOB;
