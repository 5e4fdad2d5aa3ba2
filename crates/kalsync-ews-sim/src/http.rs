//! The simulator's HTTP face: `/EWS/Exchange.asmx` behind Basic, NTLM (under `NTLM`
//! or `Negotiate`, raw or SPNEGO-wrapped) or bearer authentication, the EWS control
//! endpoints (`/_sim/ews/…`), and the Graph simulator's control API for
//! the mailboxes and their bookings.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use kalsync_ews::xml::{self, Writer, child, elements, text};
use std::sync::atomic::Ordering;

use crate::{EwsConfig, EwsFaults, EwsSim, NegotiateAnswer, NtlmSchemes, lock, ops};
use kalsync_ews::spnego::{self, NegState, Negotiation};

pub(crate) fn router(sim: EwsSim) -> Router {
    Router::new()
        .route("/EWS/Exchange.asmx", post(ews))
        .route("/_sim/ews/faults", get(get_faults).put(put_faults))
        .route("/_sim/ews/config", get(get_config).put(put_config))
        .route("/_sim/ews/stats", get(get_stats))
        .with_state(sim.clone())
        .merge(kalsync_graph_sim::control_router(sim.graph().clone()))
}

const TYPES: &str = kalsync_ews::request::TYPES;
const SOAP: &str = kalsync_ews::request::SOAP;

/// An answer that is a SOAP fault (HTTP 500), as Exchange sends for request-level
/// errors.
#[derive(Debug)]
pub(crate) struct Fault {
    pub(crate) code: &'static str,
    pub(crate) text: String,
    pub(crate) back_off: Option<u64>,
}

impl Fault {
    pub(crate) fn new(code: &'static str, text: impl Into<String>) -> Fault {
        Fault {
            code,
            text: text.into(),
            back_off: None,
        }
    }

    fn into_response(self) -> Response {
        let mut x = Writer::default();
        x.open("s:Fault", &[])
            .open("faultcode", &[("xmlns:a", TYPES)])
            .raw(&format!("a:{}", self.code))
            .close("faultcode")
            .open("faultstring", &[("xml:lang", "en-US")])
            .text(&self.text)
            .close("faultstring")
            .open("detail", &[])
            .open("e:ResponseCode", &[("xmlns:e", ERRORS)])
            .raw(self.code)
            .close("e:ResponseCode")
            .open("e:Message", &[("xmlns:e", ERRORS)])
            .text(&self.text)
            .close("e:Message");
        if let Some(ms) = self.back_off {
            x.open("t:MessageXml", &[("xmlns:t", TYPES)])
                .leaf_with(
                    "t:Value",
                    &[("Name", "BackOffMilliseconds")],
                    &ms.to_string(),
                )
                .close("t:MessageXml");
        }
        x.close("detail").close("s:Fault");
        soap_response(StatusCode::INTERNAL_SERVER_ERROR, &envelope(&x.done()))
    }
}

const ERRORS: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";

/// A whole answer around `body`, with the version of an Exchange 2016 CU.
pub(crate) fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><s:Envelope xmlns:s=\"{SOAP}\"><s:Header><h:ServerVersionInfo MajorVersion=\"15\" MinorVersion=\"1\" MajorBuildNumber=\"2507\" MinorBuildNumber=\"6\" Version=\"V2017_07_11\" xmlns:h=\"{TYPES}\"/></s:Header><s:Body>{body}</s:Body></s:Envelope>"
    )
}

fn soap_response(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        text.to_owned(),
    )
        .into_response()
}

/// `user`, `DOMAIN\user` and `user@domain` name the same account.
pub(crate) fn bare(name: &str) -> String {
    let name = name.rsplit('\\').next().unwrap_or(name);
    name.split('@').next().unwrap_or(name).to_ascii_lowercase()
}

/// What the credentials of a request come to.
enum Admission {
    /// Go on.
    Allowed,
    /// 401 with `WWW-Authenticate: <scheme> <token>`, the token a CHALLENGE.
    Challenge {
        /// `NTLM` or `Negotiate`.
        scheme: &'static str,
        /// Base64.
        token: String,
    },
    /// 401 offering the schemes the account may use.
    Refused,
}

