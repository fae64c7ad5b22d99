-- Data-subject requests (issue 6; R26, R33, R35, R36, R45). Free text (details, the
-- tenant's instruction, the response) may hold personal data: it is sealed under the
-- subject's data key like record fields. Every transition is also an audit entry.
CREATE TABLE requests (
    id                  TEXT PRIMARY KEY,
    subject_id          TEXT NOT NULL REFERENCES subjects(id),
    tenant_id           TEXT NOT NULL,
    type                TEXT NOT NULL,
    status              TEXT NOT NULL,
    filed_by            TEXT NOT NULL,
    filed_role          TEXT NOT NULL,
    received_at         INTEGER NOT NULL,
    due_at              INTEGER NOT NULL,
    confirmed           INTEGER NOT NULL,
    extended            INTEGER NOT NULL,
    sealed_text         BLOB,
    verification_method TEXT,
    verification_ref    TEXT,
    refusal_ground      TEXT,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX requests_open ON requests(status, due_at);
CREATE INDEX requests_subject ON requests(subject_id, received_at);
