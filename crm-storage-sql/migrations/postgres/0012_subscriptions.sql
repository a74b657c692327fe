-- Billing, recurring (issue 24): subscriptions of companies, each period invoiced once.

CREATE TABLE subscriptions (
    id UUID PRIMARY KEY NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    company_id UUID NOT NULL,
    contact_id UUID,
    currency TEXT COLLATE "C" NOT NULL,
    lines JSONB NOT NULL,
    total BIGINT NOT NULL,
    frequency TEXT COLLATE "C" NOT NULL,
    interval_count BIGINT NOT NULL,
    start_date DATE NOT NULL,
    end_date DATE,
    remaining_cycles BIGINT,
    cycles_billed BIGINT NOT NULL,
    next_run DATE,
    time_zone TEXT COLLATE "C" NOT NULL,
    payment_terms TEXT COLLATE "C" NOT NULL,
    auto_issue BOOLEAN NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    last_invoice_id UUID,
    owner_id UUID NOT NULL,
    team_id UUID,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    created_by UUID,
    version BIGINT NOT NULL
);
CREATE INDEX subscriptions_due_idx ON subscriptions (status, next_run);
CREATE INDEX subscriptions_company_idx ON subscriptions (company_id);
