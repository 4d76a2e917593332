-- Outcomes of bulk-import rows, so that running the same file for the same webinar
-- again skips what is done. import_id identifies (file content, webinar).
CREATE TABLE import_journal (
    import_id      TEXT NOT NULL,
    line           INTEGER NOT NULL,
    outcome        TEXT NOT NULL,
    registrant_key TEXT,
    join_url       TEXT,
    detail         TEXT,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (import_id, line)
);
