-- Budget threshold alerts (docs/cost.md#alerts). One row per budget
-- (scope), period window, dimension and threshold: the UNIQUE rule is what
-- makes an alert fire once, across restarts and replicas (the row is
-- inserted before anything is sent; a conflict means it already fired).
-- The delivery columns are updated after every attempt.
CREATE TABLE budget_alerts (
    id           TEXT PRIMARY KEY,   -- alr_…, time-ordered
    tenant_id    TEXT,
    scope        TEXT NOT NULL,      -- tenant:ID | team:ID | key:ID
    period       TEXT NOT NULL,      -- day | month
    window_start INTEGER NOT NULL,   -- unix ms, the window is [start, end)
    window_end   INTEGER NOT NULL,
    dimension    TEXT NOT NULL,      -- cost | tokens
    threshold    INTEGER NOT NULL,   -- percent of the cap
    limit_value  INTEGER NOT NULL,   -- the cap: nano-dollars or tokens
    spent        INTEGER NOT NULL,   -- committed when it fired (same unit)
    refused      INTEGER NOT NULL,   -- 1: a request was refused by the budget
    fired_at     INTEGER NOT NULL,   -- unix ms
    status       TEXT NOT NULL,      -- pending | delivered | failed | recorded
    attempts     INTEGER NOT NULL,
    last_error   TEXT,
    updated_at   INTEGER NOT NULL,   -- unix ms
    UNIQUE (scope, period, window_start, dimension, threshold)
);
CREATE INDEX budget_alerts_by_tenant ON budget_alerts (tenant_id, id);
CREATE INDEX budget_alerts_by_status ON budget_alerts (status, updated_at);
