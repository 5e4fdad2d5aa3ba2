//! The audit log in SQL: who did what, per company or for the whole installation.

use jiff::Timestamp;
use kalsync_store::{AuditEntry, CompanyId, NewAuditEntry, StoreError};
use sqlx::Row as _;

use crate::SqlStore;
use crate::rows::{at, corrupt, db, json, ms};

impl SqlStore {
    pub(crate) async fn insert_audit(&self, entry: NewAuditEntry) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit (at_ms, company_id, actor, action, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(ms(Timestamp::now()))
            .bind(entry.company.map(|c| c.to_string()))
            .bind(entry.actor)
            .bind(entry.action)
            .bind(entry.detail.to_string())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    pub(crate) async fn select_audit_log(
        &self,
        company: Option<CompanyId>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match company {
            Some(c) => sqlx::query("SELECT at_ms, company_id, actor, action, detail FROM audit WHERE company_id = $1 ORDER BY id DESC LIMIT $2")
                .bind(c.to_string())
                .bind(limit),
            None => sqlx::query("SELECT at_ms, company_id, actor, action, detail FROM audit ORDER BY id DESC LIMIT $1").bind(limit),
        }
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                let company: Option<String> = row.try_get("company_id").map_err(db)?;
                let detail: String = row.try_get("detail").map_err(db)?;
                Ok(AuditEntry {
                    at: at(row.try_get("at_ms").map_err(db)?),
                    company: company
                        .map(|c| c.parse())
                        .transpose()
                        .map_err(|_| corrupt("audit company", "not an id"))?,
                    actor: row.try_get("actor").map_err(db)?,
                    action: row.try_get("action").map_err(db)?,
                    detail: json(&detail, "audit detail")?,
                })
            })
            .collect()
    }
}
