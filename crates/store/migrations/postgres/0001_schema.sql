-- The PostgreSQL schema: the same tables and columns as SQLite's after its
-- migration 0002 (a PostgreSQL database never held the first schema's
-- api_keys). Integers are BIGINT (unix ms, tokens, seq), flags BOOLEAN.
-- `doc` stays TEXT, not JSONB, so a document reads back byte for byte as
-- it was written, as with SQLite. Ids that are paged or sorted on compare
-- bytewise (COLLATE "C"), as SQLite and the in-memory store do, whatever
-- the database's default collation.

-- One row per request (failed ones too). `id` is made by the gateway and
-- unique, so a replayed batch cannot double-count; `request_id` is the
-- client's (x-request-id) and may repeat.
CREATE TABLE usage_records (
    id            TEXT COLLATE "C" PRIMARY KEY,
    request_id    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,          -- unix ms
    key_id        TEXT,
    tenant_id     TEXT,
    operation     TEXT NOT NULL,
    route         TEXT,
    deployment    TEXT,
    stream        BOOLEAN NOT NULL,
    status        INTEGER NOT NULL,
    error_kind    TEXT,
    input_tokens  BIGINT,
    output_tokens BIGINT,
    usage_source  TEXT NOT NULL,
    attempts      INTEGER NOT NULL,
    latency_ms    DOUBLE PRECISION NOT NULL,
    ttft_ms       DOUBLE PRECISION,
    overhead_ms   DOUBLE PRECISION NOT NULL
);
-- No secondary index yet, as with SQLite (docs/adr/0005).

-- The directory: plans, tenants, teams, users and keys, one JSON document
-- per object. `seq` comes from directory_sequence, advanced by every change,
-- so a replica catches up with "WHERE seq > mine". A delete keeps a
-- tombstone (deleted, empty doc) so it too is seen.
CREATE TABLE directory (
    kind        TEXT NOT NULL,            -- plan | tenant | team | user | key
    id          TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,            -- '' for plans
    name        TEXT NOT NULL,
    secret_hash TEXT,                     -- keys: hex SHA-256 of the secret
    doc         TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    deleted     BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (kind, id)
);
CREATE UNIQUE INDEX directory_by_seq ON directory (seq);
CREATE UNIQUE INDEX directory_live_names ON directory (kind, tenant_id, name) WHERE NOT deleted;
CREATE UNIQUE INDEX directory_live_secrets ON directory (secret_hash) WHERE NOT deleted AND secret_hash IS NOT NULL;

-- One row. `apply` advances it first, so its row lock, held to commit,
-- serialises changes: seq order is commit order.
CREATE TABLE directory_sequence (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO directory_sequence (id, seq) VALUES (1, 0);

-- Every admin change and security decision. `doc` is the whole entry as
-- JSON; the other columns are what GET /api/v1/audit filters on.
CREATE TABLE audit_log (
    id          TEXT COLLATE "C" PRIMARY KEY, -- time-ordered
    at          BIGINT NOT NULL,              -- unix ms
    tenant_id   TEXT,
    actor_id    TEXT,
    action      TEXT NOT NULL,
    target_kind TEXT,
    target_id   TEXT,
    doc         TEXT NOT NULL
);
CREATE INDEX audit_by_tenant ON audit_log (tenant_id, id);
CREATE INDEX audit_by_action ON audit_log (action, id);