/// Basic on each request, or NTLM once per connection (the peer address names it).
fn admit(sim: &EwsSim, peer: SocketAddr, headers: &HeaderMap) -> Admission {
    let config = lock(&sim.shared.config).clone();
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut connections = lock(&sim.shared.ntlm);
    let ntlm = value
        .strip_prefix("NTLM ")
        .map(|t| ("NTLM", t))
        .or_else(|| value.strip_prefix("Negotiate ").map(|t| ("Negotiate", t)));
    if let Some((scheme, token)) = ntlm {
        let taken = match config.ntlm_schemes {
            NtlmSchemes::NtlmOnly => scheme == "NTLM",
            NtlmSchemes::NegotiateOnly => scheme == "Negotiate",
            NtlmSchemes::Both => true,
        };
        if !config.ntlm || !taken {
            return Admission::Refused;
        }
        let Ok(token) = base64::engine::general_purpose::STANDARD.decode(token.trim()) else {
            return Admission::Refused;
        };
        // Under Negotiate the NTLM message comes raw or in SPNEGO, told apart by its
        // first bytes.
        let wrapped = scheme == "Negotiate" && spnego::is_spnego(&token);
        let message = if wrapped {
            match spnego::decode(&token) {
                Ok(Negotiation::Init {
                    mech_types,
                    mech_token: Some(m),
                }) if mech_types.first().map(Vec::as_slice) == Some(spnego::NTLM_MECH) => m,
                Ok(Negotiation::Response { token: Some(m), .. }) => m,
                other => {
                    tracing::debug!(%peer, ?other, "a SPNEGO token without NTLM refused");
                    return Admission::Refused;
                }
            }
        } else {
            token
        };
        match crate::ntlm::message_type(&message) {
            Some(crate::ntlm::NEGOTIATE) => {
                let mut challenge = [0u8; 8];
                challenge.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
                let answer = crate::ntlm::challenge(challenge, &message);
                connections.insert(
                    peer,
                    Connection::Challenged {
                        server_challenge: challenge,
                        offered: crate::ntlm::offered_flags(&answer),
                    },
                );
                sim.shared
                    .stats
                    .ntlm_challenges
                    .fetch_add(1, Ordering::Relaxed);
                let wrap = scheme == "Negotiate"
                    && (wrapped || config.negotiate_answer == NegotiateAnswer::Wrapped);
                let answer = if wrap {
                    spnego::response(Some(NegState::AcceptIncomplete), true, Some(&answer))
                } else {
                    answer
                };
                Admission::Challenge {
                    scheme,
                    token: base64::engine::general_purpose::STANDARD.encode(answer),
                }
            }
            Some(crate::ntlm::AUTHENTICATE) => {
                let Some(Connection::Challenged {
                    server_challenge,
                    offered,
                }) = connections.remove(&peer)
                else {
                    return Admission::Refused;
                };
                let channel = lock(&sim.shared.channel).clone();
                let binding = crate::ntlm::Binding {
                    policy: config.extended_protection,
                    channel: channel.as_deref(),
                };
                let challenged = crate::ntlm::Challenged {
                    server_challenge: &server_challenge,
                    offered,
                };
                match crate::ntlm::verify(
                    &message,
                    challenged,
                    &config.username,
                    &config.password,
                    binding,
                    config.spn.as_deref(),
                ) {
                    Ok(()) => {
                        sim.shared
                            .stats
                            .ntlm_sign_ins
                            .fetch_add(1, Ordering::Relaxed);
                        connections.insert(peer, Connection::Signed);
                        Admission::Allowed
                    }
                    Err(why) => {
                        tracing::debug!(%peer, why, "NTLM sign-in refused");
                        Admission::Refused
                    }
                }
            }
            _ => Admission::Refused,
        }
    } else if let Some(token) = value.strip_prefix("Bearer ") {
        let issued_for = sim.graph().token_audience(token.trim());
        match (&config.oauth_audience, issued_for) {
            (Some(wanted), Ok(audience))
                if audience.trim_end_matches('/') == wanted.trim_end_matches('/') =>
            {
                Admission::Allowed
            }
            (_, Err(why)) => {
                tracing::debug!(why, "bearer token refused");
                Admission::Refused
            }
            _ => {
                tracing::debug!("bearer token for another audience refused");
                Admission::Refused
            }
        }
    } else if value.is_empty() {
        if connections.get(&peer) == Some(&Connection::Signed) {
            Admission::Allowed
        } else {
            Admission::Refused
        }
    } else if config.basic && authorized(&config, value) {
        Admission::Allowed
    } else {
        Admission::Refused
    }
}

