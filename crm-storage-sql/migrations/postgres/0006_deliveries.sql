-- The delivery engine: one row per (outbox event, consumer, receiver) with its attempts
-- and state; outgoing webhook subscriptions (secrets sealed); in-app notifications.

CREATE TABLE deliveries (
    id UUID PRIMARY KEY NOT NULL,
    event_id UUID NOT NULL,
    consumer TEXT COLLATE "C" NOT NULL,
    target_id UUID,
    topic TEXT COLLATE "C" NOT NULL,
    payload JSONB NOT NULL,
    state TEXT COLLATE "C" NOT NULL,
    attempts BIGINT NOT NULL,
    available_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    delivered_at TIMESTAMPTZ,
    last_error TEXT COLLATE "C",
    last_status BIGINT,
    version BIGINT NOT NULL
);
CREATE INDEX deliveries_due_idx ON deliveries (state, available_at, id);
CREATE INDEX deliveries_target_idx ON deliveries (target_id, created_at);
CREATE INDEX deliveries_event_idx ON deliveries (event_id);

CREATE TABLE webhooks (
    id UUID PRIMARY KEY NOT NULL,
    url TEXT COLLATE "C" NOT NULL,
    events JSONB NOT NULL,
    description TEXT COLLATE "C",
    active BOOLEAN NOT NULL,
    secret TEXT COLLATE "C" NOT NULL,
    previous_secret TEXT COLLATE "C",
    previous_until TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    created_by UUID,
    version BIGINT NOT NULL
);
CREATE INDEX webhooks_active_idx ON webhooks (active, id);

CREATE TABLE notifications (
    id UUID PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL,
    event_id UUID NOT NULL,
    topic TEXT COLLATE "C" NOT NULL,
    entity_type TEXT COLLATE "C" NOT NULL,
    entity_id UUID,
    title TEXT COLLATE "C" NOT NULL,
    body TEXT COLLATE "C" NOT NULL,
    link TEXT COLLATE "C",
    created_at TIMESTAMPTZ NOT NULL,
    read_at TIMESTAMPTZ,
    version BIGINT NOT NULL
);
CREATE INDEX notifications_user_idx ON notifications (user_id, id);
