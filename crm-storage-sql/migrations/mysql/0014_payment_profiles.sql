-- Billing, saved payment methods (issue 24): each company's customer at a gateway and
-- the method it saved; invoices charged to it, and subscriptions that ask for that.

CREATE TABLE `payment_profiles` (
    `id` BINARY(16) PRIMARY KEY NOT NULL,
    `company_id` BINARY(16) NOT NULL,
    `gateway` LONGTEXT NOT NULL,
    `customer_ref` LONGTEXT NOT NULL,
    `method_ref` LONGTEXT,
    `method_kind` LONGTEXT,
    `method_label` LONGTEXT,
    `method_saved_at` DATETIME(6),
    `created_at` DATETIME(6) NOT NULL,
    `updated_at` DATETIME(6) NOT NULL,
    `version` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE UNIQUE INDEX `payment_profiles_company_key` ON `payment_profiles` (`company_id`, `gateway`);

ALTER TABLE `invoices` ADD COLUMN `charge_state` LONGTEXT;
ALTER TABLE `invoices` ADD COLUMN `charge_attempts` BIGINT NOT NULL DEFAULT 0;
ALTER TABLE `invoices` ADD COLUMN `charge_error` LONGTEXT;
CREATE INDEX `invoices_charge_idx` ON `invoices` (`charge_state`(191), `updated_at`);

ALTER TABLE `subscriptions` ADD COLUMN `auto_charge` BOOLEAN NOT NULL DEFAULT false;
