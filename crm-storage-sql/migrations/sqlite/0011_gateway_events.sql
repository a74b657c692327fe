-- Billing, online payments (issue 24): payment gateways' webhook events, each taken
-- in once and acted on once.

CREATE TABLE gateway_events (
    id BLOB PRIMARY KEY NOT NULL,
    gateway TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    object_id TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT,
    received_at INTEGER NOT NULL,
    processed_at INTEGER,
    version INTEGER NOT NULL
);
CREATE UNIQUE INDEX gateway_events_event_key ON gateway_events (gateway, event_id);
CREATE INDEX gateway_events_queue_idx ON gateway_events (state, received_at);