/// A connection's NTLM state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Connection {
    /// A CHALLENGE was sent.
    Challenged {
        /// Its server challenge.
        server_challenge: [u8; 8],
        /// Its flags.
        offered: u32,
    },
    /// Authenticated: later requests need no credentials.
    Signed,
}

fn authorized(config: &EwsConfig, value: &str) -> bool {
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return false;
    };
    let Some((user, password)) = text.split_once(':') else {
        return false;
    };
    bare(user) == bare(&config.username) && password == config.password
}

fn unauthorized(config: &EwsConfig, challenge: Option<(&str, String)>) -> Response {
    let mut response = Response::builder().status(StatusCode::UNAUTHORIZED);
    if let Some((scheme, token)) = challenge {
        response = response.header(header::WWW_AUTHENTICATE, format!("{scheme} {token}"));
    } else {
        if config.ntlm && config.ntlm_schemes != NtlmSchemes::NtlmOnly {
            response = response.header(header::WWW_AUTHENTICATE, "Negotiate");
        }
        if config.ntlm && config.ntlm_schemes != NtlmSchemes::NegotiateOnly {
            response = response.header(header::WWW_AUTHENTICATE, "NTLM");
        }
        if config.basic {
            response = response.header(header::WWW_AUTHENTICATE, "Basic realm=\"ews.sim\"");
        }
        if config.oauth_audience.is_some() {
            response = response.header(
                header::WWW_AUTHENTICATE,
                "Bearer error=\"invalid_token\", token_types=\"app_asserted_user_v1 service_asserted_app_v1\"",
            );
        }
    }
    response
        .header(header::CONTENT_TYPE, "text/html")
        .body(Body::from(
            "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\"><HTML><HEAD><TITLE>You are not authorized to view this page</TITLE></HEAD><BODY>401</BODY></HTML>",
        ))
        .unwrap_or_default()
}

/// The parts of a request every operation needs.
pub(crate) struct Call<'a, 'i> {
    /// The mailbox named in `ExchangeImpersonation`.
    pub(crate) impersonating: Option<String>,
    /// The back end the front end routes this request to: the one the
    /// `X-BackEndOverrideCookie` names, else the `X-AnchorMailbox`'s (none: neither).
    pub(crate) back_end: Option<String>,
    /// `X-PreferServerAffinity: true`.
    pub(crate) affinity: bool,
    /// The operation's element.
    pub(crate) op: roxmltree::Node<'a, 'i>,
}

async fn ews(
    State(sim): State<EwsSim>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let started = tokio::time::Instant::now();
    let latency = lock(&sim.shared.faults).latency_ms;
    let stats = &sim.shared.stats;
    let now = stats.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    stats.max_in_flight.fetch_max(now, Ordering::Relaxed);
    let kalsync = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Kalsync/"));
    if !kalsync {
        stats.without_user_agent.fetch_add(1, Ordering::Relaxed);
    }
    let response = answer(&sim, peer, &headers, &body).await;
    tokio::time::sleep_until(started + Duration::from_millis(latency)).await;
    stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    response
}

