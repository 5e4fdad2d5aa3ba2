//! Reading and writing rows: database errors as store errors, instants as milliseconds,
//! ids, JSON columns, and the rows of instances, users, targets and deliveries as records.

use std::str::FromStr;

use jiff::Timestamp;
use kalsync_core::{EmailAddress, Extension, InstanceSettings};
use kalsync_store::{
    Delivery, DeliveryState, Instance, SourceConfig, StoreError, SyncState, Target, TargetConfig,
    User,
};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row as _};

use crate::SqlStore;

pub(crate) fn db(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        if d.is_unique_violation() {
            return StoreError::Conflict(d.message().to_owned());
        }
    }
    StoreError::Database(e.to_string())
}

/// A write refused because a row it refers to is gone: `NotFound(what)`; anything else as
/// [`db`].
pub(crate) fn db_or_missing(what: String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| {
        if let sqlx::Error::Database(d) = &e {
            if d.is_foreign_key_violation() || d.message().to_lowercase().contains("foreign key") {
                return StoreError::NotFound(what);
            }
        }
        db(e)
    }
}

pub(crate) fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

/// Now, at the millisecond precision rows keep, so a created record equals its reread.
pub(crate) fn now() -> Timestamp {
    at(ms(Timestamp::now()))
}

pub(crate) fn at(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Reads a query's rows one at a time into `T`s: a large result (every user of an
/// instance, every held timeline) never holds all its raw rows at once.
pub(crate) async fn collect<'q, T>(
    pool: &AnyPool,
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    mut each: impl FnMut(&AnyRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    use futures_util::TryStreamExt as _;
    let mut rows = query.fetch(pool);
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await.map_err(db)? {
        out.push(each(&row)?);
    }
    Ok(out)
}

pub(crate) fn corrupt(what: &str, message: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what: what.into(),
        message: message.to_string(),
    }
}

pub(crate) fn id<T: FromStr>(row: &AnyRow, column: &str) -> Result<T, StoreError> {
    let text: String = row.try_get(column).map_err(db)?;
    text.parse()
        .map_err(|_| corrupt(column, format!("`{text}` is not an id")))
}

pub(crate) fn json(text: &str, what: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

impl SqlStore {
    pub(crate) fn instance_row(&self, row: &AnyRow) -> Result<Instance, StoreError> {
        let source: String = row.try_get("source").map_err(db)?;
        let settings: String = row.try_get("settings").map_err(db)?;
        Ok(Instance {
            id: id(row, "id")?,
            company: id(row, "company_id")?,
            name: row.try_get("name").map_err(db)?,
            source: SourceConfig::open(&json(&source, "instance source")?, &self.secrets)?,
            settings: InstanceSettings::from_toml(&settings)
                .map_err(|e| corrupt("instance settings", e))?,
            active: row.try_get::<i64, _>("active").map_err(db)? != 0,
            created: at(row.try_get("created_ms").map_err(db)?),
        })
    }

    pub(crate) fn user_row(row: &AnyRow) -> Result<User, StoreError> {
        let email: String = row.try_get("email").map_err(db)?;
        let extension: Option<String> = row.try_get("extension").map_err(db)?;
        let state: String = row.try_get("sync_state").map_err(db)?;
        Ok(User {
            id: id(row, "id")?,
            instance: id(row, "instance_id")?,
            email: EmailAddress::parse(&email).map_err(|e| corrupt("user e-mail", e))?,
            display_name: row.try_get("display_name").map_err(db)?,
            extension: extension
                .map(|e| Extension::parse(&e))
                .transpose()
                .map_err(|e| corrupt("user extension", e))?,
            sync_state: SyncState(json(&state, "sync state")?),
            last_sync: row
                .try_get::<Option<i64>, _>("last_sync_ms")
                .map_err(db)?
                .map(at),
            last_error: row.try_get("last_error").map_err(db)?,
            sync_revision: u64::try_from(row.try_get::<i64, _>("sync_revision").map_err(db)?)
                .map_err(|e| corrupt("user sync revision", e))?,
            department: row.try_get("department").map_err(db)?,
            directory_key: row.try_get("directory_key").map_err(db)?,
            leaving_since: row
                .try_get::<Option<i64>, _>("leaving_since_ms")
                .map_err(db)?
                .map(at),
            created: at(row.try_get("created_ms").map_err(db)?),
        })
    }

    pub(crate) fn target_row(&self, row: &AnyRow) -> Result<Target, StoreError> {
        let config: String = row.try_get("config").map_err(db)?;
        Ok(Target {
            id: id(row, "id")?,
            company: id(row, "company_id")?,
            name: row.try_get("name").map_err(db)?,
            config: TargetConfig::open(&json(&config, "target config")?, &self.secrets)?,
            active: row.try_get::<i64, _>("active").map_err(db)? != 0,
            created: at(row.try_get("created_ms").map_err(db)?),
        })
    }

    pub(crate) fn delivery_row(row: &AnyRow) -> Result<Delivery, StoreError> {
        let payload: String = row.try_get("payload").map_err(db)?;
        let state: String = row.try_get("state").map_err(db)?;
        Ok(Delivery {
            id: id(row, "id")?,
            user: id(row, "user_id")?,
            target: id(row, "target_id")?,
            sequence: u64::try_from(row.try_get::<i64, _>("sequence").map_err(db)?).unwrap_or(0),
            payload: json(&payload, "delivery payload")?,
            state: DeliveryState::parse(&state).ok_or_else(|| corrupt("delivery state", &state))?,
            attempts: u32::try_from(row.try_get::<i64, _>("attempts").map_err(db)?)
                .unwrap_or(u32::MAX),
            due: at(row.try_get("due_ms").map_err(db)?),
            next_attempt: at(row.try_get("next_attempt_ms").map_err(db)?),
            created: at(row.try_get("created_ms").map_err(db)?),
            delivered: row
                .try_get::<Option<i64>, _>("delivered_ms")
                .map_err(db)?
                .map(at),
            last_error: row.try_get("last_error").map_err(db)?,
        })
    }

    pub(crate) async fn affected<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        what: String,
    ) -> Result<(), StoreError> {
        let result = query.execute(&self.pool).await.map_err(db)?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(what));
        }
        Ok(())
    }

    /// Moves a due time from `due` to `next` for the row `key` names, with `sql` (an
    /// `UPDATE … SET <time> = $3 WHERE <key> = $1 AND <time> = $2`): whether this caller
    /// took it (another node that came first leaves nothing to move).
    pub(crate) async fn claimed(
        &self,
        sql: &'static str,
        key: String,
        due: Timestamp,
        next: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(sql)
            .bind(key)
            .bind(ms(due))
            .bind(ms(next))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    /// The one row `query` finds, made by `each`, or none.
    pub(crate) async fn optional<'q, T>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        each: impl FnOnce(&AnyRow) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        query
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .as_ref()
            .map(each)
            .transpose()
    }
}
