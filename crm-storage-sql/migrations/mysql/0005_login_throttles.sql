-- Failed sign-ins counted per login name and per (login name, client address), in the
-- store so that every replica and restart sees them (the keys are SHA-256 digests).

CREATE TABLE `login_throttles` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `key_hash` LONGTEXT NOT NULL,
    `failures` BIGINT NOT NULL,
    `last_failure_at` DATETIME(6) NOT NULL,
    `blocked_until` DATETIME(6),
    `expires_at` DATETIME(6) NOT NULL,
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE UNIQUE INDEX `login_throttles_key` ON `login_throttles` (`key_hash`);
CREATE INDEX `login_throttles_expires_idx` ON `login_throttles` (`expires_at`);
