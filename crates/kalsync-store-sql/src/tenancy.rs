//! Companies, their instances (where calendars are read) and their targets (where
//! absences are sent), in SQL. Instance sources and target configs are sealed at rest.

use kalsync_store::{
    Company, CompanyId, Instance, InstanceId, NewInstance, NewTarget, StoreError, Target, TargetId,
};
use sqlx::Row as _;

use crate::SqlStore;
use crate::rows::{at, db, db_or_missing, id, ms, now};

impl SqlStore {
    pub(crate) async fn insert_company(&self, name: &str) -> Result<Company, StoreError> {
        let company = Company {
            id: CompanyId::new(),
            name: name.to_owned(),
            created: now(),
            readers_set_status: false,
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

    pub(crate) async fn select_company(&self, company: CompanyId) -> Result<Company, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, created_ms, readers_set_status FROM companies WHERE id = $1",
        )
        .bind(company.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .ok_or_else(|| StoreError::NotFound(format!("company {company}")))?;
        Ok(Company {
            id: id(&row, "id")?,
            name: row.try_get("name").map_err(db)?,
            created: at(row.try_get("created_ms").map_err(db)?),
            readers_set_status: row.try_get::<i64, _>("readers_set_status").map_err(db)? != 0,
        })
    }

    pub(crate) async fn select_companies(&self) -> Result<Vec<Company>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, created_ms, readers_set_status FROM companies ORDER BY name, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                Ok(Company {
                    id: id(row, "id")?,
                    name: row.try_get("name").map_err(db)?,
                    created: at(row.try_get("created_ms").map_err(db)?),
                    readers_set_status: row.try_get::<i64, _>("readers_set_status").map_err(db)?
                        != 0,
                })
            })
            .collect()
    }

    pub(crate) async fn update_readers_set_status(
        &self,
        company: CompanyId,
        allowed: bool,
    ) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE companies SET readers_set_status = $2 WHERE id = $1")
            .bind(company.to_string())
            .bind(i64::from(allowed));
        self.affected(query, format!("company {company}")).await
    }

    pub(crate) async fn remove_company(&self, company: CompanyId) -> Result<(), StoreError> {
        let query = sqlx::query("DELETE FROM companies WHERE id = $1").bind(company.to_string());
        self.affected(query, format!("company {company}")).await
    }

    pub(crate) async fn insert_instance(&self, new: NewInstance) -> Result<Instance, StoreError> {
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

    pub(crate) async fn select_instance(
        &self,
        instance: InstanceId,
    ) -> Result<Instance, StoreError> {
        let row = sqlx::query("SELECT * FROM instances WHERE id = $1")
            .bind(instance.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| StoreError::NotFound(format!("instance {instance}")))?;
        self.instance_row(&row)
    }

    pub(crate) async fn select_instances(
        &self,
        company: CompanyId,
    ) -> Result<Vec<Instance>, StoreError> {
        let rows = sqlx::query("SELECT * FROM instances WHERE company_id = $1 ORDER BY name, id")
            .bind(company.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(|r| self.instance_row(r)).collect()
    }

    pub(crate) async fn select_active_instances(&self) -> Result<Vec<Instance>, StoreError> {
        let rows = sqlx::query("SELECT * FROM instances WHERE active = 1 ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        // An instance that cannot be read (a row written by an older version, a value
        // no longer understood) is left out, with its reason in the log: the other
        // companies' instances go on syncing. Its own company sees the error.
        Ok(rows
            .iter()
            .filter_map(|r| match self.instance_row(r) {
                Ok(i) => Some(i),
                Err(e) => {
                    let id: String = r.try_get("id").unwrap_or_default();
                    tracing::error!(instance = %id, error = %e, "an instance cannot be read; it is left out until it is fixed");
                    None
                }
            })
            .collect())
    }

    pub(crate) async fn update_instance_row(&self, instance: &Instance) -> Result<(), StoreError> {
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

    pub(crate) async fn remove_instance(&self, instance: InstanceId) -> Result<(), StoreError> {
        let query = sqlx::query("DELETE FROM instances WHERE id = $1").bind(instance.to_string());
        self.affected(query, format!("instance {instance}")).await
    }

    pub(crate) async fn insert_target(&self, new: NewTarget) -> Result<Target, StoreError> {
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

    pub(crate) async fn select_target(&self, target: TargetId) -> Result<Target, StoreError> {
        let row = sqlx::query("SELECT * FROM targets WHERE id = $1")
            .bind(target.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| StoreError::NotFound(format!("target {target}")))?;
        self.target_row(&row)
    }

    pub(crate) async fn select_targets(
        &self,
        company: CompanyId,
    ) -> Result<Vec<Target>, StoreError> {
        let rows = sqlx::query("SELECT * FROM targets WHERE company_id = $1 ORDER BY name, id")
            .bind(company.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(|r| self.target_row(r)).collect()
    }

    pub(crate) async fn update_target_active(
        &self,
        target: TargetId,
        active: bool,
    ) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE targets SET active = $2 WHERE id = $1")
            .bind(target.to_string())
            .bind(i64::from(active));
        self.affected(query, format!("target {target}")).await
    }

    pub(crate) async fn remove_target(&self, target: TargetId) -> Result<(), StoreError> {
        let query = sqlx::query("DELETE FROM targets WHERE id = $1").bind(target.to_string());
        self.affected(query, format!("target {target}")).await
    }
}
