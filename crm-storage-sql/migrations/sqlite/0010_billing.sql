-- Billing (issue 24): the product catalogue, the seller's details, gapless number
-- sequences, quotes, invoices and credit notes, payments and refunds.

CREATE TABLE products (
    id BLOB PRIMARY KEY NOT NULL,
    sku TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    unit_price INTEGER NOT NULL,
    currency TEXT NOT NULL,
    tax_percent TEXT NOT NULL,
    unit TEXT,
    active INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version INTEGER NOT NULL,
    search_text TEXT NOT NULL
);
CREATE UNIQUE INDEX products_sku_key ON products (sku);
CREATE INDEX products_name_idx ON products (name, id);

CREATE TABLE billing_settings (
    id BLOB PRIMARY KEY NOT NULL,
    seller TEXT NOT NULL,
    payment_terms TEXT NOT NULL,
    payment_instructions TEXT,
    currency TEXT NOT NULL,
    quote_validity_days INTEGER NOT NULL,
    footer TEXT,
    accent_color TEXT NOT NULL,
    logo TEXT,
    language TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    version INTEGER NOT NULL
);

CREATE TABLE billing_sequences (
    id BLOB PRIMARY KEY NOT NULL,
    series TEXT NOT NULL,
    year INTEGER NOT NULL,
    last INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE UNIQUE INDEX billing_sequences_key ON billing_sequences (series, year);

CREATE TABLE quotes (
    id BLOB PRIMARY KEY NOT NULL,
    number TEXT,
    status TEXT NOT NULL,
    company_id BLOB,
    contact_id BLOB,
    deal_id BLOB,
    invoice_id BLOB,
    currency TEXT NOT NULL,
    lines TEXT NOT NULL,
    taxes TEXT NOT NULL,
    subtotal INTEGER NOT NULL,
    discount_total INTEGER NOT NULL,
    tax_total INTEGER NOT NULL,
    total INTEGER NOT NULL,
    issue_date TEXT,
    valid_until TEXT,
    notes TEXT,
    customer TEXT NOT NULL,
    seller TEXT NOT NULL,
    decided_at INTEGER,
    owner_id BLOB NOT NULL,
    team_id BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by BLOB,
    version INTEGER NOT NULL
);
CREATE UNIQUE INDEX quotes_number_key ON quotes (number);
CREATE INDEX quotes_deal_idx ON quotes (deal_id);
CREATE INDEX quotes_owner_idx ON quotes (owner_id, created_at, id);

CREATE TABLE invoices (
    id BLOB PRIMARY KEY NOT NULL,
    doc_type TEXT NOT NULL,
    series TEXT NOT NULL,
    number TEXT,
    status TEXT NOT NULL,
    company_id BLOB,
    contact_id BLOB,
    deal_id BLOB,
    quote_id BLOB,
    credited_invoice_id BLOB,
    subscription_id BLOB,
    currency TEXT NOT NULL,
    lines TEXT NOT NULL,
    taxes TEXT NOT NULL,
    subtotal INTEGER NOT NULL,
    discount_total INTEGER NOT NULL,
    tax_total INTEGER NOT NULL,
    total INTEGER NOT NULL,
    amount_paid INTEGER NOT NULL,
    amount_credited INTEGER NOT NULL,
    balance INTEGER NOT NULL,
    issue_date TEXT,
    due_date TEXT,
    payment_terms TEXT NOT NULL,
    payment_instructions TEXT,
    notes TEXT,
    period_start TEXT,
    period_end TEXT,
    customer TEXT NOT NULL,
    seller TEXT NOT NULL,
    issued_at INTEGER,
    sent_at INTEGER,
    paid_at INTEGER,
    voided_at INTEGER,
    reason TEXT,
    owner_id BLOB NOT NULL,
    team_id BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by BLOB,
    version INTEGER NOT NULL
);
CREATE UNIQUE INDEX invoices_number_key ON invoices (number);
CREATE UNIQUE INDEX invoices_period_key ON invoices (subscription_id, period_start);
CREATE INDEX invoices_status_idx ON invoices (status, due_date);
CREATE INDEX invoices_company_idx ON invoices (company_id, created_at);
CREATE INDEX invoices_deal_idx ON invoices (deal_id);
CREATE INDEX invoices_owner_idx ON invoices (owner_id, created_at, id);

CREATE TABLE payments (
    id BLOB PRIMARY KEY NOT NULL,
    invoice_id BLOB NOT NULL,
    kind TEXT NOT NULL,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    method TEXT NOT NULL,
    gateway TEXT NOT NULL,
    reference TEXT,
    refund_of BLOB,
    refunded INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    note TEXT,
    owner_id BLOB NOT NULL,
    team_id BLOB,
    recorded_by BLOB,
    created_at INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX payments_invoice_idx ON payments (invoice_id, received_at);
CREATE UNIQUE INDEX payments_reference_key ON payments (gateway, kind, reference);
