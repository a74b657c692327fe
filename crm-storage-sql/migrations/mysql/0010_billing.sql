-- Billing (issue 24): the product catalogue, the seller's details, gapless number
-- sequences, quotes, invoices and credit notes, payments and refunds.

CREATE TABLE `products` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `sku` LONGTEXT NOT NULL,
    `name` LONGTEXT NOT NULL,
    `description` LONGTEXT,
    `unit_price` BIGINT NOT NULL,
    `currency` LONGTEXT NOT NULL,
    `tax_percent` JSON NOT NULL,
    `unit` LONGTEXT,
    `active` BOOLEAN NOT NULL,
    `created_at` DATETIME(6) NOT NULL,
    `updated_at` DATETIME(6) NOT NULL,
    `version` BIGINT NOT NULL,
    `search_text` LONGTEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE UNIQUE INDEX `products_sku_key` ON `products` (`sku`);
CREATE INDEX `products_name_idx` ON `products` (`name`(191), `id`);

CREATE TABLE `billing_settings` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `seller` JSON NOT NULL,
    `payment_terms` LONGTEXT NOT NULL,
    `payment_instructions` LONGTEXT,
    `currency` LONGTEXT NOT NULL,
    `quote_validity_days` BIGINT NOT NULL,
    `footer` LONGTEXT,
    `accent_color` LONGTEXT NOT NULL,
    `logo` LONGTEXT,
    `language` LONGTEXT NOT NULL,
    `updated_at` DATETIME(6) NOT NULL,
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

CREATE TABLE `billing_sequences` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `series` LONGTEXT NOT NULL,
    `year` BIGINT NOT NULL,
    `last` BIGINT NOT NULL,
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE UNIQUE INDEX `billing_sequences_key` ON `billing_sequences` (`series`, `year`);

CREATE TABLE `quotes` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `number` LONGTEXT,
    `status` LONGTEXT NOT NULL,
    `company_id` BINARY(16),
    `contact_id` BINARY(16),
    `deal_id` BINARY(16),
    `invoice_id` BINARY(16),
    `currency` LONGTEXT NOT NULL,
    `lines` JSON NOT NULL,
    `taxes` JSON NOT NULL,
    `subtotal` BIGINT NOT NULL,
    `discount_total` BIGINT NOT NULL,
    `tax_total` BIGINT NOT NULL,
    `total` BIGINT NOT NULL,
    `issue_date` DATE,
    `valid_until` DATE,
    `notes` LONGTEXT,
    `customer` JSON NOT NULL,
    `seller` JSON NOT NULL,
    `decided_at` DATETIME(6),
    `owner_id` BINARY(16) NOT NULL,
    `team_id` BINARY(16),
    `created_at` DATETIME(6) NOT NULL,
    `updated_at` DATETIME(6) NOT NULL,
    `created_by` BINARY(16),
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE UNIQUE INDEX `quotes_number_key` ON `quotes` (`number`);
CREATE INDEX `quotes_deal_idx` ON `quotes` (`deal_id`);
CREATE INDEX `quotes_owner_idx` ON `quotes` (`owner_id`, `created_at`, `id`);

CREATE TABLE `invoices` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `doc_type` LONGTEXT NOT NULL,
    `series` LONGTEXT NOT NULL,
    `number` LONGTEXT,
    `status` LONGTEXT NOT NULL,
    `company_id` BINARY(16),
    `contact_id` BINARY(16),
    `deal_id` BINARY(16),
    `quote_id` BINARY(16),
    `credited_invoice_id` BINARY(16),
    `subscription_id` BINARY(16),
    `currency` LONGTEXT NOT NULL,
    `lines` JSON NOT NULL,
    `taxes` JSON NOT NULL,
    `subtotal` BIGINT NOT NULL,
    `discount_total` BIGINT NOT NULL,
    `tax_total` BIGINT NOT NULL,
    `total` BIGINT NOT NULL,
    `amount_paid` BIGINT NOT NULL,
    `amount_credited` BIGINT NOT NULL,
    `balance` BIGINT NOT NULL,
    `issue_date` DATE,
    `due_date` DATE,
    `payment_terms` LONGTEXT NOT NULL,
    `payment_instructions` LONGTEXT,
    `notes` LONGTEXT,
    `period_start` DATE,
    `period_end` DATE,
    `customer` JSON NOT NULL,
    `seller` JSON NOT NULL,
    `issued_at` DATETIME(6),
    `sent_at` DATETIME(6),
    `paid_at` DATETIME(6),
    `voided_at` DATETIME(6),
    `reason` LONGTEXT,
    `owner_id` BINARY(16) NOT NULL,
    `team_id` BINARY(16),
    `created_at` DATETIME(6) NOT NULL,
    `updated_at` DATETIME(6) NOT NULL,
    `created_by` BINARY(16),
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE UNIQUE INDEX `invoices_number_key` ON `invoices` (`number`);
CREATE UNIQUE INDEX `invoices_period_key` ON `invoices` (`subscription_id`, `period_start`);
CREATE INDEX `invoices_status_idx` ON `invoices` (`status`(191), `due_date`);
CREATE INDEX `invoices_company_idx` ON `invoices` (`company_id`, `created_at`);
CREATE INDEX `invoices_deal_idx` ON `invoices` (`deal_id`);
CREATE INDEX `invoices_owner_idx` ON `invoices` (`owner_id`, `created_at`, `id`);

CREATE TABLE `payments` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `invoice_id` BINARY(16) NOT NULL,
    `kind` LONGTEXT NOT NULL,
    `amount` BIGINT NOT NULL,
    `currency` LONGTEXT NOT NULL,
    `method` LONGTEXT NOT NULL,
    `gateway` LONGTEXT NOT NULL,
    `reference` LONGTEXT,
    `refund_of` BINARY(16),
    `refunded` BIGINT NOT NULL,
    `received_at` DATETIME(6) NOT NULL,
    `note` LONGTEXT,
    `owner_id` BINARY(16) NOT NULL,
    `team_id` BINARY(16),
    `recorded_by` BINARY(16),
    `created_at` DATETIME(6) NOT NULL,
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE INDEX `payments_invoice_idx` ON `payments` (`invoice_id`, `received_at`);
CREATE UNIQUE INDEX `payments_reference_key` ON `payments` (`gateway`, `kind`, `reference`);
