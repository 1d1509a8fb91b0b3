-- Compute nodes' last heartbeat: one row per node, shared by replicas
-- (a node reaches one of them through the load balancer; all poll this).
CREATE TABLE nodes (
    name    TEXT PRIMARY KEY,
    seen_at INTEGER NOT NULL,  -- unix ms of the last heartbeat
    doc     TEXT NOT NULL      -- the heartbeat, JSON
);
