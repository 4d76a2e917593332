-- g2w's state on PostgreSQL: the same tables as the SQLite store, shared by every
-- gateway pointed at this database. Times are Unix milliseconds in the outbox and the
-- budget, Unix seconds elsewhere (as in SQLite).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

-- One GoTo login per profile; secret columns hold nonce || XChaCha20-Poly1305
-- ciphertext bound to their profile and column.
CREATE TABLE profiles (
    name                   TEXT PRIMARY KEY,
    client_id              TEXT NOT NULL,
    client_secret          BYTEA,
    access_token           BYTEA,
    access_expires_at      BIGINT,
    refresh_token          BYTEA,
    refresh_token_since    BIGINT,
    personal_access_token  BYTEA,
    organizer_key          TEXT,
    account_key            TEXT,
    principal              TEXT,
    reauthorization_reason TEXT,
    last_refresh_at        BIGINT,
    updated_at             BIGINT NOT NULL
);

-- Leases that serialise work across processes and machines (the token refresh).
CREATE TABLE locks (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    profile         TEXT NOT NULL,
    webinar_key     TEXT NOT NULL,
    email           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    idempotency_key TEXT,
    source          TEXT,
    state           TEXT NOT NULL CHECK (state IN
                        ('pending', 'delivering', 'delivered', 'already_registered', 'failed', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at BIGINT NOT NULL,
    lease_holder    TEXT,
    lease_until     BIGINT,
    registrant_key  TEXT,
    join_url        TEXT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    fence           BIGINT NOT NULL DEFAULT 0,
    failing_since   BIGINT,
    validated       BOOLEAN NOT NULL DEFAULT TRUE,
    CHECK (state <> 'delivering' OR (lease_holder IS NOT NULL AND lease_until IS NOT NULL)),
    CHECK ((state IN ('pending', 'delivering')) = (finished_at IS NULL))
);
CREATE UNIQUE INDEX outbox_idempotency ON outbox (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX outbox_due ON outbox (profile, next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_lease ON outbox (profile, lease_until) WHERE state = 'delivering';
CREATE INDEX outbox_state ON outbox (state, created_at);
CREATE INDEX outbox_email ON outbox (lower(email));

CREATE TABLE import_journal (
    import_id      TEXT NOT NULL,
    line           BIGINT NOT NULL,
    outcome        TEXT NOT NULL CHECK (outcome IN
                       ('registered', 'already_registered', 'invalid', 'failed')),
    registrant_key TEXT,
    join_url       TEXT,
    detail         TEXT,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (import_id, line)
);

-- Admin console sessions, by a digest of the cookie (never the cookie itself).
CREATE TABLE admin_sessions (
    digest     TEXT PRIMARY KEY,
    csrf       TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Each GoTo account's request budget (GCRA: the theoretical arrival time of the next
-- request), shared by every gateway and import run.
CREATE TABLE goto_budget (
    account TEXT PRIMARY KEY,
    tat_ms  BIGINT NOT NULL
);
