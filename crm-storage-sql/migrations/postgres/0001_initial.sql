-- crm-rs schema, PostgreSQL dialect.
-- Text compares by bytes (COLLATE "C") so sorting and keyset paging agree with every
-- other backend. Column order matches crm-core's schema tables.

-- Case-insensitive matching (ilike) folds all of Unicode, which the "C" collation of the
-- columns does not: ICU's root locale where the server has ICU, else the C.UTF-8 locale.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu') THEN
        CREATE COLLATION crm_fold (provider = icu, locale = 'und');
    ELSE
        CREATE COLLATION crm_fold (provider = libc, locale = 'C.UTF-8');
    END IF;
END $$;

CREATE TABLE teams (
    id UUID PRIMARY KEY NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C",
    manager_id UUID,
    search_text TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    created_by UUID,
    updated_by UUID,
    deleted_at TIMESTAMPTZ,
    deleted_by UUID
);
CREATE UNIQUE INDEX teams_name_key ON teams (name) WHERE deleted_at IS NULL;

CREATE TABLE users (
    id UUID PRIMARY KEY NOT NULL,
    username TEXT COLLATE "C" NOT NULL,
    email TEXT COLLATE "C" NOT NULL,
    password_hash TEXT COLLATE "C",
    role TEXT COLLATE "C" NOT NULL,
    team_id UUID,
    status TEXT COLLATE "C" NOT NULL,
    email_verified_at TIMESTAMPTZ,
    suspended_until TIMESTAMPTZ,
    suspension_reason TEXT COLLATE "C",
    last_login_at TIMESTAMPTZ,
    failed_logins BIGINT NOT NULL,
    locked_until TIMESTAMPTZ,
    session_epoch BIGINT NOT NULL,
    profile_picture TEXT COLLATE "C",
    settings JSONB NOT NULL,
    search_text TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    created_by UUID,
    updated_by UUID,
    deleted_at TIMESTAMPTZ,
    deleted_by UUID
);
CREATE UNIQUE INDEX users_username_key ON users (username);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_team_idx ON users (team_id);
CREATE INDEX users_created_idx ON users (created_at, id) WHERE deleted_at IS NULL;

