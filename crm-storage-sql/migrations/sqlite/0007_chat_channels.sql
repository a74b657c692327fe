-- Slack and Microsoft Teams webhooks of users and teams (URLs sealed), one per owner and
-- provider.

CREATE TABLE chat_channels (
    id BLOB PRIMARY KEY NOT NULL,
    scope TEXT NOT NULL,
    scope_id BLOB NOT NULL,
    provider TEXT NOT NULL,
    url TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by BLOB,
    version INTEGER NOT NULL
);
CREATE UNIQUE INDEX chat_channels_owner_key ON chat_channels (scope_id, provider);
