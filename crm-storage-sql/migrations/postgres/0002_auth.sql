-- Authentication: sessions and their refresh tokens, mailed single-use tokens,
-- third-party identities. Secret tokens are stored only as SHA-256 digests.

CREATE TABLE sessions (
    id UUID PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL,
    epoch BIGINT NOT NULL,
    method TEXT COLLATE "C" NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    revoked_reason TEXT COLLATE "C",
    ip TEXT COLLATE "C",
    user_agent TEXT COLLATE "C",
    version BIGINT NOT NULL
);
CREATE TABLE refresh_tokens (
    id UUID PRIMARY KEY NOT NULL,
    session_id UUID NOT NULL,
    user_id UUID NOT NULL,
    token_hash TEXT COLLATE "C" NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ,
    version BIGINT NOT NULL
);
CREATE TABLE auth_tokens (
    id UUID PRIMARY KEY NOT NULL,
    purpose TEXT COLLATE "C" NOT NULL,
    token_hash TEXT COLLATE "C" NOT NULL,
    user_id UUID NOT NULL,
    email TEXT COLLATE "C" NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ,
    version BIGINT NOT NULL
);
CREATE TABLE identities (
    id UUID PRIMARY KEY NOT NULL,
    provider TEXT COLLATE "C" NOT NULL,
    subject TEXT COLLATE "C" NOT NULL,
    user_id UUID NOT NULL,
    email TEXT COLLATE "C",
    created_at TIMESTAMPTZ NOT NULL,
    last_login_at TIMESTAMPTZ,
    version BIGINT NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id, created_at);
CREATE UNIQUE INDEX refresh_tokens_hash_key ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);
CREATE UNIQUE INDEX auth_tokens_hash_key ON auth_tokens (token_hash);
CREATE INDEX auth_tokens_user_idx ON auth_tokens (user_id, purpose);
CREATE UNIQUE INDEX identities_provider_subject_key ON identities (provider, subject);
CREATE INDEX identities_user_idx ON identities (user_id);
CREATE INDEX outbox_events_topic_idx ON outbox_events (topic, available_at) WHERE delivered_at IS NULL;
