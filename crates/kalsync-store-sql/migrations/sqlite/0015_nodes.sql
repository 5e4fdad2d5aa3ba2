-- The nodes sharing the users: each node's leases hold until its `expires_ms` (renewed
-- in this one row, however many users it holds); `seen_ms` is its last sign of life.
-- A node holds the users divided among the nodes alive, and takes over a stopped node's
-- users when that node's leases run out. A lease whose node has no row here (taken
-- before this table) runs out at its own `expires_ms`.
CREATE TABLE nodes (
    name       TEXT PRIMARY KEY,
    seen_ms    BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
