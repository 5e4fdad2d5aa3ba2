//! The simulator over HTTPS, as Exchange is reached in production: a fresh self-signed
//! certificate (ECDSA P-384 signed with SHA-384, so the channel binding's hash is not
//! the default SHA-256), each connection served by hyper with its peer address, and
//! the certificate's `tls-server-end-point` token kept for the NTLM check under
//! Extended Protection.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::{EwsHandle, EwsSim, http, lock};

/// Starts the simulator over HTTPS on a free loopback port: its base URL
/// (`https://localhost:PORT/`), a handle that stops it when dropped, and the PEM of
/// its certificate (for the client to trust).
pub async fn spawn_tls(sim: EwsSim) -> std::io::Result<(url::Url, EwsHandle, String)> {
    let (acceptor, pem) = certificate(&sim)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let task = tokio::spawn(run_tls(sim, listener, acceptor, std::future::pending()));
    let url =
        url::Url::parse(&format!("https://localhost:{port}/")).map_err(std::io::Error::other)?;
    Ok((url, kalsync_graph_sim::SimHandle::from_task(task), pem))
}

/// A fresh self-signed certificate for `localhost` and `127.0.0.1`, its channel
/// binding recorded in `sim`: the acceptor, and the certificate's PEM.
pub fn certificate(sim: &EwsSim) -> std::io::Result<(tokio_rustls::TlsAcceptor, String)> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
        .map_err(std::io::Error::other)?;
    let params = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .map_err(std::io::Error::other)?;
    let cert = params.self_signed(&key).map_err(std::io::Error::other)?;
    let der = cert.der().to_vec();
    let token = kalsync_ews::tls::server_end_point(&der).map_err(std::io::Error::other)?;
    *lock(&sim.shared.channel) = Some(token);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(der)],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .map_err(std::io::Error::other)?;
    Ok((
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        cert.pem(),
    ))
}

/// Serves the simulator over TLS on `listener` until `shutdown` completes; the
/// connections end with it.
pub async fn run_tls(
    sim: EwsSim,
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = http::router(sim);
    // Dropping the set closes every connection.
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
        };
        let (acceptor, router) = (acceptor.clone(), router.clone());
        connections.spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            serve(TokioIo::new(tls), router, peer).await;
        });
        while connections.try_join_next().is_some() {}
    }
}

/// Serves one connection, its requests knowing the peer (NTLM signs in a connection).
async fn serve<I>(io: I, router: axum::Router, peer: SocketAddr)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router.layer(axum::Extension(ConnectInfo(peer))));
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await;
}
