-- Third-party complaints about a customer's data (issue 5, R23): redirected to the
-- customer, the third party gets only basic contact data. The complaint's content stays
-- in the operator's ticket system; tutela keeps its reference.
CREATE TABLE third_party_complaints (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    complaint_ref TEXT NOT NULL,
    notices       TEXT NOT NULL,
    received_by   TEXT NOT NULL,
    at            BIGINT NOT NULL
);
CREATE INDEX third_party_complaints_tenant ON third_party_complaints(tenant_id, at);
