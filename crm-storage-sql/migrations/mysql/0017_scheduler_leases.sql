-- Which replica runs each periodic job (crm_core::lease): one row per job, taken by a
-- claim once its lease has run out.

CREATE TABLE `scheduler_leases` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `name` LONGTEXT NOT NULL,
    `holder` LONGTEXT,
    `held_until` DATETIME(6) NOT NULL,
    `handovers` BIGINT NOT NULL,
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE UNIQUE INDEX `scheduler_leases_name_key` ON `scheduler_leases` (`name`);
