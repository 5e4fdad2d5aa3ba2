//! People signing in with Entra ID against the simulator's OpenID Connect endpoints:
//! real RS256 signatures, PKCE, nonce, and every wrong token refused.

use jiff::Timestamp;
use kalsync_graph::oidc::{Answer, EntraSignIn, Pkce, SignInError, parse_answer};
use kalsync_graph_sim::{BadIdToken, SimConfig, SimPerson};
use url::Url;

use crate::helpers::{CLIENT, SECRET, Setup, TENANT, simulator};

const ANNA: &str = "0b0e3a52-52a4-4a5f-9a4c-8d3c3e9f1a01";

async fn with_people() -> Setup {
    simulator(SimConfig {
        domains: vec!["contoso.example".into()],
        people: vec![SimPerson {
            oid: Some(ANNA.into()),
            upn: "anna@contoso.example".into(),
            name: Some("Anna Berg".into()),
            roles: vec!["Kalsync.Admin".into()],
            groups: vec!["5d2b0a1e-1111-4222-8333-944455556666".into()],
            admin: false,
        }],
        ..SimConfig::with_secret(TENANT, CLIENT, SECRET)
    })
    .await
}

fn entra(setup: &Setup, secret: &str) -> EntraSignIn {
    EntraSignIn::new(
        reqwest::Client::new(),
        setup.base.clone(),
        CLIENT,
        secret.to_owned().into(),
    )
}

fn redirect_uri() -> Url {
    Url::parse("http://127.0.0.1:9/auth/microsoft/callback").expect("url")
}

/// What a browser does: opens the sign-in page, picks the first account, and follows
/// the answer to the redirect address; the query it arrives with.
async fn pick_first_account(authorize: Url) -> String {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = browser
        .get(authorize.clone())
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("text");
    let href = page
        .split("class=\"account\"")
        .nth(1)
        .and_then(|rest| rest.split("href=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .expect("an account to pick")
        .replace("&amp;", "&");
    let answer = browser
        .get(authorize.join(&href).expect("answer url"))
        .send()
        .await
        .expect("answer");
    assert!(answer.status().is_redirection(), "{}", answer.status());
    let back = answer
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(|l| Url::parse(l).expect("location"))
        .expect("location");
    assert_eq!(back.path(), "/auth/microsoft/callback");
    back.query().unwrap_or_default().to_owned()
}

async fn sign_in(setup: &Setup, entra: &EntraSignIn) -> Result<kalsync_graph::Person, SignInError> {
    let pkce = Pkce::new();
    let url = entra
        .authorize_url(&redirect_uri(), "state-1", "nonce-1", &pkce)
        .expect("url");
    assert_eq!(url.host_str(), setup.base.host_str());
    let query = pick_first_account(url).await;
    let (state, answer) = parse_answer(&query).expect("an answer");
    assert_eq!(state, "state-1");
    let Answer::Code(code) = answer else {
        panic!("refused: {answer:?}");
    };
    entra
        .redeem(&code, &redirect_uri(), &pkce, "nonce-1", Timestamp::now())
        .await
}

/// A code for the first account, with state `s` and nonce `n`, and its PKCE.
async fn a_code(entra: &EntraSignIn) -> (String, Pkce) {
    let pkce = Pkce::new();
    let url = entra
        .authorize_url(&redirect_uri(), "s", "n", &pkce)
        .expect("url");
    let Some((_, Answer::Code(code))) = parse_answer(&pick_first_account(url).await) else {
        panic!("no code");
    };
    (code, pkce)
}

#[tokio::test]
async fn a_person_signs_in_with_a_verified_token() {
    let setup = with_people().await;
    let person = sign_in(&setup, &entra(&setup, SECRET))
        .await
        .expect("signed in");
    assert_eq!(person.tenant.as_str(), TENANT);
    assert_eq!(person.object, ANNA);
    assert_eq!(person.username.as_deref(), Some("anna@contoso.example"));
    assert_eq!(person.roles, vec!["Kalsync.Admin".to_owned()]);
    assert_eq!(person.groups.len(), 1);
}

#[tokio::test]
async fn every_wrong_token_is_refused() {
    let setup = with_people().await;
    let entra = entra(&setup, SECRET);
    for bad in [
        BadIdToken::ForeignKey,
        BadIdToken::Expired,
        BadIdToken::WrongAudience,
        BadIdToken::WrongNonce,
        BadIdToken::WrongIssuer,
        BadIdToken::Unsigned,
    ] {
        let mut faults = setup.sim.faults();
        faults.bad_id_token = Some(bad);
        setup.sim.set_faults(faults);
        match sign_in(&setup, &entra).await {
            Err(SignInError::BadToken(why)) => eprintln!("{bad:?}: {why}"),
            other => panic!("{bad:?} was not refused: {other:?}"),
        }
    }
    let mut faults = setup.sim.faults();
    faults.bad_id_token = None;
    setup.sim.set_faults(faults);
    sign_in(&setup, &entra).await.expect("a good token again");
}

#[tokio::test]
async fn a_token_is_checked_against_the_given_time() {
    let setup = with_people().await;
    let entra = entra(&setup, SECRET);
    let (code, pkce) = a_code(&entra).await;
    let two_hours_on = Timestamp::now() + jiff::SignedDuration::from_hours(2);
    assert!(matches!(
        entra
            .redeem(&code, &redirect_uri(), &pkce, "n", two_hours_on)
            .await,
        Err(SignInError::BadToken(_))
    ));
}

#[tokio::test]
async fn a_code_needs_its_verifier_the_apps_secret_and_is_redeemed_once() {
    let setup = with_people().await;
    let good = entra(&setup, SECRET);
    let (code, pkce) = a_code(&good).await;
    let now = Timestamp::now();
    // A code caught on the way back is worth nothing without the verifier…
    assert!(matches!(
        good.redeem(&code, &redirect_uri(), &Pkce::new(), "n", now)
            .await,
        Err(SignInError::Refused { .. })
    ));
    // …and is used up by the attempt, as Entra ID does.
    assert!(matches!(
        good.redeem(&code, &redirect_uri(), &pkce, "n", now).await,
        Err(SignInError::Refused { .. })
    ));
    let (code, pkce) = a_code(&good).await;
    assert!(matches!(
        entra(&setup, "wrong secret")
            .redeem(&code, &redirect_uri(), &pkce, "n", now)
            .await,
        Err(SignInError::Refused { .. })
    ));
}

#[tokio::test]
async fn a_domain_resolves_to_its_tenant_id() {
    let setup = with_people().await;
    let entra = entra(&setup, SECRET);
    assert_eq!(
        entra
            .tenant_id("Contoso.Example")
            .await
            .expect("id")
            .as_str(),
        TENANT
    );
    assert_eq!(
        entra
            .tenant_id(&TENANT.to_uppercase())
            .await
            .expect("id")
            .as_str(),
        TENANT
    );
    for unknown in ["fabrikam.example", "//127.0.0.1:1/x", "a/../b", "no-dot"] {
        assert!(
            matches!(
                entra.tenant_id(unknown).await,
                Err(SignInError::UnknownTenant(_))
            ),
            "{unknown}"
        );
    }
}
