-- crm-rs schema, MariaDB (10.6+) dialect.
-- Text is LONGTEXT in utf8mb4_nopad_bin: it compares by code point with no padding, so
-- sorting and keyset paging agree with every other backend. UUIDs are BINARY(16) (their
-- byte order is their order everywhere), times DATETIME(6) in UTC, JSON is MariaDB's JSON
-- (LONGTEXT checked by JSON_VALID). Column order matches crm-core's schema tables.
--
-- MariaDB has no partial indexes: an index over live rows only covers every row here,
-- and one unique among live rows is a unique index on a stored generated column that
-- holds the value while the row is live and NULL once it is deleted. Text key columns
-- are indexed by their first 191 characters; unique text keys use MariaDB's hash keys.

CREATE TABLE `teams` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `name` LONGTEXT NOT NULL,
    `description` LONGTEXT,
    `manager_id` BINARY(16),
    `search_text` LONGTEXT NOT NULL,
    `version` BIGINT NOT NULL,
    `created_at` DATETIME(6) NOT NULL,
    `updated_at` DATETIME(6) NOT NULL,
    `created_by` BINARY(16),
    `updated_by` BINARY(16),
    `deleted_at` DATETIME(6),
    `deleted_by` BINARY(16)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
-- Unique among live rows: a stored column holds name while the row is live.
ALTER TABLE `teams` ADD COLUMN `live_name` LONGTEXT AS (IF(`deleted_at` IS NULL, `name`, NULL)) PERSISTENT;
CREATE UNIQUE INDEX `teams_name_key` ON `teams` (`live_name`);

CREATE TABLE `users` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `username` LONGTEXT NOT NULL,
    `email` LONGTEXT NOT NULL,
    `password_hash` LONGTEXT,
    `role` LONGTEXT NOT NULL,
    `team_id` BINARY(16),
    `status` LONGTEXT NOT NULL,
    `email_verified_at` DATETIME(6),
    `suspended_until` DATETIME(6),
    `suspension_reason` LONGTEXT,
    `last_login_at` DATETIME(6),
    `failed_logins` BIGINT NOT NULL,
    `locked_until` DATETIME(6),
    `session_epoch` BIGINT NOT NULL,
    `profile_picture` LONGTEXT,
    `settings` JSON NOT NULL,
    `search_text` LONGTEXT NOT NULL,
    `version` BIGINT NOT NULL,
    `created_at` DATETIME(6) NOT NULL,
    `updated_at` DATETIME(6) NOT NULL,
    `created_by` BINARY(16),
    `updated_by` BINARY(16),
    `deleted_at` DATETIME(6),
    `deleted_by` BINARY(16)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE UNIQUE INDEX `users_username_key` ON `users` (`username`);
CREATE UNIQUE INDEX `users_email_key` ON `users` (`email`);
CREATE INDEX `users_team_idx` ON `users` (`team_id`);
CREATE INDEX `users_created_idx` ON `users` (`created_at`, `id`);

CREATE TABLE `companies` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `name` LONGTEXT NOT NULL,
    `domain` LONGTEXT,
    `industry` LONGTEXT,
    `size` BIGINT,
    `country` LONGTEXT,
    `contact_details` JSON NOT NULL,
    `owner_id` BINARY(16) NOT NULL,
    `team_id` BINARY(16),
    `custom_fields` JSON NOT NULL,
    `search_text` LONGTEXT NOT NULL,
    `version` BIGINT NOT NULL,
    `created_at` DATETIME(6) NOT NULL,
    `updated_at` DATETIME(6) NOT NULL,
    `created_by` BINARY(16),
    `updated_by` BINARY(16),
    `deleted_at` DATETIME(6),
    `deleted_by` BINARY(16)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
-- Unique among live rows: a stored column holds domain while the row is live.
ALTER TABLE `companies` ADD COLUMN `live_domain` LONGTEXT AS (IF(`deleted_at` IS NULL, `domain`, NULL)) PERSISTENT;
CREATE UNIQUE INDEX `companies_domain_key` ON `companies` (`live_domain`);
CREATE INDEX `companies_created_idx` ON `companies` (`created_at`, `id`);
CREATE INDEX `companies_name_idx` ON `companies` (`name`(191), `id`);
CREATE INDEX `companies_owner_idx` ON `companies` (`owner_id`, `created_at`);
CREATE INDEX `companies_team_idx` ON `companies` (`team_id`, `created_at`);
CREATE INDEX `companies_industry_idx` ON `companies` (`industry`(191));
CREATE INDEX `companies_deleted_idx` ON `companies` (`deleted_at`);

