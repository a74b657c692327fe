-- Saved reports: a standard report with its parameters or a custom report's spec, with
-- an owner, sharing (users, teams, roles as JSON arrays) and an optional chart.

CREATE TABLE `saved_reports` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `name` LONGTEXT NOT NULL,
    `description` LONGTEXT,
    `standard` LONGTEXT,
    `parameters` JSON NOT NULL,
    `spec` JSON,
    `chart` JSON,
    `shared_users` JSON NOT NULL,
    `shared_teams` JSON NOT NULL,
    `shared_roles` JSON NOT NULL,
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
CREATE INDEX `saved_reports_created_idx` ON `saved_reports` (`created_at`, `id`);
CREATE INDEX `saved_reports_owner_idx` ON `saved_reports` (`owner_id`, `created_at`, `id`);
CREATE INDEX `saved_reports_team_idx` ON `saved_reports` (`team_id`);
-- "Reports shared with me": membership tests (`shared_users @> [id]`) use them.
-- saved_reports_shared_users_idx (over the elements of shared_users): MariaDB has no such index.
-- saved_reports_shared_teams_idx (over the elements of shared_teams): MariaDB has no such index.
