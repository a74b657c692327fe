-- Authentication: sessions and their refresh tokens, mailed single-use tokens,
-- third-party identities. Secret tokens are stored only as SHA-256 digests.

CREATE TABLE `sessions` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `user_id` BINARY(16) NOT NULL,
    `epoch` BIGINT NOT NULL,
    `method` LONGTEXT NOT NULL,
    `created_at` DATETIME(6) NOT NULL,
    `last_used_at` DATETIME(6) NOT NULL,
    `expires_at` DATETIME(6) NOT NULL,
    `revoked_at` DATETIME(6),
    `revoked_reason` LONGTEXT,
    `ip` LONGTEXT,
    `user_agent` LONGTEXT,
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE TABLE `refresh_tokens` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `session_id` BINARY(16) NOT NULL,
    `user_id` BINARY(16) NOT NULL,
    `token_hash` LONGTEXT NOT NULL,
    `created_at` DATETIME(6) NOT NULL,
    `expires_at` DATETIME(6) NOT NULL,
    `used_at` DATETIME(6),
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE TABLE `auth_tokens` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `purpose` LONGTEXT NOT NULL,
    `token_hash` LONGTEXT NOT NULL,
    `user_id` BINARY(16) NOT NULL,
    `email` LONGTEXT NOT NULL,
    `created_at` DATETIME(6) NOT NULL,
    `expires_at` DATETIME(6) NOT NULL,
    `used_at` DATETIME(6),
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE TABLE `identities` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `provider` LONGTEXT NOT NULL,
    `subject` LONGTEXT NOT NULL,
    `user_id` BINARY(16) NOT NULL,
    `email` LONGTEXT,
    `created_at` DATETIME(6) NOT NULL,
    `last_login_at` DATETIME(6),
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE INDEX `sessions_user_idx` ON `sessions` (`user_id`, `created_at`);
CREATE UNIQUE INDEX `refresh_tokens_hash_key` ON `refresh_tokens` (`token_hash`);
CREATE INDEX `refresh_tokens_session_idx` ON `refresh_tokens` (`session_id`);
CREATE UNIQUE INDEX `auth_tokens_hash_key` ON `auth_tokens` (`token_hash`);
CREATE INDEX `auth_tokens_user_idx` ON `auth_tokens` (`user_id`, `purpose`(191));
CREATE UNIQUE INDEX `identities_provider_subject_key` ON `identities` (`provider`, `subject`);
CREATE INDEX `identities_user_idx` ON `identities` (`user_id`);
CREATE INDEX `outbox_events_topic_idx` ON `outbox_events` (`topic`(191), `available_at`);
