//! NTLM over HTTP, as IIS in front of Exchange does it: NTLM authenticates a TCP
//! connection, not a request, so the NEGOTIATE → CHALLENGE → AUTHENTICATE exchange runs
//! on one kept-alive connection and later requests reuse it without credentials. The
//! NTLMv2 messages come from the `sspi` crate; this module owns the connections — a pool
//! of authenticated ones, each a hyper HTTP/1.1 connection (a pooled client could switch
//! connections between the legs). Over TLS the AUTHENTICATE message carries the
//! channel binding of the server's certificate (`tls-server-end-point`), which IIS
//! requires when Extended Protection for Authentication is on.

use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use secrecy::{ExposeSecret, SecretString};
use sspi::{
    AuthIdentity, BufferType, ClientRequestFlags, CredentialUse, DataRepresentation, Ntlm,
    SecurityBuffer, Sspi, SspiImpl, Username,
};

use crate::error::EwsError;
use crate::xml::MAX_ANSWER;

/// Authenticated connections kept for reuse.
const IDLE: usize = 8;

/// An HTTP answer: status and body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: String,
    /// The `X-BackEndOverrideCookie` it set.
    pub(crate) cookie: Option<String>,
}

/// NTLM connections to one server for one account.
pub(crate) struct NtlmPool {
    url: url::Url,
    username: String,
    password: SecretString,
    timeout: Duration,
    /// CA certificates trusted besides the public roots (DER).
    roots: Vec<Vec<u8>>,
    /// Where connections may go.
    outbound: kalsync_outbound::OutboundPolicy,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

fn transport(e: impl std::fmt::Display) -> EwsError {
    EwsError::Transport(e.to_string())
}

impl NtlmPool {
    pub(crate) fn new(
        url: url::Url,
        username: String,
        password: SecretString,
        timeout: Duration,
        roots: Vec<Vec<u8>>,
        outbound: kalsync_outbound::OutboundPolicy,
    ) -> NtlmPool {
        NtlmPool {
            url,
            username,
            password,
            timeout,
            roots,
            outbound,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    fn put_idle(&self, sender: SendRequest<Full<Bytes>>) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < IDLE && !sender.is_closed() {
            idle.push(sender);
        }
    }

    /// POSTs `body` with `headers` on an authenticated connection: an idle one, or a new
    /// one authenticated first. A 401 on a reused connection (the server forgot it)
    /// authenticates a new one once.
    pub(crate) async fn post(
        &self,
        headers: &[(&str, String)],
        body: &str,
    ) -> Result<Answer, EwsError> {
        if let Some(mut sender) = self.take_idle() {
            let answer = self.send(&mut sender, headers, body, None).await?;
            if answer.status != 401 {
                self.put_idle(sender);
                return Ok(answer);
            }
        }
        let (sender, answer) = self.signed_in(headers, body).await?;
        let status = answer.status().as_u16();
        let cookie = cookie_of(&answer);
        let body = self.read(answer.into_body()).await?;
        self.put_idle(sender);
        Ok(Answer {
            status,
            body,
            cookie,
        })
    }

    /// A new connection, and over TLS the channel binding of the server's certificate.
    async fn connect(&self) -> Result<(SendRequest<Full<Bytes>>, Option<Vec<u8>>), EwsError> {
        let host = self
            .url
            .host_str()
            .ok_or_else(|| transport("the EWS address has no host"))?
            .to_owned();
        let port = self
            .url
            .port_or_known_default()
            .ok_or_else(|| transport("the EWS address has no port"))?;
        let tcp = tokio::time::timeout(self.timeout, self.outbound.connect(host.as_str(), port))
            .await
            .map_err(|_| transport(format!("{host}:{port}: connection timed out")))?
            .map_err(|e| transport(format!("{host}:{port}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        if self.url.scheme() == "https" {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            for der in &self.roots {
                roots
                    .add(rustls::pki_types::CertificateDer::from(der.clone()))
                    .map_err(|e| transport(format!("a trusted CA certificate: {e}")))?;
            }
            let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(transport)?
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(transport)?;
            let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
                .connect(name, tcp)
                .await
                .map_err(|e| transport(format!("TLS with {host}: {e}")))?;
            let binding = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| crate::tls::server_end_point(leaf))
                .transpose()?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(transport)?;
            tokio::spawn(connection);
            Ok((sender, binding))
        } else {
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(transport)?;
            tokio::spawn(connection);
            Ok((sender, None))
        }
    }

    /// NEGOTIATE and the request, the CHALLENGE in the 401, AUTHENTICATE and the request
    /// again: the answer to the second is the request's (its body not yet read).
    async fn authenticate(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        binding: Option<&[u8]>,
        headers: &[(&str, String)],
        body: &str,
    ) -> Result<hyper::Response<Incoming>, EwsError> {
        let mut ntlm = Handshake::new(&self.username, self.password.expose_secret(), binding)?;
        let negotiate = ntlm.step(None)?;
        let first = self
            .request(
                sender,
                headers,
                body,
                Some(format!("NTLM {}", STANDARD.encode(negotiate))),
            )
            .await?;
        if first.status() != 401 {
            // The server did not ask for credentials at all.
            return Ok(first);
        }
        let challenge = challenge_of(&first).ok_or_else(|| {
            EwsError::Unauthorized(
                "Exchange does not offer NTLM (no NTLM challenge in its 401)".into(),
            )
        })?;
        // The 401's body is read so the connection is free for the second leg.
        self.read(first.into_body()).await?;
        let authenticate = ntlm.step(Some(&challenge))?;
        self.request(
            sender,
            headers,
            body,
            Some(format!("NTLM {}", STANDARD.encode(authenticate))),
        )
        .await
    }

    /// A new connection signed in with `body` as the request, and that request's answer
    /// (its body not yet read).
    async fn signed_in(
        &self,
        headers: &[(&str, String)],
        body: &str,
    ) -> Result<(SendRequest<Full<Bytes>>, hyper::Response<Incoming>), EwsError> {
        let (mut sender, binding) = self.connect().await?;
        let answer = tokio::time::timeout(
            self.timeout,
            self.authenticate(&mut sender, binding.as_deref(), headers, body),
        )
        .await
        .map_err(|_| transport("NTLM sign-in timed out"))??;
        if answer.status() == 401 {
            return Err(EwsError::Unauthorized(
                "Exchange refused the service account's NTLM sign-in (401)".into(),
            ));
        }
        Ok((sender, answer))
    }

    /// Opens a new connection, signs it in with `body` as the request, and returns the
    /// answer's status and its body as it arrives (a streaming subscription's); the
    /// connection serves only this answer.
    pub(crate) async fn open(
        &self,
        headers: &[(&str, String)],
        body: &str,
    ) -> Result<(u16, Incoming), EwsError> {
        let (sender, answer) = self.signed_in(headers, body).await?;
        // The connection task lives while the body is read.
        drop(sender);
        Ok((answer.status().as_u16(), answer.into_body()))
    }

    async fn request(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        headers: &[(&str, String)],
        body: &str,
        authorization: Option<String>,
    ) -> Result<hyper::Response<Incoming>, EwsError> {
        sender.ready().await.map_err(transport)?;
        let host = match (self.url.host_str(), self.url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => String::new(),
        };
        let path = match self.url.query() {
            Some(q) => format!("{}?{q}", self.url.path()),
            None => self.url.path().to_owned(),
        };
        let mut request = hyper::Request::post(path)
            .header("host", host)
            .header("user-agent", kalsync_outbound::USER_AGENT);
        for (k, v) in headers {
            request = request.header(*k, v.as_str());
        }
        if let Some(a) = authorization {
            request = request.header("authorization", a);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_owned())))
            .map_err(transport)?;
        tokio::time::timeout(self.timeout, sender.send_request(request))
            .await
            .map_err(|_| transport("no answer in time"))?
            .map_err(transport)
    }

