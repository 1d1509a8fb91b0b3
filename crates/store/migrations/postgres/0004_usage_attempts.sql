-- One record per upstream attempt (see the SQLite migration 0005).
ALTER TABLE usage_records ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN is_final BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE usage_records ADD COLUMN model TEXT;
