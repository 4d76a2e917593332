-- Form builders that post sign-ups to the gateway (`/in/{name}`): which tool, which webinar
-- or series, the sealed shared secret, and the settings (the mapping of the tool's fields
-- to GoTo's, the signature header, the submission id, the address allow-list) as JSON.
-- `seen` is the tool's fields (key and label) as its latest post named them, for showing
-- the mapping against real fields.
CREATE TABLE sources (
    name       TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    target     TEXT NOT NULL,
    secret     BLOB,
    settings   TEXT NOT NULL,
    seen       TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Posts a source signed but g2w could not turn into a registration (a field missing, the
-- webinar closed): kept as they came, with the reason, until a fixed mapping replays
-- them. One per submission id of a source, so the tool's own retries are kept once.
CREATE TABLE source_posts (
    id              TEXT PRIMARY KEY,
    source          TEXT NOT NULL,
    submission_id   TEXT NOT NULL,
    received_at     INTEGER NOT NULL,
    content_type    TEXT NOT NULL,
    body            BLOB NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('needs_mapping', 'registered')),
    reason          TEXT,
    registration_id TEXT,
    updated_at      INTEGER NOT NULL,
    UNIQUE (source, submission_id)
);
CREATE INDEX source_posts_waiting ON source_posts (source, received_at)
    WHERE state = 'needs_mapping';
