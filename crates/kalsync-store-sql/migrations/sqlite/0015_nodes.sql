-- The nodes sharing the users: each node's leases hold until its `expires_ms` (renewed
-- in this one row, however many users it holds); `seen_ms` is its last sign of life.
-- A node holds the users divided among the nodes alive, and takes over a stopped node's
-- users when that node's leases run out. Every lease's node has a row here.
CREATE TABLE nodes (
    name       TEXT PRIMARY KEY,
    seen_ms    BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);

-- Leases taken before this table: their nodes get rows holding them until the latest.
INSERT INTO nodes (name, seen_ms, expires_ms)
SELECT node, MAX(expires_ms), MAX(expires_ms) FROM leases GROUP BY node;
