//! The service as a test starts it ([`spawn_app`]): `Service::start` and `serve` on a
//! 127.0.0.1 port-0 listener, with a fresh SQLite file and key in a fresh folder (or a
//! fresh PostgreSQL database, when `KALSYNC_TEST_POSTGRES_URL` is set and the test asks
//! for one), handed back as a [`TestApp`] with its address, a client and the service's
//! store, engine and PBX simulator.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kalsync_server::{ServerError, Service, Settings};
use serde_json::{Value, json};

use super::acme::{OPERATOR, OPERATOR_PASSWORD};
use super::wait::polling;

/// The variable naming a PostgreSQL server tests may make databases on (its admin URL).
const POSTGRES_URL: &str = "KALSYNC_TEST_POSTGRES_URL";

/// Starts the service with `settings` on a fresh SQLite file and serves it; see [`Launch`]
/// for a public URL, PostgreSQL, a kept database or a service not served.
pub(crate) async fn spawn_app(settings: Settings) -> TestApp {
    Launch::new(settings).spawn().await
}

/// How a test app is started: its settings (their database and key file are always the
/// app's own) and what differs from [`spawn_app`].
pub(crate) struct Launch {
    settings: Settings,
    storage: Option<Storage>,
    public: bool,
    serve: bool,
}

impl Launch {
    /// `settings` on a fresh SQLite file, served, with the public URL they declare.
    pub(crate) fn new(settings: Settings) -> Launch {
        Launch {
            settings,
            storage: None,
            public: false,
            serve: true,
        }
    }

    /// With the app's own address as its public URL: Graph and Exchange call it back.
    pub(crate) fn public(mut self) -> Launch {
        self.public = true;
        self
    }

    /// On `storage`: a fresh PostgreSQL database, or what a halted app kept.
    pub(crate) fn on(mut self, storage: Storage) -> Launch {
        self.storage = Some(storage);
        self
    }

    /// Started but not served: the store, the engine and the connections are there, and
    /// nothing runs (no engine loop, subscription or stream).
    pub(crate) fn unserved(mut self) -> Launch {
        self.serve = false;
        self
    }

    /// Starts it.
    pub(crate) async fn spawn(self) -> TestApp {
        let storage = self.storage.unwrap_or_else(Storage::sqlite);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let mut settings = self.settings;
        settings.database_url = storage.database_url();
        settings.master_key_file = storage.key_file();
        if self.public {
            settings.public_url = Some(url::Url::parse(&format!("{base}/")).expect("url"));
        }
        let service = Service::start(settings).await.expect("starts");
        let serving = self.serve.then(|| {
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(service.clone().serve(listener, async move {
                let _ = stopped.await;
            }));
            Serving { stop, task }
        });
        TestApp {
            base,
            http: client(),
            service,
            storage,
            serving,
        }
    }
}

/// A started service.
pub(crate) struct TestApp {
    /// Where it answers: `http://127.0.0.1:port`, no slash at the end.
    pub(crate) base: String,
    /// A client of its own, with a cookie store (signed in as nobody until it signs in).
    pub(crate) http: reqwest::Client,
    /// The service: its store, engine, PBX simulator, subscriptions and connections.
    pub(crate) service: Service,
    storage: Storage,
    serving: Option<Serving>,
}

/// The task serving a test app, and what stops it.
struct Serving {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
}

/// A client with a cookie store: a fresh browser.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client")
}

impl TestApp {
    /// `path` (starting with `/`) on the app.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The PBX simulator its `simulator` targets deliver to.
    pub(crate) fn pbx(&self) -> &kalsync_pbx_sim::PbxSimulator {
        self.service.pbx.as_ref().expect("a simulator target")
    }

    /// Its store.
    pub(crate) fn store(&self) -> &dyn kalsync_store::Store {
        self.service.store.as_ref()
    }

