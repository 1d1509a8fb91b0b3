-- Hourly and daily rollups of usage_records, kept by the usage writer in
-- the same transaction as the raw rows (see the SQLite migration 0006 for
-- what each column holds, and docs/adr/0008). Rows are updated in place
-- many times (each batch adds to its groups' sums): pages keep 30% free so
-- an update can stay on its page without touching the indexes (HOT).
CREATE TABLE usage_rollup_hourly (
    bucket             BIGINT NOT NULL,        -- unix ms of the UTC hour
    tenant_id          TEXT NOT NULL,          -- '' when the record has none
    team_id            TEXT NOT NULL,
    key_id             TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    route              TEXT NOT NULL,
    deployment         TEXT NOT NULL,
    model              TEXT NOT NULL,
    operation          TEXT NOT NULL,
    requests           BIGINT NOT NULL,
    errors             BIGINT NOT NULL,
    attempts           BIGINT NOT NULL,
    failed_attempts    BIGINT NOT NULL,
    input_tokens       BIGINT NOT NULL,
    output_tokens      BIGINT NOT NULL,
    cache_read_tokens  BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    cost_nanos         BIGINT NOT NULL,
    latency_us         BIGINT NOT NULL,
    PRIMARY KEY (bucket, tenant_id, team_id, key_id, user_id, route, deployment, model, operation)
) WITH (fillfactor = 70);
CREATE INDEX usage_rollup_hourly_by_tenant ON usage_rollup_hourly (tenant_id, bucket);

-- The same per UTC day (bucket = the day's first unix ms): what reads of
-- whole days scan — a 24th of the rows of the hourly table, or less.
CREATE TABLE usage_rollup_daily (
    bucket             BIGINT NOT NULL,
    tenant_id          TEXT NOT NULL,
    team_id            TEXT NOT NULL,
    key_id             TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    route              TEXT NOT NULL,
    deployment         TEXT NOT NULL,
    model              TEXT NOT NULL,
    operation          TEXT NOT NULL,
    requests           BIGINT NOT NULL,
    errors             BIGINT NOT NULL,
    attempts           BIGINT NOT NULL,
    failed_attempts    BIGINT NOT NULL,
    input_tokens       BIGINT NOT NULL,
    output_tokens      BIGINT NOT NULL,
    cache_read_tokens  BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    cost_nanos         BIGINT NOT NULL,
    latency_us         BIGINT NOT NULL,
    PRIMARY KEY (bucket, tenant_id, team_id, key_id, user_id, route, deployment, model, operation)
) WITH (fillfactor = 70);
CREATE INDEX usage_rollup_daily_by_tenant ON usage_rollup_daily (tenant_id, bucket);

CREATE TABLE usage_rollup_tags (
    bucket             BIGINT NOT NULL,
    tenant_id          TEXT NOT NULL,
    tag_key            TEXT NOT NULL,
    tag_value          TEXT NOT NULL,
    requests           BIGINT NOT NULL,
    errors             BIGINT NOT NULL,
    attempts           BIGINT NOT NULL,
    failed_attempts    BIGINT NOT NULL,
    input_tokens       BIGINT NOT NULL,
    output_tokens      BIGINT NOT NULL,
    cache_read_tokens  BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    cost_nanos         BIGINT NOT NULL,
    latency_us         BIGINT NOT NULL,
    PRIMARY KEY (bucket, tenant_id, tag_key, tag_value)
) WITH (fillfactor = 70);

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
       SUM(CASE WHEN is_final THEN CAST(TRUNC(latency_ms * 1000) AS BIGINT) ELSE 0 END)
FROM usage_records
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9;

INSERT INTO usage_rollup_daily
SELECT (bucket / 86400000) * 86400000, tenant_id, team_id, key_id, user_id, route, deployment, model, operation,
       SUM(requests), SUM(errors), SUM(attempts), SUM(failed_attempts), SUM(input_tokens), SUM(output_tokens),
       SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cost_nanos), SUM(latency_us)
FROM usage_rollup_hourly
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9;

-- Tags are the gateway's JSON object text; anything else counts as none.
INSERT INTO usage_rollup_tags
SELECT (u.created_at / 3600000) * 3600000, COALESCE(u.tenant_id, ''), t.key, t.value #>> '{}',
       SUM(CASE WHEN u.is_final THEN 1 ELSE 0 END),
       SUM(CASE WHEN u.is_final AND (u.status >= 400 OR u.error_kind IS NOT NULL) THEN 1 ELSE 0 END),
       SUM(CASE WHEN u.attempt >= 1 THEN 1 ELSE 0 END),
       SUM(CASE WHEN u.attempt >= 1 AND (u.status >= 400 OR u.error_kind IS NOT NULL) THEN 1 ELSE 0 END),
       SUM(COALESCE(u.input_tokens, 0)), SUM(COALESCE(u.output_tokens, 0)),
       SUM(u.cache_read_tokens), SUM(u.cache_write_tokens), SUM(COALESCE(u.cost_nanos, 0)),
       SUM(CASE WHEN u.is_final THEN CAST(TRUNC(u.latency_ms * 1000) AS BIGINT) ELSE 0 END)
FROM usage_records u
CROSS JOIN LATERAL jsonb_each(CASE WHEN u.tags LIKE '{%' THEN u.tags::jsonb ELSE '{}'::jsonb END) t
WHERE jsonb_typeof(t.value) = 'string'
GROUP BY 1, 2, 3, 4;
