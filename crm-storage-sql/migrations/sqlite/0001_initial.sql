-- crm-rs schema, SQLite dialect.
-- UUIDs are 16-byte BLOBs, timestamps INTEGER microseconds since the epoch (UTC), dates
-- TEXT 'YYYY-MM-DD', JSON TEXT. Column order matches crm-core's schema tables.

CREATE TABLE teams (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    manager_id BLOB,
    search_text TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by BLOB,
    updated_by BLOB,
    deleted_at INTEGER,
    deleted_by BLOB
);
CREATE UNIQUE INDEX teams_name_key ON teams (name) WHERE deleted_at IS NULL;

CREATE TABLE users (
    id BLOB PRIMARY KEY NOT NULL,
    username TEXT NOT NULL,
    email TEXT NOT NULL,
    password_hash TEXT,
    role TEXT NOT NULL,
    team_id BLOB,
    status TEXT NOT NULL,
    email_verified_at INTEGER,
    suspended_until INTEGER,
    suspension_reason TEXT,
    last_login_at INTEGER,
    failed_logins INTEGER NOT NULL,
    locked_until INTEGER,
    session_epoch INTEGER NOT NULL,
    profile_picture TEXT,
    settings TEXT NOT NULL,
    search_text TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by BLOB,
    updated_by BLOB,
    deleted_at INTEGER,
    deleted_by BLOB
);
CREATE UNIQUE INDEX users_username_key ON users (username);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_team_idx ON users (team_id);
CREATE INDEX users_created_idx ON users (created_at, id) WHERE deleted_at IS NULL;

CREATE TABLE companies (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    domain TEXT,
    industry TEXT,
    size INTEGER,
    country TEXT,
    contact_details TEXT NOT NULL,
    owner_id BLOB NOT NULL,
    team_id BLOB,
    custom_fields TEXT NOT NULL,
    search_text TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by BLOB,
    updated_by BLOB,
    deleted_at INTEGER,
    deleted_by BLOB
);
CREATE UNIQUE INDEX companies_domain_key ON companies (domain) WHERE deleted_at IS NULL;
CREATE INDEX companies_created_idx ON companies (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX companies_name_idx ON companies (name, id) WHERE deleted_at IS NULL;
CREATE INDEX companies_owner_idx ON companies (owner_id, created_at);
CREATE INDEX companies_team_idx ON companies (team_id, created_at);
CREATE INDEX companies_industry_idx ON companies (industry);
CREATE INDEX companies_deleted_idx ON companies (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE contacts (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    email TEXT,
    phone_number TEXT,
    job_title TEXT,
    company_id BLOB,
    owner_id BLOB NOT NULL,
    team_id BLOB,
    lead_source TEXT,
    lifecycle_stage TEXT NOT NULL,
    converted_at INTEGER,
    tags TEXT NOT NULL,
    preferences TEXT NOT NULL,
    social TEXT NOT NULL,
    address TEXT NOT NULL,
    custom_fields TEXT NOT NULL,
    search_text TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by BLOB,
    updated_by BLOB,
    deleted_at INTEGER,
    deleted_by BLOB
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
CREATE INDEX contacts_deleted_idx ON contacts (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE deals (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    amount INTEGER,
    currency TEXT NOT NULL,
    stage TEXT NOT NULL,
    probability INTEGER NOT NULL,
    expected_close_date TEXT,
    closed_at INTEGER,
    stage_changed_at INTEGER NOT NULL,
    contact_ids TEXT NOT NULL,
    company_id BLOB,
    owner_id BLOB NOT NULL,
    team_id BLOB,
    products TEXT NOT NULL,
    notes TEXT,
    lost_reason TEXT,
    search_text TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by BLOB,
    updated_by BLOB,
    deleted_at INTEGER,
    deleted_by BLOB
);
CREATE INDEX deals_created_idx ON deals (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX deals_stage_idx ON deals (stage, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX deals_close_idx ON deals (expected_close_date) WHERE deleted_at IS NULL;
CREATE INDEX deals_amount_idx ON deals (amount) WHERE deleted_at IS NULL;
CREATE INDEX deals_owner_idx ON deals (owner_id, created_at, id);
CREATE INDEX deals_team_idx ON deals (team_id, created_at, id);
CREATE INDEX deals_company_idx ON deals (company_id);
CREATE INDEX deals_deleted_idx ON deals (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE deal_stage_history (
    id BLOB PRIMARY KEY NOT NULL,
    deal_id BLOB NOT NULL,
    from_stage TEXT,
    to_stage TEXT NOT NULL,
    changed_at INTEGER NOT NULL,
    changed_by BLOB
);
CREATE INDEX deal_stage_history_deal_idx ON deal_stage_history (deal_id, changed_at);

CREATE TABLE tasks (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    due_date INTEGER,
    priority TEXT NOT NULL,
    status TEXT NOT NULL,
    assigned_user BLOB,
    related_type TEXT,
    related_id BLOB,
    completed_at INTEGER,
    owner_id BLOB NOT NULL,
    team_id BLOB,
    search_text TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by BLOB,
    updated_by BLOB,
    deleted_at INTEGER,
    deleted_by BLOB
);
CREATE INDEX tasks_created_idx ON tasks (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX tasks_due_idx ON tasks (due_date) WHERE deleted_at IS NULL;
CREATE INDEX tasks_status_idx ON tasks (status, due_date) WHERE deleted_at IS NULL;
CREATE INDEX tasks_owner_idx ON tasks (owner_id, created_at, id);
CREATE INDEX tasks_assignee_idx ON tasks (assigned_user, created_at, id);
CREATE INDEX tasks_team_idx ON tasks (team_id, created_at, id);
CREATE INDEX tasks_related_idx ON tasks (related_id);

CREATE TABLE interactions (
    id BLOB PRIMARY KEY NOT NULL,
    contact_id BLOB NOT NULL,
    deal_id BLOB,
    kind TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    subject TEXT,
    body TEXT,
    owner_id BLOB NOT NULL,
    team_id BLOB,
    search_text TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by BLOB,
    updated_by BLOB,
    deleted_at INTEGER,
    deleted_by BLOB
);
CREATE INDEX interactions_contact_idx ON interactions (contact_id, occurred_at);
CREATE INDEX interactions_created_idx ON interactions (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX interactions_owner_idx ON interactions (owner_id, created_at, id);
CREATE INDEX interactions_deal_idx ON interactions (deal_id);

CREATE TABLE audit_events (
    id BLOB PRIMARY KEY NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    actor_id BLOB,
    actor_role TEXT,
    action TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id BLOB,
    changes TEXT NOT NULL,
    request TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE UNIQUE INDEX audit_events_seq_key ON audit_events (seq);
CREATE INDEX audit_events_entity_idx ON audit_events (entity_id, seq);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, seq);

CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE outbox_events (
    id BLOB PRIMARY KEY NOT NULL,
    topic TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id BLOB,
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    available_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    delivered_at INTEGER,
    last_error TEXT,
    version INTEGER NOT NULL
);
CREATE INDEX outbox_events_pending_idx ON outbox_events (available_at, id) WHERE delivered_at IS NULL;
