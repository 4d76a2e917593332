-- One table for the mechanics of every durable queue (River's model): which row a job
-- works on, where it stands, its lease and fence, its attempts and when it runs next.
-- The rows people look at stay in their own tables: `registrations` (formerly the
-- outbox, without its queue columns) and `webhook_events` (without `forward_*`).
--
-- kind:  'registrations' (to GoTo) or 'forwards' (GoTo's events to the user's URL).
-- id:    the row worked on (a registration id, an event key).
-- owner: whose the work is (the profile that delivers a registration); '' for none.
-- state: pending -> running (leased) -> done | failed (refused for good) | dead
--        (failing for longer than the give-up age).
-- Times are Unix milliseconds.
CREATE TABLE jobs (
    kind          TEXT NOT NULL,
    id            TEXT NOT NULL,
    owner         TEXT NOT NULL DEFAULT '',
    state         TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed', 'dead')),
    fence         INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    run_at        INTEGER NOT NULL,
    lease_until   INTEGER,
    holder        TEXT,
    failing_since INTEGER,
    last_error    TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    finished_at   INTEGER,
    PRIMARY KEY (kind, id),
    CHECK (state <> 'running' OR lease_until IS NOT NULL),
    CHECK ((state IN ('pending', 'running')) = (finished_at IS NULL))
) WITHOUT ROWID;
-- Each index holds only the jobs of one question, so its size follows the queue and
-- never the finished history: what is due, whose lease ran out, what waits (counted,
-- oldest first), what needs a person.
CREATE INDEX jobs_due ON jobs (kind, owner, run_at) WHERE state = 'pending';
CREATE INDEX jobs_lease ON jobs (kind, owner, lease_until) WHERE state = 'running';
CREATE INDEX jobs_waiting ON jobs (kind, created_at) WHERE state IN ('pending', 'running');
CREATE INDEX jobs_failed ON jobs (kind, state, created_at) WHERE state IN ('failed', 'dead');

-- Registrations as people look at them. person is "email (lower case), webinar, profile"
-- (separated by U+001F); flight is '' while the registration's job is open and its id
-- once it finished. Their one index serves both look-ups by person: a second submission
-- of the same person for the same webinar while the first is open meets it (unique) and
-- joins it instead of making a second GoTo call, and a search by email is a range of it.
CREATE TABLE registrations (
    id              TEXT PRIMARY KEY,
    profile         TEXT NOT NULL,
    webinar_key     TEXT NOT NULL,
    email           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    idempotency_key TEXT,
    source          TEXT,
    validated       INTEGER NOT NULL DEFAULT 1,
    created_at      INTEGER NOT NULL,
    person          TEXT NOT NULL,
    flight          TEXT NOT NULL DEFAULT '',
    outcome         TEXT CHECK (outcome IN ('delivered', 'already_registered')),
    registrant_key  TEXT,
    join_url        TEXT
);
CREATE UNIQUE INDEX registrations_idempotency ON registrations (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX registrations_person ON registrations (person, flight);

-- Registrations of the previous release are never joined (their flight is their id).
INSERT INTO registrations (id, profile, webinar_key, email, payload, idempotency_key, source,
        validated, created_at, person, flight, outcome, registrant_key, join_url)
    SELECT id, profile, webinar_key, email, payload, idempotency_key, source, validated,
        created_at, lower(email) || char(31) || webinar_key || char(31) || profile, id,
        CASE WHEN state IN ('delivered', 'already_registered') THEN state END,
        registrant_key, join_url
    FROM outbox;
INSERT INTO jobs (kind, id, owner, state, fence, attempts, run_at, lease_until, holder,
        failing_since, last_error, created_at, updated_at, finished_at)
    SELECT 'registrations', id, profile,
        CASE state WHEN 'delivering' THEN 'running'
                   WHEN 'delivered' THEN 'done'
                   WHEN 'already_registered' THEN 'done'
                   ELSE state END,
        fence, attempts, next_attempt_at,
        CASE WHEN state = 'delivering' THEN COALESCE(lease_until, 0) END,
        CASE WHEN state = 'delivering' THEN lease_holder END,
        failing_since, last_error, created_at, updated_at,
        CASE WHEN state IN ('pending', 'delivering') THEN NULL
             ELSE COALESCE(finished_at, updated_at) END
    FROM outbox;
DROP TABLE outbox;

INSERT INTO jobs (kind, id, owner, state, fence, attempts, run_at, lease_until,
        failing_since, last_error, created_at, updated_at, finished_at)
    SELECT 'forwards', event_key, '',
        CASE forward_state WHEN 'delivering' THEN 'running'
                           WHEN 'delivered' THEN 'done'
                           ELSE forward_state END,
        forward_fence, forward_attempts, COALESCE(forward_next_at, received_at),
        CASE WHEN forward_state = 'delivering' THEN COALESCE(forward_lease_until, 0) END,
        forward_failing_since, forward_error, received_at, received_at,
        CASE WHEN forward_state IN ('delivered', 'failed') THEN received_at END
    FROM webhook_events WHERE forward_state <> 'none';

-- webhook_events without its forwarding columns (SQLite drops a column named in a CHECK
-- only by building the table again).
CREATE TABLE webhook_events_new (
    event_key      TEXT PRIMARY KEY,
    natural_key    TEXT UNIQUE,
    event_name     TEXT NOT NULL,
    source         TEXT NOT NULL CHECK (source IN ('webhook', 'reconciliation')),
    webinar_key    TEXT,
    registrant_key TEXT,
    session_key    TEXT,
    email          TEXT,
    headers        TEXT NOT NULL,
    body           TEXT NOT NULL,
    received_at    INTEGER NOT NULL
);
INSERT INTO webhook_events_new SELECT event_key, natural_key, event_name, source, webinar_key,
        registrant_key, session_key, email, headers, body, received_at
    FROM webhook_events;
DROP TABLE webhook_events;
ALTER TABLE webhook_events_new RENAME TO webhook_events;
CREATE INDEX webhook_events_by_webinar ON webhook_events (webinar_key, event_name);
CREATE INDEX webhook_events_received ON webhook_events (received_at);
