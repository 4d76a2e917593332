-- Fencing and the give-up clock.
-- fence: bumped by every claim; only the attempt holding the current value may record
--   an outcome or extend the lease, so a worker whose lease was taken over is ignored.
-- failing_since: when the current run of failed attempts began (NULL while none has
--   failed); a registration is given up only after a long enough run.
-- validated: 0 when intake could not check it against the webinar's form in time;
--   GoTo checks it at delivery.
ALTER TABLE outbox ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN failing_since INTEGER;
ALTER TABLE outbox ADD COLUMN validated INTEGER NOT NULL DEFAULT 1;
CREATE INDEX outbox_created ON outbox (profile, state, created_at);
