-- Several nodes may start at once on one database and each apply the settings file's
-- declarations: a company, an instance of a company, a target of a company is made once
-- by name, and a node that loses the race finds the winner's. Names repeated before
-- this (none are made by the admin UI) get their id's first characters added.
UPDATE companies SET name = name || ' ' || substr(id, 1, 8)
WHERE EXISTS (SELECT 1 FROM companies o WHERE o.name = companies.name AND o.id < companies.id);
CREATE UNIQUE INDEX companies_name ON companies (name);

UPDATE instances SET name = name || ' ' || substr(id, 1, 8)
WHERE EXISTS (SELECT 1 FROM instances o WHERE o.company_id = instances.company_id
              AND o.name = instances.name AND o.id < instances.id);
CREATE UNIQUE INDEX instances_company_name ON instances (company_id, name);

UPDATE targets SET name = name || ' ' || substr(id, 1, 8)
WHERE EXISTS (SELECT 1 FROM targets o WHERE o.company_id = targets.company_id
              AND o.name = targets.name AND o.id < targets.id);
CREATE UNIQUE INDEX targets_company_name ON targets (company_id, name);
