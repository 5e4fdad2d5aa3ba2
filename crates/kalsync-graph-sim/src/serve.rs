//! Serving a simulator's router: on a given listener until shut down, or on a free
//! loopback port in the background behind a handle.

use std::future::Future;

use tokio::net::TcpListener;

use crate::{Simulator, http};

/// Serves the simulator on `listener` until `shutdown` completes.
pub async fn run(
    sim: Simulator,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(http::router(sim), listener, shutdown).await
}

/// Serves a simulator's router on `listener` until `shutdown` completes; handlers may
/// ask for the peer's address (`ConnectInfo<SocketAddr>`).
pub async fn serve_router(
    router: axum::Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Starts the simulator on a free loopback port in the background; returns its base
/// URL and a handle that stops it when dropped.
pub async fn spawn(sim: Simulator) -> std::io::Result<(url::Url, SimHandle)> {
    spawn_router(http::router(sim)).await
}

/// Serves a simulator's router on a free loopback port in the background.
pub async fn spawn_router(router: axum::Router) -> std::io::Result<(url::Url, SimHandle)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_router(router, listener, async move {
        let _ = stopped.await;
    }));
    let url = url::Url::parse(&format!("http://{addr}/")).map_err(std::io::Error::other)?;
    Ok((
        url,
        SimHandle {
            stop: Some(stop),
            task,
        },
    ))
}

/// Stops a spawned simulator when dropped.
pub struct SimHandle {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl SimHandle {
    /// A handle for a server task spawned elsewhere: dropping it aborts the task.
    pub fn from_task(task: tokio::task::JoinHandle<std::io::Result<()>>) -> SimHandle {
        SimHandle { stop: None, task }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}
