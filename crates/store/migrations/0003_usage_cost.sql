-- What each request cost: the prompt tokens the provider's cache served or
-- took, and the cost in nano-dollars (10^-9 USD; exact arithmetic in
-- pico-dollars, rounded half up once per record). NULL cost: the record
-- predates prices.
ALTER TABLE usage_records ADD COLUMN cache_read_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN cost_nanos INTEGER;
