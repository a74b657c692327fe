-- Slack and Microsoft Teams webhooks of users and teams (URLs sealed), one per owner and
-- provider.

CREATE TABLE `chat_channels` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `scope` LONGTEXT NOT NULL,
    `scope_id` BINARY(16) NOT NULL,
    `provider` LONGTEXT NOT NULL,
    `url` LONGTEXT NOT NULL,
    `created_at` DATETIME(6) NOT NULL,
    `updated_at` DATETIME(6) NOT NULL,
    `created_by` BINARY(16),
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE UNIQUE INDEX `chat_channels_owner_key` ON `chat_channels` (`scope_id`, `provider`);
