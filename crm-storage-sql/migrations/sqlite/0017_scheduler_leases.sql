-- Which replica runs each periodic job (crm_core::lease): one row per job, taken by a
-- claim once its lease has run out.

CREATE TABLE scheduler_leases (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    holder TEXT,
    held_until INTEGER NOT NULL,
    handovers INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE UNIQUE INDEX scheduler_leases_name_key ON scheduler_leases (name);
