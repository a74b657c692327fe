-- Which replica runs each periodic job (crm_core::lease): one row per job, taken by a
-- claim once its lease has run out.

CREATE TABLE scheduler_leases (
    id UUID PRIMARY KEY NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    holder TEXT COLLATE "C",
    held_until TIMESTAMPTZ NOT NULL,
    handovers BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX scheduler_leases_name_key ON scheduler_leases (name);
