//! Companies' PBX events in SQL: the secret their PBX signs "I'm back" and "extend" with
//! (sealed), and the ids of the events taken lately, so one sent again is refused.

use jiff::Timestamp;
use kalsync_store::{CompanyId, StoreError};
use secrecy::SecretString;
use sqlx::Row as _;

use crate::SqlStore;
use crate::rows::{at, corrupt, db, db_or_missing, ms};

impl SqlStore {
    pub(crate) async fn put_pbx_event_secret(
        &self,
        company: CompanyId,
        secret: Option<&SecretString>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let Some(secret) = secret else {
            sqlx::query("DELETE FROM pbx_event_secrets WHERE company_id = $1")
                .bind(company.to_string())
                .execute(&self.pool)
                .await
                .map_err(db)?;
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO pbx_event_secrets (company_id, secret, created_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (company_id) DO UPDATE SET secret = excluded.secret, created_ms = excluded.created_ms",
        )
        .bind(company.to_string())
        .bind(self.secrets.seal(secret))
        .bind(ms(now))
        .execute(&self.pool)
        .await
        .map_err(db_or_missing(format!("company {company}")))?;
        Ok(())
    }

    pub(crate) async fn select_pbx_event_secret(
        &self,
        company: CompanyId,
    ) -> Result<Option<(SecretString, Timestamp)>, StoreError> {
        self.optional(
            sqlx::query("SELECT secret, created_ms FROM pbx_event_secrets WHERE company_id = $1")
                .bind(company.to_string()),
            |r| {
                let sealed: String = r.try_get("secret").map_err(db)?;
                let secret = self
                    .secrets
                    .open(&sealed)
                    .map_err(|e| corrupt("PBX event secret", e))?;
                Ok((secret, at(r.try_get("created_ms").map_err(db)?)))
            },
        )
        .await
    }

    pub(crate) async fn insert_pbx_event(
        &self,
        company: CompanyId,
        event: &str,
        now: Timestamp,
        forget_before: Timestamp,
    ) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM pbx_events WHERE seen_ms < $1")
            .bind(ms(forget_before))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        let done = sqlx::query(
            "INSERT INTO pbx_events (company_id, event_id, seen_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (company_id, event_id) DO NOTHING",
        )
        .bind(company.to_string())
        .bind(event)
        .bind(ms(now))
        .execute(&self.pool)
        .await
        .map_err(db_or_missing(format!("company {company}")))?;
        Ok(done.rows_affected() == 1)
    }

    pub(crate) async fn delete_pbx_event(
        &self,
        company: CompanyId,
        event: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM pbx_events WHERE company_id = $1 AND event_id = $2")
            .bind(company.to_string())
            .bind(event)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }
}
