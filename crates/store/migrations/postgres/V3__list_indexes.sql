-- Every way the outbox is listed reads an index, not the table: newest first, and by
-- state newest first (ties broken by id, as the listing orders them).
CREATE INDEX outbox_newest ON outbox (created_at, id);
CREATE INDEX outbox_state_newest ON outbox (state, created_at, id);
DROP INDEX outbox_state;
