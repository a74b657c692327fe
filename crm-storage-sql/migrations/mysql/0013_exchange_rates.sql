-- Billing, multi-currency (issue 24): dated exchange rates.

CREATE TABLE `exchange_rates` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `base` LONGTEXT NOT NULL,
    `quote` LONGTEXT NOT NULL,
    `date` DATE NOT NULL,
    `rate` LONGTEXT NOT NULL,
    `rate_e9` BIGINT NOT NULL,
    `updated_at` DATETIME(6) NOT NULL,
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE UNIQUE INDEX `exchange_rates_pair_key` ON `exchange_rates` (`base`, `quote`, `date`);
