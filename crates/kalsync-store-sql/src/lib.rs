//! The store on SQLite (one file, WAL: the embedded default) and PostgreSQL (several
//! nodes share users by leases). Each database has its own migrations; the queries are
//! written once in the SQL both understand, and the database is chosen from the URL.

use std::str::FromStr;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use kalsync_core::{Booking, EmailAddress, Extension, InstanceSettings, TenantId, Timeline};
mod accounts;

use kalsync_store::{
    Account, AccountId, ApiToken, ApiTokenId, AuditEntry, BookingDiff, Company, CompanyId,
    CompanyTenant, Delivery, DeliveryId, DeliveryState, EntraId, Grant, Instance, InstanceId,
    NewAccount, NewApiToken, NewAuditEntry, NewDelivery, NewInstance, NewTarget, NewUser,
    SecretBox, Session, SourceConfig, Store, StoreError, SyncState, SyncWrite, Target,
    TargetConfig, TargetId, User, UserId,
};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// The database a URL names: `sqlite:`, `postgres:` or `postgresql:`.
    pub fn of_url(url: &str) -> Option<Backend> {
        let scheme = url.split(':').next()?.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }
}

/// A database URL whose `Debug` and `Display` hide the password.
#[derive(Clone)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseUrl(url.into())
    }

    /// The URL, password included: for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // scheme://user:password@host → scheme://user:***@host
        match (self.0.find("://"), self.0.rfind('@')) {
            (Some(start), Some(at)) if at > start => {
                let credentials = &self.0[start + 3..at];
                match credentials.split_once(':') {
                    Some((user, _)) => {
                        write!(f, "{}{user}:***{}", &self.0[..start + 3], &self.0[at..])
                    }
                    None => f.write_str(&self.0),
                }
            }
            _ => f.write_str(&self.0),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// The store on SQLite or PostgreSQL.
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    secrets: SecretBox,
}

