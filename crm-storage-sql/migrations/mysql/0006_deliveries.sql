-- The delivery engine: one row per (outbox event, consumer, receiver) with its attempts
-- and state; outgoing webhook subscriptions (secrets sealed); in-app notifications.

CREATE TABLE `deliveries` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `event_id` BINARY(16) NOT NULL,
    `consumer` LONGTEXT NOT NULL,
    `target_id` BINARY(16),
    `topic` LONGTEXT NOT NULL,
    `payload` JSON NOT NULL,
    `state` LONGTEXT NOT NULL,
    `attempts` BIGINT NOT NULL,
    `available_at` DATETIME(6) NOT NULL,
    `created_at` DATETIME(6) NOT NULL,
    `delivered_at` DATETIME(6),
    `last_error` LONGTEXT,
    `last_status` BIGINT,
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE INDEX `deliveries_due_idx` ON `deliveries` (`state`(191), `available_at`, `id`);
CREATE INDEX `deliveries_target_idx` ON `deliveries` (`target_id`, `created_at`);
CREATE INDEX `deliveries_event_idx` ON `deliveries` (`event_id`);

CREATE TABLE `webhooks` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `url` LONGTEXT NOT NULL,
    `events` JSON NOT NULL,
    `description` LONGTEXT,
    `active` BOOLEAN NOT NULL,
    `secret` LONGTEXT NOT NULL,
    `previous_secret` LONGTEXT,
    `previous_until` DATETIME(6),
    `created_at` DATETIME(6) NOT NULL,
    `updated_at` DATETIME(6) NOT NULL,
    `created_by` BINARY(16),
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE INDEX `webhooks_active_idx` ON `webhooks` (`active`, `id`);

CREATE TABLE `notifications` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `user_id` BINARY(16) NOT NULL,
    `event_id` BINARY(16) NOT NULL,
    `topic` LONGTEXT NOT NULL,
    `entity_type` LONGTEXT NOT NULL,
    `entity_id` BINARY(16),
    `title` LONGTEXT NOT NULL,
    `body` LONGTEXT NOT NULL,
    `link` LONGTEXT,
    `created_at` DATETIME(6) NOT NULL,
    `read_at` DATETIME(6),
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE INDEX `notifications_user_idx` ON `notifications` (`user_id`, `id`);
