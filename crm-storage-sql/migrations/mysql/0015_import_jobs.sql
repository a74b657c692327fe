-- Import jobs (issue 22): a CSV or XLSX file of contacts, companies, deals or tasks,
-- its column mapping and how far its import has come; workers take them up by status.

CREATE TABLE `import_jobs` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `kind` LONGTEXT NOT NULL,
    `status` LONGTEXT NOT NULL,
    `file_name` LONGTEXT NOT NULL,
    `format` LONGTEXT NOT NULL,
    `delimiter` LONGTEXT,
    `encoding` LONGTEXT,
    `headers` JSON NOT NULL,
    `mapping` JSON NOT NULL,
    `match_by` LONGTEXT,
    `dry_run` BOOLEAN NOT NULL,
    `total_rows` BIGINT NOT NULL,
    `rows_done` BIGINT NOT NULL,
    `created` BIGINT NOT NULL,
    `updated` BIGINT NOT NULL,
    `unchanged` BIGINT NOT NULL,
    `failed` BIGINT NOT NULL,
    `batches` BIGINT NOT NULL,
    `error` LONGTEXT,
    `owner_id` BINARY(16) NOT NULL,
    `started_at` DATETIME(6),
    `started_rows` BIGINT NOT NULL,
    `finished_at` DATETIME(6),
    `lease_until` DATETIME(6),
    `attempts` BIGINT NOT NULL,
    `created_at` DATETIME(6) NOT NULL,
    `updated_at` DATETIME(6) NOT NULL,
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE INDEX `import_jobs_owner_idx` ON `import_jobs` (`owner_id`, `created_at`, `id`);
CREATE INDEX `import_jobs_status_idx` ON `import_jobs` (`status`(191), `lease_until`);
