-- Billing, recurring (issue 24): subscriptions of companies, each period invoiced once.

CREATE TABLE `subscriptions` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `name` LONGTEXT NOT NULL,
    `company_id` BINARY(16) NOT NULL,
    `contact_id` BINARY(16),
    `currency` LONGTEXT NOT NULL,
    `lines` JSON NOT NULL,
    `total` BIGINT NOT NULL,
    `frequency` LONGTEXT NOT NULL,
    `interval_count` BIGINT NOT NULL,
    `start_date` DATE NOT NULL,
    `end_date` DATE,
    `remaining_cycles` BIGINT,
    `cycles_billed` BIGINT NOT NULL,
    `next_run` DATE,
    `time_zone` LONGTEXT NOT NULL,
    `payment_terms` LONGTEXT NOT NULL,
    `auto_issue` BOOLEAN NOT NULL,
    `status` LONGTEXT NOT NULL,
    `last_invoice_id` BINARY(16),
    `owner_id` BINARY(16) NOT NULL,
    `team_id` BINARY(16),
    `created_at` DATETIME(6) NOT NULL,
    `updated_at` DATETIME(6) NOT NULL,
    `created_by` BINARY(16),
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE INDEX `subscriptions_due_idx` ON `subscriptions` (`status`(191), `next_run`);
CREATE INDEX `subscriptions_company_idx` ON `subscriptions` (`company_id`);
