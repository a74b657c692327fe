-- Saved dashboards: a saved report may hold a dashboard's cards (JSON) instead of a
-- standard report or a spec, and is shared like any saved report.

ALTER TABLE saved_reports ADD COLUMN cards JSONB;
