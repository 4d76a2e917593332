-- The registration outbox: every landing-page submission, written before it is
-- answered, then delivered to GoTo. Times are Unix milliseconds.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    profile         TEXT NOT NULL,
    webinar_key     TEXT NOT NULL,
    email           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    idempotency_key TEXT,
    source          TEXT,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_holder    TEXT,
    lease_until     INTEGER,
    registrant_key  TEXT,
    join_url        TEXT,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    finished_at     INTEGER
);

CREATE UNIQUE INDEX outbox_idempotency ON outbox (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX outbox_due ON outbox (profile, state, next_attempt_at);
CREATE INDEX outbox_lease ON outbox (profile, state, lease_until);
CREATE INDEX outbox_email ON outbox (email);
