-- GoTo's webhook events as received (raw body and headers kept), or as reconciliation
-- found them missing. `event_key` dedupes GoTo's repeats; `natural_key` dedupes the same
-- fact arriving twice by different routes (a registrant added, a registrant in a session).
-- `forward_*` is the outbox that passes them on to the user's own URL.
CREATE TABLE webhook_events (
    event_key          TEXT PRIMARY KEY,
    natural_key        TEXT UNIQUE,
    event_name         TEXT NOT NULL,
    source             TEXT NOT NULL CHECK (source IN ('webhook', 'reconciliation')),
    webinar_key        TEXT,
    registrant_key     TEXT,
    session_key        TEXT,
    email              TEXT,
    headers            TEXT NOT NULL,
    body               TEXT NOT NULL,
    received_at        INTEGER NOT NULL,
    forward_state      TEXT NOT NULL
        CHECK (forward_state IN ('none', 'pending', 'delivering', 'delivered', 'failed')),
    forward_attempts   INTEGER NOT NULL DEFAULT 0,
    forward_next_at    INTEGER,
    forward_lease_until INTEGER,
    forward_error      TEXT
);
CREATE INDEX webhook_events_by_webinar ON webhook_events (webinar_key, event_name);
CREATE INDEX webhook_events_forward_due ON webhook_events (forward_state, forward_next_at);
CREATE INDEX webhook_events_received ON webhook_events (received_at);