    /// A fresh client signed in with `email` and `password` through the API, and who it
    /// is (`/api/v1/me`, or what the refusal said).
    pub(crate) async fn signed_in_as(
        &self,
        email: &str,
        password: &str,
    ) -> (reqwest::Client, Value) {
        let http = client();
        let me: Value = http
            .post(self.url("/api/v1/session"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("sign in")
            .json()
            .await
            .expect("json");
        (http, me)
    }

    /// A session of `email` through the API, sending its CSRF token with every request.
    pub(crate) async fn session(&self, email: &str, password: &str) -> Session {
        let (http, me) = self.signed_in_as(email, password).await;
        Session {
            http,
            csrf: me["csrf"].as_str().expect("csrf").to_owned(),
            base: self.base.clone(),
        }
    }

    /// The settings file's first company and its first instance, as stored.
    pub(crate) async fn first_instance(&self) -> (kalsync_store::Company, kalsync_store::Instance) {
        let store = self.store();
        let company = store.companies().await.expect("companies").remove(0);
        let instance = store
            .instances(company.id)
            .await
            .expect("instances")
            .remove(0);
        (company, instance)
    }

    /// Who `client` is signed in as: the status of `/api/v1/me` and its answer.
    pub(crate) async fn who_am_i(&self, client: &reqwest::Client) -> (reqwest::StatusCode, Value) {
        let answer = client.get(self.url("/api/v1/me")).send().await.expect("me");
        let status = answer.status();
        (status, answer.json().await.unwrap_or_default())
    }

    /// A company's instances, as `http` sees them.
    pub(crate) async fn instances_of(&self, http: &reqwest::Client, company: &str) -> Value {
        http.get(self.url(&format!("/api/v1/companies/{company}/instances")))
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json")
    }

    /// The operator's overview page (the operator of `acme::settings`), fetched signed in
    /// every 100 ms until `done` holds (at most ten seconds): the last one fetched.
    pub(crate) async fn overview_until(&self, done: impl Fn(&str) -> bool) -> String {
        let http = client();
        let signed_in = http
            .post(self.url("/api/v1/session"))
            .json(&json!({"email": OPERATOR, "password": OPERATOR_PASSWORD}))
            .send()
            .await
            .expect("sign in");
        assert!(signed_in.status().is_success(), "{}", signed_in.status());
        let mut page = String::new();
        polling(
            Duration::from_millis(100),
            Duration::from_secs(10),
            async || {
                page = self.page_in_english(&http, "/overview").await;
                done(&page)
            },
        )
        .await;
        page
    }

    /// A page's HTML as `http` (signed in, or not) sees it in English.
    pub(crate) async fn page_in_english(&self, http: &reqwest::Client, path: &str) -> String {
        http.get(self.url(path))
            .header("accept-language", "en")
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("html")
    }

    /// Stops it (cleanly, within fifteen seconds) and removes its database and folder.
    pub(crate) async fn stop(self) {
        self.halt().await.remove().await;
    }

    /// Stops it; whether it stopped within `limit`. Its database and folder are removed.
    pub(crate) async fn stop_within(mut self, limit: Duration) -> bool {
        let stopped = match self.serving.take() {
            Some(Serving { stop, task }) => {
                let _ = stop.send(());
                tokio::time::timeout(limit, task).await.is_ok()
            }
            None => true,
        };
        self.storage.remove().await;
        stopped
    }

    /// Stops it (cleanly, within fifteen seconds) and keeps its database and folder, for
    /// the test to read or to start the service on again.
    pub(crate) async fn halt(mut self) -> Storage {
        if let Some(Serving { stop, task }) = self.serving.take() {
            let _ = stop.send(());
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("stops")
                .expect("task")
                .expect("clean stop");
        }
        self.storage
    }
}

/// A client signed in through the API ([`TestApp::session`]).
pub(crate) struct Session {
    /// The client (its cookie jar holds the session).
    pub(crate) http: reqwest::Client,
    /// The session's CSRF token.
    pub(crate) csrf: String,
    base: String,
}

impl Session {
    /// `method` on `path` (from `/`, or a whole URL) with the CSRF token and `body` as
    /// JSON: the status and the answer as JSON (null when it is none).
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        let url = if path.starts_with('/') {
            format!("{}{path}", self.base)
        } else {
            path.to_owned()
        };
        let mut request = self
            .http
            .request(method, url)
            .header("x-csrf-token", &self.csrf);
        if let Some(b) = body {
            request = request.json(&b);
        }
        let answer = request.send().await.expect("request");
        let status = answer.status();
        (status, answer.json().await.unwrap_or(Value::Null))
    }
}

/// Where a test app keeps its data: a fresh folder (the key, and the SQLite file unless
/// it is on PostgreSQL) and perhaps a fresh PostgreSQL database.
pub(crate) struct Storage {
    dir: PathBuf,
    postgres: Option<Postgres>,
}

/// A database made on the PostgreSQL server of `KALSYNC_TEST_POSTGRES_URL`.
struct Postgres {
    admin: String,
    name: String,
    url: String,
}

impl Storage {
    /// A fresh folder, for a SQLite file.
    pub(crate) fn sqlite() -> Storage {
        Storage {
            dir: fresh_dir(),
            postgres: None,
        }
    }

