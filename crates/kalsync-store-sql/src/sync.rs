//! What a sync writes, in SQL: a user's bookings (subjects only when kept) and the
//! timeline built from them, alone or in one transaction, and timelines read back.

use jiff::Timestamp;
use kalsync_core::{Booking, Timeline};
use kalsync_store::{BookingDiff, StoreError, SyncSaved, SyncWrite, UserId};
use sqlx::Row as _;

use crate::SqlStore;
use crate::rows::{collect, corrupt, db, db_or_missing, id, ms};

/// Replaces a user's bookings inside a transaction; what changed.
async fn write_bookings(
    conn: &mut sqlx::AnyConnection,
    user: UserId,
    bookings: &[Booking],
    keep_subjects: bool,
) -> Result<BookingDiff, StoreError> {
    let rows = sqlx::query("SELECT booking_id, data FROM bookings WHERE user_id = $1")
        .bind(user.to_string())
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    let mut existing: std::collections::HashMap<String, String> =
        std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        existing.insert(
            row.try_get("booking_id").map_err(db)?,
            row.try_get("data").map_err(db)?,
        );
    }
    let mut diff = BookingDiff::default();
    let mut seen = std::collections::HashSet::with_capacity(bookings.len());
    for b in bookings {
        if !seen.insert(b.id.as_str()) {
            continue;
        }
        let data = serde_json::to_string(&stored_booking(b, keep_subjects))
            .map_err(|e| corrupt("booking", e))?;
        match existing.get(b.id.as_str()) {
            Some(old) if *old == data => continue,
            Some(_) => diff.changed += 1,
            None => diff.added += 1,
        }
        sqlx::query("INSERT INTO bookings (user_id, booking_id, ends_ms, data) VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, booking_id) DO UPDATE SET ends_ms = excluded.ends_ms, data = excluded.data")
                .bind(user.to_string())
                .bind(b.id.as_str())
                .bind(ms(ends(b)))
                .bind(data)
                .execute(&mut *conn)
                .await
                .map_err(db_or_missing(format!("user {user}")))?;
    }
    for old in existing.keys().filter(|k| !seen.contains(k.as_str())) {
        sqlx::query("DELETE FROM bookings WHERE user_id = $1 AND booking_id = $2")
            .bind(user.to_string())
            .bind(old)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        diff.removed += 1;
    }
    Ok(diff)
}

/// Upserts a user's timeline inside a transaction.
async fn write_timeline(
    conn: &mut sqlx::AnyConnection,
    user: UserId,
    timeline: &Timeline,
    next_change: Option<Timestamp>,
) -> Result<(), StoreError> {
    let data = serde_json::to_string(timeline).map_err(|e| corrupt("timeline", e))?;
    sqlx::query("INSERT INTO timelines (user_id, data, next_change_ms, saved_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET data = excluded.data, next_change_ms = excluded.next_change_ms, saved_ms = excluded.saved_ms")
        .bind(user.to_string())
        .bind(data)
        .bind(next_change.map(ms))
        .bind(ms(Timestamp::now()))
        .execute(&mut *conn)
        .await
        .map_err(db_or_missing(format!("user {user}")))?;
    Ok(())
}

/// The booking as stored: without subject and location unless titles may be kept.
fn stored_booking(b: &Booking, keep_subjects: bool) -> Booking {
    let mut b = b.clone();
    if !keep_subjects {
        b.subject = None;
        b.location = None;
    }
    b
}

/// When a booking ends, as an instant (all-day dates end at their last midnight, UTC
/// being close enough for retention).
fn ends(b: &Booking) -> Timestamp {
    match b.time {
        kalsync_core::BookingTime::Timed { end, .. } => end,
        kalsync_core::BookingTime::AllDay { end, .. } => end
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::MAX),
    }
}

