//! Users' overrides in SQL: absences from other sources than bookings (a status set by
//! hand, the phone, Outlook's automatic replies), one per user and source, written with
//! a request to read the user again so the timeline takes them up.

use jiff::Timestamp;
use kalsync_core::{Mode, Override, ReasonCode, Source};
use kalsync_store::{StoreError, UserId};
use sqlx::Row as _;

use crate::SqlStore;
use crate::rows::{at, collect, corrupt, db, db_or_missing, ms};

/// A snake_case word stored for a serde enum (a source, a mode), read back.
fn word<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|e| corrupt(what, e))
}

impl SqlStore {
    pub(crate) async fn put_override(
        &self,
        user: UserId,
        source: Source,
        given: Option<&Override>,
        set_by: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM overrides WHERE user_id = $1 AND source = $2")
            .bind(user.to_string())
            .bind(source.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if let Some(o) = given {
            sqlx::query(
                "INSERT INTO overrides (user_id, source, start_ms, end_ms, reason, mode, set_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(user.to_string())
            .bind(source.as_str())
            .bind(ms(o.start))
            .bind(o.end.map(ms))
            .bind(o.status.as_ref().map(|(r, _)| r.as_str().to_owned()))
            .bind(o.status.as_ref().map(|(_, m)| m.as_str()))
            .bind(
                set_by
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>(),
            )
            .execute(&mut *tx)
            .await
            .map_err(db_or_missing(format!("user {user}")))?;
        }
        // Read again at once, here or by the node that holds the user.
        let asked = sqlx::query("UPDATE users SET sync_requested_ms = $2 WHERE id = $1")
            .bind(user.to_string())
            .bind(ms(Timestamp::now()))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if asked.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {user}")));
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    pub(crate) async fn select_overrides(
        &self,
        user: UserId,
        now: Timestamp,
    ) -> Result<Vec<Override>, StoreError> {
        collect(
            &self.pool,
            sqlx::query(
                "SELECT * FROM overrides WHERE user_id = $1 AND (end_ms IS NULL OR end_ms > $2) \
                 ORDER BY source",
            )
            .bind(user.to_string())
            .bind(ms(now)),
            |r| {
                let source: String = r.try_get("source").map_err(db)?;
                let reason: Option<String> = r.try_get("reason").map_err(db)?;
                let mode: Option<String> = r.try_get("mode").map_err(db)?;
                let set_by: String = r.try_get("set_by").map_err(db)?;
                let status = match (reason, mode) {
                    (Some(reason), Some(mode)) => Some((
                        ReasonCode::parse(reason).map_err(|e| corrupt("override reason", e))?,
                        word::<Mode>(&mode, "override mode")?,
                    )),
                    _ => None,
                };
                Ok(Override {
                    source: word::<Source>(&source, "override source")?,
                    id: set_by,
                    start: at(r.try_get("start_ms").map_err(db)?),
                    end: r.try_get::<Option<i64>, _>("end_ms").map_err(db)?.map(at),
                    status,
                })
            },
        )
        .await
    }
}
