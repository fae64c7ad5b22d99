-- The consent ledger (issue 4; R4, R18, R22, R25, R43). Append-only: tutela never
-- updates or deletes a row; a withdrawal is a new row. The current state per scope is
-- derived (latest entry wins). Every row also has an audit entry.
CREATE TABLE consents (
    id                TEXT PRIMARY KEY,
    subject_id        TEXT NOT NULL REFERENCES subjects(id),
    scope             TEXT NOT NULL,
    granted           BOOLEAN NOT NULL,
    statement_version TEXT NOT NULL,
    channel           TEXT NOT NULL,
    token_id          TEXT NOT NULL,
    role              TEXT NOT NULL,
    guardian_ref      TEXT,
    evidence_ref      TEXT,
    at                BIGINT NOT NULL
);
CREATE INDEX consents_subject ON consents(subject_id, at, id);
