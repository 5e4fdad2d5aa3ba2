//! The outbox in SQL: deliveries to targets with per user and target sequences, what is
//! due for the node holding the user, and their outcome (delivered, retried, dead).

use jiff::Timestamp;
use kalsync_store::{
    CompanyId, Delivery, DeliveryId, DeliveryState, NewDelivery, StoreError, TargetId, UserId,
};
use sqlx::Row as _;

use crate::SqlStore;
use crate::rows::{at, collect, db, db_or_missing, ms, now};

const DELIVERY_COLUMNS: &str = "id, user_id, target_id, sequence, payload, state, attempts, due_ms, next_attempt_ms, created_ms, delivered_ms, last_error";

impl SqlStore {
    pub(crate) async fn insert_delivery(&self, new: NewDelivery) -> Result<Delivery, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let company: Option<String> = sqlx::query("SELECT i.company_id FROM users u JOIN instances i ON i.id = u.instance_id WHERE u.id = $1")
            .bind(new.user.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .map(|r| r.try_get::<String, _>("company_id"))
            .transpose()
            .map_err(db)?;
        let company = company.ok_or_else(|| StoreError::NotFound(format!("user {}", new.user)))?;
        let last: Option<i64> = sqlx::query(
            "SELECT MAX(sequence) AS last FROM deliveries WHERE user_id = $1 AND target_id = $2",
        )
        .bind(new.user.to_string())
        .bind(new.target.to_string())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?
        .try_get("last")
        .map_err(db)?;
        sqlx::query("UPDATE deliveries SET state = 'superseded' WHERE user_id = $1 AND target_id = $2 AND state = 'pending' AND ($3 = 0 OR due_ms >= $4)")
            .bind(new.user.to_string())
            .bind(new.target.to_string())
            .bind(i64::from(new.ahead))
            .bind(ms(new.due))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let now = now();
        let delivery = Delivery {
            id: DeliveryId::new(),
            user: new.user,
            target: new.target,
            sequence: u64::try_from(last.unwrap_or(0)).unwrap_or(0) + 1,
            payload: new.payload,
            state: DeliveryState::Pending,
            attempts: 0,
            due: new.due,
            next_attempt: new.due,
            created: now,
            delivered: None,
            last_error: None,
        };
        sqlx::query("INSERT INTO deliveries (id, user_id, target_id, company_id, sequence, payload, state, attempts, due_ms, next_attempt_ms, created_ms) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8, $9)")
            .bind(delivery.id.to_string())
            .bind(delivery.user.to_string())
            .bind(delivery.target.to_string())
            .bind(company)
            .bind(i64::try_from(delivery.sequence).unwrap_or(i64::MAX))
            .bind(delivery.payload.to_string())
            .bind(ms(delivery.due))
            .bind(ms(delivery.next_attempt))
            .bind(ms(delivery.created))
            .execute(&mut *tx)
            .await
            .map_err(db_or_missing(format!("target {}", delivery.target)))?;
        tx.commit().await.map_err(db)?;
        Ok(delivery)
    }

    pub(crate) async fn supersede_from(
        &self,
        user: UserId,
        target: TargetId,
        from: Timestamp,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE deliveries SET state = 'superseded' WHERE user_id = $1 AND target_id = $2 AND state = 'pending' AND due_ms >= $3",
        )
        .bind(user.to_string())
        .bind(target.to_string())
        .bind(ms(from))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    pub(crate) async fn select_due_deliveries(
        &self,
        node: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let columns = DELIVERY_COLUMNS
            .split(", ")
            .map(|c| format!("d.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT {columns} FROM deliveries d JOIN leases l ON l.user_id = d.user_id AND l.node = $1 \
             WHERE d.state = 'pending' AND d.next_attempt_ms <= $2 ORDER BY d.next_attempt_ms, d.sequence LIMIT $3"
        ))
        .bind(node.to_owned())
        .bind(ms(now))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(Self::delivery_row).collect()
    }

