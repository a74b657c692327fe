-- Remembered answers of POST requests made with an Idempotency-Key.

CREATE TABLE `idempotency_keys` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `key_hash` LONGTEXT NOT NULL,
    `request_hash` LONGTEXT NOT NULL,
    `status` BIGINT,
    `response` JSON,
    `created_at` DATETIME(6) NOT NULL,
    `expires_at` DATETIME(6) NOT NULL,
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE UNIQUE INDEX `idempotency_keys_key` ON `idempotency_keys` (`key_hash`);
CREATE INDEX `idempotency_keys_expires_idx` ON `idempotency_keys` (`expires_at`);
