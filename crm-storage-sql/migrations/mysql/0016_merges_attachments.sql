-- Contact merges (issue 22): which contacts were folded into which and every value the
-- merge changed, kept for undo; and files attached to contacts, companies, deals, tasks.

CREATE TABLE `contact_merges` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `survivor_id` BINARY(16) NOT NULL,
    `merged_ids` JSON NOT NULL,
    `sources` JSON NOT NULL,
    `survivor_before` JSON NOT NULL,
    `survivor_after` JSON NOT NULL,
    `relinked_counts` JSON NOT NULL,
    `relinks` JSON NOT NULL,
    `merged_by` BINARY(16) NOT NULL,
    `created_at` DATETIME(6) NOT NULL,
    `undone_at` DATETIME(6),
    `undone_by` BINARY(16),
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE INDEX `contact_merges_survivor_idx` ON `contact_merges` (`survivor_id`, `created_at`);
-- contact_merges_merged_idx (over the elements of merged_ids): MariaDB has no such index.

CREATE TABLE `attachments` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `parent_type` LONGTEXT NOT NULL,
    `parent_id` BINARY(16) NOT NULL,
    `file_name` LONGTEXT NOT NULL,
    `content_type` LONGTEXT NOT NULL,
    `size` BIGINT NOT NULL,
    `sha256` LONGTEXT NOT NULL,
    `uploaded_by` BINARY(16),
    `created_at` DATETIME(6) NOT NULL,
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE INDEX `attachments_parent_idx` ON `attachments` (`parent_id`, `created_at`, `id`);
CREATE INDEX `attachments_uploader_idx` ON `attachments` (`uploaded_by`);
