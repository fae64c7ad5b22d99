-- Fulfilment of data-subject requests (issue 6; R19, R33, R34, R35).

-- After a deletion: `erased_at` when the subject's data was erased; `frozen_until` and
-- `frozen_ground` when some of it must be kept by law, frozen (R19, R33).
ALTER TABLE subjects ADD COLUMN erased_at BIGINT;
ALTER TABLE subjects ADD COLUMN frozen_until BIGINT;
ALTER TABLE subjects ADD COLUMN frozen_ground TEXT;

-- The per-recipient webhook secret (R34), sealed under the master key named by
-- `webhook_key_id`; shown to the operator once, at registration.
ALTER TABLE recipients ADD COLUMN webhook_secret BYTEA;
ALTER TABLE recipients ADD COLUMN webhook_key_id BIGINT;

-- The propagation outbox (R34): one row per (request, recipient), or per (retention
-- batch, recipient) with no request. The row id is the idempotency key sent with every
-- attempt. `body` holds ids and vocabulary only.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    request_id      TEXT REFERENCES requests(id),
    recipient_id    TEXT NOT NULL REFERENCES recipients(id),
    subject_id      TEXT,
    status          TEXT NOT NULL,
    body            TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    leased_until    BIGINT,
    last_error      TEXT,
    acked_at        BIGINT,
    waived_reason   TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (request_id, recipient_id)
);
CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);

-- One-time identity codes for requests (R35): only a keyed hash of the code is kept.
CREATE TABLE identity_challenges (
    request_id  TEXT PRIMARY KEY REFERENCES requests(id),
    channel     TEXT NOT NULL,
    code_hash   BYTEA NOT NULL,
    message_id  TEXT NOT NULL,
    attempts    BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Parameters a delivery system needs to render a message (e.g. a one-time code),
-- sealed under the subject's data key.
ALTER TABLE messages ADD COLUMN sealed_params BYTEA;