    pub(crate) async fn insert_deliveries(
        &self,
        new: Vec<NewDelivery>,
    ) -> Result<Vec<Delivery>, StoreError> {
        // Chunks of a few hundred keep each statement's parameter list within both
        // databases' limits.
        const CHUNK: usize = 200;
        let mut written = Vec::with_capacity(new.len());
        let mut tx = self.pool.begin().await.map_err(db)?;
        for chunk in new.chunks(CHUNK) {
            let users: Vec<String> = chunk.iter().map(|d| d.user.to_string()).collect();
            let list = |offset: usize, n: usize| {
                (offset + 1..=offset + n)
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let mut companies: std::collections::HashMap<String, String> =
                std::collections::HashMap::new();
            let sql1 = format!(
                "SELECT u.id, i.company_id FROM users u JOIN instances i ON i.id = u.instance_id WHERE u.id IN ({})",
                list(0, users.len())
            );
            let mut query = sqlx::query_as::<_, (String, String)>(&sql1);
            for u in &users {
                query = query.bind(u.clone());
            }
            for (u, c) in query.fetch_all(&mut *tx).await.map_err(db)? {
                companies.insert(u, c);
            }
            let mut last: std::collections::HashMap<(String, String), i64> =
                std::collections::HashMap::new();
            let sql2 = format!(
                "SELECT user_id, target_id, MAX(sequence) FROM deliveries WHERE user_id IN ({}) GROUP BY user_id, target_id",
                list(0, users.len())
            );
            let mut query = sqlx::query_as::<_, (String, String, i64)>(&sql2);
            for u in &users {
                query = query.bind(u.clone());
            }
            for (u, t, m) in query.fetch_all(&mut *tx).await.map_err(db)? {
                last.insert((u, t), m);
            }
            // Superseded: what is pending for the same user *and target* — another
            // target's pending status for the user still has to go out — and, for a
            // delivery written ahead of its time, only what is due at or after it.
            let matches: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = 4 * i;
                    format!(
                        "(user_id = ${} AND target_id = ${} AND (${} = 0 OR due_ms >= ${}))",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4
                    )
                })
                .collect();
            let sql3 = format!(
                "UPDATE deliveries SET state = 'superseded' WHERE state = 'pending' AND ({})",
                matches.join(" OR ")
            );
            let mut update = sqlx::query(&sql3);
            for d in chunk {
                update = update
                    .bind(d.user.to_string())
                    .bind(d.target.to_string())
                    .bind(i64::from(d.ahead))
                    .bind(ms(d.due));
            }
            update.execute(&mut *tx).await.map_err(db)?;
            let now = now();
            let mut rows = Vec::with_capacity(chunk.len());
            for d in chunk {
                let key = (d.user.to_string(), d.target.to_string());
                let company = companies
                    .get(&key.0)
                    .cloned()
                    .ok_or_else(|| StoreError::NotFound(format!("user {}", d.user)))?;
                let sequence = last.get(&key).copied().unwrap_or(0) + 1;
                last.insert(key, sequence);
                rows.push((
                    Delivery {
                        id: DeliveryId::new(),
                        user: d.user,
                        target: d.target,
                        sequence: u64::try_from(sequence).unwrap_or(0),
                        payload: d.payload.clone(),
                        state: DeliveryState::Pending,
                        attempts: 0,
                        due: d.due,
                        next_attempt: d.due,
                        created: now,
                        delivered: None,
                        last_error: None,
                    },
                    company,
                ));
            }
            let placeholders: Vec<String> = (0..rows.len())
                .map(|r| {
                    let b = r * 9;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, 'pending', 0, ${}, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6,
                        b + 7,
                        b + 8,
                        b + 9
                    )
                })
                .collect();
            let sql4 = format!(
                "INSERT INTO deliveries (id, user_id, target_id, company_id, sequence, payload, state, attempts, due_ms, next_attempt_ms, created_ms) VALUES {}",
                placeholders.join(", ")
            );
            let mut insert = sqlx::query(&sql4);
            for (d, company) in &rows {
                insert = insert
                    .bind(d.id.to_string())
                    .bind(d.user.to_string())
                    .bind(d.target.to_string())
                    .bind(company.clone())
                    .bind(i64::try_from(d.sequence).unwrap_or(i64::MAX))
                    .bind(d.payload.to_string())
                    .bind(ms(d.due))
                    .bind(ms(d.next_attempt))
                    .bind(ms(d.created));
            }
            insert.execute(&mut *tx).await.map_err(db)?;
            written.extend(rows.into_iter().map(|(d, _)| d));
        }
        tx.commit().await.map_err(db)?;
        Ok(written)
    }

    pub(crate) async fn update_delivered_many(
        &self,
        ids: &[DeliveryId],
        when: Timestamp,
    ) -> Result<(), StoreError> {
        // A few thousand to a statement: within both databases' parameter limits.
        for chunk in ids.chunks(5000) {
            let list = (2..chunk.len() + 2)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql5 = format!(
                "UPDATE deliveries SET state = 'delivered', delivered_ms = $1, attempts = attempts + 1 WHERE id IN ({list})"
            );
            let mut query = sqlx::query(&sql5).bind(ms(when));
            for id in chunk {
                query = query.bind(id.to_string());
            }
            query.execute(&self.pool).await.map_err(db)?;
        }
        Ok(())
    }

    pub(crate) async fn select_held_last_deliveries(
        &self,
        node: &str,
    ) -> Result<Vec<Delivery>, StoreError> {
        let columns = DELIVERY_COLUMNS
            .split(", ")
            .map(|c| format!("d.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql6 = format!(
            "SELECT {columns} FROM deliveries d \
             JOIN (SELECT d2.user_id, d2.target_id, MAX(d2.sequence) AS m FROM deliveries d2 \
                   JOIN leases l ON l.user_id = d2.user_id AND l.node = $1 GROUP BY d2.user_id, d2.target_id) x \
             ON x.user_id = d.user_id AND x.target_id = d.target_id AND x.m = d.sequence"
        );
        collect(
            &self.pool,
            sqlx::query(&sql6).bind(node.to_owned()),
            Self::delivery_row,
        )
        .await
    }

    pub(crate) async fn select_next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_ms) AS next FROM deliveries WHERE state = 'pending'",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(row.try_get::<Option<i64>, _>("next").map_err(db)?.map(at))
    }

    pub(crate) async fn update_delivered(
        &self,
        delivery: DeliveryId,
        when: Timestamp,
    ) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE deliveries SET state = 'delivered', delivered_ms = $2, attempts = attempts + 1 WHERE id = $1")
            .bind(delivery.to_string())
            .bind(ms(when));
        self.affected(query, format!("delivery {delivery}")).await
    }

    pub(crate) async fn update_retry(
        &self,
        delivery: DeliveryId,
        next_attempt: Timestamp,
        error: &str,
    ) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE deliveries SET attempts = attempts + 1, next_attempt_ms = $2, last_error = $3 WHERE id = $1 AND state = 'pending'")
            .bind(delivery.to_string())
            .bind(ms(next_attempt))
            .bind(error.to_owned());
        self.affected(query, format!("pending delivery {delivery}"))
            .await
    }

    pub(crate) async fn update_dead(
        &self,
        delivery: DeliveryId,
        error: &str,
    ) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE deliveries SET state = 'dead', attempts = attempts + 1, last_error = $2 WHERE id = $1")
            .bind(delivery.to_string())
            .bind(error.to_owned());
        self.affected(query, format!("delivery {delivery}")).await
    }

    pub(crate) async fn select_delivery(
        &self,
        delivery: DeliveryId,
    ) -> Result<Delivery, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1"
        ))
        .bind(delivery.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .ok_or_else(|| StoreError::NotFound(format!("delivery {delivery}")))?;
        Self::delivery_row(&row)
    }

    pub(crate) async fn select_last_delivery(
        &self,
        user: UserId,
        target: TargetId,
    ) -> Result<Option<Delivery>, StoreError> {
        let row = sqlx::query(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE user_id = $1 AND target_id = $2 ORDER BY sequence DESC LIMIT 1"))
            .bind(user.to_string())
            .bind(target.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(Self::delivery_row).transpose()
    }

    pub(crate) async fn select_deliveries(
        &self,
        company: CompanyId,
        state: DeliveryState,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE company_id = $1 AND state = $2 ORDER BY created_ms DESC, sequence DESC LIMIT $3"))
            .bind(company.to_string())
            .bind(state.as_str())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(Self::delivery_row).collect()
    }

    pub(crate) async fn count_pending(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE state = 'pending'")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(u64::try_from(row.try_get::<i64, _>("n").map_err(db)?).unwrap_or(0))
    }
}
