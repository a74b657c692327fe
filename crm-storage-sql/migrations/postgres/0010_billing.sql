-- Billing (issue 24): the product catalogue, the seller's details, gapless number
-- sequences, quotes, invoices and credit notes, payments and refunds.

CREATE TABLE products (
    id UUID PRIMARY KEY NOT NULL,
    sku TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C",
    unit_price BIGINT NOT NULL,
    currency TEXT COLLATE "C" NOT NULL,
    tax_percent JSONB NOT NULL,
    unit TEXT COLLATE "C",
    active BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL,
    search_text TEXT COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX products_sku_key ON products (sku);
CREATE INDEX products_name_idx ON products (name, id);

CREATE TABLE billing_settings (
    id UUID PRIMARY KEY NOT NULL,
    seller JSONB NOT NULL,
    payment_terms TEXT COLLATE "C" NOT NULL,
    payment_instructions TEXT COLLATE "C",
    currency TEXT COLLATE "C" NOT NULL,
    quote_validity_days BIGINT NOT NULL,
    footer TEXT COLLATE "C",
    accent_color TEXT COLLATE "C" NOT NULL,
    logo TEXT COLLATE "C",
    language TEXT COLLATE "C" NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL
);

CREATE TABLE billing_sequences (
    id UUID PRIMARY KEY NOT NULL,
    series TEXT COLLATE "C" NOT NULL,
    year BIGINT NOT NULL,
    last BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX billing_sequences_key ON billing_sequences (series, year);

CREATE TABLE quotes (
    id UUID PRIMARY KEY NOT NULL,
    number TEXT COLLATE "C",
    status TEXT COLLATE "C" NOT NULL,
    company_id UUID,
    contact_id UUID,
    deal_id UUID,
    invoice_id UUID,
    currency TEXT COLLATE "C" NOT NULL,
    lines JSONB NOT NULL,
    taxes JSONB NOT NULL,
    subtotal BIGINT NOT NULL,
    discount_total BIGINT NOT NULL,
    tax_total BIGINT NOT NULL,
    total BIGINT NOT NULL,
    issue_date DATE,
    valid_until DATE,
    notes TEXT COLLATE "C",
    customer JSONB NOT NULL,
    seller JSONB NOT NULL,
    decided_at TIMESTAMPTZ,
    owner_id UUID NOT NULL,
    team_id UUID,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    created_by UUID,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX quotes_number_key ON quotes (number);
CREATE INDEX quotes_deal_idx ON quotes (deal_id);
CREATE INDEX quotes_owner_idx ON quotes (owner_id, created_at, id);

CREATE TABLE invoices (
    id UUID PRIMARY KEY NOT NULL,
    doc_type TEXT COLLATE "C" NOT NULL,
    series TEXT COLLATE "C" NOT NULL,
    number TEXT COLLATE "C",
    status TEXT COLLATE "C" NOT NULL,
    company_id UUID,
    contact_id UUID,
    deal_id UUID,
    quote_id UUID,
    credited_invoice_id UUID,
    subscription_id UUID,
    currency TEXT COLLATE "C" NOT NULL,
    lines JSONB NOT NULL,
    taxes JSONB NOT NULL,
    subtotal BIGINT NOT NULL,
    discount_total BIGINT NOT NULL,
    tax_total BIGINT NOT NULL,
    total BIGINT NOT NULL,
    amount_paid BIGINT NOT NULL,
    amount_credited BIGINT NOT NULL,
    balance BIGINT NOT NULL,
    issue_date DATE,
    due_date DATE,
    payment_terms TEXT COLLATE "C" NOT NULL,
    payment_instructions TEXT COLLATE "C",
    notes TEXT COLLATE "C",
    period_start DATE,
    period_end DATE,
    customer JSONB NOT NULL,
    seller JSONB NOT NULL,
    issued_at TIMESTAMPTZ,
    sent_at TIMESTAMPTZ,
    paid_at TIMESTAMPTZ,
    voided_at TIMESTAMPTZ,
    reason TEXT COLLATE "C",
    owner_id UUID NOT NULL,
    team_id UUID,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    created_by UUID,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX invoices_number_key ON invoices (number);
CREATE UNIQUE INDEX invoices_period_key ON invoices (subscription_id, period_start);
CREATE INDEX invoices_status_idx ON invoices (status, due_date);
CREATE INDEX invoices_company_idx ON invoices (company_id, created_at);
CREATE INDEX invoices_deal_idx ON invoices (deal_id);
CREATE INDEX invoices_owner_idx ON invoices (owner_id, created_at, id);

CREATE TABLE payments (
    id UUID PRIMARY KEY NOT NULL,
    invoice_id UUID NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT COLLATE "C" NOT NULL,
    method TEXT COLLATE "C" NOT NULL,
    gateway TEXT COLLATE "C" NOT NULL,
    reference TEXT COLLATE "C",
    refund_of UUID,
    refunded BIGINT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    note TEXT COLLATE "C",
    owner_id UUID NOT NULL,
    team_id UUID,
    recorded_by UUID,
    created_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX payments_invoice_idx ON payments (invoice_id, received_at);
CREATE UNIQUE INDEX payments_reference_key ON payments (gateway, kind, reference);