CREATE TABLE `contacts` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `name` LONGTEXT NOT NULL,
    `email` LONGTEXT,
    `phone_number` LONGTEXT,
    `job_title` LONGTEXT,
    `company_id` BINARY(16),
    `owner_id` BINARY(16) NOT NULL,
    `team_id` BINARY(16),
    `lead_source` LONGTEXT,
    `lifecycle_stage` LONGTEXT NOT NULL,
    `converted_at` DATETIME(6),
    `tags` JSON NOT NULL,
    `preferences` JSON NOT NULL,
    `social` JSON NOT NULL,
    `address` JSON NOT NULL,
    `custom_fields` JSON NOT NULL,
    `search_text` LONGTEXT NOT NULL,
    `version` BIGINT NOT NULL,
    `created_at` DATETIME(6) NOT NULL,
    `updated_at` DATETIME(6) NOT NULL,
    `created_by` BINARY(16),
    `updated_by` BINARY(16),
    `deleted_at` DATETIME(6),
    `deleted_by` BINARY(16)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
-- Unique among live rows: a stored column holds email while the row is live.
ALTER TABLE `contacts` ADD COLUMN `live_email` LONGTEXT AS (IF(`deleted_at` IS NULL, `email`, NULL)) PERSISTENT;
CREATE UNIQUE INDEX `contacts_email_key` ON `contacts` (`live_email`);
CREATE INDEX `contacts_created_idx` ON `contacts` (`created_at`, `id`);
CREATE INDEX `contacts_updated_idx` ON `contacts` (`updated_at`, `id`);
CREATE INDEX `contacts_name_idx` ON `contacts` (`name`(191), `id`);
CREATE INDEX `contacts_stage_idx` ON `contacts` (`lifecycle_stage`(191), `created_at`, `id`);
-- "Customers A to Z": a stage filter with a name sort is an ordered range scan.
CREATE INDEX `contacts_stage_name_idx` ON `contacts` (`lifecycle_stage`(191), `name`(191), `id`);
CREATE INDEX `contacts_owner_idx` ON `contacts` (`owner_id`, `created_at`, `id`);
CREATE INDEX `contacts_team_idx` ON `contacts` (`team_id`, `created_at`, `id`);
CREATE INDEX `contacts_company_idx` ON `contacts` (`company_id`);
-- contacts_tags_idx (over the elements of tags): MariaDB has no such index.
CREATE INDEX `contacts_deleted_idx` ON `contacts` (`deleted_at`);

CREATE TABLE `deals` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `name` LONGTEXT NOT NULL,
    `description` LONGTEXT,
    `amount` BIGINT,
    `currency` LONGTEXT NOT NULL,
    `stage` LONGTEXT NOT NULL,
    `probability` BIGINT NOT NULL,
    `expected_close_date` DATE,
    `closed_at` DATETIME(6),
    `stage_changed_at` DATETIME(6) NOT NULL,
    `contact_ids` JSON NOT NULL,
    `company_id` BINARY(16),
    `owner_id` BINARY(16) NOT NULL,
    `team_id` BINARY(16),
    `products` JSON NOT NULL,
    `notes` LONGTEXT,
    `lost_reason` LONGTEXT,
    `search_text` LONGTEXT NOT NULL,
    `version` BIGINT NOT NULL,
    `created_at` DATETIME(6) NOT NULL,
    `updated_at` DATETIME(6) NOT NULL,
    `created_by` BINARY(16),
    `updated_by` BINARY(16),
    `deleted_at` DATETIME(6),
    `deleted_by` BINARY(16)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE INDEX `deals_created_idx` ON `deals` (`created_at`, `id`);
CREATE INDEX `deals_stage_idx` ON `deals` (`stage`(191), `created_at`, `id`);
CREATE INDEX `deals_close_idx` ON `deals` (`expected_close_date`);
CREATE INDEX `deals_amount_idx` ON `deals` (`amount`);
CREATE INDEX `deals_owner_idx` ON `deals` (`owner_id`, `created_at`, `id`);
CREATE INDEX `deals_team_idx` ON `deals` (`team_id`, `created_at`, `id`);
CREATE INDEX `deals_company_idx` ON `deals` (`company_id`);
-- "The deals of this contact": membership tests (`contact_ids @> [id]`) use it.
-- deals_contacts_idx (over the elements of contact_ids): MariaDB has no such index.
CREATE INDEX `deals_deleted_idx` ON `deals` (`deleted_at`);