async fn answer(sim: &EwsSim, peer: SocketAddr, headers: &HeaderMap, body: &str) -> Response {
    let stats = &sim.shared.stats;
    match admit(sim, peer, headers) {
        Admission::Allowed => {}
        Admission::Challenge { scheme, token } => {
            return unauthorized(&sim.config(), Some((scheme, token)));
        }
        Admission::Refused => {
            stats.unauthorized.fetch_add(1, Ordering::Relaxed);
            return unauthorized(&sim.config(), None);
        }
    }
    stats.requests.fetch_add(1, Ordering::Relaxed);
    {
        let mut faults = lock(&sim.shared.faults);
        if faults.server_busy > 0 {
            faults.server_busy -= 1;
            stats.server_busy.fetch_add(1, Ordering::Relaxed);
            let mut fault = Fault::new(
                "ErrorServerBusy",
                "The server cannot service this request right now. Try again later.",
            );
            fault.back_off = (faults.back_off_ms > 0).then_some(faults.back_off_ms);
            return fault.into_response();
        }
    }
    let doc = match xml::parse(body) {
        Ok(doc) => doc,
        Err(e) => {
            return Fault::new(
                "ErrorSchemaValidation",
                format!("The request failed schema validation: {e}"),
            )
            .into_response();
        }
    };
    let root = doc.root_element();
    let (Some(header), Some(soap_body)) = (child(root, "Header"), child(root, "Body")) else {
        return Fault::new(
            "ErrorSchemaValidation",
            "The request failed schema validation: no SOAP Header or Body.",
        )
        .into_response();
    };
    if child(header, "RequestServerVersion").is_none() {
        return Fault::new(
            "ErrorSchemaValidation",
            "The request failed schema validation: RequestServerVersion is required.",
        )
        .into_response();
    }
    let impersonating = child(header, "ExchangeImpersonation")
        .and_then(|i| child(i, "ConnectingSID"))
        .and_then(|c| text(c, "SmtpAddress").or_else(|| text(c, "PrimarySmtpAddress")))
        .map(str::to_ascii_lowercase);
    let Some(op) = elements(soap_body).next() else {
        return Fault::new("ErrorSchemaValidation", "An empty SOAP Body.").into_response();
    };
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (name, value) = c.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case(BACKEND_COOKIE)
                .then(|| value.trim().split('~').next().unwrap_or("").to_owned())
        })
        .filter(|b| !b.is_empty());
    let anchor = headers
        .get("x-anchormailbox")
        .and_then(|v| v.to_str().ok())
        .map(back_end_of);
    let call = Call {
        impersonating,
        back_end: cookie.or(anchor),
        affinity: headers
            .get("x-preferserveraffinity")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        op,
    };
    match op.tag_name().name() {
        "FindItem" => stats.find_item.fetch_add(1, Ordering::Relaxed),
        "SyncFolderItems" => stats.sync_folder_items.fetch_add(1, Ordering::Relaxed),
        _ => 0,
    };
    let result = match op.tag_name().name() {
        "FindItem" => ops::find_item(sim, &call),
        "GetItem" => ops::get_item(sim, &call),
        "SyncFolderItems" => ops::sync_folder_items(sim, &call),
        "Subscribe" => ops::subscribe(sim, &call),
        "GetEvents" => ops::get_events(sim, &call),
        "Unsubscribe" => ops::unsubscribe(sim, &call),
        "GetUserOofSettingsRequest" => ops::get_user_oof_settings(sim, &call),
        "UpdateItem" => ops::update_item(sim, &call),
        "GetStreamingEvents" => {
            return match ops::get_streaming_events(sim, &call) {
                Ok(stream) => Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "text/xml; charset=utf-8")
                    .body(Body::from_stream(stream))
                    .unwrap_or_default(),
                Err(fault) => fault.into_response(),
            };
        }
        other => Err(Fault::new(
            "ErrorInvalidRequest",
            format!("The simulator does not implement {other}."),
        )),
    };
    match result {
        Ok(body) => {
            let mut response = soap_response(StatusCode::OK, &envelope(&body));
            if call.affinity && op.tag_name().name() == "Subscribe" {
                // Names the back end for the requests of the same group.
                let back_end = call
                    .back_end
                    .clone()
                    .unwrap_or_else(|| back_end_of(call.impersonating.as_deref().unwrap_or("")));
                let cookie = format!(
                    "{BACKEND_COOKIE}={back_end}~{}; path=/; secure; HttpOnly",
                    uuid::Uuid::new_v4().simple()
                );
                if let Ok(v) = header::HeaderValue::from_str(&cookie) {
                    response.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            response
        }
        Err(fault) => fault.into_response(),
    }
}

/// The cookie that pins a request to a back end.
const BACKEND_COOKIE: &str = "X-BackEndOverrideCookie";

/// The simulated mailbox server holding `mailbox` (one of three, by its address).
pub(crate) fn back_end_of(mailbox: &str) -> String {
    let sum: u32 = mailbox
        .trim()
        .to_ascii_lowercase()
        .bytes()
        .map(u32::from)
        .sum();
    format!("MBX0{}", 1 + sum % 3)
}

async fn get_faults(State(sim): State<EwsSim>) -> Json<EwsFaults> {
    Json(sim.faults())
}

async fn put_faults(State(sim): State<EwsSim>, Json(faults): Json<EwsFaults>) -> StatusCode {
    sim.set_faults(faults);
    StatusCode::NO_CONTENT
}

async fn get_config(State(sim): State<EwsSim>) -> Json<EwsConfig> {
    Json(sim.config())
}

async fn put_config(State(sim): State<EwsSim>, Json(config): Json<EwsConfig>) -> StatusCode {
    sim.set_config(config);
    StatusCode::NO_CONTENT
}

async fn get_stats(State(sim): State<EwsSim>) -> Json<crate::EwsStats> {
    Json(sim.stats())
}
