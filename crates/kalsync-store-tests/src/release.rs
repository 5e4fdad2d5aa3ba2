//! A database as a release left it: what [`write`] puts in (a company, its secrets, users,
//! bookings, a timeline, a pending delivery, an account), dumped once per release into
//! `releases/<version>/` (`scripts/release-database`), and what [`check`] finds in it
//! after a later Kalsync has upgraded it.

use kalsync_core::{EmailAddress, Extension, InstanceSettings, Window, build_timeline};
use kalsync_store::{
    DeliveryState, Grant, GraphCredential, NewAccount, NewDelivery, NewInstance, NewTarget,
    NewUser, Role, SecretBox, SourceConfig, Store, TargetConfig,
};
use secrecy::{ExposeSecret, SecretString};

use crate::chapters::{at, booking};

/// The key the release databases' secrets are sealed with (test data, nothing else).
pub const KEY: &str = "a2Fsc3luYy1yZWxlYXNlLWRhdGFiYXNlLXRlc3Qta2U=";

/// The key as a [`SecretBox`].
pub fn secrets() -> SecretBox {
    SecretBox::from_base64(KEY).expect("the release key")
}

const COMPANY: &str = "Uppgradering AB";
const PEOPLE: [(&str, &str, &str); 3] = [
    ("anna@uppgradering.example", "Anna Berg", "201"),
    ("bo@uppgradering.example", "Bo Ek", "202"),
    ("carl@uppgradering.example", "Carl Dahl", "203"),
];

fn week() -> Vec<kalsync_core::Booking> {
    vec![
        booking(
            "lunch-1",
            "2026-11-23 12:00",
            "2026-11-23 13:00",
            "LUN: Lunch",
        ),
        booking(
            "kund-2",
            "2026-11-24 09:00",
            "2026-11-24 10:30",
            "MOT: Kund",
        ),
    ]
}

fn window() -> Window {
    Window {
        start: at("2026-11-20 00:00"),
        end: at("2026-12-20 00:00"),
    }
}

fn payload() -> serde_json::Value {
    serde_json::json!({"reason": "lunch", "return_at": "2026-11-23T13:00:00+01:00"})
}

/// Writes the release's data.
pub async fn write(s: &dyn Store) {
    let company = s.create_company(COMPANY).await.expect("company");
    s.set_readers_set_status(company.id, true)
        .await
        .expect("readers");
    let hook = s
        .create_target(NewTarget {
            company: company.id,
            name: "Växel".into(),
            config: TargetConfig::Webhook {
                url: "https://pbx.uppgradering.example/kalsync".into(),
                signing_secret: SecretString::from("whsec_release-signing-secret"),
                batch: false,
            },
        })
        .await
        .expect("target");
    let settings = InstanceSettings::default();
    let instance = s
        .create_instance(NewInstance {
            company: company.id,
            name: "Microsoft 365".into(),
            source: SourceConfig::Graph {
                tenant: "uppgradering.onmicrosoft.com".into(),
                client_id: "release-app".into(),
                credential: GraphCredential::Secret(SecretString::from("release-client-secret")),
                graph_url: None,
                login_url: None,
            },
            settings: settings.clone(),
        })
        .await
        .expect("instance");
    let mut anna = None;
    for (email, name, extension) in PEOPLE {
        let user = s
            .add_user(NewUser {
                instance: instance.id,
                email: EmailAddress::parse(email).expect("email"),
                display_name: Some(name.into()),
                extension: Some(Extension::parse(extension).expect("extension")),
            })
            .await
            .expect("user");
        anna.get_or_insert(user);
    }
    let anna = anna.expect("Anna");
    s.replace_bookings(anna.id, &week(), false)
        .await
        .expect("bookings");
    let timeline = build_timeline(
        &s.bookings(anna.id).await.expect("read"),
        &settings,
        window(),
    );
    s.save_timeline(anna.id, &timeline, Some(at("2026-11-23 12:00")))
        .await
        .expect("timeline");
    s.enqueue(NewDelivery {
        user: anna.id,
        target: hook.id,
        payload: payload(),
        due: at("2026-11-23 12:00"),
        ahead: false,
    })
    .await
    .expect("delivery");
    s.create_account(NewAccount {
        email: "admin@uppgradering.example".into(),
        display_name: Some("Admin".into()),
        grant: Grant {
            role: Role::CompanyAdmin,
            company: Some(company.id),
        },
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$release".into(),
        entra: None,
    })
    .await
    .expect("account");
    s.set_pbx_event_secret(
        company.id,
        Some(&SecretString::from("pbx-release-secret")),
        at("2026-11-20 08:00"),
    )
    .await
    .expect("pbx secret");
}

