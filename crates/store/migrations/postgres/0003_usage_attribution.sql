-- Who a request is charged to beyond its key (see the SQLite migration 0004).
ALTER TABLE usage_records ADD COLUMN team_id TEXT;
ALTER TABLE usage_records ADD COLUMN user_id TEXT;
ALTER TABLE usage_records ADD COLUMN end_user TEXT;
ALTER TABLE usage_records ADD COLUMN tags TEXT;
