-- The directory: plans, tenants, teams, users and keys, one JSON document
-- per object. `seq` comes from directory_sequence, advanced by every change,
-- so a replica catches up with "WHERE seq > mine". A delete keeps a
-- tombstone (deleted = 1, empty doc) so it too is seen.
CREATE TABLE directory (
    kind        TEXT NOT NULL,            -- plan | tenant | team | user | key
    id          TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,            -- '' for plans
    name        TEXT NOT NULL,
    secret_hash TEXT,                     -- keys: hex SHA-256 of the secret
    doc         TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    deleted     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, id)
);
CREATE UNIQUE INDEX directory_by_seq ON directory (seq);
CREATE UNIQUE INDEX directory_live_names ON directory (kind, tenant_id, name) WHERE deleted = 0;
CREATE UNIQUE INDEX directory_live_secrets ON directory (secret_hash) WHERE deleted = 0 AND secret_hash IS NOT NULL;

CREATE TABLE directory_sequence (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO directory_sequence (id, seq) VALUES (1, 0);

-- Keys made before the directory existed move into it (names made unique
-- within their tenant where they were not).
INSERT INTO directory (kind, id, tenant_id, name, secret_hash, doc, seq, deleted)
SELECT 'key', a.id, a.tenant_id, n.name, a.key_hash,
       json_object(
           'id', a.id, 'name', n.name, 'prefix', a.prefix, 'tenant_id', a.tenant_id,
           'team_id', a.team_id, 'user_id', a.user_id,
           'roles', CASE WHEN json_array_length(a.roles) > 0 THEN json(a.roles) ELSE json_array('developer') END,
           'allowed_routes', json(a.allowed_routes), 'status', a.status, 'expires_at', a.expires_at,
           'limits', json_object(),
           'metadata', CASE WHEN json_type(a.metadata) = 'object' THEN json(a.metadata) ELSE json_object() END,
           'replaced_by', NULL, 'created_at', a.created_at, 'updated_at', a.created_at),
       ROW_NUMBER() OVER (ORDER BY a.id), 0
FROM api_keys a
JOIN (SELECT id,
             CASE WHEN (SELECT COUNT(*) FROM api_keys b WHERE b.tenant_id = k.tenant_id AND b.name = k.name) > 1
                  THEN k.name || ' ' || substr(k.id, -6) ELSE k.name END AS name
      FROM api_keys k) n ON n.id = a.id;
UPDATE directory_sequence SET seq = (SELECT COALESCE(MAX(seq), 0) FROM directory);
DROP TABLE api_keys;

-- Every admin change and security decision. `doc` is the whole entry as
-- JSON; the other columns are what GET /api/v1/audit filters on.
CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,             -- time-ordered
    at          INTEGER NOT NULL,             -- unix ms
    tenant_id   TEXT,
    actor_id    TEXT,
    action      TEXT NOT NULL,
    target_kind TEXT,
    target_id   TEXT,
    doc         TEXT NOT NULL
);
CREATE INDEX audit_by_tenant ON audit_log (tenant_id, id);
CREATE INDEX audit_by_action ON audit_log (action, id);
