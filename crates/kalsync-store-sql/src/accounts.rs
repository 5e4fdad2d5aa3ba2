//! Accounts, sessions and API tokens in SQL: who may sign in to the admin UI and the API.
//! Only hashes of passwords, session ids and tokens are stored.

use jiff::Timestamp;
use kalsync_core::TenantId;
use kalsync_store::{
    Account, AccountId, ApiToken, ApiTokenId, CompanyId, CompanyTenant, EntraId, Grant, NewAccount,
    NewApiToken, Role, Session, StoreError,
};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::SqlStore;
use crate::rows::{at, collect, corrupt, db, db_or_missing, id, ms, now};

fn grant(row: &AnyRow) -> Result<Grant, StoreError> {
    let role: String = row.try_get("role").map_err(db)?;
    let role = Role::parse(&role).map_err(|e| corrupt("role", e))?;
    let company: Option<String> = row.try_get("company_id").map_err(db)?;
    let company = company
        .map(|c| c.parse::<CompanyId>())
        .transpose()
        .map_err(|_| corrupt("company_id", "not an id"))?;
    match (role, company) {
        (Role::Operator, None) => Ok(Grant::operator()),
        (role, Some(c)) => Grant::company(role, c).map_err(|e| corrupt("role", e)),
        (_, None) => Err(corrupt("company_id", "a company role without a company")),
    }
}

fn account_row(row: &AnyRow) -> Result<Account, StoreError> {
    Ok(Account {
        id: id(row, "id")?,
        email: row.try_get("email").map_err(db)?,
        display_name: row.try_get("display_name").map_err(db)?,
        grant: grant(row)?,
        password_hash: row.try_get("password_hash").map_err(db)?,
        language: row.try_get("language").map_err(db)?,
        created: at(row.try_get("created_ms").map_err(db)?),
        entra: entra(row)?,
    })
}

fn entra(row: &AnyRow) -> Result<Option<EntraId>, StoreError> {
    let tenant: Option<String> = row.try_get("entra_tenant").map_err(db)?;
    let object: Option<String> = row.try_get("entra_object").map_err(db)?;
    match (tenant, object) {
        (Some(t), Some(object)) => Ok(Some(EntraId {
            tenant: TenantId::parse(&t).map_err(|e| corrupt("entra_tenant", e))?,
            object,
        })),
        _ => Ok(None),
    }
}

fn tenant_row(row: &AnyRow) -> Result<CompanyTenant, StoreError> {
    let tenant: String = row.try_get("tenant").map_err(db)?;
    let list = |column: &str| -> Result<Vec<String>, StoreError> {
        let text: String = row.try_get(column).map_err(db)?;
        serde_json::from_str(&text).map_err(|e| corrupt(column, e))
    };
    Ok(CompanyTenant {
        tenant: TenantId::parse(&tenant).map_err(|e| corrupt("tenant", e))?,
        company: id(row, "company_id")?,
        admins: list("admins")?,
        readers: list("readers")?,
        proven: at(row.try_get("proven_ms").map_err(db)?),
    })
}

fn list_json(list: &[String]) -> String {
    serde_json::Value::from(list.to_vec()).to_string()
}

fn token_row(row: &AnyRow) -> Result<ApiToken, StoreError> {
    let last: Option<i64> = row.try_get("last_used_ms").map_err(db)?;
    let owner: Option<String> = row.try_get("account_id").map_err(db)?;
    Ok(ApiToken {
        id: id(row, "id")?,
        token_hash: row.try_get("token_hash").map_err(db)?,
        grant: grant(row)?,
        name: row.try_get("name").map_err(db)?,
        created: at(row.try_get("created_ms").map_err(db)?),
        last_used: last.map(at),
        expires: at(row.try_get("expires_ms").map_err(db)?),
        owner: owner
            .map(|o| o.parse().map_err(|e| corrupt("api token owner", e)))
            .transpose()?,
    })
}

const ACCOUNT: &str = "SELECT id, email, display_name, role, company_id, password_hash, language, created_ms, entra_tenant, entra_object FROM accounts";
const TENANT: &str = "SELECT tenant, company_id, admins, readers, proven_ms FROM company_tenants";
const TOKEN: &str = "SELECT id, token_hash, company_id, role, name, created_ms, last_used_ms, expires_ms, account_id FROM api_tokens";

