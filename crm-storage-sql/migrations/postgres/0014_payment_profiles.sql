-- Billing, saved payment methods (issue 24): each company's customer at a gateway and
-- the method it saved; invoices charged to it, and subscriptions that ask for that.

CREATE TABLE payment_profiles (
    id UUID PRIMARY KEY NOT NULL,
    company_id UUID NOT NULL,
    gateway TEXT COLLATE "C" NOT NULL,
    customer_ref TEXT COLLATE "C" NOT NULL,
    method_ref TEXT COLLATE "C",
    method_kind TEXT COLLATE "C",
    method_label TEXT COLLATE "C",
    method_saved_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX payment_profiles_company_key ON payment_profiles (company_id, gateway);

ALTER TABLE invoices ADD COLUMN charge_state TEXT COLLATE "C";
ALTER TABLE invoices ADD COLUMN charge_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE invoices ADD COLUMN charge_error TEXT COLLATE "C";
CREATE INDEX invoices_charge_idx ON invoices (charge_state, updated_at);

ALTER TABLE subscriptions ADD COLUMN auto_charge BOOLEAN NOT NULL DEFAULT false;