/// Finds everything [`write`] put in, secrets opened with [`KEY`].
pub async fn check(s: &dyn Store) {
    let companies = s.companies().await.expect("companies");
    let company = companies
        .iter()
        .find(|c| c.name == COMPANY)
        .expect("the company");
    let targets = s.targets(company.id).await.expect("targets");
    let [hook] = targets.as_slice() else {
        panic!("one target: {targets:?}")
    };
    let TargetConfig::Webhook {
        url,
        signing_secret,
        batch,
    } = &hook.config
    else {
        panic!("a webhook")
    };
    assert_eq!(url, "https://pbx.uppgradering.example/kalsync");
    assert!(
        !batch,
        "a webhook of a release without batches sends one status at a time"
    );
    assert_eq!(
        signing_secret.expose_secret(),
        "whsec_release-signing-secret"
    );
    let instances = s.instances(company.id).await.expect("instances");
    let [instance] = instances.as_slice() else {
        panic!("one instance")
    };
    let SourceConfig::Graph {
        tenant,
        credential: GraphCredential::Secret(secret),
        ..
    } = &instance.source
    else {
        panic!("a Graph instance with a secret")
    };
    assert_eq!(tenant, "uppgradering.onmicrosoft.com");
    assert_eq!(secret.expose_secret(), "release-client-secret");
    let users = s.users(instance.id).await.expect("users");
    assert_eq!(
        users
            .iter()
            .map(|u| (
                u.email.as_str().to_owned(),
                u.display_name.clone().unwrap_or_default(),
                u.extension
                    .as_ref()
                    .map(|e| e.as_str().to_owned())
                    .unwrap_or_default()
            ))
            .collect::<Vec<_>>(),
        PEOPLE
            .iter()
            .map(|(e, n, x)| ((*e).to_owned(), (*n).to_owned(), (*x).to_owned()))
            .collect::<Vec<_>>()
    );
    let anna = &users[0];
    let mut stored = s.bookings(anna.id).await.expect("bookings");
    stored.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let mut expected = week();
    expected.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    for b in &mut expected {
        b.subject = None;
        b.location = None;
    }
    assert_eq!(stored, expected, "Anna's bookings");
    let timeline = s.timeline(anna.id).await.expect("timeline");
    assert_eq!(
        timeline,
        Some(build_timeline(
            &stored,
            &InstanceSettings::default(),
            window()
        )),
        "Anna's timeline"
    );
    let pending = s
        .deliveries(company.id, DeliveryState::Pending, 10)
        .await
        .expect("deliveries");
    let [delivery] = pending.as_slice() else {
        panic!("one pending delivery: {pending:?}")
    };
    assert_eq!(
        (
            delivery.user,
            delivery.target,
            &delivery.payload,
            delivery.due
        ),
        (anna.id, hook.id, &payload(), at("2026-11-23 12:00"))
    );
    let account = s
        .account_by_email("admin@uppgradering.example")
        .await
        .expect("account")
        .expect("the admin");
    assert_eq!(
        account.grant,
        Grant {
            role: Role::CompanyAdmin,
            company: Some(company.id)
        }
    );
    let (pbx, made) = s
        .pbx_event_secret(company.id)
        .await
        .expect("pbx secret")
        .expect("set");
    assert_eq!(
        (pbx.expose_secret(), made),
        ("pbx-release-secret", at("2026-11-20 08:00"))
    );
    assert!(
        s.company(company.id)
            .await
            .expect("company")
            .readers_set_status
    );
}
