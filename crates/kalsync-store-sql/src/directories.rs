//! Instances' directories (*Katalog Synk*) in SQL: settings, the state a read starts
//! from, when each runs next (taken by one node with a compare-and-set), what the last
//! run did; and the directory fields of users.

use jiff::Timestamp;
use kalsync_directory::DirectorySettings;
use kalsync_store::{
    DirectoryRecord, DirectoryRun, DirectorySecret, InstanceId, SecretBox, StoreError, UserId,
    UserProfile,
};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::SqlStore;
use crate::rows::{at, collect, corrupt, db, db_or_missing, id, json, ms};

fn directory_row(row: &AnyRow, secrets: &SecretBox) -> Result<DirectoryRecord, StoreError> {
    let settings: String = row.try_get("settings").map_err(db)?;
    let password: Option<String> = row.try_get("password").map_err(db)?;
    let state: String = row.try_get("state").map_err(db)?;
    let last: Option<String> = row.try_get("last_run").map_err(db)?;
    Ok(DirectoryRecord {
        instance: id(row, "instance_id")?,
        settings: serde_json::from_str(&settings).map_err(|e| corrupt("directory settings", e))?,
        password: password
            .map(|p| {
                secrets
                    .open(&p)
                    .map_err(|e| corrupt("directory password", e))
            })
            .transpose()?,
        state: json(&state, "directory state")?,
        next_run: at(row.try_get("next_run_ms").map_err(db)?),
        last: last
            .map(|l| serde_json::from_str(&l).map_err(|e| corrupt("directory run", e)))
            .transpose()?,
    })
}

fn text(written: serde_json::Result<String>, what: &str) -> Result<String, StoreError> {
    written.map_err(|e| corrupt(what, e))
}

impl SqlStore {
    pub(crate) async fn update_user_profile(
        &self,
        user: UserId,
        p: &UserProfile,
    ) -> Result<(), StoreError> {
        let query = sqlx::query(
            "UPDATE users SET display_name = $2, extension = $3, department = $4, directory_key = $5, leaving_since_ms = $6 WHERE id = $1",
        )
        .bind(user.to_string())
        .bind(p.display_name.clone())
        .bind(p.extension.as_ref().map(|e| e.to_string()))
        .bind(p.department.clone())
        .bind(p.directory_key.clone())
        .bind(p.leaving_since.map(ms));
        self.affected(query, format!("user {user}")).await
    }

    pub(crate) async fn put_directory(
        &self,
        instance: InstanceId,
        settings: Option<&DirectorySettings>,
        password: DirectorySecret<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let Some(settings) = settings else {
            // The users stay as if added by hand: no directory id, no grace period
            // that a later directory would count from.
            let mut tx = self.pool.begin().await.map_err(db)?;
            sqlx::query("DELETE FROM directories WHERE instance_id = $1")
                .bind(instance.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            sqlx::query(
                "UPDATE users SET directory_key = NULL, leaving_since_ms = NULL WHERE instance_id = $1",
            )
            .bind(instance.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            return Ok(());
        };
        // One statement: the settings and the password they go with change together.
        let (sql, sealed) = match password {
            DirectorySecret::Keep(judged) => (
                "INSERT INTO directories (instance_id, settings, next_run_ms, password) VALUES ($1, $2, $3, NULL) \
                 ON CONFLICT (instance_id) DO UPDATE SET settings = excluded.settings, next_run_ms = excluded.next_run_ms, \
                 password = CASE WHEN directories.settings = $4 THEN directories.password ELSE NULL END",
                Some(text(serde_json::to_string(judged), "directory settings")?),
            ),
            DirectorySecret::Set(p) => (
                "INSERT INTO directories (instance_id, settings, next_run_ms, password) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (instance_id) DO UPDATE SET settings = excluded.settings, next_run_ms = excluded.next_run_ms, password = excluded.password",
                Some(self.secrets.seal(p)),
            ),
            DirectorySecret::Clear => (
                "INSERT INTO directories (instance_id, settings, next_run_ms, password) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (instance_id) DO UPDATE SET settings = excluded.settings, next_run_ms = excluded.next_run_ms, password = NULL",
                None,
            ),
        };
        sqlx::query(sql)
            .bind(instance.to_string())
            .bind(text(serde_json::to_string(settings), "directory settings")?)
            .bind(ms(now))
            .bind(sealed)
            .execute(&self.pool)
            .await
            .map_err(db_or_missing(format!("instance {instance}")))?;
        Ok(())
    }

    pub(crate) async fn select_directory(
        &self,
        instance: InstanceId,
    ) -> Result<Option<DirectoryRecord>, StoreError> {
        self.optional(
            sqlx::query("SELECT * FROM directories WHERE instance_id = $1")
                .bind(instance.to_string()),
            |r| directory_row(r, &self.secrets),
        )
        .await
    }

    pub(crate) async fn select_due_directories(
        &self,
        now: Timestamp,
    ) -> Result<Vec<DirectoryRecord>, StoreError> {
        collect(
            &self.pool,
            // Without the state (it can be large): a run reads it for itself.
            sqlx::query(
                "SELECT d.instance_id, d.settings, CAST(NULL AS TEXT) AS password, 'null' AS state, d.next_run_ms, d.last_run \
                 FROM directories d JOIN instances i ON i.id = d.instance_id \
                 WHERE d.next_run_ms <= $1 AND i.active = 1 ORDER BY d.next_run_ms",
            )
            .bind(ms(now)),
            |r| directory_row(r, &self.secrets),
        )
        .await
    }

    pub(crate) async fn take_directory(
        &self,
        instance: InstanceId,
        due: Timestamp,
        next: Timestamp,
    ) -> Result<bool, StoreError> {
        self.claimed(
            "UPDATE directories SET next_run_ms = $3 WHERE instance_id = $1 AND next_run_ms = $2",
            instance.to_string(),
            due,
            next,
        )
        .await
    }

    pub(crate) async fn write_directory_run(
        &self,
        instance: InstanceId,
        run: &DirectoryRun,
        state: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        let run = text(serde_json::to_string(run), "directory run")?;
        let query = match state {
            Some(state) => sqlx::query(
                "UPDATE directories SET last_run = $2, state = $3 WHERE instance_id = $1",
            )
            .bind(instance.to_string())
            .bind(run)
            .bind(state.to_string()),
            None => sqlx::query("UPDATE directories SET last_run = $2 WHERE instance_id = $1")
                .bind(instance.to_string())
                .bind(run),
        };
        self.affected(query, format!("directory of instance {instance}"))
            .await
    }
}
