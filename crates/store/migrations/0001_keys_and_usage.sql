-- Keys: the secret is never stored, only its SHA-256 (hex).
CREATE TABLE IF NOT EXISTS api_keys (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    key_hash       TEXT NOT NULL UNIQUE,
    prefix         TEXT NOT NULL,
    tenant_id      TEXT NOT NULL,
    team_id        TEXT,
    user_id        TEXT,
    roles          TEXT NOT NULL,          -- JSON array
    allowed_routes TEXT,                   -- JSON array, NULL = all
    status         TEXT NOT NULL,
    expires_at     INTEGER,                -- unix ms
    metadata       TEXT NOT NULL,          -- JSON object
    created_at     INTEGER NOT NULL        -- unix ms
);

-- One row per request (failed ones too). `id` is made by the gateway and
-- unique, so a replayed batch cannot double-count; `request_id` is the
-- client's (x-request-id) and may repeat.
CREATE TABLE IF NOT EXISTS usage_records (
    id            TEXT PRIMARY KEY,
    request_id    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    key_id        TEXT,
    tenant_id     TEXT,
    operation     TEXT NOT NULL,
    route         TEXT,
    deployment    TEXT,
    stream        INTEGER NOT NULL,
    status        INTEGER NOT NULL,
    error_kind    TEXT,
    input_tokens  INTEGER,
    output_tokens INTEGER,
    usage_source  TEXT NOT NULL,
    attempts      INTEGER NOT NULL,
    latency_ms    REAL NOT NULL,
    ttft_ms       REAL,
    overhead_ms   REAL NOT NULL
);
-- No secondary index yet: each one costs ~7k instructions per inserted row
-- (docs/adr/0005); the analytics issue adds the ones its queries need.
