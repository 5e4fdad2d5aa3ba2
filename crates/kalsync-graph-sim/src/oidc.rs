//! Entra ID's sign-in as the simulator plays it (OpenID Connect): the account picker at
//! `/{tenant}/oauth2/v2.0/authorize`, the code redeemed at the token endpoint (PKCE
//! checked), `id_token`s signed RS256 with a key of the simulator's own, its published
//! keys, and each tenant's OpenID metadata — so Kalsync's sign-in is tested against
//! real signatures. Faults make it issue tokens a client must refuse.

// Early returns carry finished HTTP answers, as in the rest of the simulator.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::Simulator;
use crate::consent::{error_page, escape};
use crate::http::aad_error;

/// Someone who can sign in to the simulated tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimPerson {
    /// The object id (`oid`); generated when absent.
    #[serde(default)]
    pub oid: Option<String>,
    /// `preferred_username`, e.g. `it@contoso.se`.
    pub upn: String,
    /// `name`.
    #[serde(default)]
    pub name: Option<String>,
    /// App roles assigned to the person (`roles`).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Group ids (`groups`).
    #[serde(default)]
    pub groups: Vec<String>,
    /// A directory admin (may grant admin consent).
    #[serde(default)]
    pub admin: bool,
}

impl SimPerson {
    /// With this object id.
    pub fn with_oid(mut self, oid: &str) -> SimPerson {
        self.oid = Some(oid.to_owned());
        self
    }
}

/// Tokens the simulator issues wrong on purpose, for tests of a client's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadIdToken {
    /// Signed with a key the simulator does not publish (under a published key's id).
    ForeignKey,
    /// Expired an hour ago.
    Expired,
    /// Issued for another app.
    WrongAudience,
    /// Carrying another nonce.
    WrongNonce,
    /// Issued by another tenant than its `tid` says.
    WrongIssuer,
    /// Not signed at all (`alg: none`).
    Unsigned,
}

/// A code handed out and not yet redeemed.
#[derive(Debug, Clone)]
pub(crate) struct IssuedCode {
    client_id: String,
    redirect_uri: String,
    nonce: String,
    challenge: String,
    person: SimPerson,
    expires: Timestamp,
}

/// The simulator's signing key, made on first use (RSA 2048).
struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: serde_json::Value,
}

fn signing_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| make_key("sim-1"))
}

fn make_key(kid: &str) -> SigningKey {
    let mut rng = rand_core::OsRng;
    #[allow(clippy::expect_used)] // only fails without an OS random source
    let private = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("an RSA key");
    #[allow(clippy::expect_used)] // a fresh key always encodes
    let der = private.to_pkcs1_der().expect("PKCS#1");
    let public = private.to_public_key();
    SigningKey {
        kid: kid.to_owned(),
        encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        jwk: json!({
            "kty": "RSA",
            "use": "sig",
            "kid": kid,
            "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        }),
    }
}

/// A key nobody publishes, for [`BadIdToken::ForeignKey`].
fn foreign_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| make_key("sim-1"))
}

pub(crate) fn router() -> Router<Simulator> {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/authorize", get(authorize))
        .route("/{tenant}/oauth2/v2.0/authorize/answer", get(answer))
        .route("/{tenant}/discovery/v2.0/keys", get(keys))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(metadata),
        )
}

/// `http://host:port` as the browser or client reached us.
fn base(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

impl Simulator {
    /// Whether `name` is this tenant's id or one of its domains.
    pub(crate) fn names_tenant(&self, name: &str) -> bool {
        let config = &self.shared.config;
        name.eq_ignore_ascii_case(&config.tenant)
            || config.domains.iter().any(|d| d.eq_ignore_ascii_case(name))
    }

    /// Adds someone who can sign in; returns their object id.
    pub fn add_person(&self, mut person: SimPerson) -> String {
        let oid = person
            .oid
            .get_or_insert_with(|| uuid::Uuid::new_v4().to_string())
            .clone();
        let mut world = self.world();
        world.people.retain(|p| p.oid.as_deref() != Some(&oid));
        world.people.push(person);
        oid
    }
}

/// The authorization request's parameters, checked.
struct AuthorizeRequest {
    client_id: String,
    redirect_uri: url::Url,
    state: String,
    nonce: String,
    challenge: String,
}

fn checked(
    sim: &Simulator,
    tenant: &str,
    query: &HashMap<String, String>,
) -> Result<AuthorizeRequest, Response> {
    let (client_id, redirect_uri) = crate::consent::checked(sim, tenant, query)?;
    if query.get("response_type").map(String::as_str) != Some("code") {
        return Err(error_page(
            900144,
            "The request body must contain the following parameter: 'response_type'.",
        ));
    }
    if !query
        .get("scope")
        .is_some_and(|s| s.split(' ').any(|x| x == "openid"))
    {
        return Err(error_page(
            900144,
            "The request must ask for the scope 'openid'.",
        ));
    }
    // Entra ID takes a code challenge optionally; the simulator requires one, as a
    // public client's sign-in must, so a client that forgets PKCE is caught.
    let challenge = query.get("code_challenge").cloned().unwrap_or_default();
    if challenge.is_empty()
        || query.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return Err(error_page(
            501491,
            "Invalid size of Code_Challenge parameter, or the method is not S256.",
        ));
    }
    Ok(AuthorizeRequest {
        client_id,
        redirect_uri,
        state: query.get("state").cloned().unwrap_or_default(),
        nonce: query.get("nonce").cloned().unwrap_or_default(),
        challenge,
    })
}

