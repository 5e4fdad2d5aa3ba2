//! Teams presence in SQL: what Kalsync knows of each person in Teams (one row a person),
//! and the request budgets shared by every node (one row a key and window, taken with a
//! single conditional upsert so two nodes never both take the last requests).

use jiff::{SignedDuration, Timestamp};
use kalsync_store::{InstanceId, StoreError, TeamsPart, TeamsPerson, UserId};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::SqlStore;
use crate::rows::{at, collect, corrupt, db, ms};

fn person(r: &AnyRow) -> Result<TeamsPerson, StoreError> {
    let time = |k: &str| -> Result<Option<Timestamp>, StoreError> {
        Ok(r.try_get::<Option<i64>, _>(k).map_err(db)?.map(at))
    };
    let text = |k: &str| -> Result<Option<String>, StoreError> { r.try_get(k).map_err(db) };
    let id: String = r.try_get("user_id").map_err(db)?;
    Ok(TeamsPerson {
        user: id.parse().map_err(|e| corrupt("teams person", e))?,
        object_id: text("object_id")?,
        message: text("message")?,
        message_until: time("message_until_ms")?,
        session: text("session")?,
        session_until: time("session_until_ms")?,
        session_set: time("session_set_ms")?,
        call_until: time("call_until_ms")?,
        presence: text("presence")?,
        read_at: time("read_ms")?,
    })
}

impl SqlStore {
    pub(crate) async fn select_teams_person(
        &self,
        user: UserId,
    ) -> Result<TeamsPerson, StoreError> {
        Ok(self
            .optional(
                sqlx::query("SELECT * FROM teams_people WHERE user_id = $1").bind(user.to_string()),
                person,
            )
            .await?
            .unwrap_or(TeamsPerson {
                user,
                ..TeamsPerson::default()
            }))
    }

    pub(crate) async fn select_teams_people(
        &self,
        instance: InstanceId,
    ) -> Result<Vec<TeamsPerson>, StoreError> {
        collect(
            &self.pool,
            sqlx::query(
                "SELECT t.* FROM teams_people t JOIN users u ON u.id = t.user_id \
                 WHERE u.instance_id = $1 ORDER BY t.user_id",
            )
            .bind(instance.to_string()),
            person,
        )
        .await
    }

    pub(crate) async fn select_teams_persons(
        &self,
        users: &[UserId],
    ) -> Result<Vec<TeamsPerson>, StoreError> {
        let mut found: std::collections::HashMap<UserId, TeamsPerson> =
            std::collections::HashMap::new();
        // Chunks keep each statement's parameter list within both databases' limits.
        for chunk in users.chunks(200) {
            let list = (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("SELECT * FROM teams_people WHERE user_id IN ({list})");
            let mut query = sqlx::query(&sql);
            for u in chunk {
                query = query.bind(u.to_string());
            }
            for p in collect(&self.pool, query, person).await? {
                found.insert(p.user, p);
            }
        }
        Ok(users
            .iter()
            .map(|u| {
                found.get(u).cloned().unwrap_or(TeamsPerson {
                    user: *u,
                    ..TeamsPerson::default()
                })
            })
            .collect())
    }

    pub(crate) async fn upsert_teams_people(
        &self,
        people: &[TeamsPerson],
        part: TeamsPart,
    ) -> Result<(), StoreError> {
        let owned = match part {
            TeamsPart::Message => {
                "message = excluded.message, message_until_ms = excluded.message_until_ms, \
                 session = excluded.session, session_until_ms = excluded.session_until_ms, \
                 session_set_ms = excluded.session_set_ms, "
            }
            TeamsPart::Presence => "presence = excluded.presence, read_ms = excluded.read_ms, ",
            TeamsPart::Call => {
                "call_until_ms = excluded.call_until_ms, session_set_ms = excluded.session_set_ms, "
            }
            TeamsPart::Renewal => "session_set_ms = excluded.session_set_ms, ",
            TeamsPart::ObjectId => "",
        };
        // A person removed meanwhile is passed over (no row is made for them).
        let sql = format!(
            "INSERT INTO teams_people (user_id, object_id, message, message_until_ms, session, \
             session_until_ms, call_until_ms, presence, read_ms, session_set_ms) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
             WHERE EXISTS (SELECT 1 FROM users WHERE id = $1) \
             ON CONFLICT (user_id) DO UPDATE SET {owned}\
             object_id = COALESCE(excluded.object_id, teams_people.object_id)"
        );
        let mut tx = self.pool.begin().await.map_err(db)?;
        for p in people {
            sqlx::query(&sql)
                .bind(p.user.to_string())
                .bind(p.object_id.clone())
                .bind(p.message.clone())
                .bind(p.message_until.map(ms))
                .bind(p.session.clone())
                .bind(p.session_until.map(ms))
                .bind(p.call_until.map(ms))
                .bind(p.presence.clone())
                .bind(p.read_at.map(ms))
                .bind(p.session_set.map(ms))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    pub(crate) async fn take_from_budget(
        &self,
        key: &str,
        window: Timestamp,
        n: u32,
        limit: u32,
    ) -> Result<bool, StoreError> {
        if n > limit {
            return Ok(false);
        }
        let used: Option<i64> = sqlx::query(
            "INSERT INTO request_budgets (budget_key, window_ms, used) VALUES ($1, $2, $3) \
             ON CONFLICT (budget_key, window_ms) DO UPDATE \
             SET used = request_budgets.used + excluded.used \
             WHERE request_budgets.used + excluded.used <= $4 \
             RETURNING used",
        )
        .bind(key.to_owned())
        .bind(ms(window))
        .bind(i64::from(n))
        .bind(i64::from(limit))
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .map(|r| r.try_get("used"))
        .transpose()
        .map_err(db)?;
        if used == Some(i64::from(n)) {
            // The window's first take: old windows of this key go.
            sqlx::query("DELETE FROM request_budgets WHERE budget_key = $1 AND window_ms < $2")
                .bind(key.to_owned())
                .bind(ms(window - SignedDuration::from_mins(1)))
                .execute(&self.pool)
                .await
                .map_err(db)?;
        }
        Ok(used.is_some())
    }
}
