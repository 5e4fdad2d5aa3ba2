//! How a request reaches the presence server: the server's address and transport read
//! from its URI (`sip:host:port`, `;transport=tcp|tls`, `sips:`), UDP datagrams with
//! retransmission, or one kept TCP or TLS connection that every transaction shares and
//! that is opened again when it drops.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kalsync_engine::DeliveryError;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::oneshot;

use crate::message::{Message, Request};

/// RFC 3261 §18.1.1: a request over 1,300 bytes, with the path's MTU unknown, goes over
/// a congestion-controlled transport.
pub const UDP_LIMIT: usize = 1_300;

/// How requests travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Datagrams (`sip:`, the default); a request over [`UDP_LIMIT`] bytes goes over TCP
    /// when the server takes it.
    Udp,
    /// Only datagrams (`;transport=udp`), whatever their size.
    UdpOnly,
    /// One kept TCP connection (`;transport=tcp`).
    Tcp,
    /// One kept TLS connection (`sips:` or `;transport=tls`).
    Tls,
}

impl Transport {
    /// The name in a Via header.
    pub fn via(self) -> &'static str {
        match self {
            Transport::Udp | Transport::UdpOnly => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

/// The presence server a target publishes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddress {
    /// How.
    pub transport: Transport,
    /// Its name or address (an IPv6 address without brackets).
    pub host: String,
    /// Its port: 5060, or 5061 for TLS, unless named.
    pub port: u16,
}

impl ServerAddress {
    /// Reads `sip:host[:port][;transport=udp|tcp|tls]`, `sips:host[:port]` or a bare
    /// `host[:port]`.
    pub fn parse(proxy: &str) -> Result<ServerAddress, String> {
        let proxy = proxy.trim();
        let lower = proxy.to_ascii_lowercase();
        let (secure, rest) = if lower.starts_with("sips:") {
            (true, &proxy[5..])
        } else if lower.starts_with("sip:") {
            (false, &proxy[4..])
        } else {
            (false, proxy)
        };
        let mut parts = rest.split(';');
        let hostport = parts.next().unwrap_or_default();
        let mut transport = if secure {
            Transport::Tls
        } else {
            Transport::Udp
        };
        for parameter in parts {
            let Some((name, value)) = parameter.split_once('=') else {
                continue;
            };
            if !name.trim().eq_ignore_ascii_case("transport") {
                continue;
            }
            transport = match (value.trim().to_ascii_lowercase().as_str(), secure) {
                ("tls", _) | ("tcp", true) => Transport::Tls,
                ("tcp", false) => Transport::Tcp,
                ("udp", false) => Transport::UdpOnly,
                (other, _) => {
                    return Err(format!(
                        "`{proxy}`: transport={other} is not one Kalsync speaks (udp, tcp or tls; sips: is TLS)"
                    ));
                }
            };
        }
        let default_port = if transport == Transport::Tls {
            5061
        } else {
            5060
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("`{proxy}`: an IPv6 address without its `]`"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p
                    .parse()
                    .map_err(|_| format!("`{proxy}`: bad port `{p}`"))?,
                None => default_port,
            };
            (host.to_owned(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((host, p)) => (
                    host.to_owned(),
                    p.parse()
                        .map_err(|_| format!("`{proxy}`: bad port `{p}`"))?,
                ),
                None => (hostport.to_owned(), default_port),
            }
        };
        let host = host
            .rsplit_once('@')
            .map_or(host.as_str(), |(_, h)| h)
            .to_owned();
        if host.is_empty() || port == 0 {
            return Err(format!(
                "`{proxy}`: expected sip:host:port or sips:host:port"
            ));
        }
        Ok(ServerAddress {
            transport,
            host,
            port,
        })
    }
}

/// The TLS settings for a presence server: the public CAs and, for a server with a
/// certificate of the company's own, its CA (PEM).
pub fn tls_config(ca: Option<&str>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = ca {
        let mut added = 0;
        for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(pem.as_bytes()) {
            let cert: rustls::pki_types::CertificateDer<'static> =
                cert.map_err(|e| format!("the CA certificates: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("a CA certificate: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err("the CA holds no certificate".into());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn retry(message: String) -> DeliveryError {
    DeliveryError::Retry {
        message,
        retry_after: None,
    }
}

/// A byte stream to the server: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

type Waiting = Arc<Mutex<HashMap<String, oneshot::Sender<Message>>>>;

/// One open connection: requests are written whole under one lock, and a reader task
/// hands each final answer to the transaction waiting for its branch.
struct Connection {
    writer: tokio::sync::Mutex<tokio::io::WriteHalf<Box<dyn Io>>>,
    waiting: Waiting,
    closed: Arc<AtomicBool>,
    local: SocketAddr,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The kept connection of a stream transport, opened when first needed and again
/// after it dropped.
pub struct Streams {
    server: ServerAddress,
    tls: Option<Arc<rustls::ClientConfig>>,
    outbound: kalsync_outbound::OutboundPolicy,
    open: tokio::sync::Mutex<Option<Arc<Connection>>>,
}

/// A channel a transaction runs over.
pub enum Channel {
    /// A datagram socket connected to the server.
    Datagram(tokio::net::UdpSocket),
    /// The kept connection.
    Stream(Arc<StreamHandle>),
}

/// A transaction's hold on the kept connection.
pub struct StreamHandle {
    connection: Arc<Connection>,
    transport: Transport,
}

impl Channel {
    /// The local address, for the Via header.
    pub fn local(&self) -> Result<SocketAddr, DeliveryError> {
        match self {
            Channel::Datagram(socket) => {
                socket.local_addr().map_err(|e| retry(format!("sip: {e}")))
            }
            Channel::Stream(handle) => Ok(handle.connection.local),
        }
    }

    /// The transport's name, for the Via header.
    pub fn via(&self) -> &'static str {
        match self {
            Channel::Datagram(_) => "UDP",
            Channel::Stream(handle) => handle.transport.via(),
        }
    }

    /// Whether the kept connection this channel used has dropped.
    pub fn lost(&self) -> bool {
        match self {
            Channel::Datagram(_) => false,
            Channel::Stream(handle) => handle.connection.closed.load(Ordering::SeqCst),
        }
    }

    /// Sends `request` and waits for its final answer, at most `timeout`.
    pub async fn transaction(
        &self,
        request: &Request,
        timeout: Duration,
    ) -> Result<Message, DeliveryError> {
        match self {
            Channel::Datagram(socket) => crate::transaction(socket, request, timeout).await,
            Channel::Stream(handle) => handle.transaction(request, timeout).await,
        }
    }
}

impl StreamHandle {
    async fn transaction(
        &self,
        request: &Request,
        timeout: Duration,
    ) -> Result<Message, DeliveryError> {
        let bytes = request.to_bytes();
        let branch = request.branch().to_owned();
        let c = &self.connection;
        let (tx, rx) = oneshot::channel();
        c.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(branch.clone(), tx);
        let forget = || {
            c.waiting
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&branch);
        };
        let written = tokio::time::timeout(timeout, async {
            let mut writer = c.writer.lock().await;
            writer.write_all(&bytes).await?;
            writer.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                c.closed.store(true, Ordering::SeqCst);
                forget();
                return Err(retry(format!("sip: the connection dropped: {e}")));
            }
            Err(_) => {
                c.closed.store(true, Ordering::SeqCst);
                forget();
                return Err(retry("sip: the server takes nothing more".into()));
            }
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(retry("sip: the connection closed before an answer".into())),
            Err(_) => {
                forget();
                Err(retry(format!(
                    "sip: no answer within {} s",
                    timeout.as_secs_f32()
                )))
            }
        }
    }
}

impl Streams {
    /// The kept connection to `server` (TCP, or TLS with `tls`).
    pub fn new(
        server: ServerAddress,
        tls: Option<Arc<rustls::ClientConfig>>,
        outbound: kalsync_outbound::OutboundPolicy,
    ) -> Streams {
        Streams {
            server,
            tls,
            outbound,
            open: tokio::sync::Mutex::new(None),
        }
    }

    /// Whether a connection is open now.
    pub async fn is_open(&self) -> bool {
        self.open
            .lock()
            .await
            .as_ref()
            .is_some_and(|c| !c.closed.load(Ordering::SeqCst))
    }

    /// The open connection, or a new one; `fresh` opens a new one whatever is open (a
    /// transaction that lost its connection tries once more).
    pub async fn channel(
        &self,
        timeout: Duration,
        fresh: bool,
    ) -> Result<(Channel, bool), DeliveryError> {
        let mut open = self.open.lock().await;
        if !fresh {
            if let Some(c) = open.as_ref().filter(|c| !c.closed.load(Ordering::SeqCst)) {
                return Ok((self.handle(c.clone()), true));
            }
        }
        let connection = Arc::new(
            tokio::time::timeout(timeout, self.connect())
                .await
                .map_err(|_| {
                    retry(format!(
                        "sip: no connection to {}:{} within {} s",
                        self.server.host,
                        self.server.port,
                        timeout.as_secs_f32()
                    ))
                })??,
        );
        *open = Some(connection.clone());
        Ok((self.handle(connection), false))
    }

    fn handle(&self, connection: Arc<Connection>) -> Channel {
        Channel::Stream(Arc::new(StreamHandle {
            connection,
            transport: if self.tls.is_some() {
                Transport::Tls
            } else {
                Transport::Tcp
            },
        }))
    }

    async fn connect(&self) -> Result<Connection, DeliveryError> {
        let ServerAddress { host, port, .. } = &self.server;
        let tcp = self
            .outbound
            .connect(host, *port)
            .await
            .map_err(|e| retry(format!("sip: cannot connect to {host}:{port}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().map_err(|e| retry(format!("sip: {e}")))?;
        let io: Box<dyn Io> = match &self.tls {
            None => Box::new(tcp),
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|_| {
                    DeliveryError::Rejected(format!("sip: `{host}` is not a name TLS can check"))
                })?;
                let stream = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| {
                        // A certificate that does not check out will not on a retry either.
                        if e.get_ref()
                            .is_some_and(|inner| inner.to_string().contains("certificate"))
                        {
                            DeliveryError::Rejected(format!(
                                "sip: the TLS certificate of {host} is not trusted: {e}"
                            ))
                        } else {
                            retry(format!("sip: TLS with {host}:{port} failed: {e}"))
                        }
                    })?;
                Box::new(stream)
            }
        };
        let (read, write) = tokio::io::split(io);
        let waiting: Waiting = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let reader = tokio::spawn(read_answers(read, waiting.clone(), closed.clone()));
        Ok(Connection {
            writer: tokio::sync::Mutex::new(write),
            waiting,
            closed,
            local,
            reader,
        })
    }
}

/// Reads the server's messages off the connection until it closes or sends what is
/// not SIP, handing each final answer to its transaction; requests from the server
/// (it has none to make of a publisher) and provisional answers are passed over.
async fn read_answers(
    mut read: tokio::io::ReadHalf<Box<dyn Io>>,
    waiting: Waiting,
    closed: Arc<AtomicBool>,
) {
    let mut buffer: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    'reading: loop {
        match read.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
        loop {
            match Message::frame(&buffer) {
                Ok(Some((message, used))) => {
                    buffer.drain(..used);
                    if message.status.is_some_and(|s| s >= 200) {
                        let branch = message.branch().unwrap_or_default().to_owned();
                        let sender = waiting
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .remove(&branch);
                        if let Some(sender) = sender {
                            let _ = sender.send(message);
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "sip: the server sent what is not SIP; the connection is closed");
                    break 'reading;
                }
            }
        }
    }
    closed.store(true, Ordering::SeqCst);
    // Every transaction still waiting learns the connection is gone.
    waiting
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_names_the_transport_and_port() {
        let cases = [
            ("sip:pbx.example.se", Transport::Udp, "pbx.example.se", 5060),
            (
                "pbx.example.se:5070",
                Transport::Udp,
                "pbx.example.se",
                5070,
            ),
            (
                "sip:10.0.0.5:5070;transport=tcp",
                Transport::Tcp,
                "10.0.0.5",
                5070,
            ),
            (
                "sip:pbx.example.se;transport=TLS",
                Transport::Tls,
                "pbx.example.se",
                5061,
            ),
            (
                "sip:pbx.example.se;transport=udp",
                Transport::UdpOnly,
                "pbx.example.se",
                5060,
            ),
            (
                "sips:pbx.example.se",
                Transport::Tls,
                "pbx.example.se",
                5061,
            ),
            (
                "SIPS:pbx.example.se:443;transport=tcp",
                Transport::Tls,
                "pbx.example.se",
                443,
            ),
            (
                "sip:[2001:db8::1]:5062;transport=tcp",
                Transport::Tcp,
                "2001:db8::1",
                5062,
            ),
            (
                "sip:kalsync@pbx.example.se;lr",
                Transport::Udp,
                "pbx.example.se",
                5060,
            ),
        ];
        for (uri, transport, host, port) in cases {
            assert_eq!(
                ServerAddress::parse(uri),
                Ok(ServerAddress {
                    transport,
                    host: host.into(),
                    port
                }),
                "{uri}"
            );
        }
        for bad in [
            "sip:pbx.example.se;transport=sctp",
            "sips:pbx.example.se;transport=udp",
            "sip:pbx.example.se:x",
            "sip:[2001:db8::1",
            "sip:",
        ] {
            assert!(ServerAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_ca_that_holds_no_certificate_is_refused() {
        assert!(tls_config(None).is_ok());
        assert!(tls_config(Some("not a certificate")).is_err());
    }
}
