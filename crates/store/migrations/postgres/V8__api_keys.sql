-- Keys that let other programs use g2w's logins (a token hand-out, the pass-through to
-- GoTo, server-to-server registration). Only a digest of a key is kept; `prefix` is its
-- public part, shown in lists and looked up first. Organizers and scopes are
-- comma-separated. A revoked key stays listed (and audited) with when it was revoked.
CREATE TABLE api_keys (
    prefix       TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    digest       BYTEA NOT NULL,
    organizers   TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    expires_at   BIGINT,
    revoked_at   BIGINT
);

-- Every hand-out and pass-through call: who, for which organizer, from where, what
-- (method and path), the answer's status, and for a hand-out a fingerprint of the token
-- and when it expires. Never a token.
CREATE TABLE key_audit (
    id                BIGSERIAL PRIMARY KEY,
    at                BIGINT NOT NULL,
    key_name          TEXT NOT NULL,
    key_prefix        TEXT NOT NULL,
    organizer         TEXT NOT NULL,
    caller            TEXT NOT NULL,
    action            TEXT NOT NULL,
    method            TEXT,
    path              TEXT,
    status            BIGINT NOT NULL,
    token_fingerprint TEXT,
    token_expires_at  BIGINT
);
CREATE INDEX key_audit_at ON key_audit (at);

-- The scope GoTo granted the login's token, for the hand-out to say; and the GoTo the
-- login was made against (its auth and API servers), used when none is configured.
ALTER TABLE profiles ADD COLUMN scope TEXT;
ALTER TABLE profiles ADD COLUMN auth_url TEXT;
ALTER TABLE profiles ADD COLUMN api_url TEXT;

-- The console's pictures of a webinar (sign-ups per day, what g2w delivered since GoTo's
-- count) read one webinar's registrations, at any size of history.
CREATE INDEX registrations_by_webinar ON registrations (webinar_key, created_at);
-- What was delivered since a moment (GoTo's count plus g2w's since) reads only the jobs
-- finished since then.
CREATE INDEX jobs_finished ON jobs (kind, finished_at) WHERE finished_at IS NOT NULL;
