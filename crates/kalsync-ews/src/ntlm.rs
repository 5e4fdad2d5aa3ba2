//! NTLM over HTTP, as IIS in front of Exchange does it: NTLM authenticates a TCP
//! connection, not a request, so the NEGOTIATE → CHALLENGE → AUTHENTICATE exchange runs
//! on one kept-alive connection and later requests reuse it without credentials. The
//! NTLMv2 messages come from [`crate::nlmp`]; this module owns the connections — a pool
//! of authenticated ones, each a hyper HTTP/1.1 connection (a pooled client could switch
//! connections between the legs). Over TLS the AUTHENTICATE message carries the
//! channel binding of the server's certificate (`tls-server-end-point`), which IIS
//! requires when Extended Protection for Authentication is on.
//!
//! The scheme is `NTLM` while the server offers it. IIS with only its Negotiate
//! provider offers `Negotiate` alone: the first leg, sent as `NTLM`, then comes back as
//! a bare 401 naming the schemes, and the handshake is made again with the same NTLM
//! messages under `Negotiate` — raw NTLMSSP, as Windows itself sends NTLM there — and the
//! pool remembers the scheme for its later sign-ins. A server answering with a SPNEGO
//! `NegTokenResp` gets the AUTHENTICATE wrapped the same way. A streaming answer's
//! connection, once the answer has ended cleanly, goes back to the pool still signed in.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use secrecy::{ExposeSecret, SecretString};

use crate::error::EwsError;
use crate::nlmp::Handshake;
use crate::spnego::{self, NegState, Negotiation};
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
    /// The scheme the last sign-in found the server to take.
    scheme: Mutex<Scheme>,
}

/// The HTTP authentication scheme NTLM travels in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    /// `NTLM`.
    Ntlm,
    /// `Negotiate` (SPNEGO), NTLM inside.
    Negotiate,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Ntlm => "NTLM",
            Scheme::Negotiate => "Negotiate",
        }
    }
}

