-- Cookie consent per website visitor (issue 4, R16). Append-only: a changed choice is a
-- new row. Strictly necessary cookies need no consent and have no column.
CREATE TABLE cookie_consents (
    id                TEXT PRIMARY KEY,
    visitor_id        TEXT NOT NULL,
    preferences       BOOLEAN NOT NULL,
    analytics         BOOLEAN NOT NULL,
    fraud_prevention  BOOLEAN NOT NULL,
    statement_version TEXT NOT NULL,
    at                BIGINT NOT NULL
);
CREATE INDEX cookie_consents_visitor ON cookie_consents(visitor_id, at, id);
