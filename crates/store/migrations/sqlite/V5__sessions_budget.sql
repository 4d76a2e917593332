-- Admin console sessions, by a digest of the cookie (never the cookie itself), so a
-- restart keeps people signed in.
CREATE TABLE admin_sessions (
    digest     TEXT PRIMARY KEY,
    csrf       TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Each GoTo account's request budget (GCRA: the theoretical arrival time of the next
-- request, Unix ms), shared by the gateway and import runs on this machine.
CREATE TABLE goto_budget (
    account TEXT PRIMARY KEY,
    tat_ms  INTEGER NOT NULL
);
