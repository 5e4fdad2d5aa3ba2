//! Kalsync's service (SPEC §6): opens the store, wires sources and targets into the
//! engine, applies the declared companies, and serves the HTTP endpoints — health,
//! readiness, Prometheus metrics and a who-is-away page — until shutdown.
//!
//! Tests call [`run`] (or [`Service::start`] and [`Service::serve`]) with a listener on
//! port 0; `main` only binds and wires signals.

mod ami_events;
mod broken;
pub mod check;
mod declare;
pub mod directory;
pub mod ews_streams;
pub mod logs;
mod pbx_directory;
pub mod settings;
pub mod subscriptions;
mod teams;
mod write_back;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kalsync_engine::{Engine, EngineConfig, RetryPolicy};
use kalsync_pbx_sim::PbxSimulator;
use kalsync_sources::Connections;
use kalsync_store::{SecretBox, Store, StoreError};
use kalsync_store_sql::{DatabaseUrl, SqlStore};
use tokio::net::TcpListener;

pub use settings::{Overrides, Settings};

/// Why the service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The settings are wrong.
    #[error("{0}")]
    Config(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Serving failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// A started service: its store, engine and PBX simulator.
#[derive(Clone)]
pub struct Service {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The engine.
    pub engine: Arc<Engine>,
    /// The in-process PBX every `simulator` target shares: only when the settings
    /// declare one (the demo, tests); a production service has none.
    pub pbx: Option<PbxSimulator>,
    /// The settings it runs with.
    pub settings: Arc<Settings>,
    /// Graph change subscriptions, when a public URL is set.
    pub subscriptions: Option<Arc<subscriptions::Subscriptions>>,
    /// The admin UI's and API's state (sign-in limits).
    pub web: kalsync_web::WebState,
    /// Seals secrets at rest and mints the tokens notification endpoints recognise.
    pub secrets: SecretBox,
    /// Where sources and targets may be reached.
    pub outbound: kalsync_outbound::OutboundPolicy,
    /// Each instance's one connection to its calendars, shared by the engine, the
    /// subscriptions, the streams and the connection check.
    pub connections: Arc<Connections>,
    /// Katalog Synk: the instances' directories.
    pub directories: directory::DirectorySync,
    /// Teams Presence.
    pub teams: kalsync_teams::Teams,
}

impl Service {
    /// Opens the store, applies the declarations and builds the engine.
    pub async fn start(settings: Settings) -> Result<Service, ServerError> {
        let secrets = match &settings.master_key {
            Some(key) => SecretBox::from_base64(secrecy::ExposeSecret::expose_secret(key)),
            None => SecretBox::from_key_file(&settings.master_key_file),
        }
        .map_err(|e| ServerError::Config(e.to_string()))?;
        let url = DatabaseUrl::new(settings.database_url.clone());
        let store: Arc<dyn Store> = Arc::new(SqlStore::connect(&url, secrets.clone()).await?);
        tracing::info!(database = %url, backend = store.backend(), "store open");
        declare::apply(store.as_ref(), &settings.companies).await?;
        declare::accounts(store.as_ref(), &settings.accounts).await?;
        if let Some(app) = &settings.microsoft365 {
            declare::tenants_of_operator_app(store.as_ref(), app).await?;
        }
        let outbound = settings.outbound.policy();
        let pbx = settings
            .companies
            .iter()
            .flat_map(|c| &c.targets)
            .any(|t| matches!(t, settings::TargetDecl::Simulator { .. }))
            .then(PbxSimulator::new);
        let connections = Connections::new(outbound.clone());
        let teams = kalsync_teams::Teams::new(
            store.clone(),
            connections.clone(),
            settings.engine.teams_requests_per_30s.max(31),
        );
        let engine = Engine::new(
            store.clone(),
            engine_config(&settings),
            connections.factory(),
            kalsync_targets::factory(outbound.clone(), pbx.clone(), Some(teams.clone())),
        );
        let subscriptions = match &settings.public_url {
            Some(url) => Some(
                subscriptions::Subscriptions::new(
                    store.clone(),
                    engine.clone(),
                    secrets.clone(),
                    connections.clone(),
                    url,
                )
                .map_err(|e| ServerError::Config(format!("public_url: {e}")))?,
            ),
            None => None,
        };
        let secure = settings
            .public_url
            .as_ref()
            .is_some_and(|u| u.scheme() == "https");
        let directories = directory::DirectorySync::new(store.clone(), connections.clone());
        Ok(Service {
            web: kalsync_web::WebState::new(store.clone(), secure)
                .with_checker(Arc::new(check::Checker(store.clone(), connections.clone())))
                .with_directories(Arc::new(directories.clone()))
                .with_write_back(Arc::new(write_back::CalendarWriter::new(
                    store.clone(),
                    connections.clone(),
                )))
                .with_teams(Arc::new(teams::Calls(teams.clone())))
                .with_http(
                    outbound
                        .http()
                        .timeout(Duration::from_secs(20))
                        .build()
                        .map_err(|e| {
                            ServerError::Config(format!("the outbound HTTP client: {e}"))
                        })?,
                )
                .with_microsoft365(
                    microsoft365_app(&settings, &outbound)?,
                    settings.public_url.clone(),
                )
                .with_trusted_proxies(settings.trusted_proxies.clone()),
            subscriptions,
            store,
            engine,
            pbx,
            settings: Arc::new(settings),
            secrets,
            outbound,
            connections,
            directories,
            teams,
        })
    }

    /// The HTTP endpoints.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .route(
                "/notifications/ews/{token}",
                axum::routing::post(ews_streams::push_endpoint),
            )
            .route(
                "/notifications/graph",
                axum::routing::post(subscriptions::endpoint),
            )
            .route(
                "/notifications/graph/lifecycle",
                axum::routing::post(subscriptions::endpoint),
            )
            .with_state(self.clone())
            .merge(kalsync_web::router(self.web.clone()))
    }

    /// Serves until `shutdown` completes, the engine, subscriptions and streams running
    /// beside the endpoints; then one cancellation stops them all, and requests and
    /// deliveries in flight finish within ten seconds.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        // One signal stops every task; each finishes what it has in hand.
        let stop = kalsync_engine::CancellationToken::new();
        let engine = tokio::spawn(
            self.engine
                .clone()
                .run(stop.clone(), Duration::from_secs(10)),
        );
        let router = self.router();
        tracing::info!(address = %listener.local_addr()?, "serving");
        // Subscribing makes Graph call the endpoint back: it starts once serving does.
        let subscriptions = self
            .subscriptions
            .clone()
            .map(|s| tokio::spawn(s.run(stop.clone())));
        let directories = tokio::spawn(self.directories.clone().run(stop.clone()));
        let teams = tokio::spawn(teams::run(
            self.store.clone(),
            self.teams.clone(),
            stop.clone(),
        ));
        let phones = tokio::spawn(
            ami_events::AmiListeners::new(
                self.store.clone(),
                self.outbound.clone(),
                self.web.phone_hooks(),
            )
            .run(stop.clone()),
        );
        let streams = tokio::spawn(
            ews_streams::EwsStreams::new(
                self.store.clone(),
                self.engine.clone(),
                self.secrets.clone(),
                self.connections.clone(),
                self.settings.public_url.clone(),
            )
            .run(stop.clone()),
        );
        // The stop ends the long-lived answers at once; requests still open ten
        // seconds later do not hold the stop up.
        let web = self.web.clone();
        let signalled = stop.clone();
        let signal = async move {
            shutdown.await;
            web.stop();
            signalled.cancel();
        };
        // The peer address feeds the sign-in rate limit.
        let server = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(signal)
        .into_future();
        let served = tokio::select! {
            served = server => served,
            () = async {
                stop.cancelled().await;
                tokio::time::sleep(Duration::from_secs(10)).await;
            } => {
                tracing::warn!("requests still open ten seconds after the stop: they are cut");
                Ok(())
            }
        };
        stop.cancel();
        if let Some(task) = subscriptions {
            let _ = task.await;
        }
        let _ = streams.await;
        let _ = directories.await;
        let _ = teams.await;
        let _ = phones.await;
        let _ = engine.await;
        Ok(served?)
    }
}