/// The account picker.
async fn authorize(
    State(sim): State<Simulator>,
    Path(tenant): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(page) = checked(&sim, &tenant, &query) {
        return page;
    }
    let keep: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query.iter().filter(|(k, _)| {
            matches!(
                k.as_str(),
                "client_id"
                    | "redirect_uri"
                    | "state"
                    | "scope"
                    | "nonce"
                    | "response_type"
                    | "code_challenge"
                    | "code_challenge_method"
                    | "prompt"
            )
        }))
        .finish();
    let people = sim.world().people.clone();
    let mut list = String::new();
    for p in &people {
        let oid = p.oid.clone().unwrap_or_default();
        let person: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("person", &oid)
            .finish();
        list.push_str(&format!(
            "<li><a class=\"account\" data-upn=\"{upn}\" href=\"authorize/answer?{keep}&amp;{person}\">{name} <small>{upn}</small></a></li>",
            upn = escape(&p.upn),
            name = escape(p.name.as_deref().unwrap_or(&p.upn)),
            keep = escape(&keep),
            person = escape(&person),
        ));
    }
    Html(format!(
        "<!doctype html><html lang=\"en\"><title>Sign in to your account</title>\
<h1>Pick an account</h1><ul id=\"accounts\">{list}</ul>\
<p><a id=\"cancel\" href=\"authorize/answer?{keep}&amp;cancel=1\">Cancel</a></p></html>",
        keep = escape(&keep),
    ))
    .into_response()
}

/// The person picked (or cancelled): the browser goes back with a code. A request for
/// an app's own permissions (`…/.default`) is a consent: an admin is asked first
/// (always with `prompt=consent`, else until the app is consented), anyone else is
/// refused until an admin has consented (AADSTS90094), as Entra ID does.
async fn answer(
    State(sim): State<Simulator>,
    Path(tenant): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let request = match checked(&sim, &tenant, &query) {
        Ok(r) => r,
        Err(page) => return page,
    };
    let person = query.get("person").and_then(|oid| {
        sim.world()
            .people
            .iter()
            .find(|p| p.oid.as_deref() == Some(oid))
            .cloned()
    });
    let scope = query.get("scope").cloned().unwrap_or_default();
    let wants_app = scope.split(' ').any(|s| s.ends_with("/.default"));
    let consented = sim
        .shared
        .config
        .apps
        .iter()
        .any(|a| a.client_id == request.client_id && a.consented)
        || sim.world().consented.contains(&request.client_id);
    let prompt_consent = query.get("prompt").map(String::as_str) == Some("consent");
    let refuse = |error: &str, description: &str| {
        let mut back = request.redirect_uri.clone();
        back.query_pairs_mut()
            .append_pair("error", error)
            .append_pair("error_description", description)
            .append_pair("state", &request.state);
        Redirect::to(back.as_str()).into_response()
    };
    let Some(person) = person.filter(|_| !query.contains_key("cancel")) else {
        return refuse(
            "access_denied",
            "AADSTS65004: User declined to consent to access the app.",
        );
    };
    if wants_app {
        match query.get("accept").map(String::as_str) {
            Some("1") if person.admin => {
                sim.world().consented.insert(request.client_id.clone());
            }
            Some(_) => {
                return refuse(
                    "access_denied",
                    "AADSTS65004: User declined to consent to access the app.",
                );
            }
            None if person.admin && (prompt_consent || !consented) => {
                return consent_page(&sim, &request.client_id, &query, &scope);
            }
            None if !consented => {
                return refuse(
                    "access_denied",
                    "AADSTS90094: The grant requires admin permission.",
                );
            }
            None => {}
        }
    }
    let code = format!("sim.{}", crate::http::random_token());
    {
        let mut world = sim.world();
        let now = Timestamp::now();
        world.codes.retain(|_, c| c.expires > now);
        world.signed_in_apps.insert(request.client_id.clone());
        world.codes.insert(
            code.clone(),
            IssuedCode {
                client_id: request.client_id.clone(),
                redirect_uri: request.redirect_uri.to_string(),
                nonce: request.nonce.clone(),
                challenge: request.challenge.clone(),
                person,
                expires: now + jiff::SignedDuration::from_mins(10),
            },
        );
    }
    let mut back = request.redirect_uri.clone();
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &request.state);
    Redirect::to(back.as_str()).into_response()
}

