-- Authentication: sessions and their refresh tokens, mailed single-use tokens,
-- third-party identities. Secret tokens are stored only as SHA-256 digests.

CREATE TABLE sessions (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL,
    epoch INTEGER NOT NULL,
    method TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    revoked_reason TEXT,
    ip TEXT,
    user_agent TEXT,
    version INTEGER NOT NULL
);
CREATE TABLE refresh_tokens (
    id BLOB PRIMARY KEY NOT NULL,
    session_id BLOB NOT NULL,
    user_id BLOB NOT NULL,
    token_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    version INTEGER NOT NULL
);
CREATE TABLE auth_tokens (
    id BLOB PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    user_id BLOB NOT NULL,
    email TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    version INTEGER NOT NULL
);
CREATE TABLE identities (
    id BLOB PRIMARY KEY NOT NULL,
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id BLOB NOT NULL,
    email TEXT,
    created_at INTEGER NOT NULL,
    last_login_at INTEGER,
    version INTEGER NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id, created_at);
CREATE UNIQUE INDEX refresh_tokens_hash_key ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);
CREATE UNIQUE INDEX auth_tokens_hash_key ON auth_tokens (token_hash);
CREATE INDEX auth_tokens_user_idx ON auth_tokens (user_id, purpose);
CREATE UNIQUE INDEX identities_provider_subject_key ON identities (provider, subject);
CREATE INDEX identities_user_idx ON identities (user_id);
CREATE INDEX outbox_events_topic_idx ON outbox_events (topic, available_at) WHERE delivered_at IS NULL;