CREATE TABLE companies (
    id UUID PRIMARY KEY NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    domain TEXT COLLATE "C",
    industry TEXT COLLATE "C",
    size BIGINT,
    country TEXT COLLATE "C",
    contact_details JSONB NOT NULL,
    owner_id UUID NOT NULL,
    team_id UUID,
    custom_fields JSONB NOT NULL,
    search_text TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    created_by UUID,
    updated_by UUID,
    deleted_at TIMESTAMPTZ,
    deleted_by UUID
);
CREATE UNIQUE INDEX companies_domain_key ON companies (domain) WHERE deleted_at IS NULL;
CREATE INDEX companies_created_idx ON companies (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX companies_name_idx ON companies (name, id) WHERE deleted_at IS NULL;
CREATE INDEX companies_owner_idx ON companies (owner_id, created_at);
CREATE INDEX companies_team_idx ON companies (team_id, created_at);
CREATE INDEX companies_industry_idx ON companies (industry);
CREATE INDEX companies_deleted_idx ON companies (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE contacts (
    id UUID PRIMARY KEY NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    email TEXT COLLATE "C",
    phone_number TEXT COLLATE "C",
    job_title TEXT COLLATE "C",
    company_id UUID,
    owner_id UUID NOT NULL,
    team_id UUID,
    lead_source TEXT COLLATE "C",
    lifecycle_stage TEXT COLLATE "C" NOT NULL,
    converted_at TIMESTAMPTZ,
    tags JSONB NOT NULL,
    preferences JSONB NOT NULL,
    social JSONB NOT NULL,
    address JSONB NOT NULL,
    custom_fields JSONB NOT NULL,
    search_text TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    created_by UUID,
    updated_by UUID,
    deleted_at TIMESTAMPTZ,
    deleted_by UUID
);
CREATE UNIQUE INDEX contacts_email_key ON contacts (email) WHERE deleted_at IS NULL;
CREATE INDEX contacts_created_idx ON contacts (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_updated_idx ON contacts (updated_at, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_name_idx ON contacts (name, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_stage_idx ON contacts (lifecycle_stage, created_at, id) WHERE deleted_at IS NULL;
-- "Customers A to Z": a stage filter with a name sort is an ordered range scan.
CREATE INDEX contacts_stage_name_idx ON contacts (lifecycle_stage, name, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_owner_idx ON contacts (owner_id, created_at, id);
CREATE INDEX contacts_team_idx ON contacts (team_id, created_at, id);
CREATE INDEX contacts_company_idx ON contacts (company_id);
CREATE INDEX contacts_tags_idx ON contacts USING GIN (tags jsonb_path_ops);
CREATE INDEX contacts_deleted_idx ON contacts (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE deals (
    id UUID PRIMARY KEY NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C",
    amount BIGINT,
    currency TEXT COLLATE "C" NOT NULL,
    stage TEXT COLLATE "C" NOT NULL,
    probability BIGINT NOT NULL,
    expected_close_date DATE,
    closed_at TIMESTAMPTZ,
    stage_changed_at TIMESTAMPTZ NOT NULL,
    contact_ids JSONB NOT NULL,
    company_id UUID,
    owner_id UUID NOT NULL,
    team_id UUID,
    products JSONB NOT NULL,
    notes TEXT COLLATE "C",
    lost_reason TEXT COLLATE "C",
    search_text TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    created_by UUID,
    updated_by UUID,
    deleted_at TIMESTAMPTZ,
    deleted_by UUID
);
CREATE INDEX deals_created_idx ON deals (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX deals_stage_idx ON deals (stage, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX deals_close_idx ON deals (expected_close_date) WHERE deleted_at IS NULL;
CREATE INDEX deals_amount_idx ON deals (amount) WHERE deleted_at IS NULL;
CREATE INDEX deals_owner_idx ON deals (owner_id, created_at, id);
CREATE INDEX deals_team_idx ON deals (team_id, created_at, id);
CREATE INDEX deals_company_idx ON deals (company_id);
-- "The deals of this contact": membership tests (`contact_ids @> [id]`) use it.
CREATE INDEX deals_contacts_idx ON deals USING GIN (contact_ids jsonb_path_ops);
CREATE INDEX deals_deleted_idx ON deals (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE deal_stage_history (
    id UUID PRIMARY KEY NOT NULL,
    deal_id UUID NOT NULL,
    from_stage TEXT COLLATE "C",
    to_stage TEXT COLLATE "C" NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL,
    changed_by UUID
);
CREATE INDEX deal_stage_history_deal_idx ON deal_stage_history (deal_id, changed_at);

CREATE TABLE tasks (
    id UUID PRIMARY KEY NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C",
    due_date TIMESTAMPTZ,
    priority TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    assigned_user UUID,
    related_type TEXT COLLATE "C",
    related_id UUID,
    completed_at TIMESTAMPTZ,
    owner_id UUID NOT NULL,
    team_id UUID,
    search_text TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    created_by UUID,
    updated_by UUID,
    deleted_at TIMESTAMPTZ,
    deleted_by UUID
);
CREATE INDEX tasks_created_idx ON tasks (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX tasks_due_idx ON tasks (due_date) WHERE deleted_at IS NULL;
CREATE INDEX tasks_status_idx ON tasks (status, due_date) WHERE deleted_at IS NULL;
CREATE INDEX tasks_owner_idx ON tasks (owner_id, created_at, id);
CREATE INDEX tasks_assignee_idx ON tasks (assigned_user, created_at, id);
CREATE INDEX tasks_team_idx ON tasks (team_id, created_at, id);
CREATE INDEX tasks_related_idx ON tasks (related_id);

CREATE TABLE interactions (
    id UUID PRIMARY KEY NOT NULL,
    contact_id UUID NOT NULL,
    deal_id UUID,
    kind TEXT COLLATE "C" NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    subject TEXT COLLATE "C",
    body TEXT COLLATE "C",
    owner_id UUID NOT NULL,
    team_id UUID,
    search_text TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    created_by UUID,
    updated_by UUID,
    deleted_at TIMESTAMPTZ,
    deleted_by UUID
);
CREATE INDEX interactions_contact_idx ON interactions (contact_id, occurred_at);
CREATE INDEX interactions_created_idx ON interactions (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX interactions_owner_idx ON interactions (owner_id, created_at, id);
CREATE INDEX interactions_deal_idx ON interactions (deal_id);

CREATE TABLE audit_events (
    id UUID PRIMARY KEY NOT NULL,
    seq BIGINT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    actor_id UUID,
    actor_role TEXT COLLATE "C",
    action TEXT COLLATE "C" NOT NULL,
    entity_type TEXT COLLATE "C" NOT NULL,
    entity_id UUID,
    changes JSONB NOT NULL,
    request JSONB NOT NULL,
    prev_hash TEXT COLLATE "C" NOT NULL,
    hash TEXT COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX audit_events_seq_key ON audit_events (seq);
CREATE INDEX audit_events_entity_idx ON audit_events (entity_id, seq);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, seq);

CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT COLLATE "C" NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE outbox_events (
    id UUID PRIMARY KEY NOT NULL,
    topic TEXT COLLATE "C" NOT NULL,
    entity_type TEXT COLLATE "C" NOT NULL,
    entity_id UUID,
    payload JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    available_at TIMESTAMPTZ NOT NULL,
    attempts BIGINT NOT NULL,
    delivered_at TIMESTAMPTZ,
    last_error TEXT COLLATE "C",
    version BIGINT NOT NULL
);
CREATE INDEX outbox_events_pending_idx ON outbox_events (available_at, id) WHERE delivered_at IS NULL;
