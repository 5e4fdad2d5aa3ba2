//! Bad input gets a precise error in one JSON shape and changes nothing; a user's status
//! shows the bookings its absences came from; an import reports every row.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{graph_instance, lunch_now, spawn_app};

#[tokio::test]
async fn bad_input_names_the_field_and_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.signed_in("it@acme.example").await;
    let instances = format!("/api/v1/companies/{}/instances", app.acme);
    let graph = json!({"kind": "graph", "tenant": crate::helpers::TENANT, "client_id": "c", "client_secret": "s"});
    let cases = [
        (
            json!({"name": "x", "source": graph, "colour": "red"}),
            StatusCode::BAD_REQUEST,
            None,
            "unknown field `colour`",
        ),
        (
            json!({"name": "", "source": graph}),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("name"),
            "1 to 200",
        ),
        (
            json!({"name": "x", "source": {"kind": "graph", "tenant": crate::helpers::TENANT, "client_id": "c"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("source.client_secret"),
            "required",
        ),
        (
            json!({"name": "x", "source": {"kind": "ews", "url": "mail.acme.example", "username": "u", "password": "p"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("source.url"),
            "http(s)",
        ),
        (
            json!({"name": "x", "source": {"kind": "ews", "url": "https://mail.acme.example/EWS/Exchange.asmx", "username": "u", "password": "p", "version": "2003"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("source.version"),
            "2003",
        ),
        (
            json!({"name": "x", "source": {"kind": "ews", "url": "https://mail.acme.example/EWS/Exchange.asmx", "username": "u", "password": "p", "auth": "oauth"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("source.options.tenant"),
            "oauth",
        ),
        (
            json!({"name": "x", "source": {"kind": "lotus"}}),
            StatusCode::BAD_REQUEST,
            None,
            "lotus",
        ),
        (
            json!({"name": "x", "source": graph, "settings": "template = \"prefix\"\ndays_ahead = \"many\"\n"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("settings"),
            "settings:2:",
        ),
    ];
    for (body, status, field, says) in cases {
        let (got, answer) = admin.post(&instances, body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["error"]["field"].as_str(), field, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or("");
        assert!(
            message.contains(says),
            "{body}: `{message}` should say `{says}`"
        );
    }
    // Malformed JSON, the wrong content type, an oversized body: the same shape.
    let raw = admin
        .http
        .post(format!("{}{instances}", app.base))
        .header("x-csrf-token", admin.csrf.clone().unwrap_or_default())
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("send");
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let answer: serde_json::Value = raw.json().await.expect("json");
    assert_eq!(answer["error"]["code"], "bad_request");
    let big = "x".repeat(kalsync_web::BODY_LIMIT + 10);
    let (status, answer) = admin
        .post(&instances, json!({"name": big, "source": graph}))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["error"]["code"], "too_large");
    assert!(
        app.store
            .instances(app.acme)
            .await
            .expect("list")
            .is_empty()
    );

    // Paths that name nothing.
    for path in [
        "/api/v1/instances/not-an-id",
        "/api/v1/users/00000000-0000-0000-0000-000000000000/status",
        "/api/v1/nothing/here",
    ] {
        let (status, answer) = admin.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(answer["error"]["code"], "not_found");
    }

    // Users: a bad address, a bad extension, a duplicate.
    let instance = graph_instance(&admin, app.acme).await;
    let users = format!("/api/v1/instances/{instance}/users");
    let (status, answer) = admin.post(&users, json!({"email": "anna(at)acme"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["error"]["field"], "email");
    let (status, answer) = admin
        .post(
            &users,
            json!({"email": "anna@acme.example", "extension": "12a"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["error"]["field"], "extension");
    assert_eq!(
        admin
            .post(&users, json!({"email": "anna@acme.example"}))
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, answer) = admin
        .post(&users, json!({"email": "Anna@acme.example"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("anna@acme.example")
    );

    // The secret never comes back.
    let (_, shown) = admin.get(&format!("/api/v1/instances/{instance}")).await;
    assert!(!shown.to_string().contains("s3cret"), "{shown}");
    assert_eq!(shown["source"]["credential"], "secret");
    assert!(
        shown["settings"]
            .as_str()
            .unwrap_or("")
            .contains("days_ahead = 7")
    );
    // A change that leaves the secret out keeps it while it goes where it went; another
    // tenant needs it again.
    let (status, refused) = admin
        .send(
            reqwest::Method::PATCH,
            &format!("/api/v1/instances/{instance}"),
            Some(json!({"active": false, "source": {"kind": "graph", "tenant": crate::helpers::TENANT_2, "client_id": "c"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let (status, changed) = admin
        .send(
            reqwest::Method::PATCH,
            &format!("/api/v1/instances/{instance}"),
            Some(json!({"active": false, "source": {"kind": "graph", "tenant": crate::helpers::TENANT, "client_id": "c"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let stored = app
        .store
        .instance(instance.parse().expect("id"))
        .await
        .expect("stored");
    assert!(!stored.active);
    assert!(matches!(
        stored.source,
        kalsync_store::SourceConfig::Graph { ref tenant, credential: kalsync_store::GraphCredential::Secret(_), .. } if tenant == crate::helpers::TENANT
    ));
}

#[tokio::test]
async fn an_import_reports_every_row_and_keeps_the_good_ones() {
    let app = spawn_app().await;
    let admin = app.signed_in("it@acme.example").await;
    let instance = graph_instance(&admin, app.acme).await;
    admin
        .post(
            &format!("/api/v1/instances/{instance}/users"),
            json!({"email": "bo@acme.example"}),
        )
        .await;
    let csv = "email,name,extension\n\
               anna@acme.example,Anna Andersson,201\n\
               not-an-address,Nobody,\n\
               bo@acme.example,Bo,202\n\
               cai@acme.example,,20x\n\
               \n\
               dag@acme.example,\"Dag, Jr\",\n\
               eva@acme.example,Eva,203,extra\n";
    let (status, report) = admin
        .post_text(
            &format!("/api/v1/instances/{instance}/users/import"),
            csv.into(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["added"], 2, "{report}");
    assert_eq!(report["existing"], 1);
    assert_eq!(report["errors"], 3);
    let rows = report["rows"].as_array().expect("rows");
    let outcome = |email: &str| {
        rows.iter().find(|r| r["email"] == email).map(|r| {
            (
                r["outcome"].as_str().unwrap_or("").to_owned(),
                r["field"].as_str().map(str::to_owned),
                r["line"].as_u64(),
            )
        })
    };
    assert_eq!(
        outcome("anna@acme.example"),
        Some(("added".into(), None, Some(2)))
    );
    assert_eq!(
        outcome("not-an-address").map(|o| o.1),
        Some(Some("email".into()))
    );
    assert_eq!(
        outcome("bo@acme.example").map(|o| o.0),
        Some("exists".into())
    );
    assert_eq!(
        outcome("cai@acme.example").map(|o| o.1),
        Some(Some("extension".into()))
    );
    assert_eq!(
        outcome("dag@acme.example").map(|o| o.0),
        Some("added".into())
    );
    assert_eq!(
        outcome("eva@acme.example").map(|o| o.0),
        Some("error".into())
    );
    let (_, users) = admin
        .get(&format!("/api/v1/instances/{instance}/users"))
        .await;
    let names: Vec<&str> = users
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["display_name"].as_str())
        .collect();
    assert!(names.contains(&"Dag, Jr"), "{users}");
}

#[tokio::test]
async fn a_users_status_shows_the_bookings_behind_each_absence_and_removal_deletes_it() {
    let app = spawn_app().await;
    let admin = app.signed_in("it@acme.example").await;
    let instance = graph_instance(&admin, app.acme).await;
    let (_, anna) = admin
        .post(
            &format!("/api/v1/instances/{instance}/users"),
            json!({"email": "anna@acme.example", "display_name": "Anna"}),
        )
        .await;
    let anna_id: kalsync_store::UserId = anna["id"].as_str().expect("id").parse().expect("uuid");

    lunch_now(&app, anna_id).await;

    let (status, view) = admin.get(&format!("/api/v1/users/{anna_id}/status")).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["now"]["reason"], "lunch");
    assert_eq!(view["now"]["mode"], "divert");
    assert!(
        view["now"]["message_en"]
            .as_str()
            .unwrap_or("")
            .starts_with("Lunch, back"),
        "{view}"
    );
    assert!(
        view["now"]["message_sv"]
            .as_str()
            .unwrap_or("")
            .starts_with("Lunch, åter"),
        "{view}"
    );
    assert_eq!(view["now"]["bookings"][0]["id"], "lunch-1", "{view}");
    assert!(
        view["now"]["bookings"][0]
            .get("subject")
            .is_none_or(serde_json::Value::is_null),
        "no titles shown: {view}"
    );
    let (_, directory) = admin.get("/api/v1/directory?q=ann").await;
    assert_eq!(directory[0]["name"], "Anna");
    assert_eq!(directory[0]["absence"]["reason"], "lunch");

    // Removing the user deletes its bookings and timeline.
    assert_eq!(
        admin.delete(&format!("/api/v1/users/{anna_id}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert!(
        app.store
            .bookings(anna_id)
            .await
            .map(|b| b.is_empty())
            .unwrap_or(true)
    );
    assert_eq!(
        admin
            .get(&format!("/api/v1/users/{anna_id}/status"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, log) = admin
        .get(&format!("/api/v1/companies/{}/audit", app.acme))
        .await;
    let actions: Vec<&str> = log
        .as_array()
        .expect("log")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"user.removed") && actions.contains(&"instance.created"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn an_import_over_the_row_limit_adds_nobody() {
    let app = spawn_app().await;
    let admin = app.signed_in("it@acme.example").await;
    let instance = graph_instance(&admin, app.acme).await;
    let csv: String = (0..10_001)
        .map(|i| format!("u{i}@acme.example\n"))
        .collect();
    let (status, body) = admin
        .post_text(&format!("/api/v1/instances/{instance}/users/import"), csv)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, users) = admin
        .get(&format!("/api/v1/instances/{instance}/users"))
        .await;
    assert_eq!(users.as_array().map(Vec::len), Some(0), "{users}");
}
