-- Billing, multi-currency (issue 24): dated exchange rates.

CREATE TABLE exchange_rates (
    id BLOB PRIMARY KEY NOT NULL,
    base TEXT NOT NULL,
    quote TEXT NOT NULL,
    date TEXT NOT NULL,
    rate TEXT NOT NULL,
    rate_e9 INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE UNIQUE INDEX exchange_rates_pair_key ON exchange_rates (base, quote, date);
