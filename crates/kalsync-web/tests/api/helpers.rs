//! `spawn_app`: the API on a loopback port over a fresh store with two companies —
//! Acme (an admin and a reader) and Beta (an admin) — and an operator.

use std::sync::Arc;

use kalsync_store::{CompanyId, Grant, NewAccount, Role, Store};
use kalsync_store_sql::{DatabaseUrl, SqlStore};
use kalsync_web::WebState;
use reqwest::StatusCode;
use serde_json::{Value, json};

pub(crate) const PASSWORD: &str = "rätt-lösenord-2026";
/// A Directory (tenant) id.
pub(crate) const TENANT: &str = "84bd8158-6d4d-4958-8b9f-9d6445542f95";
/// Another one.
pub(crate) const TENANT_2: &str = "2f0a5a2e-9d5e-4b7e-a0f2-5c3e8d1b7a11";

pub(crate) struct App {
    pub(crate) base: String,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) acme: CompanyId,
    pub(crate) beta: CompanyId,
    _dir: TempDir,
    _server: tokio::task::JoinHandle<()>,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A signed-in client: its cookie jar and the session's CSRF token (none for a token).
pub(crate) struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) csrf: Option<String>,
    pub(crate) bearer: Option<String>,
}

pub(crate) async fn spawn_app() -> App {
    spawn_app_with(|state| state).await
}

/// [`spawn_app`] with the state changed by `configure` (a checker, an operator's app).
pub(crate) async fn spawn_app_with(configure: impl FnOnce(WebState) -> WebState) -> App {
    let dir = std::env::temp_dir().join(format!("kalsync-web-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let url = DatabaseUrl::new(format!("sqlite:{}", dir.join("k.db").display()));
    let store: Arc<dyn Store> = Arc::new(
        SqlStore::connect(&url, kalsync_store::SecretBox::ephemeral())
            .await
            .expect("store"),
    );
    let acme = store.create_company("Acme AB").await.expect("acme").id;
    let beta = store.create_company("Beta AB").await.expect("beta").id;
    let hash = kalsync_web::auth::hash_password(PASSWORD.into())
        .await
        .expect("hash");
    for (email, grant) in [
        ("ops@operator.example", Grant::operator()),
        (
            "it@acme.example",
            Grant::company(Role::CompanyAdmin, acme).expect("g"),
        ),
        (
            "reception@acme.example",
            Grant::company(Role::Reader, acme).expect("g"),
        ),
        (
            "it@beta.example",
            Grant::company(Role::CompanyAdmin, beta).expect("g"),
        ),
    ] {
        store
            .create_account(NewAccount {
                email: email.into(),
                display_name: None,
                grant,
                password_hash: hash.clone(),
                entra: None,
            })
            .await
            .expect("account");
    }
    let router = kalsync_web::router(configure(WebState::new(store.clone(), false)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    App {
        base,
        store,
        acme,
        beta,
        _dir: TempDir(dir),
        _server: server,
    }
}

impl App {
    /// A client with no credentials.
    pub(crate) fn anonymous(&self) -> Client {
        Client {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .expect("client"),
            base: self.base.clone(),
            csrf: None,
            bearer: None,
        }
    }

    /// Signed in as `email` (password [`PASSWORD`]).
    pub(crate) async fn signed_in(&self, email: &str) -> Client {
        self.signed_in_with(email, PASSWORD).await
    }

    /// Signed in as `email` with `password`.
    pub(crate) async fn signed_in_with(&self, email: &str, password: &str) -> Client {
        let mut c = self.anonymous();
        let (status, body) = c
            .send(
                reqwest::Method::POST,
                "/api/v1/session",
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        c.csrf = body["csrf"].as_str().map(str::to_owned);
        c
    }

    /// A client using an API token.
    pub(crate) fn with_token(&self, token: &str) -> Client {
        let mut c = self.anonymous();
        c.bearer = Some(token.to_owned());
        c
    }
}

impl Client {
    /// Sends JSON (or nothing) with the session's CSRF token; the status and JSON body.
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(csrf) = &self.csrf {
            request = request.header("x-csrf-token", csrf);
        }
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request.send().await.expect("send");
        let status = response.status();
        let text = response.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
        };
        (status, value)
    }

    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub(crate) async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// Posts raw text (CSV).
    pub(crate) async fn post_text(&self, path: &str, text: String) -> (StatusCode, Value) {
        self.send_text(reqwest::Method::POST, path, text).await
    }

    /// Sends a CSV body with `method`.
    pub(crate) async fn send_text(
        &self,
        method: reqwest::Method,
        path: &str,
        text: String,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "text/csv")
            .body(text);
        if let Some(csrf) = &self.csrf {
            request = request.header("x-csrf-token", csrf);
        }
        let response = request.send().await.expect("send");
        let status = response.status();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")),
        )
    }
}

/// A Graph instance for `company`, made by `client`; its id.
pub(crate) async fn graph_instance(client: &Client, company: CompanyId) -> String {
    let (status, body) = client
        .post(
            &format!("/api/v1/companies/{company}/instances"),
            json!({
                "name": "Microsoft 365",
                "source": {"kind": "graph", "tenant": crate::helpers::TENANT, "client_id": "c", "client_secret": "s3cret"},
                "settings": "template = \"prefix\"\ndays_ahead = 7\n"
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

/// Stores, as a sync would, a lunch in force now (booked "LUN: Lunch", id `lunch-1`)
/// for `user` of an instance with the prefix template.
pub(crate) async fn lunch_now(app: &App, user: kalsync_store::UserId) {
    use jiff::{SignedDuration, Timestamp};
    use kalsync_core::{Booking, BookingId, BookingTime, InstanceSettings, Window, build_timeline};
    let now = Timestamp::from_second(Timestamp::now().as_second()).expect("now");
    let mut lunch = Booking::new(
        BookingId::parse("lunch-1").expect("id"),
        BookingTime::timed(
            now - SignedDuration::from_mins(10),
            now + SignedDuration::from_mins(50),
        )
        .expect("time"),
    );
    lunch.subject = Some("LUN: Lunch".into());
    let settings =
        InstanceSettings::from_toml("template = \"prefix\"\ndays_ahead = 7\n").expect("settings");
    let timeline = build_timeline(
        std::slice::from_ref(&lunch),
        &settings,
        Window::sync(now, 7),
    )
    .without_bookings();
    app.store
        .save_sync(kalsync_store::SyncWrite {
            user,
            bookings: std::slice::from_ref(&lunch),
            keep_subjects: false,
            timeline: &timeline,
            next_change: None,
            at: now,
            note: None,
            revision: app.store.user(user).await.expect("user").sync_revision,
        })
        .await
        .expect("stored");
}