impl SqlStore {
    pub(crate) async fn insert_account(&self, new: NewAccount) -> Result<Account, StoreError> {
        let email = new.email.trim().to_lowercase();
        if email.is_empty() {
            return Err(StoreError::Invalid("an account needs an e-mail".into()));
        }
        let account = Account {
            id: AccountId::new(),
            email,
            display_name: new.display_name,
            grant: new.grant,
            password_hash: new.password_hash,
            language: None,
            created: now(),
            entra: new.entra,
        };
        sqlx::query("INSERT INTO accounts (id, email, display_name, role, company_id, password_hash, created_ms, entra_tenant, entra_object) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(account.id.to_string())
            .bind(&account.email)
            .bind(account.display_name.clone())
            .bind(account.grant.role.as_str())
            .bind(account.grant.company.map(|c| c.to_string()))
            .bind(&account.password_hash)
            .bind(ms(account.created))
            .bind(account.entra.as_ref().map(|e| e.tenant.to_string()))
            .bind(account.entra.as_ref().map(|e| e.object.clone()))
            .execute(&self.pool)
            .await
            .map_err(|e| match db(e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("an account for {}", account.email))
                }
                other => other,
            })?;
        Ok(account)
    }

    pub(crate) async fn select_account(&self, account: AccountId) -> Result<Account, StoreError> {
        let row = sqlx::query(&format!("{ACCOUNT} WHERE id = $1"))
            .bind(account.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| StoreError::NotFound(format!("account {account}")))?;
        account_row(&row)
    }

    pub(crate) async fn select_account_by_email(
        &self,
        email: &str,
    ) -> Result<Option<Account>, StoreError> {
        sqlx::query(&format!("{ACCOUNT} WHERE email = $1"))
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(|r| account_row(&r))
            .transpose()
    }

    pub(crate) async fn select_account_by_entra(
        &self,
        entra: &EntraId,
    ) -> Result<Option<Account>, StoreError> {
        sqlx::query(&format!(
            "{ACCOUNT} WHERE entra_tenant = $1 AND entra_object = $2"
        ))
        .bind(entra.tenant.to_string())
        .bind(&entra.object)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .map(|r| account_row(&r))
        .transpose()
    }

    pub(crate) async fn update_entra(
        &self,
        account: AccountId,
        entra: Option<&EntraId>,
    ) -> Result<(), StoreError> {
        let changed =
            sqlx::query("UPDATE accounts SET entra_tenant = $2, entra_object = $3 WHERE id = $1")
                .bind(account.to_string())
                .bind(entra.map(|e| e.tenant.to_string()))
                .bind(entra.map(|e| e.object.clone()))
                .execute(&self.pool)
                .await
                .map_err(|e| match db(e) {
                    StoreError::Conflict(_) => StoreError::Conflict(
                        "this Microsoft account signs in as another account".into(),
                    ),
                    other => other,
                })?;
        if changed.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("account {account}")));
        }
        Ok(())
    }

    pub(crate) async fn update_grant(
        &self,
        account: AccountId,
        grant: Grant,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let changed = sqlx::query(
            "UPDATE accounts SET role = $2, company_id = $3 WHERE id = $1 AND (role <> $2 OR COALESCE(company_id, '') <> COALESCE($3, ''))",
        )
        .bind(account.to_string())
        .bind(grant.role.as_str())
        .bind(grant.company.map(|c| c.to_string()))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if changed.rows_affected() > 0 {
            sqlx::query("DELETE FROM sessions WHERE account_id = $1")
                .bind(account.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            sqlx::query("DELETE FROM api_tokens WHERE account_id = $1")
                .bind(account.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    pub(crate) async fn delete_access(&self, account: AccountId) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        for table in ["sessions", "api_tokens"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE account_id = $1"))
                .bind(account.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    pub(crate) async fn insert_company_tenant(
        &self,
        tenant: &CompanyTenant,
    ) -> Result<(CompanyTenant, bool), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO company_tenants (tenant, company_id, admins, readers, proven_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant) DO NOTHING",
        )
        .bind(tenant.tenant.to_string())
        .bind(tenant.company.to_string())
        .bind(list_json(&tenant.admins))
        .bind(list_json(&tenant.readers))
        .bind(ms(tenant.proven))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        let kept = self
            .select_company_tenant(&tenant.tenant)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("tenant {}", tenant.tenant)))?;
        if inserted.rows_affected() == 0 && kept.company != tenant.company {
            return Err(StoreError::Conflict(format!(
                "tenant {} belongs to another company",
                tenant.tenant
            )));
        }
        Ok((kept, inserted.rows_affected() > 0))
    }

    pub(crate) async fn select_company_tenant(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<CompanyTenant>, StoreError> {
        sqlx::query(&format!("{TENANT} WHERE tenant = $1"))
            .bind(tenant.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(|r| tenant_row(&r))
            .transpose()
    }

    pub(crate) async fn select_company_tenants(
        &self,
        company: CompanyId,
    ) -> Result<Vec<CompanyTenant>, StoreError> {
        collect(
            &self.pool,
            sqlx::query(&format!("{TENANT} WHERE company_id = $1 ORDER BY tenant"))
                .bind(company.to_string()),
            tenant_row,
        )
        .await
    }

    pub(crate) async fn update_tenant_roles(
        &self,
        tenant: &CompanyTenant,
    ) -> Result<(), StoreError> {
        let changed = sqlx::query(
            "UPDATE company_tenants SET admins = $3, readers = $4 WHERE tenant = $1 AND company_id = $2",
        )
        .bind(tenant.tenant.to_string())
        .bind(tenant.company.to_string())
        .bind(list_json(&tenant.admins))
        .bind(list_json(&tenant.readers))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        if changed.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("tenant {}", tenant.tenant)));
        }
        Ok(())
    }

    pub(crate) async fn delete_company_tenant(
        &self,
        company: CompanyId,
        tenant: &TenantId,
    ) -> Result<(), StoreError> {
        let gone = sqlx::query("DELETE FROM company_tenants WHERE tenant = $1 AND company_id = $2")
            .bind(tenant.to_string())
            .bind(company.to_string())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        if gone.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("tenant {tenant}")));
        }
        Ok(())
    }

    pub(crate) async fn select_accounts(
        &self,
        company: Option<CompanyId>,
    ) -> Result<Vec<Account>, StoreError> {
        match company {
            Some(c) => {
                collect(
                    &self.pool,
                    sqlx::query(&format!("{ACCOUNT} WHERE company_id = $1 ORDER BY email"))
                        .bind(c.to_string()),
                    account_row,
                )
                .await
            }
            None => {
                collect(
                    &self.pool,
                    sqlx::query(&format!(
                        "{ACCOUNT} WHERE company_id IS NULL ORDER BY email"
                    )),
                    account_row,
                )
                .await
            }
        }
    }

    pub(crate) async fn update_password(
        &self,
        account: AccountId,
        hash: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let changed = sqlx::query("UPDATE accounts SET password_hash = $2 WHERE id = $1")
            .bind(account.to_string())
            .bind(hash)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if changed.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("account {account}")));
        }
        sqlx::query("DELETE FROM sessions WHERE account_id = $1")
            .bind(account.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    pub(crate) async fn remove_account(&self, account: AccountId) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM sessions WHERE account_id = $1")
            .bind(account.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let gone = sqlx::query("DELETE FROM accounts WHERE id = $1")
            .bind(account.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if gone.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("account {account}")));
        }
        tx.commit().await.map_err(db)
    }

    pub(crate) async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, account_id, csrf, expires_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(&session.id_hash)
        .bind(session.account.to_string())
        .bind(&session.csrf)
        .bind(ms(session.expires))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    pub(crate) async fn select_session(
        &self,
        id_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(
            "SELECT id_hash, account_id, csrf, expires_ms FROM sessions WHERE id_hash = $1 AND expires_ms > $2",
        )
        .bind(id_hash)
        .bind(ms(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.map(|r| {
            Ok(Session {
                id_hash: r.try_get("id_hash").map_err(db)?,
                account: id(&r, "account_id")?,
                csrf: r.try_get("csrf").map_err(db)?,
                expires: at(r.try_get("expires_ms").map_err(db)?),
            })
        })
        .transpose()
    }

    pub(crate) async fn remove_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    pub(crate) async fn remove_expired_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM sessions WHERE expires_ms <= $1")
            .bind(ms(now))
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected())
    }

    pub(crate) async fn insert_api_token(
        &self,
        new: NewApiToken<'_>,
    ) -> Result<ApiToken, StoreError> {
        let Some(company) = new.grant.company else {
            return Err(StoreError::Invalid(
                "an API token belongs to a company".into(),
            ));
        };
        let token = ApiToken {
            id: ApiTokenId::new(),
            token_hash: new.token_hash.to_owned(),
            grant: new.grant,
            name: new.name.to_owned(),
            created: at(ms(new.created)),
            last_used: None,
            expires: at(ms(new.expires)),
            owner: Some(new.owner),
        };
        sqlx::query("INSERT INTO api_tokens (id, token_hash, company_id, name, role, created_ms, expires_ms, account_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(token.id.to_string())
            .bind(&token.token_hash)
            .bind(company.to_string())
            .bind(&token.name)
            .bind(new.grant.role.as_str())
            .bind(ms(token.created))
            .bind(ms(token.expires))
            .bind(new.owner.to_string())
            .execute(&self.pool)
            .await
            .map_err(db_or_missing(format!("account {}", new.owner)))?;
        Ok(token)
    }

    pub(crate) async fn select_and_touch_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<ApiToken>, StoreError> {
        let row = sqlx::query(&format!(
            "{TOKEN} WHERE token_hash = $1 AND expires_ms > $2"
        ))
        .bind(token_hash)
        .bind(ms(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut token = token_row(&row)?;
        sqlx::query("UPDATE api_tokens SET last_used_ms = $2 WHERE id = $1")
            .bind(token.id.to_string())
            .bind(ms(now))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        token.last_used = Some(at(ms(now)));
        Ok(Some(token))
    }

    pub(crate) async fn select_api_tokens(
        &self,
        company: CompanyId,
    ) -> Result<Vec<ApiToken>, StoreError> {
        collect(
            &self.pool,
            sqlx::query(&format!("{TOKEN} WHERE company_id = $1 ORDER BY name"))
                .bind(company.to_string()),
            token_row,
        )
        .await
    }

    pub(crate) async fn remove_api_token(
        &self,
        company: CompanyId,
        token: ApiTokenId,
    ) -> Result<(), StoreError> {
        let gone = sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND company_id = $2")
            .bind(token.to_string())
            .bind(company.to_string())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        if gone.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("API token {token}")));
        }
        Ok(())
    }
}
