-- The nodes sharing the users, each with its last sign of life (renewing its leases):
-- a node holds the users divided among those seen within the lease time, and takes over
-- a stopped node's users when that node's leases run out.
CREATE TABLE nodes (
    name    TEXT PRIMARY KEY,
    seen_ms BIGINT NOT NULL
);
