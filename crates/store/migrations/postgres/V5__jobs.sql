-- One table for the mechanics of every durable queue (River's model); the rows people
-- look at stay in `registrations` (formerly the outbox, without its queue columns) and
-- `webhook_events` (without `forward_*`). See the SQLite migration of the same name for
-- what each column means; the two schemas say the same.
CREATE TABLE jobs (
    kind          TEXT NOT NULL,
    id            TEXT NOT NULL,
    owner         TEXT NOT NULL DEFAULT '',
    state         TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed', 'dead')),
    fence         BIGINT NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    run_at        BIGINT NOT NULL,
    lease_until   BIGINT,
    holder        TEXT,
    failing_since BIGINT,
    last_error    TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    finished_at   BIGINT,
    PRIMARY KEY (kind, id),
    CHECK (state <> 'running' OR lease_until IS NOT NULL),
    CHECK ((state IN ('pending', 'running')) = (finished_at IS NULL))
);
CREATE INDEX jobs_due ON jobs (kind, owner, run_at) WHERE state = 'pending';
CREATE INDEX jobs_lease ON jobs (kind, owner, lease_until) WHERE state = 'running';
CREATE INDEX jobs_waiting ON jobs (kind, created_at) WHERE state IN ('pending', 'running');
CREATE INDEX jobs_failed ON jobs (kind, state, created_at) WHERE state IN ('failed', 'dead');

CREATE TABLE registrations (
    id              TEXT PRIMARY KEY,
    profile         TEXT NOT NULL,
    webinar_key     TEXT NOT NULL,
    email           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    idempotency_key TEXT,
    source          TEXT,
    validated       BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      BIGINT NOT NULL,
    -- See the SQLite migration: "email, webinar, profile", and '' or the id. Byte order
    -- (COLLATE "C"), so that a search by email is a range of the index.
    person          TEXT COLLATE "C" NOT NULL,
    flight          TEXT NOT NULL DEFAULT '',
    outcome         TEXT CHECK (outcome IN ('delivered', 'already_registered')),
    registrant_key  TEXT,
    join_url        TEXT
);
CREATE UNIQUE INDEX registrations_idempotency ON registrations (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX registrations_person ON registrations (person, flight);

INSERT INTO registrations (id, profile, webinar_key, email, payload, idempotency_key, source,
        validated, created_at, person, flight, outcome, registrant_key, join_url)
    SELECT id, profile, webinar_key, email, payload, idempotency_key, source, validated,
        created_at, lower(email) || chr(31) || webinar_key || chr(31) || profile, id,
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
DROP INDEX webhook_events_forward_due;
DROP INDEX webhook_events_forward_lease;
ALTER TABLE webhook_events DROP COLUMN forward_state, DROP COLUMN forward_attempts,
    DROP COLUMN forward_next_at, DROP COLUMN forward_lease_until, DROP COLUMN forward_error,
    DROP COLUMN forward_fence, DROP COLUMN forward_failing_since;

-- Every statement that adds jobs tells the other gateways which kinds it added, so
-- they start at once instead of at their next poll.
CREATE FUNCTION g2w_jobs_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('g2w_jobs', kind) FROM (SELECT DISTINCT kind FROM added) AS k;
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_added AFTER INSERT ON jobs REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION g2w_jobs_added();
