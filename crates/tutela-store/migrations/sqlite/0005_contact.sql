-- Contact preferences and the outbound message gate (issue 4; R9, R15).
-- One row per (subject, topic, channel); a missing row means "off". Every change is
-- also an audit entry, which keeps the history.
CREATE TABLE contact_preferences (
    subject_id TEXT NOT NULL REFERENCES subjects(id),
    topic      TEXT NOT NULL,
    channel    TEXT NOT NULL,
    allowed    INTEGER NOT NULL,
    source     TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (subject_id, topic, channel)
);

-- Every message that passed the send gate, sent or suppressed. Delivery systems take
-- the queued ones; the template is an id, never rendered content.
CREATE TABLE messages (
    id         TEXT PRIMARY KEY,
    subject_id TEXT NOT NULL REFERENCES subjects(id),
    kind       TEXT NOT NULL,
    channel    TEXT NOT NULL,
    template   TEXT NOT NULL,
    status     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    clause     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX messages_status ON messages(status, created_at, id);
