-- Every way the outbox is listed reads an index, not the table: newest first, by state
-- (newest first), and by email whatever its case.
CREATE INDEX outbox_newest ON outbox (created_at, id);
CREATE INDEX outbox_state_newest ON outbox (state, created_at, id);
CREATE INDEX outbox_email_lower ON outbox (lower(email));
DROP INDEX outbox_email;
