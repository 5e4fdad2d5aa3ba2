//! Katalog Synk end to end, against the Graph simulator: an admin sets a group as the
//! instance's directory, a dry run shows what would change and changes nothing, turned
//! on the users follow the group (joiners added and read, the nested group's members
//! too, extensions from the phone number, leavers removed with their data); a deleted
//! group removes nobody; "directory only" refuses users added by hand; the schedule
//! runs it on one node; a reader cannot change or run it (other companies get 404, as
//! the isolation suite checks for every operation).

use kalsync_graph_sim::{GroupSpec, Profile, UserSpec};
use kalsync_server::settings::AccountDecl;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::acme::{self, ADMIN, ADMIN_PASSWORD, ANNA};
use crate::support::sims::anna_at_lunch;
use crate::support::spawn_app;

fn person(sim: &kalsync_graph_sim::Simulator, upn: &str, name: &str, phone: &str) {
    sim.add_user(UserSpec {
        upn: upn.into(),
        id: None,
        display_name: Some(name.into()),
        time_zone: "W. Europe Standard Time".into(),
        working_hours: None,
    })
    .expect("user");
    sim.set_profile(
        upn,
        Profile {
            business_phones: vec![phone.into()],
            department: Some("Sälj".into()),
            ..Profile::default()
        },
    )
    .expect("profile");
}

