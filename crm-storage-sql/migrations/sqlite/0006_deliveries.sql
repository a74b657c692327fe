-- The delivery engine: one row per (outbox event, consumer, receiver) with its attempts
-- and state; outgoing webhook subscriptions (secrets sealed); in-app notifications.

CREATE TABLE deliveries (
    id BLOB PRIMARY KEY NOT NULL,
    event_id BLOB NOT NULL,
    consumer TEXT NOT NULL,
    target_id BLOB,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    available_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    delivered_at INTEGER,
    last_error TEXT,
    last_status INTEGER,
    version INTEGER NOT NULL
);
CREATE INDEX deliveries_due_idx ON deliveries (state, available_at, id);
CREATE INDEX deliveries_target_idx ON deliveries (target_id, created_at);
CREATE INDEX deliveries_event_idx ON deliveries (event_id);

CREATE TABLE webhooks (
    id BLOB PRIMARY KEY NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    description TEXT,
    active INTEGER NOT NULL,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_until INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by BLOB,
    version INTEGER NOT NULL
);
CREATE INDEX webhooks_active_idx ON webhooks (active, id);

CREATE TABLE notifications (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL,
    event_id BLOB NOT NULL,
    topic TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id BLOB,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    link TEXT,
    created_at INTEGER NOT NULL,
    read_at INTEGER,
    version INTEGER NOT NULL
);
CREATE INDEX notifications_user_idx ON notifications (user_id, id);