/// Starts the service on `listener` and runs until `shutdown`.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    Service::start(settings)
        .await?
        .serve(listener, shutdown)
        .await
}

/// The operator's Microsoft 365 app from the settings, its addresses checked.
fn microsoft365_app(
    settings: &Settings,
    outbound: &kalsync_outbound::OutboundPolicy,
) -> Result<Option<kalsync_web::Microsoft365App>, ServerError> {
    let Some(app) = &settings.microsoft365 else {
        return Ok(None);
    };
    if app.client_id.trim().is_empty() {
        return Err(ServerError::Config(
            "microsoft365.client_id is empty".into(),
        ));
    }
    let login_url = app
        .login_url
        .clone()
        .unwrap_or_else(|| kalsync_graph::Endpoints::global().login);
    let http = outbound
        .http()
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| ServerError::Config(format!("the outbound HTTP client: {e}")))?;
    let made = kalsync_web::Microsoft365App::new(
        http,
        app.client_id.trim(),
        app.client_secret.clone(),
        login_url,
        app.graph_url.clone(),
    );
    Ok(Some(match &app.operator_tenant {
        Some(tenant) => made.with_operators(tenant.clone(), app.operator_roles.clone()),
        None => made,
    }))
}

fn engine_config(settings: &Settings) -> EngineConfig {
    let e = &settings.engine;
    EngineConfig {
        node: settings.node.clone().unwrap_or_else(host_name),
        debounce: Duration::from_millis(e.debounce_ms),
        poll_interval: Duration::from_secs(e.poll_interval_secs.max(1)),
        subscribed_poll_interval: Duration::from_secs(
            e.subscribed_poll_interval_secs
                .unwrap_or(e.poll_interval_secs)
                .max(1),
        ),
        sync_concurrency: e.sync_concurrency.max(1),
        retry: RetryPolicy {
            max_attempts: e.max_attempts.max(1),
            ..RetryPolicy::default()
        },
        retention: jiff::SignedDuration::from_hours(24 * i64::from(e.retention_days)),
        automatic_replies_interval: Duration::from_secs(e.automatic_replies_secs.max(1)),
        ..EngineConfig::default()
    }
}

/// The node's default name: the host's, so a restarted node takes its own users back
/// at once instead of waiting for their leases to run out.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "kalsync".into())
}

async fn readyz(State(service): State<Service>) -> Response {
    match service.store.companies().await {
        Ok(_) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the store is not reachable",
            )
                .into_response()
        }
    }
}

async fn metrics(State(service): State<Service>) -> Response {
    let depth = service.store.outbox_depth().await.unwrap_or(0);
    (
        [("content-type", "text/plain; version=0.0.4")],
        service.engine.metrics().render(depth)
            + &service.directories.render_metrics()
            + &service.teams.limiter().render_metrics(),
    )
        .into_response()
}
