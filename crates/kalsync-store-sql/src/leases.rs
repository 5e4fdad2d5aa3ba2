//! Leases in SQL: which node holds which users, taken, renewed and taken over by the clock
//! the nodes pass in.

use jiff::{SignedDuration, Timestamp};
use kalsync_store::{StoreError, UserId};

use crate::SqlStore;
use crate::rows::{collect, db, id, ms};

impl SqlStore {
    pub(crate) async fn take_leases(
        &self,
        node: &str,
        now: Timestamp,
        ttl: SignedDuration,
        limit: usize,
    ) -> Result<Vec<UserId>, StoreError> {
        let expires = ms(now) + ttl.as_millis().clamp(0, i128::from(i64::MAX / 2)) as i64;
        sqlx::query("UPDATE leases SET expires_ms = $2 WHERE node = $1")
            .bind(node.to_owned())
            .bind(expires)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        // A lease that ran out was not released: its node stopped without handing over
        // the changes it was told of and had not read yet. Whoever takes the user reads
        // it at once.
        sqlx::query(
            "UPDATE users SET sync_requested_ms = $2 WHERE id IN \
             (SELECT user_id FROM leases WHERE expires_ms < $2 AND node <> $1)",
        )
        .bind(node.to_owned())
        .bind(ms(now))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        // Free users, and those of a node whose lease ran out; a conflicting insert takes
        // over only a lease that is still expired when it lands, so two nodes cannot
        // both win the same user.
        sqlx::query(
            "INSERT INTO leases (user_id, node, expires_ms) \
             SELECT u.id, $1, $2 FROM users u LEFT JOIN leases l ON l.user_id = u.id \
             WHERE l.user_id IS NULL OR l.expires_ms < $3 ORDER BY u.id LIMIT $4 \
             ON CONFLICT (user_id) DO UPDATE SET node = excluded.node, expires_ms = excluded.expires_ms \
             WHERE leases.expires_ms < $3",
        )
        .bind(node.to_owned())
        .bind(expires)
        .bind(ms(now))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        collect(
            &self.pool,
            sqlx::query("SELECT user_id FROM leases WHERE node = $1 ORDER BY user_id")
                .bind(node.to_owned()),
            |r| id(r, "user_id"),
        )
        .await
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
        sqlx::query("DELETE FROM leases WHERE node = $1")
            .bind(node.to_owned())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }
}
