-- Billing, multi-currency (issue 24): dated exchange rates.

CREATE TABLE exchange_rates (
    id UUID PRIMARY KEY NOT NULL,
    base TEXT COLLATE "C" NOT NULL,
    quote TEXT COLLATE "C" NOT NULL,
    date DATE NOT NULL,
    rate TEXT COLLATE "C" NOT NULL,
    rate_e9 BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX exchange_rates_pair_key ON exchange_rates (base, quote, date);