/// The consent prompt for an authorization request: Accept and Cancel answer it again.
fn consent_page(
    sim: &Simulator,
    client_id: &str,
    query: &HashMap<String, String>,
    scope: &str,
) -> Response {
    let keep: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query.iter().filter(|(k, _)| k.as_str() != "accept"))
        .finish();
    crate::consent::permissions_page(sim, client_id, scope, &format!("answer?{keep}"))
}

/// The token endpoint's `authorization_code` grant: the code redeemed once, by the app
/// it was issued to, with the verifier of its challenge.
pub(crate) fn redeem(
    sim: &Simulator,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Response {
    let invalid_grant =
        |code: u32, text: &str| aad_error(StatusCode::BAD_REQUEST, "invalid_grant", code, text);
    let given = form.get("code").cloned().unwrap_or_default();
    let Some(issued) = sim.world().codes.remove(&given) else {
        return invalid_grant(
            54005,
            "OAuth2 Authorization code was already redeemed or is not valid.",
        );
    };
    if issued.expires < Timestamp::now() {
        return invalid_grant(
            70008,
            "The provided authorization code or refresh token has expired.",
        );
    }
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let app = match sim.app(&client_id) {
        Ok(app) => app,
        Err(refused) => return refused,
    };
    if client_id != issued.client_id {
        return invalid_grant(70000, "The code was issued to another application.");
    }
    if app.secret.is_none() || form.get("client_secret") != app.secret.as_ref() {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided.",
        );
    }
    if form.get("redirect_uri") != Some(&issued.redirect_uri) {
        return invalid_grant(
            50148,
            "The redirect_uri does not match the one the authorization code was issued for.",
        );
    }
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != issued.challenge {
        return invalid_grant(
            501481,
            "The Code_Verifier does not match the code_challenge.",
        );
    }
    let fault = sim.world().faults.bad_id_token;
    let id_token = id_token(sim, &base(headers), &issued, fault);
    axum::Json(json!({
        "token_type": "Bearer",
        "scope": "openid profile email",
        "expires_in": 3599,
        "id_token": id_token,
        "access_token": format!("sim.{}", crate::http::random_token()),
    }))
    .into_response()
}

/// Signs the person's `id_token` (or, with a fault, a wrong one).
fn id_token(sim: &Simulator, base: &str, issued: &IssuedCode, fault: Option<BadIdToken>) -> String {
    let tenant = &sim.shared.config.tenant;
    let now = Timestamp::now().as_second();
    let (iat, exp) = match fault {
        Some(BadIdToken::Expired) => (now - 7200, now - 3600),
        _ => (now, now + 3600),
    };
    let oid = issued.person.oid.clone().unwrap_or_default();
    let claims = json!({
        "ver": "2.0",
        "iss": match fault {
            Some(BadIdToken::WrongIssuer) => format!("{base}/00000000-0000-0000-0000-0000000000ee/v2.0"),
            _ => format!("{base}/{tenant}/v2.0"),
        },
        "aud": match fault {
            Some(BadIdToken::WrongAudience) => "11111111-2222-3333-4444-555555555555".to_owned(),
            _ => issued.client_id.clone(),
        },
        "iat": iat,
        "nbf": iat,
        "exp": exp,
        "nonce": match fault {
            Some(BadIdToken::WrongNonce) => "another-nonce".to_owned(),
            _ => issued.nonce.clone(),
        },
        "tid": tenant,
        "oid": oid,
        "sub": URL_SAFE_NO_PAD.encode(Sha256::digest(format!("{oid}{}", issued.client_id))),
        "name": issued.person.name.clone().unwrap_or_else(|| issued.person.upn.clone()),
        "preferred_username": issued.person.upn,
        "roles": issued.person.roles,
        "groups": issued.person.groups,
    });
    let key = match fault {
        Some(BadIdToken::ForeignKey) => foreign_key(),
        _ => signing_key(),
    };
    if fault == Some(BadIdToken::Unsigned) {
        let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        return format!("{head}.{body}.");
    }
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap_or_default()
}

/// The published signing keys.
async fn keys() -> Response {
    axum::Json(json!({ "keys": [signing_key().jwk] })).into_response()
}

/// A tenant's OpenID metadata (by its id or a domain; `organizations` is the template
/// multi-tenant apps read).
async fn metadata(
    State(sim): State<Simulator>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let base = base(&headers);
    let issued_by = if matches!(tenant.as_str(), "organizations" | "common") {
        "{tenantid}".to_owned()
    } else if sim.names_tenant(&tenant) {
        sim.shared.config.tenant.clone()
    } else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    };
    axum::Json(json!({
        "issuer": format!("{base}/{issued_by}/v2.0"),
        "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
        "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
        "response_types_supported": ["code", "id_token", "code id_token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "name", "preferred_username", "oid", "tid", "roles", "groups"],
    }))
    .into_response()
}
