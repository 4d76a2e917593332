-- Profiles: one GoTo login each. Secret columns hold nonce || XChaCha20-Poly1305
-- ciphertext, bound to their profile and column by the associated data.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE profiles (
    name                   TEXT PRIMARY KEY,
    client_id              TEXT NOT NULL,
    client_secret          BLOB,
    access_token           BLOB,
    access_expires_at      INTEGER,
    refresh_token          BLOB,
    refresh_token_since    INTEGER,
    personal_access_token  BLOB,
    organizer_key          TEXT,
    account_key            TEXT,
    principal              TEXT,
    reauthorization_reason TEXT,
    last_refresh_at        INTEGER,
    updated_at             INTEGER NOT NULL
);

-- Leases that serialise work across processes (token refresh, for now).
CREATE TABLE locks (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
