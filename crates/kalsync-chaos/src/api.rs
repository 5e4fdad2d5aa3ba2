//! The service's admin API (`/api/v1`) as the harness uses it: an operator's session,
//! every user's id by mailbox, a user's status. The answers are read as plain JSON: the
//! API's own views are the web crate's, made to be written, not read.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::node::{OPERATOR, OPERATOR_PASSWORD};

/// A signed-in operator's session.
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    /// Signs in at `base` (`http://host:port`).
    async fn sign_in(base: &str) -> Result<Api, String> {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let answer = http
            .post(format!("{base}/api/v1/session"))
            .json(&serde_json::json!({"email": OPERATOR, "password": OPERATOR_PASSWORD}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !answer.status().is_success() {
            return Err(format!("sign-in answered {}", answer.status()));
        }
        Ok(Api {
            http,
            base: base.to_owned(),
        })
    }

    /// Signs in, trying again every half second until `deadline` (the service may be
    /// starting again after a kill).
    pub(crate) async fn sign_in_by(base: &str, deadline: Instant) -> Result<Api, String> {
        loop {
            match Api::sign_in(base).await {
                Ok(api) => return Ok(api),
                Err(e) if Instant::now() > deadline => return Err(format!("the service: {e}")),
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    async fn get(&self, path: &str) -> Result<serde_json::Value, String> {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())
    }

    /// A user's status now and timeline ahead (`/api/v1/users/{id}/status`).
    pub(crate) async fn status(&self, id: &str) -> Result<serde_json::Value, String> {
        self.get(&format!("/api/v1/users/{id}/status")).await
    }

    /// Every user's id by mailbox (lower case).
    pub(crate) async fn users(&self) -> Result<HashMap<String, String>, String> {
        let mut ids = HashMap::new();
        for company in self
            .get("/api/v1/companies")
            .await?
            .as_array()
            .into_iter()
            .flatten()
        {
            let c = company["id"].as_str().unwrap_or_default();
            for instance in self
                .get(&format!("/api/v1/companies/{c}/instances"))
                .await?
                .as_array()
                .into_iter()
                .flatten()
            {
                let i = instance["id"].as_str().unwrap_or_default();
                for u in self
                    .get(&format!("/api/v1/instances/{i}/users"))
                    .await?
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    if let (Some(email), Some(id)) = (u["email"].as_str(), u["id"].as_str()) {
                        ids.insert(email.to_ascii_lowercase(), id.to_owned());
                    }
                }
            }
        }
        Ok(ids)
    }
}
