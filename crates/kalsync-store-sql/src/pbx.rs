//! Companies' PBX directories in SQL: the source and its sealed secret (written together),
//! the list of subscriptions, what the last fetch did, and when the next is due (taken by
//! one node with a compare-and-set).

use jiff::Timestamp;
use kalsync_directory::{PbxList, PbxSource};
use kalsync_store::{CompanyId, PbxDirectoryRecord, StoreError};
use secrecy::SecretString;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::SqlStore;
use crate::rows::{at, collect, corrupt, db, db_or_missing, id, ms};

impl SqlStore {
    fn pbx_row(&self, row: &AnyRow) -> Result<PbxDirectoryRecord, StoreError> {
        let source: String = row.try_get("source").map_err(db)?;
        let secret: Option<String> = row.try_get("secret").map_err(db)?;
        let list: String = row.try_get("list").map_err(db)?;
        let when = |c: &str| -> Result<Option<Timestamp>, StoreError> {
            Ok(row.try_get::<Option<i64>, _>(c).map_err(db)?.map(at))
        };
        Ok(PbxDirectoryRecord {
            company: id(row, "company_id")?,
            source: serde_json::from_str(&source)
                .map_err(|e| corrupt("PBX directory source", e))?,
            secret: secret
                .map(|s| {
                    self.secrets
                        .open(&s)
                        .map_err(|e| corrupt("PBX directory secret", e))
                })
                .transpose()?,
            list: serde_json::from_str(&list).map_err(|e| corrupt("PBX directory list", e))?,
            updated: when("updated_ms")?,
            last_try: when("last_try_ms")?,
            last_error: row.try_get("last_error").map_err(db)?,
            next_fetch: when("next_fetch_ms")?,
        })
    }

    pub(crate) async fn put_pbx_directory(
        &self,
        company: CompanyId,
        source: Option<&PbxSource>,
        secret: Option<&SecretString>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let Some(source) = source else {
            sqlx::query("DELETE FROM pbx_directories WHERE company_id = $1")
                .bind(company.to_string())
                .execute(&self.pool)
                .await
                .map_err(db)?;
            return Ok(());
        };
        let next = matches!(source, PbxSource::Url { .. }).then(|| ms(now));
        let written =
            serde_json::to_string(source).map_err(|e| corrupt("PBX directory source", e))?;
        sqlx::query(
            "INSERT INTO pbx_directories (company_id, source, secret, next_fetch_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (company_id) DO UPDATE SET source = excluded.source, secret = excluded.secret, \
             next_fetch_ms = excluded.next_fetch_ms",
        )
        .bind(company.to_string())
        .bind(written)
        .bind(secret.map(|s| self.secrets.seal(s)))
        .bind(next)
        .execute(&self.pool)
        .await
        .map_err(db_or_missing(format!("company {company}")))?;
        Ok(())
    }

    pub(crate) async fn select_pbx_directory(
        &self,
        company: CompanyId,
    ) -> Result<Option<PbxDirectoryRecord>, StoreError> {
        self.optional(
            sqlx::query("SELECT * FROM pbx_directories WHERE company_id = $1")
                .bind(company.to_string()),
            |r| self.pbx_row(r),
        )
        .await
    }

    pub(crate) async fn write_pbx_list(
        &self,
        company: CompanyId,
        fetched_for: Option<&PbxSource>,
        outcome: Result<&PbxList, &str>,
        when: Timestamp,
    ) -> Result<bool, StoreError> {
        let (list, error) = match outcome {
            Ok(list) => (
                Some(serde_json::to_string(list).map_err(|e| corrupt("PBX directory list", e))?),
                None,
            ),
            Err(why) => (None, Some(why.chars().take(1000).collect::<String>())),
        };
        let source = fetched_for
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| corrupt("PBX directory source", e))?;
        // A new list ($2), or why there is none ($5; the list is kept); only over the
        // source it was fetched for ($4), when one is named. One statement for both, so
        // every parameter is used (PostgreSQL types each from its use).
        let sql = "UPDATE pbx_directories SET list = COALESCE($2, list), \
                   updated_ms = CASE WHEN $2 IS NULL THEN updated_ms ELSE $3 END, \
                   last_try_ms = $3, last_error = $5 \
                   WHERE company_id = $1 AND ($4 IS NULL OR source = $4)";
        let done = sqlx::query(sql)
            .bind(company.to_string())
            .bind(list)
            .bind(ms(when))
            .bind(source)
            .bind(error)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 && fetched_for.is_none() {
            return Err(StoreError::NotFound(format!(
                "PBX directory of company {company}"
            )));
        }
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn select_due_pbx_directories(
        &self,
        now: Timestamp,
    ) -> Result<Vec<(CompanyId, Timestamp)>, StoreError> {
        collect(
            &self.pool,
            sqlx::query(
                "SELECT company_id, next_fetch_ms FROM pbx_directories \
                 WHERE next_fetch_ms IS NOT NULL AND next_fetch_ms <= $1 ORDER BY next_fetch_ms",
            )
            .bind(ms(now)),
            |r| {
                Ok((
                    id(r, "company_id")?,
                    at(r.try_get("next_fetch_ms").map_err(db)?),
                ))
            },
        )
        .await
    }

    pub(crate) async fn take_pbx_directory(
        &self,
        company: CompanyId,
        due: Timestamp,
        next: Timestamp,
    ) -> Result<bool, StoreError> {
        self.claimed(
            "UPDATE pbx_directories SET next_fetch_ms = $3 WHERE company_id = $1 AND next_fetch_ms = $2",
            company.to_string(),
            due,
            next,
        )
        .await
    }
}
