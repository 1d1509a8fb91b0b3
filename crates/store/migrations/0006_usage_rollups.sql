-- Hourly and daily rollups of usage_records, kept by the usage writer in
-- the same transaction as the raw rows it inserts (only rows it actually inserted:
-- a replayed batch adds nothing). Analytics and the budgets' start-up
-- rebuild read them instead of scanning raw records (docs/adr/0008).
--
-- `bucket` is the unix ms of the UTC hour (day). A dimension a record lacks is
-- '' (a primary key treats NULLs as distinct). The sums are integers:
--   requests         final records (one per request)
--   errors           final records with status >= 400 or an error_kind
--   attempts         records of upstream attempts (attempt >= 1)
--   failed_attempts  those with status >= 400 or an error_kind
--   *_tokens, cost_nanos   over every record (NULL counts 0)
--   latency_us       latency of final records, each truncated to whole µs
CREATE TABLE usage_rollup_hourly (
    bucket             INTEGER NOT NULL,
    tenant_id          TEXT NOT NULL,
    team_id            TEXT NOT NULL,
    key_id             TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    route              TEXT NOT NULL,
    deployment         TEXT NOT NULL,
    model              TEXT NOT NULL,
    operation          TEXT NOT NULL,
    requests           INTEGER NOT NULL,
    errors             INTEGER NOT NULL,
    attempts           INTEGER NOT NULL,
    failed_attempts    INTEGER NOT NULL,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    cache_read_tokens  INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cost_nanos         INTEGER NOT NULL,
    latency_us         INTEGER NOT NULL,
    PRIMARY KEY (bucket, tenant_id, team_id, key_id, user_id, route, deployment, model, operation)
) WITHOUT ROWID;
-- A tenant's queries read its own rows (written once per new row, never
-- on the sums' updates). WITHOUT ROWID: rows are stored in key order, so
-- a range of buckets is one sequential read and an upsert one B-tree.
CREATE INDEX usage_rollup_hourly_by_tenant ON usage_rollup_hourly (tenant_id, bucket);

-- The same per UTC day (bucket = the day's first unix ms): what reads of
-- whole days scan — a 24th of the rows of the hourly table, or less.
CREATE TABLE usage_rollup_daily (
    bucket             INTEGER NOT NULL,
    tenant_id          TEXT NOT NULL,
    team_id            TEXT NOT NULL,
    key_id             TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    route              TEXT NOT NULL,
    deployment         TEXT NOT NULL,
    model              TEXT NOT NULL,
    operation          TEXT NOT NULL,
    requests           INTEGER NOT NULL,
    errors             INTEGER NOT NULL,
    attempts           INTEGER NOT NULL,
    failed_attempts    INTEGER NOT NULL,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    cache_read_tokens  INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cost_nanos         INTEGER NOT NULL,
    latency_us         INTEGER NOT NULL,
    PRIMARY KEY (bucket, tenant_id, team_id, key_id, user_id, route, deployment, model, operation)
) WITHOUT ROWID;
CREATE INDEX usage_rollup_daily_by_tenant ON usage_rollup_daily (tenant_id, bucket);

-- The same sums per tag (x-switchyard-tags): a record with three tags is
-- in three rows.
CREATE TABLE usage_rollup_tags (
    bucket             INTEGER NOT NULL,
    tenant_id          TEXT NOT NULL,
    tag_key            TEXT NOT NULL,
    tag_value          TEXT NOT NULL,
    requests           INTEGER NOT NULL,
    errors             INTEGER NOT NULL,
    attempts           INTEGER NOT NULL,
    failed_attempts    INTEGER NOT NULL,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    cache_read_tokens  INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cost_nanos         INTEGER NOT NULL,
    latency_us         INTEGER NOT NULL,
    PRIMARY KEY (bucket, tenant_id, tag_key, tag_value)
) WITHOUT ROWID;

-- Records written before this migration: one scan, at the first start.
INSERT INTO usage_rollup_hourly
SELECT (created_at / 3600000) * 3600000, COALESCE(tenant_id, ''), COALESCE(team_id, ''), COALESCE(key_id, ''),
       COALESCE(user_id, ''), COALESCE(route, ''), COALESCE(deployment, ''), COALESCE(model, ''), operation,
       SUM(CASE WHEN is_final THEN 1 ELSE 0 END),
       SUM(CASE WHEN is_final AND (status >= 400 OR error_kind IS NOT NULL) THEN 1 ELSE 0 END),
       SUM(CASE WHEN attempt >= 1 THEN 1 ELSE 0 END),
       SUM(CASE WHEN attempt >= 1 AND (status >= 400 OR error_kind IS NOT NULL) THEN 1 ELSE 0 END),
       SUM(COALESCE(input_tokens, 0)), SUM(COALESCE(output_tokens, 0)),
       SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(COALESCE(cost_nanos, 0)),
       SUM(CASE WHEN is_final THEN CAST(latency_ms * 1000 AS INTEGER) ELSE 0 END)
FROM usage_records
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9;

INSERT INTO usage_rollup_daily
SELECT (bucket / 86400000) * 86400000, tenant_id, team_id, key_id, user_id, route, deployment, model, operation,
       SUM(requests), SUM(errors), SUM(attempts), SUM(failed_attempts), SUM(input_tokens), SUM(output_tokens),
       SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cost_nanos), SUM(latency_us)
FROM usage_rollup_hourly
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9;

INSERT INTO usage_rollup_tags
SELECT (u.created_at / 3600000) * 3600000, COALESCE(u.tenant_id, ''), t.key, t.value,
       SUM(CASE WHEN u.is_final THEN 1 ELSE 0 END),
       SUM(CASE WHEN u.is_final AND (u.status >= 400 OR u.error_kind IS NOT NULL) THEN 1 ELSE 0 END),
       SUM(CASE WHEN u.attempt >= 1 THEN 1 ELSE 0 END),
       SUM(CASE WHEN u.attempt >= 1 AND (u.status >= 400 OR u.error_kind IS NOT NULL) THEN 1 ELSE 0 END),
       SUM(COALESCE(u.input_tokens, 0)), SUM(COALESCE(u.output_tokens, 0)),
       SUM(u.cache_read_tokens), SUM(u.cache_write_tokens), SUM(COALESCE(u.cost_nanos, 0)),
       SUM(CASE WHEN u.is_final THEN CAST(u.latency_ms * 1000 AS INTEGER) ELSE 0 END)
FROM usage_records u,
     json_each(CASE WHEN json_valid(u.tags) THEN CASE WHEN json_type(u.tags) = 'object' THEN u.tags END END) t
WHERE t.type = 'text'
GROUP BY 1, 2, 3, 4;
