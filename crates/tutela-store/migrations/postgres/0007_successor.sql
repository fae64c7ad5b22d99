-- Purpose changes by a successor controller after a merger, acquisition or
-- reorganisation (issue 4, R27). While a change stands, use of personal data for that
-- purpose needs each subject's consent given after the change. Append-only.
CREATE TABLE purpose_changes (
    id         TEXT PRIMARY KEY,
    purpose    TEXT NOT NULL,
    controller TEXT NOT NULL,
    reason     TEXT NOT NULL,
    notice_ref TEXT,
    at         BIGINT NOT NULL
);
CREATE INDEX purpose_changes_purpose ON purpose_changes(purpose, at);

-- The latest consent entry of one scope for one subject, read with a record (R4).
CREATE INDEX consents_subject_scope ON consents(subject_id, scope, at, id);
