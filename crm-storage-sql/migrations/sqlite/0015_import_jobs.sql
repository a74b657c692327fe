-- Import jobs (issue 22): a CSV or XLSX file of contacts, companies, deals or tasks,
-- its column mapping and how far its import has come; workers take them up by status.

CREATE TABLE import_jobs (
    id BLOB PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    file_name TEXT NOT NULL,
    format TEXT NOT NULL,
    delimiter TEXT,
    encoding TEXT,
    headers TEXT NOT NULL,
    mapping TEXT NOT NULL,
    match_by TEXT,
    dry_run INTEGER NOT NULL,
    total_rows INTEGER NOT NULL,
    rows_done INTEGER NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    unchanged INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    batches INTEGER NOT NULL,
    error TEXT,
    owner_id BLOB NOT NULL,
    started_at INTEGER,
    started_rows INTEGER NOT NULL,
    finished_at INTEGER,
    lease_until INTEGER,
    attempts INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX import_jobs_owner_idx ON import_jobs (owner_id, created_at, id);
CREATE INDEX import_jobs_status_idx ON import_jobs (status, lease_until);