/// What a first leg's answer came to.
enum FirstLeg {
    /// The request's own answer (signed in, refused, or no sign-in needed).
    Answer(hyper::Response<Incoming>),
    /// The server does not take this scheme but takes the other.
    Switch(Scheme),
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
            scheme: Mutex::new(Scheme::Ntlm),
        }
    }

    fn scheme(&self) -> Scheme {
        *self
            .scheme
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn remember(&self, scheme: Scheme) {
        *self
            .scheme
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = scheme;
    }

    /// The service's SPN, `HTTP/<host>`, for `MsvAvTargetName`.
    fn spn(&self) -> String {
        format!("HTTP/{}", self.url.host_str().unwrap_or_default())
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

    /// NEGOTIATE under `scheme` and the request, the CHALLENGE in the 401, AUTHENTICATE
    /// and the request again: the answer to the second is the request's (its body not
    /// yet read). A 401 without a challenge that offers the other scheme asks for a
    /// switch; one offering neither is an error naming what it offered.
    async fn authenticate(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        binding: Option<&[u8]>,
        scheme: Scheme,
        headers: &[(&str, String)],
        body: &str,
    ) -> Result<FirstLeg, EwsError> {
        let ntlm = Handshake::new(
            &self.username,
            self.password.expose_secret(),
            binding,
            &self.spn(),
        )?;
        let authorization = |token: &[u8]| format!("{} {}", scheme.name(), STANDARD.encode(token));
        let first = self
            .request(sender, headers, body, Some(authorization(ntlm.negotiate())))
            .await?;
        if first.status() != 401 {
            // The server did not ask for credentials at all.
            return Ok(FirstLeg::Answer(first));
        }
        let offer = Offer::of(&first);
        // The 401's body is read so the connection is free for the next leg.
        self.read(first.into_body()).await?;
        let Some(token) = offer.token(scheme) else {
            let other = match scheme {
                Scheme::Ntlm => Scheme::Negotiate,
                Scheme::Negotiate => Scheme::Ntlm,
            };
            if offer.offers(other) && !offer.offers(scheme) {
                return Ok(FirstLeg::Switch(other));
            }
            return Err(EwsError::Unauthorized(if offer.offers(scheme) {
                format!(
                    "Exchange answered the NTLM sign-in's first message under {} without a challenge",
                    scheme.name()
                )
            } else {
                format!(
                    "Exchange offers neither NTLM nor Negotiate sign-in; its 401 offers {}",
                    offer.names()
                )
            }));
        };
        let (challenge, wrapped) = unwrap_challenge(&token)?;
        let authenticate = ntlm.authenticate(&challenge)?;
        let token = if wrapped {
            spnego::response(None, false, Some(&authenticate))
        } else {
            authenticate
        };
        let answer = self
            .request(sender, headers, body, Some(authorization(&token)))
            .await?;
        Ok(FirstLeg::Answer(answer))
    }

    /// A new connection signed in with `body` as the request, and that request's answer
    /// (its body not yet read).
    async fn signed_in(
        &self,
        headers: &[(&str, String)],
        body: &str,
    ) -> Result<(SendRequest<Full<Bytes>>, hyper::Response<Incoming>), EwsError> {
        let (mut sender, mut binding) = self.connect().await?;
        let mut scheme = self.scheme();
        let mut switched = false;
        loop {
            let leg = tokio::time::timeout(
                self.timeout,
                self.authenticate(&mut sender, binding.as_deref(), scheme, headers, body),
            )
            .await
            .map_err(|_| transport("NTLM sign-in timed out"))??;
            match leg {
                FirstLeg::Answer(answer) => {
                    if answer.status() == 401 {
                        return Err(EwsError::Unauthorized(format!(
                            "Exchange refused the service account's NTLM sign-in under {} (401)",
                            scheme.name()
                        )));
                    }
                    self.remember(scheme);
                    return Ok((sender, answer));
                }
                FirstLeg::Switch(other) if !switched => {
                    tracing::debug!(
                        from = scheme.name(),
                        to = other.name(),
                        "Exchange takes the other scheme; signing in again"
                    );
                    scheme = other;
                    switched = true;
                    // The 401 may have closed the connection.
                    if sender.ready().await.is_err() {
                        (sender, binding) = self.connect().await?;
                    }
                }
                FirstLeg::Switch(_) => {
                    return Err(EwsError::Unauthorized(
                        "Exchange offered NTLM and Negotiate by turns without a challenge".into(),
                    ));
                }
            }
        }
    }

    /// Sends a streaming request (`body`) on an authenticated connection — an idle one,
    /// or a new one signed in — and returns the answer's status and its body as it
    /// arrives. The connection serves only this answer; when the answer ends cleanly it
    /// goes back to the pool, still signed in, for the next one.
    pub(crate) async fn open(
        self: &Arc<Self>,
        headers: &[(&str, String)],
        body: &str,
    ) -> Result<(u16, Streamed), EwsError> {
        if let Some(mut sender) = self.take_idle() {
            let answer = self.request(&mut sender, headers, body, None).await?;
            if answer.status() != 401 {
                return Ok(self.streamed(sender, answer));
            }
            // The server forgot the connection: read its 401 and sign in anew.
            self.read(answer.into_body()).await?;
        }
        let (sender, answer) = self.signed_in(headers, body).await?;
        Ok(self.streamed(sender, answer))
    }

    fn streamed(
        self: &Arc<Self>,
        sender: SendRequest<Full<Bytes>>,
        answer: hyper::Response<Incoming>,
    ) -> (u16, Streamed) {
        (
            answer.status().as_u16(),
            Streamed {
                body: answer.into_body(),
                sender: Some(sender),
                pool: Arc::clone(self),
            },
        )
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

/// The schemes a 401's `WWW-Authenticate` headers offer, and the tokens they carry.
#[derive(Debug, Default)]
struct Offer {
    /// Scheme names as sent, in order.
    schemes: Vec<String>,
    /// `(scheme, token)` for `Scheme token68` challenges.
    tokens: Vec<(String, String)>,
}

impl Offer {
    fn of(response: &hyper::Response<Incoming>) -> Offer {
        Offer::parse(
            response
                .headers()
                .get_all("www-authenticate")
                .iter()
                .filter_map(|v| v.to_str().ok()),
        )
    }

    /// Each header value holds one challenge or several separated by commas; a piece
    /// whose first word holds `=` or `"` is a parameter of the challenge before it.
    fn parse<'a>(values: impl Iterator<Item = &'a str>) -> Offer {
        let mut offer = Offer::default();
        for piece in values.flat_map(|v| v.split(',')) {
            let piece = piece.trim();
            let (name, rest) = piece.split_once(' ').unwrap_or((piece, ""));
            if name.is_empty() || name.contains(['=', '"']) {
                continue;
            }
            offer.schemes.push(name.to_owned());
            let rest = rest.trim();
            if !rest.is_empty() && !rest.contains([' ', '"', ',']) {
                offer.tokens.push((name.to_owned(), rest.to_owned()));
            }
        }
        offer
    }

    fn offers(&self, scheme: Scheme) -> bool {
        self.schemes
            .iter()
            .any(|s| s.eq_ignore_ascii_case(scheme.name()))
    }

    /// The decoded token of `scheme`'s challenge, if one came.
    fn token(&self, scheme: Scheme) -> Option<Vec<u8>> {
        self.tokens
            .iter()
            .find(|(s, _)| s.eq_ignore_ascii_case(scheme.name()))
            .and_then(|(_, t)| STANDARD.decode(t).ok())
    }

    fn names(&self) -> String {
        if self.schemes.is_empty() {
            "no scheme at all".into()
        } else {
            self.schemes.join(", ")
        }
    }
}

/// The NTLM CHALLENGE in a server's token, and whether it came SPNEGO-wrapped (a
/// `NegTokenResp`): told apart by the first bytes, `NTLMSSP\0` or DER.
fn unwrap_challenge(token: &[u8]) -> Result<(Vec<u8>, bool), EwsError> {
    if !spnego::is_spnego(token) {
        return Ok((token.to_vec(), false));
    }
    let refused = |why: String| EwsError::Unauthorized(format!("Negotiate: {why}"));
    match spnego::decode(token).map_err(refused)? {
        Negotiation::Response {
            state: Some(NegState::Reject),
            ..
        } => Err(refused("Exchange rejected NTLM".into())),
        Negotiation::Response {
            mech: Some(mech), ..
        } if mech != spnego::NTLM_MECH => Err(refused(
            "Exchange chose a mechanism other than NTLM (Kerberos is not spoken)".into(),
        )),
        Negotiation::Response {
            token: Some(challenge),
            ..
        } => Ok((challenge, true)),
        _ => Err(refused(
            "Exchange's answer carries no NTLM challenge".into(),
        )),
    }
}

/// A streaming answer's body as it arrives; its connection goes back to the pool when
/// the body has ended cleanly (not when it breaks or is dropped early).
pub(crate) struct Streamed {
    body: Incoming,
    sender: Option<SendRequest<Full<Bytes>>>,
    pool: Arc<NtlmPool>,
}

impl futures_util::Stream for Streamed {
    type Item = Result<Bytes, EwsError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match hyper::body::Body::poll_frame(Pin::new(&mut self.body), cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        return Poll::Ready(Some(Ok(data)));
                    }
                    // Trailers: nothing to hand on.
                }
                Poll::Ready(Some(Err(e))) => {
                    self.sender = None;
                    return Poll::Ready(Some(Err(transport(e))));
                }
                Poll::Ready(None) => {
                    if let Some(sender) = self.sender.take() {
                        self.pool.put_idle(sender);
                    }
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offered_schemes_and_their_tokens_are_read_from_every_header_form() {
        let offer = Offer::parse(
            [
                "Negotiate",
                "NTLM",
                "Basic realm=\"ews, mail\"",
                "Bearer error=\"invalid_token\", token_types=\"app_asserted_user_v1\"",
            ]
            .into_iter(),
        );
        assert!(offer.offers(Scheme::Negotiate) && offer.offers(Scheme::Ntlm));
        assert_eq!(offer.token(Scheme::Ntlm), None);
        assert_eq!(offer.names(), "Negotiate, NTLM, Basic, Bearer");

        let offer = Offer::parse(["negotiate TlRMTVNTUAACAAAA"].into_iter());
        assert!(offer.offers(Scheme::Negotiate) && !offer.offers(Scheme::Ntlm));
        assert_eq!(
            offer.token(Scheme::Negotiate).as_deref(),
            Some(&b"NTLMSSP\0\x02\0\0\0"[..])
        );
        let offer = Offer::parse(["Negotiate, NTLM"].into_iter());
        assert!(offer.offers(Scheme::Ntlm) && offer.offers(Scheme::Negotiate));
        assert_eq!(Offer::parse(std::iter::empty()).names(), "no scheme at all");
    }

    #[test]
    fn a_challenge_is_taken_raw_or_out_of_a_negtokenresp() {
        let raw = b"NTLMSSP\0\x02\0\0\0".to_vec();
        assert_eq!(unwrap_challenge(&raw).ok(), Some((raw.clone(), false)));
        let wrapped = spnego::response(Some(NegState::AcceptIncomplete), true, Some(&raw));
        assert_eq!(unwrap_challenge(&wrapped).ok(), Some((raw.clone(), true)));
        let rejected = spnego::response(Some(NegState::Reject), false, None);
        assert!(unwrap_challenge(&rejected).is_err());
        let empty = spnego::response(Some(NegState::AcceptIncomplete), true, None);
        assert!(unwrap_challenge(&empty).is_err());
    }
}
