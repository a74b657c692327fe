-- Email campaigns (issue 21): designs, segments, campaigns with their frozen audience
-- (one row per address), contacts' consent, and the suppression list.

CREATE TABLE `campaign_templates` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `name` LONGTEXT NOT NULL,
    `subject` LONGTEXT NOT NULL,
    `mjml` LONGTEXT NOT NULL,
    `text` LONGTEXT,
    `created_at` DATETIME(6) NOT NULL,
    `updated_at` DATETIME(6) NOT NULL,
    `created_by` BINARY(16),
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE INDEX `campaign_templates_name_idx` ON `campaign_templates` (`name`(191), `id`);

CREATE TABLE `segments` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `name` LONGTEXT NOT NULL,
    `description` LONGTEXT,
    `filter` LONGTEXT,
    `company_filter` LONGTEXT,
    `contact_ids` JSON NOT NULL,
    `created_at` DATETIME(6) NOT NULL,
    `updated_at` DATETIME(6) NOT NULL,
    `created_by` BINARY(16),
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE INDEX `segments_name_idx` ON `segments` (`name`(191), `id`);

CREATE TABLE `campaigns` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `name` LONGTEXT NOT NULL,
    `template_id` BINARY(16) NOT NULL,
    `segment_ids` JSON NOT NULL,
    `exclude_segment_ids` JSON NOT NULL,
    `from_name` LONGTEXT,
    `state` LONGTEXT NOT NULL,
    `scheduled_at` DATETIME(6),
    `started_at` DATETIME(6),
    `finished_at` DATETIME(6),
    `paused_reason` LONGTEXT,
    `frozen` BOOLEAN NOT NULL,
    `audience` BIGINT NOT NULL,
    `errors` BIGINT NOT NULL,
    `subject` LONGTEXT,
    `html` LONGTEXT,
    `text` LONGTEXT,
    `lease_until` DATETIME(6) NOT NULL,
    `created_at` DATETIME(6) NOT NULL,
    `updated_at` DATETIME(6) NOT NULL,
    `created_by` BINARY(16),
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE INDEX `campaigns_state_idx` ON `campaigns` (`state`(191), `lease_until`);

CREATE TABLE `campaign_recipients` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `campaign_id` BINARY(16) NOT NULL,
    `contact_id` BINARY(16) NOT NULL,
    `email` LONGTEXT NOT NULL,
    `state` LONGTEXT NOT NULL,
    `attempts` BIGINT NOT NULL,
    `sent_at` DATETIME(6),
    `error` LONGTEXT,
    `opened_at` DATETIME(6),
    `opens` BIGINT NOT NULL,
    `clicked_at` DATETIME(6),
    `clicks` BIGINT NOT NULL,
    `bounced_at` DATETIME(6),
    `bounce` LONGTEXT,
    `unsubscribed_at` DATETIME(6),
    `complained_at` DATETIME(6),
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE INDEX `campaign_recipients_queue_idx` ON `campaign_recipients` (`campaign_id`, `state`(191), `id`);
CREATE INDEX `campaign_recipients_contact_idx` ON `campaign_recipients` (`contact_id`, `id`);
CREATE INDEX `campaign_recipients_sent_idx` ON `campaign_recipients` (`sent_at`);

CREATE TABLE `consents` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `status` LONGTEXT NOT NULL,
    `source` LONGTEXT NOT NULL,
    `changed_at` DATETIME(6) NOT NULL,
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE INDEX `consents_status_idx` ON `consents` (`status`(191));

CREATE TABLE `suppressions` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `email` LONGTEXT NOT NULL,
    `reason` LONGTEXT NOT NULL,
    `source` LONGTEXT NOT NULL,
    `campaign_id` BINARY(16),
    `detail` LONGTEXT,
    `created_at` DATETIME(6) NOT NULL,
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE UNIQUE INDEX `suppressions_email_key` ON `suppressions` (`email`);
