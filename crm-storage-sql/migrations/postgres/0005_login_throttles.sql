-- Failed sign-ins counted per login name and per (login name, client address), in the
-- store so that every replica and restart sees them (the keys are SHA-256 digests).

CREATE TABLE login_throttles (
    id UUID PRIMARY KEY NOT NULL,
    key_hash TEXT COLLATE "C" NOT NULL,
    failures BIGINT NOT NULL,
    last_failure_at TIMESTAMPTZ NOT NULL,
    blocked_until TIMESTAMPTZ,
    expires_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX login_throttles_key ON login_throttles (key_hash);
CREATE INDEX login_throttles_expires_idx ON login_throttles (expires_at);
