-- Remembered answers of POST requests made with an Idempotency-Key.

CREATE TABLE idempotency_keys (
    id UUID PRIMARY KEY NOT NULL,
    key_hash TEXT COLLATE "C" NOT NULL,
    request_hash TEXT COLLATE "C" NOT NULL,
    status BIGINT,
    response JSONB,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX idempotency_keys_key ON idempotency_keys (key_hash);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
