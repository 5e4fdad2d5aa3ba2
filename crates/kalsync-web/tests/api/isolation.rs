//! Tenant isolation: a company's admin and reader never see or change another
//! company's data — every such URL answers 404, as if it did not exist.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{graph_instance, spawn_app};

#[tokio::test]
async fn another_companys_urls_answer_404_for_every_method() {
    let app = spawn_app().await;
    let beta_admin = app.signed_in("it@beta.example").await;
    let beta_instance = graph_instance(&beta_admin, app.beta).await;
    let (status, bo) = beta_admin
        .post(
            &format!("/api/v1/instances/{beta_instance}/users"),
            json!({"email": "bo@beta.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let bo = bo["id"].as_str().expect("id").to_owned();
    let beta = app.beta;

    for who in ["it@acme.example", "reception@acme.example"] {
        let acme = app.signed_in(who).await;
        let (_, companies) = acme.get("/api/v1/companies").await;
        assert_eq!(
            companies.as_array().map(Vec::len),
            Some(1),
            "{who} sees only Acme: {companies}"
        );
        for path in [
            format!("/api/v1/companies/{beta}"),
            format!("/api/v1/companies/{beta}/instances"),
            format!("/api/v1/companies/{beta}/audit"),
            format!("/api/v1/companies/{beta}/deliveries"),
            format!("/api/v1/companies/{beta}/tokens"),
            format!("/api/v1/instances/{beta_instance}"),
            format!("/api/v1/instances/{beta_instance}/users"),
            format!("/api/v1/users/{bo}/status"),
        ] {
            let (status, body) = acme.get(&path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{who} GET {path}: {body}");
            assert_eq!(body["error"]["code"], "not_found");
        }
        let changes = [
            (
                reqwest::Method::POST,
                format!("/api/v1/companies/{beta}/instances"),
                Some(
                    json!({"name": "x", "source": {"kind": "graph", "tenant": "t", "client_id": "c", "client_secret": "s"}}),
                ),
            ),
            (
                reqwest::Method::POST,
                format!("/api/v1/companies/{beta}/tokens"),
                Some(json!({"name": "x"})),
            ),
            (
                reqwest::Method::PATCH,
                format!("/api/v1/instances/{beta_instance}"),
                Some(json!({"active": false})),
            ),
            (
                reqwest::Method::DELETE,
                format!("/api/v1/instances/{beta_instance}"),
                None,
            ),
            (
                reqwest::Method::POST,
                format!("/api/v1/instances/{beta_instance}/users"),
                Some(json!({"email": "eve@acme.example"})),
            ),
            (reqwest::Method::DELETE, format!("/api/v1/users/{bo}"), None),
        ];
        for (method, path, body) in changes {
            let (status, answer) = acme.send(method.clone(), &path, body).await;
            assert_eq!(
                status,
                StatusCode::NOT_FOUND,
                "{who} {method} {path}: {answer}"
            );
        }
        // The directory lists only Acme's people.
        let (_, directory) = acme.get("/api/v1/directory?all=true").await;
        assert!(
            directory
                .as_array()
                .is_some_and(|d| d.iter().all(|e| e["company"] == "Acme AB")),
            "{directory}"
        );
    }
    // Nothing of Beta's changed.
    let (status, users) = beta_admin
        .get(&format!("/api/v1/instances/{beta_instance}/users"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(users.as_array().map(Vec::len), Some(1));
    assert!(
        app.store
            .instance(beta_instance.parse().expect("id"))
            .await
            .expect("there")
            .active
    );

    // The operator sees both, and only the operator creates companies.
    let ops = app.signed_in("ops@operator.example").await;
    let (_, companies) = ops.get("/api/v1/companies").await;
    assert_eq!(companies.as_array().map(Vec::len), Some(2));
    assert_eq!(
        ops.get(&format!("/api/v1/users/{bo}/status")).await.0,
        StatusCode::OK
    );
    let acme_admin = app.signed_in("it@acme.example").await;
    let (status, _) = acme_admin
        .post("/api/v1/companies", json!({"name": "Gamma AB"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = ops
        .post("/api/v1/companies", json!({"name": "Gamma AB"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_reader_reads_but_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.signed_in("it@acme.example").await;
    let instance = graph_instance(&admin, app.acme).await;
    let reader = app.signed_in("reception@acme.example").await;
    assert_eq!(
        reader.get(&format!("/api/v1/instances/{instance}")).await.0,
        StatusCode::OK
    );
    let (status, body) = reader
        .post(
            &format!("/api/v1/instances/{instance}/users"),
            json!({"email": "new@acme.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        reader
            .delete(&format!("/api/v1/instances/{instance}"))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        reader
            .get(&format!("/api/v1/companies/{}/tokens", app.acme))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}
