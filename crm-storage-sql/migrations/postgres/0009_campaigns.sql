-- Email campaigns (issue 21): designs, segments, campaigns with their frozen audience
-- (one row per address), contacts' consent, and the suppression list.

CREATE TABLE campaign_templates (
    id UUID PRIMARY KEY NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    subject TEXT COLLATE "C" NOT NULL,
    mjml TEXT COLLATE "C" NOT NULL,
    text TEXT COLLATE "C",
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    created_by UUID,
    version BIGINT NOT NULL
);
CREATE INDEX campaign_templates_name_idx ON campaign_templates (name, id);

CREATE TABLE segments (
    id UUID PRIMARY KEY NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C",
    filter TEXT COLLATE "C",
    company_filter TEXT COLLATE "C",
    contact_ids JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    created_by UUID,
    version BIGINT NOT NULL
);
CREATE INDEX segments_name_idx ON segments (name, id);

CREATE TABLE campaigns (
    id UUID PRIMARY KEY NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    template_id UUID NOT NULL,
    segment_ids JSONB NOT NULL,
    exclude_segment_ids JSONB NOT NULL,
    from_name TEXT COLLATE "C",
    state TEXT COLLATE "C" NOT NULL,
    scheduled_at TIMESTAMPTZ,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    paused_reason TEXT COLLATE "C",
    frozen BOOLEAN NOT NULL,
    audience BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    subject TEXT COLLATE "C",
    html TEXT COLLATE "C",
    text TEXT COLLATE "C",
    lease_until TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    created_by UUID,
    version BIGINT NOT NULL
);
CREATE INDEX campaigns_state_idx ON campaigns (state, lease_until);

CREATE TABLE campaign_recipients (
    id UUID PRIMARY KEY NOT NULL,
    campaign_id UUID NOT NULL,
    contact_id UUID NOT NULL,
    email TEXT COLLATE "C" NOT NULL,
    state TEXT COLLATE "C" NOT NULL,
    attempts BIGINT NOT NULL,
    sent_at TIMESTAMPTZ,
    error TEXT COLLATE "C",
    opened_at TIMESTAMPTZ,
    opens BIGINT NOT NULL,
    clicked_at TIMESTAMPTZ,
    clicks BIGINT NOT NULL,
    bounced_at TIMESTAMPTZ,
    bounce TEXT COLLATE "C",
    unsubscribed_at TIMESTAMPTZ,
    complained_at TIMESTAMPTZ,
    version BIGINT NOT NULL
);
CREATE INDEX campaign_recipients_queue_idx ON campaign_recipients (campaign_id, state, id);
CREATE INDEX campaign_recipients_contact_idx ON campaign_recipients (contact_id, id);
CREATE INDEX campaign_recipients_sent_idx ON campaign_recipients (sent_at);

CREATE TABLE consents (
    id UUID PRIMARY KEY NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX consents_status_idx ON consents (status);

CREATE TABLE suppressions (
    id UUID PRIMARY KEY NOT NULL,
    email TEXT COLLATE "C" NOT NULL,
    reason TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    campaign_id UUID,
    detail TEXT COLLATE "C",
    created_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX suppressions_email_key ON suppressions (email);
