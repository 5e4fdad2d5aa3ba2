//! The operator's console: `kalsync users|status|deliveries|instances` on the same
//! service functions the REST API runs (the same checks, PBX directory and audit), as
//! the operator at the machine — audited as `console:<login>` — answering what the API
//! answers, as JSON for the command line to show.

use std::sync::Arc;

use jiff::Timestamp;
use kalsync_store::{DeliveryState, Grant, Instance, Store, User};
use serde_json::{Value, json};

use crate::WebState;
use crate::api::users::{AddError, UserView, add_user, import_csv, remove_user};
use crate::auth::{Principal, Via};
use crate::error::ApiError;

/// The operator at the console.
pub struct Console {
    state: WebState,
    principal: Principal,
}

fn said(e: ApiError) -> String {
    e.to_string()
}

impl Console {
    /// The console on `store`; `login` is who runs it (for the audit log).
    pub fn new(store: Arc<dyn Store>, login: &str) -> Console {
        Console {
            state: WebState::new(store, false),
            principal: Principal {
                grant: Grant::operator(),
                actor: format!("console:{login}"),
                account: None,
                via: Via::Console,
            },
        }
    }

    fn store(&self) -> &dyn Store {
        self.state.store.as_ref()
    }

    /// Every instance, with its company: `(company name, instance)`.
    async fn all_instances(&self) -> Result<Vec<(String, Instance)>, String> {
        let mut all = Vec::new();
        for company in self.store().companies().await.map_err(|e| e.to_string())? {
            for instance in self
                .store()
                .instances(company.id)
                .await
                .map_err(|e| e.to_string())?
            {
                all.push((company.name.clone(), instance));
            }
        }
        Ok(all)
    }

