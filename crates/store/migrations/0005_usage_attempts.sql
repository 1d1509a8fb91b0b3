-- One record per upstream attempt: `id` is the request's id and `.n`.
-- `attempt` is n (0: the request never reached an upstream); `is_final`
-- marks the record that closes the request (its status is what the client
-- saw) — requests are counted over final records, cost and tokens over all.
-- `model` is the model the deployment was called with.
ALTER TABLE usage_records ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN is_final INTEGER NOT NULL DEFAULT 1;
ALTER TABLE usage_records ADD COLUMN model TEXT;
