-- Contact merges (issue 22): which contacts were folded into which and every value the
-- merge changed, kept for undo; and files attached to contacts, companies, deals, tasks.

CREATE TABLE contact_merges (
    id BLOB PRIMARY KEY NOT NULL,
    survivor_id BLOB NOT NULL,
    merged_ids TEXT NOT NULL,
    sources TEXT NOT NULL,
    survivor_before TEXT NOT NULL,
    survivor_after TEXT NOT NULL,
    relinked_counts TEXT NOT NULL,
    relinks TEXT NOT NULL,
    merged_by BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    undone_at INTEGER,
    undone_by BLOB,
    version INTEGER NOT NULL
);
CREATE INDEX contact_merges_survivor_idx ON contact_merges (survivor_id, created_at);

CREATE TABLE attachments (
    id BLOB PRIMARY KEY NOT NULL,
    parent_type TEXT NOT NULL,
    parent_id BLOB NOT NULL,
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    uploaded_by BLOB,
    created_at INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX attachments_parent_idx ON attachments (parent_id, created_at, id);
CREATE INDEX attachments_uploader_idx ON attachments (uploaded_by);
