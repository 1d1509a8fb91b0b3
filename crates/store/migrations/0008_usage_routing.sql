-- The router's decision on each record: the request's data classification
-- (P0, P1, P2) and why its plan was chosen (strategy, classification and
-- its source, eligible deployments, masking).
ALTER TABLE usage_records ADD COLUMN classification TEXT;
ALTER TABLE usage_records ADD COLUMN route_reason TEXT;
