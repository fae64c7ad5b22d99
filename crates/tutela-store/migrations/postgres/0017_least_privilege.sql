-- Least privilege (issue 14; R29, R7).
-- A service token's data scope: the purposes and categories it was created for
-- (comma-separated ids; NULL = none, so an unscoped service reads nothing personal).
ALTER TABLE api_tokens ADD COLUMN scope_purposes TEXT;
ALTER TABLE api_tokens ADD COLUMN scope_categories TEXT;
-- A grant's reason is free text an engineer wrote about a customer's case: sealed under
-- the tenant's key. Rows from before keep their clear reason until the server re-seals
-- them at start (then `reason` is emptied).
ALTER TABLE grants ADD COLUMN sealed_reason BYTEA;
-- Incidents are scoped to their tenant: grants are found by (tenant, incident).
CREATE INDEX grants_tenant_incident ON grants(tenant_id, incident, state);
