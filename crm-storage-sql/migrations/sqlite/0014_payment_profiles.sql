-- Billing, saved payment methods (issue 24): each company's customer at a gateway and
-- the method it saved; invoices charged to it, and subscriptions that ask for that.

CREATE TABLE payment_profiles (
    id BLOB PRIMARY KEY NOT NULL,
    company_id BLOB NOT NULL,
    gateway TEXT NOT NULL,
    customer_ref TEXT NOT NULL,
    method_ref TEXT,
    method_kind TEXT,
    method_label TEXT,
    method_saved_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE UNIQUE INDEX payment_profiles_company_key ON payment_profiles (company_id, gateway);

ALTER TABLE invoices ADD COLUMN charge_state TEXT;
ALTER TABLE invoices ADD COLUMN charge_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invoices ADD COLUMN charge_error TEXT;
CREATE INDEX invoices_charge_idx ON invoices (charge_state, updated_at);

ALTER TABLE subscriptions ADD COLUMN auto_charge INTEGER NOT NULL DEFAULT 0;
