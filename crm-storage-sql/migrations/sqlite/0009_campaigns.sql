-- Email campaigns (issue 21): designs, segments, campaigns with their frozen audience
-- (one row per address), contacts' consent, and the suppression list.

CREATE TABLE campaign_templates (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    subject TEXT NOT NULL,
    mjml TEXT NOT NULL,
    text TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by BLOB,
    version INTEGER NOT NULL
);
CREATE INDEX campaign_templates_name_idx ON campaign_templates (name, id);

CREATE TABLE segments (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    filter TEXT,
    company_filter TEXT,
    contact_ids TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by BLOB,
    version INTEGER NOT NULL
);
CREATE INDEX segments_name_idx ON segments (name, id);

CREATE TABLE campaigns (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    template_id BLOB NOT NULL,
    segment_ids TEXT NOT NULL,
    exclude_segment_ids TEXT NOT NULL,
    from_name TEXT,
    state TEXT NOT NULL,
    scheduled_at INTEGER,
    started_at INTEGER,
    finished_at INTEGER,
    paused_reason TEXT,
    frozen INTEGER NOT NULL,
    audience INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    subject TEXT,
    html TEXT,
    text TEXT,
    lease_until INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by BLOB,
    version INTEGER NOT NULL
);
CREATE INDEX campaigns_state_idx ON campaigns (state, lease_until);

CREATE TABLE campaign_recipients (
    id BLOB PRIMARY KEY NOT NULL,
    campaign_id BLOB NOT NULL,
    contact_id BLOB NOT NULL,
    email TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    sent_at INTEGER,
    error TEXT,
    opened_at INTEGER,
    opens INTEGER NOT NULL,
    clicked_at INTEGER,
    clicks INTEGER NOT NULL,
    bounced_at INTEGER,
    bounce TEXT,
    unsubscribed_at INTEGER,
    complained_at INTEGER,
    version INTEGER NOT NULL
);
CREATE INDEX campaign_recipients_queue_idx ON campaign_recipients (campaign_id, state, id);
CREATE INDEX campaign_recipients_contact_idx ON campaign_recipients (contact_id, id);
CREATE INDEX campaign_recipients_sent_idx ON campaign_recipients (sent_at);

CREATE TABLE consents (
    id BLOB PRIMARY KEY NOT NULL,
    status TEXT NOT NULL,
    source TEXT NOT NULL,
    changed_at INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX consents_status_idx ON consents (status);

CREATE TABLE suppressions (
    id BLOB PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    reason TEXT NOT NULL,
    source TEXT NOT NULL,
    campaign_id BLOB,
    detail TEXT,
    created_at INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE UNIQUE INDEX suppressions_email_key ON suppressions (email);