    /// A fresh folder and a fresh database on the PostgreSQL server
    /// `KALSYNC_TEST_POSTGRES_URL` names; `None` when it names none.
    pub(crate) async fn postgres() -> Option<Storage> {
        use sqlx::Connection as _;
        let admin = std::env::var(POSTGRES_URL).ok().filter(|u| !u.is_empty())?;
        let dir = fresh_dir();
        let name = format!("kalsync_test_{}_{}", std::process::id(), number());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("KALSYNC_TEST_POSTGRES_URL reachable");
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&mut conn)
            .await;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create database");
        let server = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let url = format!("{server}/{name}");
        Some(Storage {
            dir,
            postgres: Some(Postgres { admin, name, url }),
        })
    }

    /// The master key file.
    pub(crate) fn key_file(&self) -> PathBuf {
        self.dir.join("k.key")
    }

    /// Which database it is: `sqlite` or `postgres`.
    pub(crate) fn backend(&self) -> &'static str {
        if self.postgres.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// The URL of its database.
    pub(crate) fn database_url(&self) -> String {
        match &self.postgres {
            Some(pg) => pg.url.clone(),
            None => format!("sqlite:{}", self.dir.join("k.db").display()),
        }
    }

    /// Everything the database holds, as text: SQLite's files as they lie on disk, or
    /// every row of every PostgreSQL table as JSON.
    pub(crate) async fn contents(&self) -> String {
        match &self.postgres {
            Some(pg) => postgres_dump(&pg.url).await,
            None => std::fs::read_dir(&self.dir)
                .expect("dir")
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("k.db"))
                // A WAL file SQLite removes as it closes may be gone by now.
                .filter_map(|e| std::fs::read(e.path()).ok())
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .collect(),
        }
    }

    /// Removes the folder and drops the database.
    pub(crate) async fn remove(self) {
        use sqlx::Connection as _;
        if let Some(pg) = &self.postgres
            && let Ok(mut conn) = sqlx::PgConnection::connect(&pg.admin).await
        {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", pg.name))
                .execute(&mut conn)
                .await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A new empty folder named after the running test (its thread's name), ending in a
/// number of its own: `kalsync-<test>-<pid>.<n>`.
fn fresh_dir() -> PathBuf {
    let test: String = std::thread::current()
        .name()
        .unwrap_or("test")
        .rsplit("::")
        .next()
        .unwrap_or("test")
        .chars()
        .take(48)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let dir = std::env::temp_dir().join(format!(
        "kalsync-{test}-{}.{}",
        std::process::id(),
        number()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

/// A number no other folder or database of this process has.
fn number() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Every row of every table, as JSON text.
async fn postgres_dump(url: &str) -> String {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("tables");
    let mut dump = String::new();
    for (table,) in tables {
        let rows: Vec<(String,)> =
            sqlx::query_as(&format!("SELECT row_to_json(t)::text FROM \"{table}\" t"))
                .fetch_all(&mut conn)
                .await
                .expect("rows");
        for (row,) in rows {
            dump.push_str(&row);
            dump.push('\n');
        }
    }
    dump
}