CREATE TABLE `deal_stage_history` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `deal_id` BINARY(16) NOT NULL,
    `from_stage` LONGTEXT,
    `to_stage` LONGTEXT NOT NULL,
    `changed_at` DATETIME(6) NOT NULL,
    `changed_by` BINARY(16)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE INDEX `deal_stage_history_deal_idx` ON `deal_stage_history` (`deal_id`, `changed_at`);

CREATE TABLE `tasks` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `name` LONGTEXT NOT NULL,
    `description` LONGTEXT,
    `due_date` DATETIME(6),
    `priority` LONGTEXT NOT NULL,
    `status` LONGTEXT NOT NULL,
    `assigned_user` BINARY(16),
    `related_type` LONGTEXT,
    `related_id` BINARY(16),
    `completed_at` DATETIME(6),
    `owner_id` BINARY(16) NOT NULL,
    `team_id` BINARY(16),
    `search_text` LONGTEXT NOT NULL,
    `version` BIGINT NOT NULL,
    `created_at` DATETIME(6) NOT NULL,
    `updated_at` DATETIME(6) NOT NULL,
    `created_by` BINARY(16),
    `updated_by` BINARY(16),
    `deleted_at` DATETIME(6),
    `deleted_by` BINARY(16)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE INDEX `tasks_created_idx` ON `tasks` (`created_at`, `id`);
CREATE INDEX `tasks_due_idx` ON `tasks` (`due_date`);
CREATE INDEX `tasks_status_idx` ON `tasks` (`status`(191), `due_date`);
CREATE INDEX `tasks_owner_idx` ON `tasks` (`owner_id`, `created_at`, `id`);
CREATE INDEX `tasks_assignee_idx` ON `tasks` (`assigned_user`, `created_at`, `id`);
CREATE INDEX `tasks_team_idx` ON `tasks` (`team_id`, `created_at`, `id`);
CREATE INDEX `tasks_related_idx` ON `tasks` (`related_id`);

CREATE TABLE `interactions` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `contact_id` BINARY(16) NOT NULL,
    `deal_id` BINARY(16),
    `kind` LONGTEXT NOT NULL,
    `occurred_at` DATETIME(6) NOT NULL,
    `subject` LONGTEXT,
    `body` LONGTEXT,
    `owner_id` BINARY(16) NOT NULL,
    `team_id` BINARY(16),
    `search_text` LONGTEXT NOT NULL,
    `version` BIGINT NOT NULL,
    `created_at` DATETIME(6) NOT NULL,
    `updated_at` DATETIME(6) NOT NULL,
    `created_by` BINARY(16),
    `updated_by` BINARY(16),
    `deleted_at` DATETIME(6),
    `deleted_by` BINARY(16)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE INDEX `interactions_contact_idx` ON `interactions` (`contact_id`, `occurred_at`);
CREATE INDEX `interactions_created_idx` ON `interactions` (`created_at`, `id`);
CREATE INDEX `interactions_owner_idx` ON `interactions` (`owner_id`, `created_at`, `id`);
CREATE INDEX `interactions_deal_idx` ON `interactions` (`deal_id`);

CREATE TABLE `audit_events` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `seq` BIGINT NOT NULL,
    `at` DATETIME(6) NOT NULL,
    `actor_id` BINARY(16),
    `actor_role` LONGTEXT,
    `action` LONGTEXT NOT NULL,
    `entity_type` LONGTEXT NOT NULL,
    `entity_id` BINARY(16),
    `changes` JSON NOT NULL,
    `request` JSON NOT NULL,
    `prev_hash` LONGTEXT NOT NULL,
    `hash` LONGTEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE UNIQUE INDEX `audit_events_seq_key` ON `audit_events` (`seq`);
CREATE INDEX `audit_events_entity_idx` ON `audit_events` (`entity_id`, `seq`);
CREATE INDEX `audit_events_actor_idx` ON `audit_events` (`actor_id`, `seq`);

CREATE TABLE `audit_head` (
    `id` INTEGER PRIMARY KEY CHECK (id = 1),
    `seq` BIGINT NOT NULL,
    `hash` LONGTEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
INSERT INTO `audit_head` (`id`, `seq`, `hash`) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE `outbox_events` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `topic` LONGTEXT NOT NULL,
    `entity_type` LONGTEXT NOT NULL,
    `entity_id` BINARY(16),
    `payload` JSON NOT NULL,
    `created_at` DATETIME(6) NOT NULL,
    `available_at` DATETIME(6) NOT NULL,
    `attempts` BIGINT NOT NULL,
    `delivered_at` DATETIME(6),
    `last_error` LONGTEXT,
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE INDEX `outbox_events_pending_idx` ON `outbox_events` (`available_at`, `id`);
