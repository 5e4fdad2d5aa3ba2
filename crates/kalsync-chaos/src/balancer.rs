//! The load balancer in front of the nodes, as a deployment has one: the public URL
//! Graph and Exchange call back and the admin API the harness reads. Each connection
//! goes to a node picked at random — so a notification often lands on a node that does
//! not hold its user — and to another when that one is down (killed, restarting).
//! Written here because it is a few lines of `tokio` that copy bytes; a proxy crate would
//! bring a server framework for nothing more.

use std::sync::Arc;
use std::time::Duration;

use rand::seq::SliceRandom as _;
use tokio::net::{TcpListener, TcpStream};

/// Serves on a free loopback port, forwarding to `nodes` (their ports); the port, and
/// the task (aborted at the end of the run).
pub(crate) async fn spawn(nodes: Vec<u16>) -> Result<(u16, tokio::task::JoinHandle<()>), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let nodes = Arc::new(nodes);
    let task = tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let nodes = nodes.clone();
            tokio::spawn(async move {
                let Some(mut outbound) = connect_any(&nodes).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    Ok((port, task))
}

/// A connection to a live node, tried in random order, for up to ten seconds (a single
/// node may be restarting).
async fn connect_any(nodes: &[u16]) -> Option<TcpStream> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut order = nodes.to_vec();
        order.shuffle(&mut rand::rng());
        for port in order {
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await {
                return Some(stream);
            }
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