fn db(e: sqlx::Error) -> StoreError {
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

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

/// Now, at the millisecond precision rows keep, so a created record equals its reread.
fn now() -> Timestamp {
    at(ms(Timestamp::now()))
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Reads a query's rows one at a time into `T`s: a large result (every user of an
/// instance, every held timeline) never holds all its raw rows at once.
async fn collect<'q, T>(
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

fn corrupt(what: &str, message: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what: what.into(),
        message: message.to_string(),
    }
}

fn id<T: FromStr>(row: &AnyRow, column: &str) -> Result<T, StoreError> {
    let text: String = row.try_get(column).map_err(db)?;
    text.parse()
        .map_err(|_| corrupt(column, format!("`{text}` is not an id")))
}

fn json(text: &str, what: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

impl SqlStore {
    /// Connects, creating an SQLite file when missing, and brings the schema up to date.
    /// SQLite runs in WAL mode with foreign keys on.
    pub async fn connect(url: &DatabaseUrl, secrets: SecretBox) -> Result<SqlStore, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url.expose()).ok_or_else(|| {
            StoreError::Database(format!("{url}: expected a sqlite: or postgres: URL"))
        })?;
        let mut address = url.expose().to_owned();
        let options = AnyPoolOptions::new();
        let options = match backend {
            Backend::Sqlite => {
                if !address.contains("mode=") && !address.contains(":memory:") {
                    address.push_str(if address.contains('?') {
                        "&mode=rwc"
                    } else {
                        "?mode=rwc"
                    });
                }
                // One connection: SQLite has one writer anyway, and a transaction that
                // reads before it writes would otherwise fail with SQLITE_BUSY_SNAPSHOT
                // when another connection committed in between. Work queues instead.
                options.max_connections(1).after_connect(|conn, _| {
                    Box::pin(async move {
                        use sqlx::Executor as _;
                        for pragma in [
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA busy_timeout = 10000",
                            "PRAGMA synchronous = NORMAL",
                        ] {
                            conn.execute(pragma).await?;
                        }
                        Ok(())
                    })
                })
            }
            Backend::Postgres => options.max_connections(16),
        };
        let pool = options
            .connect(&address)
            .await
            .map_err(|e| StoreError::Database(format!("{url}: {e}")))?;
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .map_err(db)?;
        }
        let migrated = match backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&pool).await,
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&pool).await,
        };
        migrated.map_err(|e| StoreError::Database(format!("migrations: {e}")))?;
        Ok(SqlStore {
            pool,
            backend,
            secrets,
        })
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Every stored text, concatenated: for tests that prove a secret, a subject or a
    /// removed user's e-mail is nowhere in the database.
    #[doc(hidden)]
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
    #[doc(hidden)]
    pub async fn execute_for_tests(&self, sql: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query(sql)
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected())
    }

    fn instance_row(&self, row: &AnyRow) -> Result<Instance, StoreError> {
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

    fn user_row(row: &AnyRow) -> Result<User, StoreError> {
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
            created: at(row.try_get("created_ms").map_err(db)?),
        })
    }

    fn target_row(&self, row: &AnyRow) -> Result<Target, StoreError> {
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

    fn delivery_row(row: &AnyRow) -> Result<Delivery, StoreError> {
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

    async fn affected<'q>(
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
}

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

const DELIVERY_COLUMNS: &str = "id, user_id, target_id, sequence, payload, state, attempts, due_ms, next_attempt_ms, created_ms, delivered_ms, last_error";

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    async fn create_company(&self, name: &str) -> Result<Company, StoreError> {
        let company = Company {
            id: CompanyId::new(),
            name: name.to_owned(),
            created: now(),
        };
        sqlx::query("INSERT INTO companies (id, name, created_ms) VALUES ($1, $2, $3)")
            .bind(company.id.to_string())
            .bind(&company.name)
            .bind(ms(company.created))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(company)
    }

    async fn company(&self, company: CompanyId) -> Result<Company, StoreError> {
        let row = sqlx::query("SELECT id, name, created_ms FROM companies WHERE id = $1")
            .bind(company.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| StoreError::NotFound(format!("company {company}")))?;
        Ok(Company {
            id: id(&row, "id")?,
            name: row.try_get("name").map_err(db)?,
            created: at(row.try_get("created_ms").map_err(db)?),
        })
    }

    async fn companies(&self) -> Result<Vec<Company>, StoreError> {
        let rows = sqlx::query("SELECT id, name, created_ms FROM companies ORDER BY name, id")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|row| {
                Ok(Company {
                    id: id(row, "id")?,
                    name: row.try_get("name").map_err(db)?,
                    created: at(row.try_get("created_ms").map_err(db)?),
                })
            })
            .collect()
    }

    async fn delete_company(&self, company: CompanyId) -> Result<(), StoreError> {
        let query = sqlx::query("DELETE FROM companies WHERE id = $1").bind(company.to_string());
        self.affected(query, format!("company {company}")).await
    }

    async fn create_instance(&self, new: NewInstance) -> Result<Instance, StoreError> {
        let instance = Instance {
            id: InstanceId::new(),
            company: new.company,
            name: new.name,
            source: new.source,
            settings: new.settings,
            active: true,
            created: now(),
        };
        sqlx::query("INSERT INTO instances (id, company_id, name, source, settings, active, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(instance.id.to_string())
            .bind(instance.company.to_string())
            .bind(&instance.name)
            .bind(instance.source.seal(&self.secrets).to_string())
            .bind(instance.settings.to_toml())
            .bind(1_i64)
            .bind(ms(instance.created))
            .execute(&self.pool)
            .await
            .map_err(db_or_missing(format!("company {}", instance.company)))?;
        Ok(instance)
    }

    async fn instance(&self, instance: InstanceId) -> Result<Instance, StoreError> {
        let row = sqlx::query("SELECT * FROM instances WHERE id = $1")
            .bind(instance.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| StoreError::NotFound(format!("instance {instance}")))?;
        self.instance_row(&row)
    }

    async fn instances(&self, company: CompanyId) -> Result<Vec<Instance>, StoreError> {
        let rows = sqlx::query("SELECT * FROM instances WHERE company_id = $1 ORDER BY name, id")
            .bind(company.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(|r| self.instance_row(r)).collect()
    }

    async fn active_instances(&self) -> Result<Vec<Instance>, StoreError> {
        let rows = sqlx::query("SELECT * FROM instances WHERE active = 1 ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(|r| self.instance_row(r)).collect()
    }

    async fn update_instance(&self, instance: &Instance) -> Result<(), StoreError> {
        let query = sqlx::query(
            "UPDATE instances SET name = $2, source = $3, settings = $4, active = $5 WHERE id = $1",
        )
        .bind(instance.id.to_string())
        .bind(&instance.name)
        .bind(instance.source.seal(&self.secrets).to_string())
        .bind(instance.settings.to_toml())
        .bind(i64::from(instance.active));
        self.affected(query, format!("instance {}", instance.id))
            .await
    }

    async fn delete_instance(&self, instance: InstanceId) -> Result<(), StoreError> {
        let query = sqlx::query("DELETE FROM instances WHERE id = $1").bind(instance.to_string());
        self.affected(query, format!("instance {instance}")).await
    }

    async fn add_user(&self, new: NewUser) -> Result<User, StoreError> {
        self.instance(new.instance).await?;
        let user = User {
            id: UserId::new(),
            instance: new.instance,
            email: new.email,
            display_name: new.display_name,
            extension: new.extension,
            sync_state: SyncState::default(),
            last_sync: None,
            last_error: None,
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

    async fn user(&self, user: UserId) -> Result<User, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(user.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| StoreError::NotFound(format!("user {user}")))?;
        Self::user_row(&row)
    }

    async fn users(&self, instance: InstanceId) -> Result<Vec<User>, StoreError> {
        collect(
            &self.pool,
            sqlx::query("SELECT * FROM users WHERE instance_id = $1 ORDER BY email")
                .bind(instance.to_string()),
            Self::user_row,
        )
        .await
    }

    async fn set_sync_state(&self, user: UserId, state: &SyncState) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE users SET sync_state = $2 WHERE id = $1")
            .bind(user.to_string())
            .bind(state.0.to_string());
        self.affected(query, format!("user {user}")).await
    }

    async fn set_sync_key(
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

    async fn record_sync(
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

    async fn set_subscription(
        &self,
        user: UserId,
        subscription: Option<&str>,
    ) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE users SET subscription_id = $2 WHERE id = $1")
            .bind(user.to_string())
            .bind(subscription.map(str::to_owned));
        self.affected(query, format!("user {user}")).await
    }

    async fn user_by_subscription(&self, subscription: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE subscription_id = $1")
            .bind(subscription.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(Self::user_row).transpose()
    }

    async fn set_push_token(&self, user: UserId, token: Option<&str>) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE users SET push_token = $2 WHERE id = $1")
            .bind(user.to_string())
            .bind(token.map(str::to_owned));
        self.affected(query, format!("user {user}")).await
    }

    async fn user_by_push_token(&self, token: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE push_token = $1")
            .bind(token.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(Self::user_row).transpose()
    }

    async fn request_sync(&self, user: UserId) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE users SET sync_requested_ms = $2 WHERE id = $1")
            .bind(user.to_string())
            .bind(ms(Timestamp::now()));
        self.affected(query, format!("user {user}")).await
    }

    async fn claim_sync_requests(&self, node: &str) -> Result<Vec<UserId>, StoreError> {
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

    async fn remove_user(&self, user: UserId) -> Result<(), StoreError> {
        let query = sqlx::query("DELETE FROM users WHERE id = $1").bind(user.to_string());
        self.affected(query, format!("user {user}")).await
    }

    async fn replace_bookings(
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

    async fn save_sync(&self, w: SyncWrite<'_>) -> Result<BookingDiff, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let diff = write_bookings(&mut tx, w.user, w.bookings, w.keep_subjects).await?;
        write_timeline(&mut tx, w.user, w.timeline, w.next_change).await?;
        let recorded =
            sqlx::query("UPDATE users SET last_sync_ms = $2, last_error = $3 WHERE id = $1")
                .bind(w.user.to_string())
                .bind(ms(w.at))
                .bind(w.note.map(str::to_owned))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        if recorded.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {}", w.user)));
        }
        tx.commit().await.map_err(db)?;
        Ok(diff)
    }

    async fn bookings(&self, user: UserId) -> Result<Vec<Booking>, StoreError> {
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

    async fn delete_bookings_ended_before(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM bookings WHERE ends_ms < $1")
            .bind(ms(cutoff))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(result.rows_affected())
    }

    async fn save_timeline(
        &self,
        user: UserId,
        timeline: &Timeline,
        next_change: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        write_timeline(&mut conn, user, timeline, next_change).await
    }

    async fn timeline(&self, user: UserId) -> Result<Option<Timeline>, StoreError> {
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

    async fn create_target(&self, new: NewTarget) -> Result<Target, StoreError> {
        let target = Target {
            id: TargetId::new(),
            company: new.company,
            name: new.name,
            config: new.config,
            active: true,
            created: now(),
        };
        sqlx::query("INSERT INTO targets (id, company_id, name, config, active, created_ms) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(target.id.to_string())
            .bind(target.company.to_string())
            .bind(&target.name)
            .bind(target.config.seal(&self.secrets).to_string())
            .bind(1_i64)
            .bind(ms(target.created))
            .execute(&self.pool)
            .await
            .map_err(db_or_missing(format!("company {}", target.company)))?;
        Ok(target)
    }

    async fn target(&self, target: TargetId) -> Result<Target, StoreError> {
        let row = sqlx::query("SELECT * FROM targets WHERE id = $1")
            .bind(target.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| StoreError::NotFound(format!("target {target}")))?;
        self.target_row(&row)
    }

    async fn targets(&self, company: CompanyId) -> Result<Vec<Target>, StoreError> {
        let rows = sqlx::query("SELECT * FROM targets WHERE company_id = $1 ORDER BY name, id")
            .bind(company.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(|r| self.target_row(r)).collect()
    }

    async fn set_target_active(&self, target: TargetId, active: bool) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE targets SET active = $2 WHERE id = $1")
            .bind(target.to_string())
            .bind(i64::from(active));
        self.affected(query, format!("target {target}")).await
    }

    async fn delete_target(&self, target: TargetId) -> Result<(), StoreError> {
        let query = sqlx::query("DELETE FROM targets WHERE id = $1").bind(target.to_string());
        self.affected(query, format!("target {target}")).await
    }

    async fn enqueue(&self, new: NewDelivery) -> Result<Delivery, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let company: Option<String> = sqlx::query("SELECT i.company_id FROM users u JOIN instances i ON i.id = u.instance_id WHERE u.id = $1")
            .bind(new.user.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .map(|r| r.try_get::<String, _>("company_id"))
            .transpose()
            .map_err(db)?;
        let company = company.ok_or_else(|| StoreError::NotFound(format!("user {}", new.user)))?;
        let last: Option<i64> = sqlx::query(
            "SELECT MAX(sequence) AS last FROM deliveries WHERE user_id = $1 AND target_id = $2",
        )
        .bind(new.user.to_string())
        .bind(new.target.to_string())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?
        .try_get("last")
        .map_err(db)?;
        sqlx::query("UPDATE deliveries SET state = 'superseded' WHERE user_id = $1 AND target_id = $2 AND state = 'pending'")
            .bind(new.user.to_string())
            .bind(new.target.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let now = now();
        let delivery = Delivery {
            id: DeliveryId::new(),
            user: new.user,
            target: new.target,
            sequence: u64::try_from(last.unwrap_or(0)).unwrap_or(0) + 1,
            payload: new.payload,
            state: DeliveryState::Pending,
            attempts: 0,
            due: new.due,
            next_attempt: new.due,
            created: now,
            delivered: None,
            last_error: None,
        };
        sqlx::query("INSERT INTO deliveries (id, user_id, target_id, company_id, sequence, payload, state, attempts, due_ms, next_attempt_ms, created_ms) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8, $9)")
            .bind(delivery.id.to_string())
            .bind(delivery.user.to_string())
            .bind(delivery.target.to_string())
            .bind(company)
            .bind(i64::try_from(delivery.sequence).unwrap_or(i64::MAX))
            .bind(delivery.payload.to_string())
            .bind(ms(delivery.due))
            .bind(ms(delivery.next_attempt))
            .bind(ms(delivery.created))
            .execute(&mut *tx)
            .await
            .map_err(db_or_missing(format!("target {}", delivery.target)))?;
        tx.commit().await.map_err(db)?;
        Ok(delivery)
    }

    async fn due_deliveries(
        &self,
        node: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let columns = DELIVERY_COLUMNS
            .split(", ")
            .map(|c| format!("d.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT {columns} FROM deliveries d JOIN leases l ON l.user_id = d.user_id AND l.node = $1 \
             WHERE d.state = 'pending' AND d.next_attempt_ms <= $2 ORDER BY d.next_attempt_ms, d.sequence LIMIT $3"
        ))
        .bind(node.to_owned())
        .bind(ms(now))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(Self::delivery_row).collect()
    }

    async fn enqueue_many(&self, new: Vec<NewDelivery>) -> Result<Vec<Delivery>, StoreError> {
        // Chunks of a few hundred keep each statement's parameter list within both
        // databases' limits.
        const CHUNK: usize = 200;
        let mut written = Vec::with_capacity(new.len());
        let mut tx = self.pool.begin().await.map_err(db)?;
        for chunk in new.chunks(CHUNK) {
            let users: Vec<String> = chunk.iter().map(|d| d.user.to_string()).collect();
            let list = |offset: usize, n: usize| {
                (offset + 1..=offset + n)
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let mut companies: std::collections::HashMap<String, String> =
                std::collections::HashMap::new();
            let sql1 = format!(
                "SELECT u.id, i.company_id FROM users u JOIN instances i ON i.id = u.instance_id WHERE u.id IN ({})",
                list(0, users.len())
            );
            let mut query = sqlx::query_as::<_, (String, String)>(&sql1);
            for u in &users {
                query = query.bind(u.clone());
            }
            for (u, c) in query.fetch_all(&mut *tx).await.map_err(db)? {
                companies.insert(u, c);
            }
            let mut last: std::collections::HashMap<(String, String), i64> =
                std::collections::HashMap::new();
            let sql2 = format!(
                "SELECT user_id, target_id, MAX(sequence) FROM deliveries WHERE user_id IN ({}) GROUP BY user_id, target_id",
                list(0, users.len())
            );
            let mut query = sqlx::query_as::<_, (String, String, i64)>(&sql2);
            for u in &users {
                query = query.bind(u.clone());
            }
            for (u, t, m) in query.fetch_all(&mut *tx).await.map_err(db)? {
                last.insert((u, t), m);
            }
            let sql3 = format!(
                "UPDATE deliveries SET state = 'superseded' WHERE state = 'pending' AND user_id IN ({})",
                list(0, users.len())
            );
            let mut update = sqlx::query(&sql3);
            for u in &users {
                update = update.bind(u.clone());
            }
            update.execute(&mut *tx).await.map_err(db)?;
            let now = now();
            let mut rows = Vec::with_capacity(chunk.len());
            for d in chunk {
                let key = (d.user.to_string(), d.target.to_string());
                let company = companies
                    .get(&key.0)
                    .cloned()
                    .ok_or_else(|| StoreError::NotFound(format!("user {}", d.user)))?;
                let sequence = last.get(&key).copied().unwrap_or(0) + 1;
                last.insert(key, sequence);
                rows.push((
                    Delivery {
                        id: DeliveryId::new(),
                        user: d.user,
                        target: d.target,
                        sequence: u64::try_from(sequence).unwrap_or(0),
                        payload: d.payload.clone(),
                        state: DeliveryState::Pending,
                        attempts: 0,
                        due: d.due,
                        next_attempt: d.due,
                        created: now,
                        delivered: None,
                        last_error: None,
                    },
                    company,
                ));
            }
            let placeholders: Vec<String> = (0..rows.len())
                .map(|r| {
                    let b = r * 9;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, 'pending', 0, ${}, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6,
                        b + 7,
                        b + 8,
                        b + 9
                    )
                })
                .collect();
            let sql4 = format!(
                "INSERT INTO deliveries (id, user_id, target_id, company_id, sequence, payload, state, attempts, due_ms, next_attempt_ms, created_ms) VALUES {}",
                placeholders.join(", ")
            );
            let mut insert = sqlx::query(&sql4);
            for (d, company) in &rows {
                insert = insert
                    .bind(d.id.to_string())
                    .bind(d.user.to_string())
                    .bind(d.target.to_string())
                    .bind(company.clone())
                    .bind(i64::try_from(d.sequence).unwrap_or(i64::MAX))
                    .bind(d.payload.to_string())
                    .bind(ms(d.due))
                    .bind(ms(d.next_attempt))
                    .bind(ms(d.created));
            }
            insert.execute(&mut *tx).await.map_err(db)?;
            written.extend(rows.into_iter().map(|(d, _)| d));
        }
        tx.commit().await.map_err(db)?;
        Ok(written)
    }

    async fn mark_delivered_many(
        &self,
        ids: &[DeliveryId],
        when: Timestamp,
    ) -> Result<(), StoreError> {
        for chunk in ids.chunks(500) {
            let list = (2..chunk.len() + 2)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql5 = format!(
                "UPDATE deliveries SET state = 'delivered', delivered_ms = $1, attempts = attempts + 1 WHERE id IN ({list})"
            );
            let mut query = sqlx::query(&sql5).bind(ms(when));
            for id in chunk {
                query = query.bind(id.to_string());
            }
            query.execute(&self.pool).await.map_err(db)?;
        }
        Ok(())
    }

    async fn held_timelines(
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

    async fn held_last_deliveries(&self, node: &str) -> Result<Vec<Delivery>, StoreError> {
        let columns = DELIVERY_COLUMNS
            .split(", ")
            .map(|c| format!("d.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql6 = format!(
            "SELECT {columns} FROM deliveries d \
             JOIN (SELECT d2.user_id, d2.target_id, MAX(d2.sequence) AS m FROM deliveries d2 \
                   JOIN leases l ON l.user_id = d2.user_id AND l.node = $1 GROUP BY d2.user_id, d2.target_id) x \
             ON x.user_id = d.user_id AND x.target_id = d.target_id AND x.m = d.sequence"
        );
        collect(
            &self.pool,
            sqlx::query(&sql6).bind(node.to_owned()),
            Self::delivery_row,
        )
        .await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_ms) AS next FROM deliveries WHERE state = 'pending'",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(row.try_get::<Option<i64>, _>("next").map_err(db)?.map(at))
    }

    async fn mark_delivered(
        &self,
        delivery: DeliveryId,
        when: Timestamp,
    ) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE deliveries SET state = 'delivered', delivered_ms = $2, attempts = attempts + 1 WHERE id = $1")
            .bind(delivery.to_string())
            .bind(ms(when));
        self.affected(query, format!("delivery {delivery}")).await
    }

    async fn mark_retry(
        &self,
        delivery: DeliveryId,
        next_attempt: Timestamp,
        error: &str,
    ) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE deliveries SET attempts = attempts + 1, next_attempt_ms = $2, last_error = $3 WHERE id = $1 AND state = 'pending'")
            .bind(delivery.to_string())
            .bind(ms(next_attempt))
            .bind(error.to_owned());
        self.affected(query, format!("pending delivery {delivery}"))
            .await
    }

    async fn mark_dead(&self, delivery: DeliveryId, error: &str) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE deliveries SET state = 'dead', attempts = attempts + 1, last_error = $2 WHERE id = $1")
            .bind(delivery.to_string())
            .bind(error.to_owned());
        self.affected(query, format!("delivery {delivery}")).await
    }

    async fn delivery(&self, delivery: DeliveryId) -> Result<Delivery, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1"
        ))
        .bind(delivery.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .ok_or_else(|| StoreError::NotFound(format!("delivery {delivery}")))?;
        Self::delivery_row(&row)
    }

    async fn last_delivery(
        &self,
        user: UserId,
        target: TargetId,
    ) -> Result<Option<Delivery>, StoreError> {
        let row = sqlx::query(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE user_id = $1 AND target_id = $2 ORDER BY sequence DESC LIMIT 1"))
            .bind(user.to_string())
            .bind(target.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(Self::delivery_row).transpose()
    }

    async fn deliveries(
        &self,
        company: CompanyId,
        state: DeliveryState,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE company_id = $1 AND state = $2 ORDER BY created_ms DESC, sequence DESC LIMIT $3"))
            .bind(company.to_string())
            .bind(state.as_str())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(Self::delivery_row).collect()
    }

    async fn outbox_depth(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE state = 'pending'")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(u64::try_from(row.try_get::<i64, _>("n").map_err(db)?).unwrap_or(0))
    }

    async fn audit(&self, entry: NewAuditEntry) -> Result<(), StoreError> {
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

    async fn audit_log(
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

    async fn create_account(&self, account: NewAccount) -> Result<Account, StoreError> {
        self.insert_account(account).await
    }

    async fn account(&self, account: AccountId) -> Result<Account, StoreError> {
        self.select_account(account).await
    }

    async fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        self.select_account_by_email(email).await
    }

    async fn accounts(&self, company: Option<CompanyId>) -> Result<Vec<Account>, StoreError> {
        self.select_accounts(company).await
    }

    async fn set_password(&self, account: AccountId, hash: &str) -> Result<(), StoreError> {
        self.update_password(account, hash).await
    }

    async fn delete_account(&self, account: AccountId) -> Result<(), StoreError> {
        self.remove_account(account).await
    }

    async fn account_by_entra(&self, entra: &EntraId) -> Result<Option<Account>, StoreError> {
        self.select_account_by_entra(entra).await
    }

    async fn link_entra(
        &self,
        account: AccountId,
        entra: Option<&EntraId>,
    ) -> Result<(), StoreError> {
        self.update_entra(account, entra).await
    }

    async fn set_grant(&self, account: AccountId, grant: Grant) -> Result<(), StoreError> {
        self.update_grant(account, grant).await
    }

    async fn claim_tenant(
        &self,
        tenant: &CompanyTenant,
    ) -> Result<(CompanyTenant, bool), StoreError> {
        self.insert_company_tenant(tenant).await
    }

    async fn revoke_access(&self, account: AccountId) -> Result<(), StoreError> {
        self.delete_access(account).await
    }

    async fn company_tenant(&self, tenant: &TenantId) -> Result<Option<CompanyTenant>, StoreError> {
        self.select_company_tenant(tenant).await
    }

    async fn company_tenants(&self, company: CompanyId) -> Result<Vec<CompanyTenant>, StoreError> {
        self.select_company_tenants(company).await
    }

    async fn set_tenant_roles(&self, tenant: &CompanyTenant) -> Result<(), StoreError> {
        self.update_tenant_roles(tenant).await
    }

    async fn release_tenant(
        &self,
        company: CompanyId,
        tenant: &TenantId,
    ) -> Result<(), StoreError> {
        self.delete_company_tenant(company, tenant).await
    }

    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        self.insert_session(session).await
    }

    async fn session(&self, id_hash: &str, now: Timestamp) -> Result<Option<Session>, StoreError> {
        self.select_session(id_hash, now).await
    }

    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        self.remove_session(id_hash).await
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.remove_expired_sessions(now).await
    }

    async fn create_api_token(&self, new: NewApiToken<'_>) -> Result<ApiToken, StoreError> {
        self.insert_api_token(new).await
    }

    async fn use_api_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<ApiToken>, StoreError> {
        self.select_and_touch_token(token_hash, now).await
    }

    async fn api_tokens(&self, company: CompanyId) -> Result<Vec<ApiToken>, StoreError> {
        self.select_api_tokens(company).await
    }

    async fn delete_api_token(
        &self,
        company: CompanyId,
        token: ApiTokenId,
    ) -> Result<(), StoreError> {
        self.remove_api_token(company, token).await
    }

    async fn lease_users(
        &self,
        node: &str,
        now: Timestamp,
        ttl: SignedDuration,
        limit: usize,
    ) -> Result<Vec<UserId>, StoreError> {
        let expires = ms(now) + ttl.as_millis().clamp(0, i128::from(i64::MAX / 2)) as i64;
        sqlx::query("UPDATE leases SET expires_ms = $2 WHERE node = $1")
            .bind(node.to_owned())
            .bind(expires)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        // Free users, and those of a node whose lease ran out; a conflicting insert takes
        // over only a lease that is still expired when it lands, so two nodes cannot
        // both win the same user.
        sqlx::query(
            "INSERT INTO leases (user_id, node, expires_ms) \
             SELECT u.id, $1, $2 FROM users u LEFT JOIN leases l ON l.user_id = u.id \
             WHERE l.user_id IS NULL OR l.expires_ms < $3 ORDER BY u.id LIMIT $4 \
             ON CONFLICT (user_id) DO UPDATE SET node = excluded.node, expires_ms = excluded.expires_ms \
             WHERE leases.expires_ms < $3",
        )
        .bind(node.to_owned())
        .bind(expires)
        .bind(ms(now))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        collect(
            &self.pool,
            sqlx::query("SELECT user_id FROM leases WHERE node = $1 ORDER BY user_id")
                .bind(node.to_owned()),
            |r| id(r, "user_id"),
        )
        .await
    }

    async fn release_leases(&self, node: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE node = $1")
            .bind(node.to_owned())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_backend_and_hide_passwords() {
        assert_eq!(Backend::of_url("sqlite:kalsync.db"), Some(Backend::Sqlite));
        assert_eq!(
            Backend::of_url("postgres://kalsync:hunter2@db/kalsync"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::of_url("mysql://x"), None);
        let url = DatabaseUrl::new("postgres://kalsync:hunter2@db.example:5432/kalsync");
        assert_eq!(
            url.to_string(),
            "postgres://kalsync:***@db.example:5432/kalsync"
        );
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(
            DatabaseUrl::new("sqlite:data/k.db").to_string(),
            "sqlite:data/k.db"
        );
    }
}
