-- Saved reports: a standard report with its parameters or a custom report's spec, with
-- an owner, sharing (users, teams, roles as JSON arrays) and an optional chart.

CREATE TABLE saved_reports (
    id UUID PRIMARY KEY NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C",
    standard TEXT COLLATE "C",
    parameters JSONB NOT NULL,
    spec JSONB,
    chart JSONB,
    shared_users JSONB NOT NULL,
    shared_teams JSONB NOT NULL,
    shared_roles JSONB NOT NULL,
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
CREATE INDEX saved_reports_created_idx ON saved_reports (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX saved_reports_owner_idx ON saved_reports (owner_id, created_at, id);
CREATE INDEX saved_reports_team_idx ON saved_reports (team_id);
-- "Reports shared with me": membership tests (`shared_users @> [id]`) use them.
CREATE INDEX saved_reports_shared_users_idx ON saved_reports USING GIN (shared_users jsonb_path_ops);
CREATE INDEX saved_reports_shared_teams_idx ON saved_reports USING GIN (shared_teams jsonb_path_ops);
