-- Import jobs (issue 22): a CSV or XLSX file of contacts, companies, deals or tasks,
-- its column mapping and how far its import has come; workers take them up by status.

CREATE TABLE import_jobs (
    id UUID PRIMARY KEY NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    file_name TEXT COLLATE "C" NOT NULL,
    format TEXT COLLATE "C" NOT NULL,
    delimiter TEXT COLLATE "C",
    encoding TEXT COLLATE "C",
    headers JSONB NOT NULL,
    mapping JSONB NOT NULL,
    match_by TEXT COLLATE "C",
    dry_run BOOLEAN NOT NULL,
    total_rows BIGINT NOT NULL,
    rows_done BIGINT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    unchanged BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    batches BIGINT NOT NULL,
    error TEXT COLLATE "C",
    owner_id UUID NOT NULL,
    started_at TIMESTAMPTZ,
    started_rows BIGINT NOT NULL,
    finished_at TIMESTAMPTZ,
    lease_until TIMESTAMPTZ,
    attempts BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX import_jobs_owner_idx ON import_jobs (owner_id, created_at, id);
CREATE INDEX import_jobs_status_idx ON import_jobs (status, lease_until);
