-- Contact merges (issue 22): which contacts were folded into which and every value the
-- merge changed, kept for undo; and files attached to contacts, companies, deals, tasks.

CREATE TABLE contact_merges (
    id UUID PRIMARY KEY NOT NULL,
    survivor_id UUID NOT NULL,
    merged_ids JSONB NOT NULL,
    sources JSONB NOT NULL,
    survivor_before JSONB NOT NULL,
    survivor_after JSONB NOT NULL,
    relinked_counts JSONB NOT NULL,
    relinks JSONB NOT NULL,
    merged_by UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    undone_at TIMESTAMPTZ,
    undone_by UUID,
    version BIGINT NOT NULL
);
CREATE INDEX contact_merges_survivor_idx ON contact_merges (survivor_id, created_at);
CREATE INDEX contact_merges_merged_idx ON contact_merges USING GIN (merged_ids jsonb_path_ops);

CREATE TABLE attachments (
    id UUID PRIMARY KEY NOT NULL,
    parent_type TEXT COLLATE "C" NOT NULL,
    parent_id UUID NOT NULL,
    file_name TEXT COLLATE "C" NOT NULL,
    content_type TEXT COLLATE "C" NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT COLLATE "C" NOT NULL,
    uploaded_by UUID,
    created_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX attachments_parent_idx ON attachments (parent_id, created_at, id);
CREATE INDEX attachments_uploader_idx ON attachments (uploaded_by);
