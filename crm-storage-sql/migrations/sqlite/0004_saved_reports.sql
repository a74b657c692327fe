-- Saved reports: a standard report with its parameters or a custom report's spec, with
-- an owner, sharing (users, teams, roles as JSON arrays) and an optional chart.

CREATE TABLE saved_reports (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    standard TEXT,
    parameters TEXT NOT NULL,
    spec TEXT,
    chart TEXT,
    shared_users TEXT NOT NULL,
    shared_teams TEXT NOT NULL,
    shared_roles TEXT NOT NULL,
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
CREATE INDEX saved_reports_created_idx ON saved_reports (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX saved_reports_owner_idx ON saved_reports (owner_id, created_at, id);
CREATE INDEX saved_reports_team_idx ON saved_reports (team_id);
