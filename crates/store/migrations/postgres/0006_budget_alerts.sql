-- Budget threshold alerts (see the SQLite migration 0007): one row per
-- budget, period window, dimension and threshold; the UNIQUE rule makes an
-- alert fire once across restarts and replicas.
CREATE TABLE budget_alerts (
    id           TEXT COLLATE "C" PRIMARY KEY, -- alr_…, time-ordered (bytewise, for paging)
    tenant_id    TEXT,
    scope        TEXT NOT NULL,
    period       TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    window_end   BIGINT NOT NULL,
    dimension    TEXT NOT NULL,
    threshold    INTEGER NOT NULL,
    limit_value  BIGINT NOT NULL,
    spent        BIGINT NOT NULL,
    refused      BOOLEAN NOT NULL,
    fired_at     BIGINT NOT NULL,
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    last_error   TEXT,
    updated_at   BIGINT NOT NULL,
    UNIQUE (scope, period, window_start, dimension, threshold)
);
CREATE INDEX budget_alerts_by_tenant ON budget_alerts (tenant_id, id);
CREATE INDEX budget_alerts_by_status ON budget_alerts (status, updated_at);
