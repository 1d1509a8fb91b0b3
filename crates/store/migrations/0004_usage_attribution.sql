-- Who a request is charged to beyond its key: the key's team and user, the
-- application's end user (x-switchyard-user) and its tags
-- (x-switchyard-tags, a JSON object text with sorted keys).
ALTER TABLE usage_records ADD COLUMN team_id TEXT;
ALTER TABLE usage_records ADD COLUMN user_id TEXT;
ALTER TABLE usage_records ADD COLUMN end_user TEXT;
ALTER TABLE usage_records ADD COLUMN tags TEXT;
