-- Forwarding runs on the same engine as deliveries: a fencing token bumped by every
-- claim, a give-up clock, and expired leases found by index.
ALTER TABLE webhook_events ADD COLUMN forward_fence INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhook_events ADD COLUMN forward_failing_since INTEGER;
CREATE INDEX webhook_events_forward_lease ON webhook_events (forward_state, forward_lease_until);
