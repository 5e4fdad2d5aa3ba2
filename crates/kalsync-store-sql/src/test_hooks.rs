//! Test hooks, only with the `test-hooks` feature: reading every stored text and running
//! raw SQL, for tests that prove what is (not) in the database or corrupt a row on purpose.

use kalsync_store::StoreError;
use sqlx::Row as _;

use crate::SqlStore;
use crate::rows::db;

impl SqlStore {
    /// Every stored text, concatenated: for tests that prove a secret, a subject or a
    /// removed user's e-mail is nowhere in the database.
    pub async fn dump_for_tests(&self) -> String {
        let mut out = String::new();
        for (table, columns) in [
            ("companies", "name"),
            ("instances", "name || ' ' || source || ' ' || settings"),
            (
                "users",
                "email || ' ' || COALESCE(display_name, '') || ' ' || sync_state",
            ),
            ("bookings", "booking_id || ' ' || data"),
            ("timelines", "data"),
            ("targets", "name || ' ' || config"),
            ("deliveries", "payload || ' ' || COALESCE(last_error, '')"),
            ("audit", "actor || ' ' || action || ' ' || detail"),
        ] {
            let rows = sqlx::query(&format!("SELECT {columns} AS t FROM {table}"))
                .fetch_all(&self.pool)
                .await
                .unwrap_or_default();
            for row in rows {
                out.push_str(&row.try_get::<String, _>("t").unwrap_or_default());
                out.push('\n');
            }
        }
        out
    }

    /// Runs raw SQL: for tests that corrupt a row on purpose.
    pub async fn execute_for_tests(&self, sql: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query(sql)
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected())
    }
}
