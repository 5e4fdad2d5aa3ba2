//! Katalog Synk from Active Directory over LDAP, end to end against a real OpenLDAP: an
//! admin sets the server, the service account and its password, and a group; the run
//! adds the group's people (nested groups too) with extensions from `ipPhone`, leaves a
//! disabled account out, and removes a leaver. The password is written, never read back
//! (nor logged or stored in the clear), and is asked for again when the server or the
//! account changes — a kept password goes only where it was given for.

#[path = "../../../kalsync-ldap/tests/support/slapd.rs"]
mod slapd;

use reqwest::StatusCode;
use serde_json::json;
use slapd::{Group, Person};

use crate::support::acme::{self, ADMIN, ADMIN_PASSWORD, ANNA};
use crate::support::sims::anna_at_lunch;
use crate::support::spawn_app;

const PASSWORD: &str = slapd::READER_PASSWORD;

fn people() -> (Vec<Person>, Vec<Group>) {
    let mut anna = Person::new("anna", "Anna Andersson", "201");
    anna.mail = Some(ANNA.into());
    let mut bo = Person::new("bo", "Bo Berg", "202");
    bo.mail = Some("bo@acme.example".into());
    let mut carl = Person::new("carl", "Carl Ek", "203");
    carl.mail = Some("carl@acme.example".into());
    carl.disabled = true;
    let mut dora = Person::new("dora", "Dora Ny", "204");
    dora.mail = Some("dora@acme.example".into());
    let groups = vec![
        Group {
            cn: "support".into(),
            people: vec!["dora".into()],
            groups: vec![],
            unkept: false,
        },
        Group {
            cn: "sales".into(),
            people: vec!["anna".into(), "bo".into(), "carl".into()],
            groups: vec!["support".into()],
            unkept: false,
        },
    ];
    (vec![anna, bo, carl, dora], groups)
}

#[tokio::test]
async fn an_instances_users_follow_an_active_directory_group() {
    let (people, groups) = people();
    let Some(server) = slapd::start(&people, &groups) else {
        return;
    };
    let (_sim, sim_url, _graph, _) = anna_at_lunch().await;
    let mut settings = acme::settings(&sim_url);
    settings.accounts.push(acme::admin());
    let app = spawn_app(settings).await;
    let store = app.store();
    let (_, instance) = app.first_instance().await;
    let admin = app.session(ADMIN, ADMIN_PASSWORD).await;
    let directory = app.url(&format!("/api/v1/instances/{}/directory", instance.id));
    let settings = |url: &str| {
        json!({
            "kind": "ldap",
            "ldap": {"url": url, "base": slapd::BASE, "bind_dn": slapd::READER, "ca": server.ca_pem},
            "groups": [slapd::group_dn("sales")],
            "extension": {"attribute": "ipPhone"},
            "enabled": true,
        })
    };

    // No password: refused, naming the field.
    let (status, body) = admin
        .send(
            reqwest::Method::PUT,
            &directory,
            Some(settings(&server.ldaps)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("\"password\""), "{body}");
    // With it: saved; the answer says a password is set, and never shows it.
    let mut with = settings(&server.ldaps);
    with["password"] = json!(PASSWORD);
    let (status, body) = admin
        .send(reqwest::Method::PUT, &directory, Some(with))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body.to_string().contains(PASSWORD), "{body}");
    assert_eq!(body["password_set"], true);

    // The check signs in and finds the group.
    let (status, body) = admin
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/instances/{}/check", instance.id),
            Some(json!({"mailbox": ANNA})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.to_string().contains("and found 1 group(s)"), "{body}");

    // The run: Anna, Bo and (through support) Dora, with their extensions; Carl is
    // disabled.
    let (status, body) = admin
        .send(
            reqwest::Method::POST,
            &format!("{directory}/run"),
            Some(json!({"mode": "now"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let users = store.users(instance.id).await.expect("users");
    let mut seen: Vec<(String, Option<String>)> = users
        .iter()
        .map(|u| {
            (
                u.email.to_string(),
                u.extension.as_ref().map(|e| e.to_string()),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (ANNA.to_owned(), Some("201".to_owned())),
            ("bo@acme.example".to_owned(), Some("202".to_owned())),
            ("dora@acme.example".to_owned(), Some("204".to_owned())),
        ],
        "{body}"
    );

    // Bo leaves the group: the next run removes him.
    server.remove_member("sales", "bo").await;
    let (status, body) = admin
        .send(
            reqwest::Method::POST,
            &format!("{directory}/run"),
            Some(json!({"mode": "now"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let users = store.users(instance.id).await.expect("users");
    assert!(users.iter().all(|u| u.email.as_str() != "bo@acme.example"));
    assert_eq!(users.len(), 2);

    // Saved again without the password for the same server and account: kept. Another
    // server (here StartTLS on another port) or another account: asked for again.
    let (status, body) = admin
        .send(
            reqwest::Method::PUT,
            &directory,
            Some(settings(&server.ldaps)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = admin
        .send(
            reqwest::Method::PUT,
            &directory,
            Some(settings(&server.starttls)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("\"password\""), "{body}");
    let mut other = settings(&server.ldaps);
    other["ldap"]["bind_dn"] = json!("cn=admin,dc=acme,dc=test");
    let (status, body) = admin
        .send(reqwest::Method::PUT, &directory, Some(other))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // A wrong password is a run's error, and removes nobody.
    let mut wrong = settings(&server.starttls);
    wrong["password"] = json!("not-it");
    let (status, body) = admin
        .send(reqwest::Method::PUT, &directory, Some(wrong))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = admin
        .send(
            reqwest::Method::POST,
            &format!("{directory}/run"),
            Some(json!({"mode": "now"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.to_string().contains("sign_in"), "{body}");
    assert_eq!(store.users(instance.id).await.expect("users").len(), 2);

    // Nowhere in the database in the clear.
    let storage = app.halt().await;
    let contents = storage.contents().await;
    assert!(
        !contents.contains(PASSWORD),
        "the password is sealed at rest"
    );
    assert!(!contents.contains("not-it"));
    storage.remove().await;
}
