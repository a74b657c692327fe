-- Billing, online payments (issue 24): payment gateways' webhook events, each taken
-- in once and acted on once.

CREATE TABLE gateway_events (
    id UUID PRIMARY KEY NOT NULL,
    gateway TEXT COLLATE "C" NOT NULL,
    event_id TEXT COLLATE "C" NOT NULL,
    event_type TEXT COLLATE "C" NOT NULL,
    object_id TEXT COLLATE "C",
    state TEXT COLLATE "C" NOT NULL,
    attempts BIGINT NOT NULL,
    error TEXT COLLATE "C",
    received_at TIMESTAMPTZ NOT NULL,
    processed_at TIMESTAMPTZ,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX gateway_events_event_key ON gateway_events (gateway, event_id);
CREATE INDEX gateway_events_queue_idx ON gateway_events (state, received_at);
