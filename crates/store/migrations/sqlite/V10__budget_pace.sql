-- The GoTo budget also keeps what GoTo asked for, for every process booking from it:
-- held_until_ms: nothing is sent for the account before this (GoTo's Retry-After);
-- pace_permille:  the share of the configured rate allowed right after the last cut
--                 (a 429 without Retry-After halves it), recovering from cut_at_ms on;
-- wait_ms:        the wait the latest booking was given (returned by the booking).
ALTER TABLE goto_budget ADD COLUMN held_until_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE goto_budget ADD COLUMN pace_permille INTEGER NOT NULL DEFAULT 1000;
ALTER TABLE goto_budget ADD COLUMN cut_at_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE goto_budget ADD COLUMN wait_ms INTEGER NOT NULL DEFAULT 0;
