-- Remembered answers of POST requests made with an Idempotency-Key.

CREATE TABLE idempotency_keys (
    id BLOB PRIMARY KEY NOT NULL,
    key_hash TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER,
    response TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE UNIQUE INDEX idempotency_keys_key ON idempotency_keys (key_hash);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
