-- Slack and Microsoft Teams webhooks of users and teams (URLs sealed), one per owner and
-- provider.

CREATE TABLE chat_channels (
    id UUID PRIMARY KEY NOT NULL,
    scope TEXT COLLATE "C" NOT NULL,
    scope_id UUID NOT NULL,
    provider TEXT COLLATE "C" NOT NULL,
    url TEXT COLLATE "C" NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    created_by UUID,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX chat_channels_owner_key ON chat_channels (scope_id, provider);
