-- People who sign in with Microsoft (Entra ID) are matched by tenant and object id,
-- never by e-mail. A tenant a company proved it owns belongs to that company alone, and
-- says which app roles or groups of it sign in as the company's admins or readers.
ALTER TABLE accounts ADD COLUMN entra_tenant TEXT;
ALTER TABLE accounts ADD COLUMN entra_object TEXT;
CREATE UNIQUE INDEX accounts_entra ON accounts (entra_tenant, entra_object);

CREATE TABLE company_tenants (
    tenant      TEXT PRIMARY KEY,  -- the Directory (tenant) id, lower case
    company_id  TEXT NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    admins      TEXT NOT NULL,     -- JSON array of app role values or group ids
    readers     TEXT NOT NULL,     -- JSON array
    proven_ms   INTEGER NOT NULL
);
CREATE INDEX company_tenants_company ON company_tenants (company_id);