    /// The instance named by its id or its name; a name two companies use is
    /// ambiguous and said so, with the ids to choose from.
    pub async fn instance(&self, name: &str) -> Result<Instance, String> {
        let found: Vec<(String, Instance)> = self
            .all_instances()
            .await?
            .into_iter()
            .filter(|(_, i)| i.id.to_string() == name || i.name == name)
            .collect();
        match found.as_slice() {
            [] => Err(format!("no instance with the id or name `{name}`")),
            [(_, one)] => Ok(one.clone()),
            many => Err(format!(
                "`{name}` names {} instances; give its id: {}",
                many.len(),
                many.iter()
                    .map(|(c, i)| format!("{} ({c})", i.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Every company's instances: company, name, id, source, on/off, users, users whose
    /// last read failed.
    pub async fn instances(&self) -> Result<Vec<Value>, String> {
        let mut lines = Vec::new();
        for (company, instance) in self.all_instances().await? {
            let users = self
                .store()
                .users(instance.id)
                .await
                .map_err(|e| e.to_string())?;
            lines.push(json!({
                "company": company,
                "instance": instance.name,
                "id": instance.id.to_string(),
                "source": instance.source.kind(),
                "active": instance.active,
                "users": users.len(),
                "failing": users.iter().filter(|u| u.last_error.is_some()).count(),
            }));
        }
        Ok(lines)
    }

    /// An instance's users, as the API lists them.
    pub async fn users(&self, instance: &str) -> Result<Vec<Value>, String> {
        let found = self.instance(instance).await?;
        let users = self
            .store()
            .users(found.id)
            .await
            .map_err(|e| e.to_string())?;
        users
            .iter()
            .map(|u| serde_json::to_value(UserView::from(u)).map_err(|e| e.to_string()))
            .collect()
    }

    /// Adds a user, checked as the API checks it (e-mail, extension, the PBX
    /// directory, a directory that alone adds users).
    pub async fn add(
        &self,
        instance: &str,
        email: &str,
        name: Option<&str>,
        extension: Option<&str>,
    ) -> Result<Value, String> {
        let found = self.instance(instance).await?;
        let user = add_user(&self.state, &self.principal, &found, email, name, extension)
            .await
            .map_err(|e| match e {
                AddError::Problem(problem) => problem.say(kalsync_core::Lang::En),
                AddError::Api(api) => api.to_string(),
            })?;
        serde_json::to_value(UserView::from(&user)).map_err(|e| e.to_string())
    }

    /// The user named by id or e-mail; an e-mail in several instances needs one.
    pub async fn user(&self, user: &str, instance: Option<&str>) -> Result<User, String> {
        let within = match instance {
            Some(name) => Some(self.instance(name).await?.id),
            None => None,
        };
        let mut found = Vec::new();
        for (_, i) in self.all_instances().await? {
            if within.is_some_and(|w| w != i.id) {
                continue;
            }
            for u in self.store().users(i.id).await.map_err(|e| e.to_string())? {
                if u.id.to_string() == user || u.email.as_str().eq_ignore_ascii_case(user) {
                    found.push((i.name.clone(), u));
                }
            }
        }
        match found.len() {
            0 => Err(format!("no user `{user}`")),
            1 => Ok(found.remove(0).1),
            n => Err(format!(
                "`{user}` is in {n} instances ({}): name one with --instance",
                found
                    .iter()
                    .map(|(i, _)| i.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Removes a user with its data; its e-mail.
    pub async fn remove(&self, user: &str, instance: Option<&str>) -> Result<String, String> {
        let found = self.user(user, instance).await?;
        remove_user(&self.state, &self.principal, &found.id.to_string())
            .await
            .map_err(said)?;
        Ok(found.email.to_string())
    }

    /// Imports a CSV (`email,name,extension`) as the API does, every row reported;
    /// `progress(done, total)` as rows are taken.
    pub async fn import(
        &self,
        instance: &str,
        csv: &str,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<Value, String> {
        let found = self.instance(instance).await?;
        let report = import_csv(&self.state, &self.principal, &found, csv, progress)
            .await
            .map_err(said)?;
        serde_json::to_value(report).map_err(|e| e.to_string())
    }

    /// A user's status at `now` and the timeline ahead, each absence with its sources
    /// and bookings: what the API's `/users/{id}/status` answers.
    pub async fn status(
        &self,
        user: &str,
        instance: Option<&str>,
        now: Timestamp,
    ) -> Result<Value, String> {
        let found = self.user(user, instance).await?;
        let zone = self
            .store()
            .instance(found.instance)
            .await
            .map_err(|e| e.to_string())?
            .settings
            .time_zone
            .tz()
            .iana_name()
            .map(str::to_owned);
        let view =
            crate::api::status::status_of(&self.state, &self.principal, &found.id.to_string(), now)
                .await
                .map_err(said)?;
        let mut value = serde_json::to_value(view).map_err(|e| e.to_string())?;
        value["zone"] = zone.map_or(Value::Null, Value::String);
        Ok(value)
    }

    /// The deliveries given up after their retries, every company's, newest first.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<Value>, String> {
        let mut lines = Vec::new();
        for company in self.store().companies().await.map_err(|e| e.to_string())? {
            let targets = self
                .store()
                .targets(company.id)
                .await
                .map_err(|e| e.to_string())?;
            for d in self
                .store()
                .deliveries(company.id, DeliveryState::Dead, limit)
                .await
                .map_err(|e| e.to_string())?
            {
                let email = match self.store().user(d.user).await {
                    Ok(u) => u.email.to_string(),
                    Err(_) => d.user.to_string(),
                };
                let target = targets
                    .iter()
                    .find(|t| t.id == d.target)
                    .map_or_else(|| d.target.to_string(), |t| t.name.clone());
                lines.push(json!({
                    "company": company.name,
                    "user": email,
                    "target": target,
                    "attempts": d.attempts,
                    "created": d.created.to_string(),
                    "last_error": d.last_error,
                    "status": d.payload.get("absence").and_then(|a| a.get("reason")).cloned().unwrap_or(Value::Null),
                }));
            }
        }
        lines.sort_by(|a, b| b["created"].as_str().cmp(&a["created"].as_str()));
        lines.truncate(limit);
        Ok(lines)
    }
}