    async fn read(&self, mut body: Incoming) -> Result<String, EwsError> {
        let mut bytes = Vec::new();
        while let Some(frame) = tokio::time::timeout(self.timeout, body.frame())
            .await
            .map_err(|_| transport("the answer stalled"))?
        {
            if let Ok(data) = frame.map_err(transport)?.into_data() {
                if bytes.len() + data.len() > MAX_ANSWER {
                    return Err(EwsError::TooLarge { limit: MAX_ANSWER });
                }
                bytes.extend_from_slice(&data);
            }
        }
        String::from_utf8(bytes).map_err(|_| EwsError::Malformed("the answer is not UTF-8".into()))
    }

    /// A request on a signed-in connection, its whole answer read.
    async fn send(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        headers: &[(&str, String)],
        body: &str,
        authorization: Option<String>,
    ) -> Result<Answer, EwsError> {
        let response = self.request(sender, headers, body, authorization).await?;
        let status = response.status().as_u16();
        let cookie = cookie_of(&response);
        Ok(Answer {
            status,
            body: self.read(response.into_body()).await?,
            cookie,
        })
    }
}

fn cookie_of(response: &hyper::Response<Incoming>) -> Option<String> {
    crate::client::backend_cookie(
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

/// The NTLM challenge in a 401's `WWW-Authenticate`.
fn challenge_of(response: &hyper::Response<Incoming>) -> Option<Vec<u8>> {
    response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("NTLM ").map(str::trim).map(str::to_owned))
        .and_then(|b| STANDARD.decode(b).ok())
}

/// The client side of one NTLMv2 handshake (`sspi`).
struct Handshake {
    ntlm: Ntlm,
    credentials: Option<sspi::AuthIdentityBuffers>,
}

fn sspi_error(e: impl std::fmt::Display) -> EwsError {
    EwsError::Unauthorized(format!("NTLM: {e}"))
}

impl Handshake {
    /// `DOMAIN\user` or `user@domain`; `binding`: the TLS channel's
    /// `tls-server-end-point` token, put in the AUTHENTICATE message.
    fn new(username: &str, password: &str, binding: Option<&[u8]>) -> Result<Handshake, EwsError> {
        let username = Username::parse(username).map_err(sspi_error)?;
        let identity = AuthIdentity {
            username,
            password: password.to_owned().into(),
        };
        let mut ntlm = Ntlm::new();
        if let Some(token) = binding {
            ntlm.set_channel_bindings(token);
        }
        let credentials = ntlm
            .acquire_credentials_handle()
            .with_credential_use(CredentialUse::Outbound)
            .with_auth_data(&identity)
            .execute(&mut ntlm)
            .map_err(sspi_error)?
            .credentials_handle;
        Ok(Handshake { ntlm, credentials })
    }

    /// `None`: the NEGOTIATE message; `Some(challenge)`: the AUTHENTICATE message.
    fn step(&mut self, challenge: Option<&[u8]>) -> Result<Vec<u8>, EwsError> {
        let mut output = [SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let mut input = [SecurityBuffer::new(
            challenge.unwrap_or_default().to_vec(),
            BufferType::Token,
        )];
        let mut builder = self
            .ntlm
            .initialize_security_context()
            .with_credentials_handle(&mut self.credentials)
            .with_context_requirements(ClientRequestFlags::empty())
            .with_target_data_representation(DataRepresentation::Native)
            .with_output(&mut output);
        if challenge.is_some() {
            builder = builder.with_input(&mut input);
        }
        self.ntlm
            .initialize_security_context_impl(&mut builder)
            .map_err(sspi_error)?
            .resolve_to_result()
            .map_err(sspi_error)?;
        Ok(std::mem::take(&mut output[0].buffer))
    }
}
