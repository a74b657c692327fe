-- Billing, online payments (issue 24): payment gateways' webhook events, each taken
-- in once and acted on once.

CREATE TABLE `gateway_events` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `gateway` LONGTEXT NOT NULL,
    `event_id` LONGTEXT NOT NULL,
    `event_type` LONGTEXT NOT NULL,
    `object_id` LONGTEXT,
    `state` LONGTEXT NOT NULL,
    `attempts` BIGINT NOT NULL,
    `error` LONGTEXT,
    `received_at` DATETIME(6) NOT NULL,
    `processed_at` DATETIME(6),
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE UNIQUE INDEX `gateway_events_event_key` ON `gateway_events` (`gateway`, `event_id`);
CREATE INDEX `gateway_events_queue_idx` ON `gateway_events` (`state`(191), `received_at`);