impl SqlStore {
    pub(crate) async fn update_bookings(
        &self,
        user: UserId,
        bookings: &[Booking],
        keep_subjects: bool,
    ) -> Result<BookingDiff, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let diff = write_bookings(&mut tx, user, bookings, keep_subjects).await?;
        tx.commit().await.map_err(db)?;
        Ok(diff)
    }

    pub(crate) async fn write_sync(&self, w: SyncWrite<'_>) -> Result<SyncSaved, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let revision = i64::try_from(w.revision)
            .map_err(|_| StoreError::Invalid(format!("revision {}", w.revision)))?;
        // First, so the user's row is locked for the rest: a concurrent write of the same
        // user waits here and then finds the revision moved on.
        let recorded = sqlx::query(
            "UPDATE users SET last_sync_ms = $2, last_error = $3, sync_revision = sync_revision + 1 \
             WHERE id = $1 AND sync_revision = $4",
        )
        .bind(w.user.to_string())
        .bind(ms(w.at))
        .bind(w.note.map(str::to_owned))
        .bind(revision)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if recorded.rows_affected() == 0 {
            let now: Option<i64> =
                sqlx::query_scalar("SELECT sync_revision FROM users WHERE id = $1")
                    .bind(w.user.to_string())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
            return Err(match now {
                None => StoreError::NotFound(format!("user {}", w.user)),
                Some(now) => StoreError::Overtaken {
                    revision: u64::try_from(now).unwrap_or_default(),
                },
            });
        }
        let diff = write_bookings(&mut tx, w.user, w.bookings, w.keep_subjects).await?;
        write_timeline(&mut tx, w.user, w.timeline, w.next_change).await?;
        tx.commit().await.map_err(db)?;
        Ok(SyncSaved {
            diff,
            revision: w.revision + 1,
        })
    }

    pub(crate) async fn select_bookings(&self, user: UserId) -> Result<Vec<Booking>, StoreError> {
        let rows = sqlx::query("SELECT data FROM bookings WHERE user_id = $1 ORDER BY booking_id")
            .bind(user.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|row| {
                let data: String = row.try_get("data").map_err(db)?;
                serde_json::from_str(&data).map_err(|e| corrupt("booking", e))
            })
            .collect()
    }

    pub(crate) async fn remove_bookings_ended_before(
        &self,
        cutoff: Timestamp,
    ) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM bookings WHERE ends_ms < $1")
            .bind(ms(cutoff))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(result.rows_affected())
    }

    pub(crate) async fn upsert_timeline(
        &self,
        user: UserId,
        timeline: &Timeline,
        next_change: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        write_timeline(&mut conn, user, timeline, next_change).await
    }

    pub(crate) async fn select_timeline(
        &self,
        user: UserId,
    ) -> Result<Option<Timeline>, StoreError> {
        let row = sqlx::query("SELECT data FROM timelines WHERE user_id = $1")
            .bind(user.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|row| {
            let data: String = row.try_get("data").map_err(db)?;
            serde_json::from_str(&data).map_err(|e| corrupt("timeline", e))
        })
        .transpose()
    }

    pub(crate) async fn select_held_timelines(
        &self,
        node: &str,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<Vec<(UserId, Result<Timeline, StoreError>)>, StoreError> {
        collect(
            &self.pool,
            sqlx::query("SELECT t.user_id, t.data FROM timelines t JOIN leases l ON l.user_id = t.user_id AND l.node = $1 WHERE t.user_id > $2 ORDER BY t.user_id LIMIT $3")
                .bind(node.to_owned())
                .bind(after.map(|u| u.to_string()).unwrap_or_default())
                .bind(i64::try_from(limit).unwrap_or(i64::MAX)),
            |row| {
                let user: UserId = id(row, "user_id")?;
                let timeline = row
                    .try_get::<String, _>("data")
                    .map_err(db)
                    .and_then(|data| {
                        serde_json::from_str(&data)
                            .map_err(|e| corrupt(&format!("timeline of user {user}"), e))
                    });
                Ok((user, timeline))
            },
        )
        .await
    }
}
