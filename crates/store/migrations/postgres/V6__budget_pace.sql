-- What GoTo asked of the account, kept for every process booking from its budget (see
-- the SQLite migration of the same name).
ALTER TABLE goto_budget ADD COLUMN held_until_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE goto_budget ADD COLUMN pace_permille INTEGER NOT NULL DEFAULT 1000;
ALTER TABLE goto_budget ADD COLUMN cut_at_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE goto_budget ADD COLUMN wait_ms BIGINT NOT NULL DEFAULT 0;