async fn run(http: &(reqwest::Client, String), url: &str, mode: &str) -> (StatusCode, Value) {
    let answer = http
        .0
        .post(url)
        .header("x-csrf-token", &http.1)
        .json(&json!({"mode": mode}))
        .send()
        .await
        .expect("run");
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_instances_users_follow_an_entra_group() {
    let (sim, sim_url, _graph, _) = anna_at_lunch().await;
    person(&sim, "bo@acme.example", "Bo Berg", "+46 8 555 202");
    person(&sim, "carl@acme.example", "Carl Ek", "+46 8 555 203");
    person(&sim, "dora@acme.example", "Dora Ny", "+46 8 555 204");
    sim.set_profile(
        ANNA,
        Profile {
            business_phones: vec!["+46 8 555 201".into()],
            ..Profile::default()
        },
    )
    .expect("anna");
    sim.add_group(GroupSpec {
        id: Some("support".into()),
        name: "Support".into(),
        members: vec!["carl@acme.example".into()],
    })
    .expect("support");
    sim.add_group(GroupSpec {
        id: Some("sales".into()),
        name: "Sales".into(),
        members: vec![
            ANNA.into(),
            "bo@acme.example".into(),
            "group:support".into(),
        ],
    })
    .expect("sales");
    let mut settings = acme::settings(&sim_url);
    settings.accounts.push(acme::admin());
    settings.accounts.push(AccountDecl {
        email: "reception@acme.example".into(),
        role: "reader".into(),
        company: Some("Acme".into()),
        password: ADMIN_PASSWORD.to_owned().into(),
    });
    let app = spawn_app(settings).await;
    let store = app.store();
    let company = store.companies().await.expect("companies").remove(0);
    let instance = store
        .instances(company.id)
        .await
        .expect("instances")
        .remove(0);
    let (client, me) = app.signed_in_as(ADMIN, ADMIN_PASSWORD).await;
    let csrf = me["csrf"].as_str().expect("csrf").to_owned();
    let admin = (client, csrf);
    let directory = app.url(&format!("/api/v1/instances/{}/directory", instance.id));
    let run_url = format!("{directory}/run");

    // A bad setting names its field.
    let bad = admin
        .0
        .put(&directory)
        .header("x-csrf-token", &admin.1)
        .json(&json!({"kind": "entra", "groups": [], "every": "15m"}))
        .send()
        .await
        .expect("put");
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let bad: Value = bad.json().await.expect("json");
    assert_eq!(bad["error"]["field"], "groups", "{bad}");

    // Set, not yet on: a dry run shows the plan and changes nothing.
    let set = admin
        .0
        .put(&directory)
        .header("x-csrf-token", &admin.1)
        .json(&json!({
            "kind": "entra",
            "groups": ["sales"],
            "extension": {"attribute": "businessPhones", "last_digits": 3},
            "department": "department",
        }))
        .send()
        .await
        .expect("put");
    assert_eq!(set.status(), StatusCode::OK, "{:?}", set.text().await);
    // The connection check reads the directory too, and names the permissions it lacks.
    let check = |admin: &(reqwest::Client, String)| {
        let http = admin.0.clone();
        let csrf = admin.1.clone();
        let url = app.url(&format!("/api/v1/instances/{}/check", instance.id));
        async move {
            let steps: Value = http
                .post(url)
                .header("x-csrf-token", csrf)
                .json(&json!({"mailbox": ANNA}))
                .send()
                .await
                .expect("check")
                .json()
                .await
                .expect("json");
            steps["steps"]
                .as_array()
                .expect("steps")
                .iter()
                .find(|s| s["name"] == "read the directory")
                .cloned()
                .unwrap_or_else(|| panic!("a directory step: {steps}"))
        }
    };
    let step = check(&admin).await;
    assert_eq!(step["ok"], true, "{step}");
    sim.set_faults(kalsync_graph_sim::Faults {
        directory_denied: true,
        ..kalsync_graph_sim::Faults::default()
    });
    let step = check(&admin).await;
    assert_eq!(step["ok"], false, "{step}");
    assert!(
        step["detail"]
            .as_str()
            .unwrap_or("")
            .contains("GroupMember.Read.All"),
        "{step}"
    );
    sim.set_faults(kalsync_graph_sim::Faults::default());

    let (status, dry) = run(&admin, &run_url, "dry_run").await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(dry["applied"], false);
    assert_eq!(dry["members"], 3);
    assert_eq!(dry["added"], 2, "{dry}");
    assert_eq!(store.users(instance.id).await.expect("users").len(), 1);

    // Turned on: the users follow the group (Anna taken over, Bo and the nested Carl
    // added with their extensions and department).
    let mut on: Value = admin
        .0
        .get(&directory)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    on["settings"]["enabled"] = json!(true);
    let set = admin
        .0
        .put(&directory)
        .header("x-csrf-token", &admin.1)
        .json(&on["settings"])
        .send()
        .await
        .expect("put");
    assert_eq!(set.status(), StatusCode::OK);
    let (status, done) = run(&admin, &run_url, "now").await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["applied"], true, "{done}");
    let users = store.users(instance.id).await.expect("users");
    let found: Vec<(&str, Option<&str>, Option<&str>)> = users
        .iter()
        .map(|u| {
            (
                u.email.as_str(),
                u.extension.as_ref().map(|x| x.as_str()),
                u.department.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (ANNA, Some("201"), None),
            ("bo@acme.example", Some("202"), Some("Sälj")),
            ("carl@acme.example", Some("203"), Some("Sälj")),
        ]
    );
    assert!(
        users.iter().all(|u| u.directory_key.is_some()),
        "all the directory's now"
    );
    // The switchboard finds people by their department.
    let found: Value = admin
        .0
        .get(app.url("/api/v1/directory?q=s%C3%A4lj&all=true"))
        .send()
        .await
        .expect("directory")
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = found
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["Bo Berg", "Carl Ek"], "{found}");

    // A joiner and a leaver; the leaver goes with their data.
    let bo = users
        .iter()
        .find(|u| u.email.as_str() == "bo@acme.example")
        .expect("bo")
        .id;
    sim.change_member("support", "dora@acme.example", true)
        .expect("join");
    sim.change_member("sales", "bo@acme.example", false)
        .expect("leave");
    let (status, done) = run(&admin, &run_url, "now").await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(
        (done["added"].clone(), done["removed"].clone()),
        (json!(1), json!(1))
    );
    assert!(store.user(bo).await.is_err(), "Bo is gone");
    let emails: Vec<String> = store
        .users(instance.id)
        .await
        .expect("users")
        .iter()
        .map(|u| u.email.to_string())
        .collect();
    assert_eq!(emails, [ANNA, "carl@acme.example", "dora@acme.example"]);
    let audit: Value = admin
        .0
        .get(app.url(&format!("/api/v1/companies/{}/audit", company.id)))
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("json");
    let text = audit.to_string();
    assert!(
        text.contains("\"actor\":\"directory\"") && text.contains("user.removed"),
        "{text}"
    );

    // "Directory only": nobody is added by hand.
    on["settings"]["manual"] = json!("refuse");
    admin
        .0
        .put(&directory)
        .header("x-csrf-token", &admin.1)
        .json(&on["settings"])
        .send()
        .await
        .expect("put");
    let by_hand = admin
        .0
        .post(app.url(&format!("/api/v1/instances/{}/users", instance.id)))
        .header("x-csrf-token", &admin.1)
        .json(&json!({"email": "eva@acme.example"}))
        .send()
        .await
        .expect("add");
    assert_eq!(by_hand.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let by_file = admin
        .0
        .post(app.url(&format!("/api/v1/instances/{}/users/import", instance.id)))
        .header("x-csrf-token", &admin.1)
        .header("content-type", "text/csv")
        .body("eva@acme.example,Eva,209\n")
        .send()
        .await
        .expect("import");
    assert_eq!(by_file.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // The group deleted: an error, nobody removed.
    sim.delete_group("sales").expect("delete");
    let (status, failed) = run(&admin, &run_url, "now").await;
    assert_eq!(status, StatusCode::OK, "{failed}");
    assert_eq!(failed["error"][0], "group_not_found", "{failed}");
    assert_eq!(store.users(instance.id).await.expect("users").len(), 3);

    // Runs on request are limited (each reads the company's directory).
    let mut refused = false;
    for _ in 0..6 {
        if run(&admin, &run_url, "dry_run").await.0 == StatusCode::TOO_MANY_REQUESTS {
            refused = true;
            break;
        }
    }
    assert!(refused, "at most six runs a minute");

    // On schedule: due at once after a change, taken by one node.
    let record = store
        .directory(instance.id)
        .await
        .expect("read")
        .expect("directory");
    let now = record.next_run + jiff::SignedDuration::from_secs(1);
    assert!(app.service.directories.step(now).await <= 1);
    assert_eq!(
        app.service.directories.step(now).await,
        0,
        "taken, not due again"
    );
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("kalsync_directory_errors_total{code=\"group_not_found\"}"),
        "{metrics}"
    );

    // A reader sees it but cannot change or run it; another company's admin does not
    // see it at all.
    let (client, me) = app
        .signed_in_as("reception@acme.example", ADMIN_PASSWORD)
        .await;
    let reader = (client, me["csrf"].as_str().expect("csrf").to_owned());
    assert_eq!(
        reader.0.get(&directory).send().await.expect("get").status(),
        StatusCode::OK
    );
    assert_eq!(
        reader
            .0
            .put(&directory)
            .header("x-csrf-token", &reader.1)
            .json(&on["settings"])
            .send()
            .await
            .expect("put")
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        run(&reader, &run_url, "dry_run").await.0,
        StatusCode::FORBIDDEN
    );

    // No directory any more: the users stay, as if added by hand.
    let removed = admin
        .0
        .delete(&directory)
        .header("x-csrf-token", &admin.1)
        .send()
        .await
        .expect("delete");
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let users = store.users(instance.id).await.expect("users");
    assert_eq!(users.len(), 3);
    assert!(
        users
            .iter()
            .all(|u| u.directory_key.is_none() && u.leaving_since.is_none()),
        "{users:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_exchange_instance_in_a_hybrid_company_reads_entra_with_an_app_of_its_own() {
    let exchange = crate::support::sims::exchange_with_anna().await;
    person(
        &exchange.calendars,
        "bo@acme.example",
        "Bo Berg",
        "+46 8 555 202",
    );
    exchange
        .calendars
        .add_group(GroupSpec {
            id: Some("sales".into()),
            name: "Sales".into(),
            members: vec![ANNA.into(), "bo@acme.example".into()],
        })
        .expect("sales");
    let mut settings = exchange.acme_over_ews("ntlm", "2016");
    settings.accounts.push(acme::admin());
    let app = spawn_app(settings).await;
    let store = app.store();
    let (_, instance) = app.first_instance().await;
    let session = app.session(ADMIN, ADMIN_PASSWORD).await;
    let admin = (session.http.clone(), session.csrf.clone());
    let directory = format!("/api/v1/instances/{}/directory", instance.id);
    let put = |body: Value| session.send(reqwest::Method::PUT, &directory, Some(body));
    // Without an app of its own, an Exchange instance cannot read Entra ID.
    let (status, body) = put(json!({"kind": "entra", "groups": ["sales"]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "entra_app", "{body}");
    let entra_app = json!({
        "tenant": "t", "client_id": "c",
        "graph_url": format!("{}v1.0/", exchange.sim_url), "login_url": exchange.sim_url.to_string(),
    });
    // The app's secret is asked for, then never shown.
    let (status, body) =
        put(json!({"kind": "entra", "entra_app": entra_app, "groups": ["sales"], "enabled": true}))
            .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "client_secret", "{body}");
    let (status, body) = put(json!({
        "kind": "entra", "entra_app": entra_app, "client_secret": "s",
        "groups": ["sales"], "enabled": true,
        "extension": {"attribute": "businessPhones", "last_digits": 3},
    }))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["password_set"], true);
    let (status, run) = run(&admin, &app.url(&format!("{directory}/run")), "now").await;
    assert_eq!(status, StatusCode::OK, "{run}");
    let users = store.users(instance.id).await.expect("users");
    assert!(
        users.iter().any(|u| u.email.as_str() == "bo@acme.example"
            && u.extension.as_ref().map(|x| x.as_str()) == Some("202")),
        "{run}"
    );
    // Another login host for the same app gets no kept secret.
    let mut elsewhere = entra_app.clone();
    elsewhere["login_url"] = json!("https://login.evil.example/");
    let (status, body) =
        put(json!({"kind": "entra", "entra_app": elsewhere, "groups": ["sales"]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}
