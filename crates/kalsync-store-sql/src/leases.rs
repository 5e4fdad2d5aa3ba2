//! Leases in SQL: which node holds which users, taken, renewed and taken over by the clock
//! the nodes pass in.

use jiff::{SignedDuration, Timestamp};
use kalsync_store::{Census, StoreError, UserId};

use crate::SqlStore;
use crate::rows::{at, collect, db, id, ms};

/// When leases renewed at `now` run out.
fn expiry(now: Timestamp, ttl: SignedDuration) -> i64 {
    ms(now).saturating_add(ttl.as_millis().clamp(0, i128::from(i64::MAX / 2)) as i64)
}

impl SqlStore {
    pub(crate) async fn take_leases(
        &self,
        node: &str,
        now: Timestamp,
        ttl: SignedDuration,
        limit: usize,
    ) -> Result<Vec<UserId>, StoreError> {
        // A node's leases all run out together, when its own row says: renewing them is
        // one write, however many users it holds.
        self.renew_node(node, now, ttl).await?;
        // A lease that ran out was not released: its node stopped without handing over
        // the changes it was told of and had not read yet. Whoever takes the user reads
        // it at once. Which nodes ran out is read from their rows (a handful), so a
        // renewal scans no leases while every node is alive.
        let run_out: Vec<String> = sqlx::query_scalar(
            "SELECT n.name FROM nodes n WHERE n.expires_ms < $1 AND n.name <> $2 \
                 AND EXISTS (SELECT 1 FROM leases l WHERE l.node = n.name)",
        )
        .bind(ms(now))
        .bind(node.to_owned())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        // Nodes taking over at the same moment take turns on the stopped node's row
        // (updating the same users in different orders, they deadlocked and one's
        // renewal failed: its part of the users waited for the next refresh); the one
        // that comes second finds them asked already.
        for stopped in &run_out {
            let mut tx = self.pool.begin().await.map_err(db)?;
            sqlx::query("UPDATE nodes SET expires_ms = expires_ms WHERE name = $1")
                .bind(stopped.clone())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            sqlx::query(
                "UPDATE users SET sync_requested_ms = $2 WHERE id IN \
                 (SELECT user_id FROM leases WHERE node = $1) \
                 AND COALESCE(sync_requested_ms, 0) < \
                 COALESCE((SELECT expires_ms FROM nodes WHERE name = $1), $2)",
            )
            .bind(stopped.clone())
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
        }
        // Free users, and those of a node whose leases ran out; a conflicting insert
        // takes over only a lease that has still run out when it lands, so two nodes
        // cannot both win the same user. Looked for only when there can be any.
        // Nodes taking over at the same moment pick the same users first; the one whose
        // insert lands second takes none of them, so it looks again (a few times) for
        // those left.
        let mut wanted = limit;
        for _ in 0..4 {
            if wanted == 0 || !self.any_free(!run_out.is_empty()).await? {
                break;
            }
            let taken = sqlx::query(
                "INSERT INTO leases (user_id, node, expires_ms) \
                 SELECT u.id, $1, $2 FROM users u LEFT JOIN leases l ON l.user_id = u.id \
                 LEFT JOIN nodes n ON n.name = l.node \
                 WHERE l.user_id IS NULL OR n.expires_ms < $3 OR n.name IS NULL \
                 ORDER BY u.id LIMIT $4 \
                 ON CONFLICT (user_id) DO UPDATE SET node = excluded.node, expires_ms = excluded.expires_ms \
                 WHERE COALESCE((SELECT n2.expires_ms FROM nodes n2 WHERE n2.name = leases.node), 0) < $3",
            )
            .bind(node.to_owned())
            .bind(expiry(now, ttl))
            .bind(ms(now))
            .bind(i64::try_from(wanted).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected();
            let taken = usize::try_from(taken).unwrap_or(usize::MAX);
            if taken >= wanted {
                break;
            }
            wanted -= taken;
        }
        collect(
            &self.pool,
            sqlx::query("SELECT user_id FROM leases WHERE node = $1 ORDER BY user_id")
                .bind(node.to_owned()),
            |r| id(r, "user_id"),
        )
        .await
    }

    /// Whether any user may be free to take: some node's leases ran out, or there are
    /// more users than leases.
    async fn any_free(&self, run_out: bool) -> Result<bool, StoreError> {
        if run_out {
            return Ok(true);
        }
        let (users, leases): (i64, i64) =
            sqlx::query_as("SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM leases)")
                .fetch_one(&self.pool)
                .await
                .map_err(db)?;
        Ok(users > leases)
    }

    /// Records that `node` is alive at `now`: its leases hold until `now + ttl`.
    async fn renew_node(
        &self,
        node: &str,
        now: Timestamp,
        ttl: SignedDuration,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO nodes (name, seen_ms, expires_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET seen_ms = excluded.seen_ms, expires_ms = excluded.expires_ms",
        )
        .bind(node.to_owned())
        .bind(ms(now))
        .bind(expiry(now, ttl))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// The leases `node` still holds from before it started: its users are asked to be
    /// read and the leases given up.
    pub(crate) async fn recover_leases(
        &self,
        node: &str,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let asked = sqlx::query(
            "UPDATE users SET sync_requested_ms = $2 WHERE id IN \
             (SELECT user_id FROM leases WHERE node = $1)",
        )
        .bind(node.to_owned())
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        sqlx::query("DELETE FROM leases WHERE node = $1")
            .bind(node.to_owned())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(usize::try_from(asked).unwrap_or(usize::MAX))
    }

    pub(crate) async fn delete_leases(&self, node: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        for sql in [
            "DELETE FROM leases WHERE node = $1",
            "DELETE FROM nodes WHERE name = $1",
        ] {
            sqlx::query(sql)
                .bind(node.to_owned())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    pub(crate) async fn node_census(
        &self,
        node: &str,
        now: Timestamp,
        ttl: SignedDuration,
    ) -> Result<Census, StoreError> {
        self.renew_node(node, now, ttl).await?;
        // Nodes gone for a day, and holding nobody, are forgotten (a lease's node always
        // has its row).
        sqlx::query(
            "DELETE FROM nodes WHERE seen_ms < $1 \
             AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.node = nodes.name)",
        )
        .bind(ms(now) - 86_400_000)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        let (nodes, first_other): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(CASE WHEN name <> $1 THEN expires_ms END) FROM nodes WHERE expires_ms >= $2",
        )
        .bind(node.to_owned())
        .bind(ms(now))
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        let (users,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(Census {
            nodes: usize::try_from(nodes).unwrap_or(1).max(1),
            users: usize::try_from(users).unwrap_or(0),
            next_expiry: first_other.map(at),
        })
    }

    pub(crate) async fn delete_user_leases(
        &self,
        node: &str,
        users: &[UserId],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        for chunk in users.chunks(1000) {
            let list = (2..chunk.len() + 2)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("DELETE FROM leases WHERE node = $1 AND user_id IN ({list})");
            let mut query = sqlx::query(&sql).bind(node.to_owned());
            for user in chunk {
                query = query.bind(user.to_string());
            }
            query.execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }
}
