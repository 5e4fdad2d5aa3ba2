//! Users of an instance in SQL: their sync state and its keys, the outcome of their last
//! sync, the subscription and push token that name them, and requests to read them now.

use jiff::Timestamp;
use kalsync_store::{InstanceId, NewUser, StoreError, SyncState, User, UserId};

use crate::SqlStore;
use crate::backend::Backend;
use crate::rows::{collect, db, id, ms, now};

impl SqlStore {
    pub(crate) async fn insert_user(&self, new: NewUser) -> Result<User, StoreError> {
        self.select_instance(new.instance).await?;
        let user = User {
            id: UserId::new(),
            instance: new.instance,
            email: new.email,
            display_name: new.display_name,
            extension: new.extension,
            sync_state: SyncState::default(),
            last_sync: None,
            last_error: None,
            sync_revision: 0,
            department: None,
            directory_key: None,
            leaving_since: None,
            created: now(),
        };
        sqlx::query("INSERT INTO users (id, instance_id, email, display_name, extension, sync_state, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(user.id.to_string())
            .bind(user.instance.to_string())
            .bind(user.email.as_str())
            .bind(user.display_name.clone())
            .bind(user.extension.as_ref().map(|e| e.to_string()))
            .bind(user.sync_state.0.to_string())
            .bind(ms(user.created))
            .execute(&self.pool)
            .await
            .map_err(|e| match db(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("user {} in this instance", user.email)),
                other => other,
            })?;
        Ok(user)
    }

    pub(crate) async fn select_user(&self, user: UserId) -> Result<User, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(user.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| StoreError::NotFound(format!("user {user}")))?;
        Self::user_row(&row)
    }

    pub(crate) async fn select_users(&self, instance: InstanceId) -> Result<Vec<User>, StoreError> {
        collect(
            &self.pool,
            sqlx::query("SELECT * FROM users WHERE instance_id = $1 ORDER BY email")
                .bind(instance.to_string()),
            Self::user_row,
        )
        .await
    }

    pub(crate) async fn select_held_users(&self, node: &str) -> Result<Vec<User>, StoreError> {
        collect(
            &self.pool,
            sqlx::query(
                "SELECT u.* FROM users u JOIN leases l ON l.user_id = u.id WHERE l.node = $1",
            )
            .bind(node.to_owned()),
            Self::user_row,
        )
        .await
    }

    pub(crate) async fn update_sync_state(
        &self,
        user: UserId,
        state: &SyncState,
    ) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE users SET sync_state = $2 WHERE id = $1")
            .bind(user.to_string())
            .bind(state.0.to_string());
        self.affected(query, format!("user {user}")).await
    }

    pub(crate) async fn update_sync_key(
        &self,
        user: UserId,
        key: &str,
        value: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(StoreError::Invalid(format!(
                "sync state key `{key}`: only letters, digits and _"
            )));
        }
        // One statement, so a concurrent write of another key is never lost. A state
        // that is not an object yet (a new user's `null`) starts as `{}`.
        let sql = match (self.backend, value) {
            (Backend::Sqlite, Some(_)) => format!(
                "UPDATE users SET sync_state = json_set(CASE json_type(sync_state) WHEN 'object' THEN sync_state ELSE '{{}}' END, '$.{key}', json($2)) WHERE id = $1"
            ),
            (Backend::Sqlite, None) => format!(
                "UPDATE users SET sync_state = json_remove(CASE json_type(sync_state) WHEN 'object' THEN sync_state ELSE '{{}}' END, '$.{key}') WHERE id = $1"
            ),
            (Backend::Postgres, Some(_)) => format!(
                "UPDATE users SET sync_state = jsonb_set(CASE jsonb_typeof(sync_state::jsonb) WHEN 'object' THEN sync_state::jsonb ELSE '{{}}'::jsonb END, '{{{key}}}', $2::jsonb)::text WHERE id = $1"
            ),
            (Backend::Postgres, None) => format!(
                "UPDATE users SET sync_state = (CASE jsonb_typeof(sync_state::jsonb) WHEN 'object' THEN sync_state::jsonb ELSE '{{}}'::jsonb END - '{key}')::text WHERE id = $1"
            ),
        };
        let mut query = sqlx::query(&sql).bind(user.to_string());
        if let Some(v) = value {
            query = query.bind(v.to_string());
        }
        self.affected(query, format!("user {user}")).await
    }

    pub(crate) async fn update_last_sync(
        &self,
        user: UserId,
        when: Timestamp,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let query =
            sqlx::query("UPDATE users SET last_sync_ms = $2, last_error = $3 WHERE id = $1")
                .bind(user.to_string())
                .bind(ms(when))
                .bind(error.map(str::to_owned));
        self.affected(query, format!("user {user}")).await
    }

    pub(crate) async fn update_subscription(
        &self,
        user: UserId,
        subscription: Option<&str>,
    ) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE users SET subscription_id = $2 WHERE id = $1")
            .bind(user.to_string())
            .bind(subscription.map(str::to_owned));
        self.affected(query, format!("user {user}")).await
    }

    pub(crate) async fn select_user_by_subscription(
        &self,
        subscription: &str,
    ) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE subscription_id = $1")
            .bind(subscription.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(Self::user_row).transpose()
    }

    pub(crate) async fn update_push_token(
        &self,
        user: UserId,
        token: Option<&str>,
    ) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE users SET push_token = $2 WHERE id = $1")
            .bind(user.to_string())
            .bind(token.map(str::to_owned));
        self.affected(query, format!("user {user}")).await
    }

    pub(crate) async fn select_user_by_push_token(
        &self,
        token: &str,
    ) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE push_token = $1")
            .bind(token.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(Self::user_row).transpose()
    }

    pub(crate) async fn mark_sync_requested(&self, user: UserId) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE users SET sync_requested_ms = $2 WHERE id = $1")
            .bind(user.to_string())
            .bind(ms(Timestamp::now()));
        self.affected(query, format!("user {user}")).await
    }

    pub(crate) async fn mark_syncs_requested(&self, users: &[UserId]) -> Result<(), StoreError> {
        let now = ms(Timestamp::now());
        for chunk in users.chunks(1000) {
            let list = (2..chunk.len() + 2)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("UPDATE users SET sync_requested_ms = $1 WHERE id IN ({list})");
            let mut query = sqlx::query(&sql).bind(now);
            for user in chunk {
                query = query.bind(user.to_string());
            }
            query.execute(&self.pool).await.map_err(db)?;
        }
        Ok(())
    }

    pub(crate) async fn mark_instance_sync_requested(
        &self,
        instance: InstanceId,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET sync_requested_ms = $2 WHERE instance_id = $1")
            .bind(instance.to_string())
            .bind(ms(Timestamp::now()))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    pub(crate) async fn take_sync_requests(&self, node: &str) -> Result<Vec<UserId>, StoreError> {
        // Asked every half second by every node, and mostly nobody is asked for: one
        // look at the index first, so the join to the node's leases runs only then.
        let asked: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM users WHERE sync_requested_ms IS NOT NULL LIMIT 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        if asked.is_none() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "UPDATE users SET sync_requested_ms = NULL WHERE sync_requested_ms IS NOT NULL \
             AND id IN (SELECT user_id FROM leases WHERE node = $1) RETURNING id",
        )
        .bind(node.to_owned())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(|r| id(r, "id")).collect()
    }

    pub(crate) async fn delete_user(&self, user: UserId) -> Result<(), StoreError> {
        let query = sqlx::query("DELETE FROM users WHERE id = $1").bind(user.to_string());
        self.affected(query, format!("user {user}")).await
    }
}
