-- Billing, recurring (issue 24): subscriptions of companies, each period invoiced once.

CREATE TABLE subscriptions (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    company_id BLOB NOT NULL,
    contact_id BLOB,
    currency TEXT NOT NULL,
    lines TEXT NOT NULL,
    total INTEGER NOT NULL,
    frequency TEXT NOT NULL,
    interval_count INTEGER NOT NULL,
    start_date TEXT NOT NULL,
    end_date TEXT,
    remaining_cycles INTEGER,
    cycles_billed INTEGER NOT NULL,
    next_run TEXT,
    time_zone TEXT NOT NULL,
    payment_terms TEXT NOT NULL,
    auto_issue INTEGER NOT NULL,
    status TEXT NOT NULL,
    last_invoice_id BLOB,
    owner_id BLOB NOT NULL,
    team_id BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by BLOB,
    version INTEGER NOT NULL
);
CREATE INDEX subscriptions_due_idx ON subscriptions (status, next_run);
CREATE INDEX subscriptions_company_idx ON subscriptions (company_id);
