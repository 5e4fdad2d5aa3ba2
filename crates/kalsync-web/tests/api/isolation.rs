//! Tenant isolation: a company's admin and reader never see or change another
//! company's data — every such URL answers 404, as if it did not exist. The routes are
//! read from the OpenAPI description, so none is left out.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{graph_instance, spawn_app};

/// Every operation of the API whose path names a tenant's data, from the OpenAPI
/// description: a route added later is walked without a change here.
fn tenant_operations(api: &Value) -> Vec<(reqwest::Method, String)> {
    let mut found = Vec::new();
    for (template, operations) in api["paths"].as_object().expect("paths") {
        let tenant = ["{company}", "{instance}", "{user}", "{account}", "{token}"]
            .iter()
            .any(|p| template.contains(p));
        // The operator's own accounts are no company's: refused to company roles (403).
        if !tenant || template.starts_with("/api/v1/operators") {
            continue;
        }
        for method in operations.as_object().expect("operations").keys() {
            let method =
                reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            found.push((method, template.clone()));
        }
    }
    found
}

/// A request body each operation would accept from its own company.
enum Example {
    Json(Option<Value>),
    Csv(String),
}

fn example_body(method: &reqwest::Method, template: &str) -> Example {
    use reqwest::Method;
    if *method == Method::GET || *method == Method::DELETE {
        return Example::Json(None);
    }
    let body = match (method.as_str(), template) {
        ("POST", "/api/v1/companies/{company}/instances") => json!({
            "name": "x",
            "source": {"kind": "graph", "tenant": crate::helpers::TENANT, "client_id": "c", "client_secret": "s"}
        }),
        ("POST", "/api/v1/companies/{company}/tokens") => json!({"name": "x"}),
        ("POST", "/api/v1/companies/{company}/accounts") => json!({
            "email": "eve@acme.example", "role": "reader", "password": "ett-långt-lösenord"
        }),
        ("PATCH", "/api/v1/instances/{instance}") => json!({"active": false}),
        ("POST", "/api/v1/instances/{instance}/users") => json!({"email": "eve@acme.example"}),
        ("POST", "/api/v1/instances/{instance}/users/import") => {
            return Example::Csv("email\neve@acme.example\n".into());
        }
        ("POST", "/api/v1/instances/{instance}/check") => json!({"mailbox": "eve@acme.example"}),
        ("PUT", "/api/v1/instances/{instance}/directory") => {
            json!({"kind": "entra", "groups": ["sales"]})
        }
        ("POST", "/api/v1/instances/{instance}/directory/run") => json!({"mode": "dry_run"}),
        ("PUT", "/api/v1/companies/{company}/pbx-directory") => {
            json!({"source": {"kind": "upload"}})
        }
        ("PUT", "/api/v1/companies/{company}/pbx-directory/list") => {
            return Example::Csv("email,extension\neve@acme.example,209\n".into());
        }
        ("POST", "/api/v1/companies/{company}/pbx-directory/fetch") => json!({}),
        ("PUT", "/api/v1/users/{user}/manual-status") => json!({"reason": "sick"}),
        ("PATCH", "/api/v1/companies/{company}") => json!({"readers_set_status": true}),
        ("POST", "/api/v1/companies/{company}/pbx-events/secret") => json!({}),
        _ => panic!("{method} {template}: add a valid body to this table"),
    };
    Example::Json(Some(body))
}

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
    let (_, token) = beta_admin
        .post(
            &format!("/api/v1/companies/{beta}/tokens"),
            json!({"name": "pbx"}),
        )
        .await;
    let beta_token = token["id"].as_str().expect("token id").to_owned();
    let (_, accounts) = beta_admin
        .get(&format!("/api/v1/companies/{beta}/accounts"))
        .await;
    let beta_account = accounts[0]["id"].as_str().expect("account id").to_owned();
    let (_, api) = beta_admin.get("/api/v1/openapi.json").await;
    let mut walked = 0;

    for who in ["it@acme.example", "reception@acme.example"] {
        let acme = app.signed_in(who).await;
        let (_, companies) = acme.get("/api/v1/companies").await;
        assert_eq!(
            companies.as_array().map(Vec::len),
            Some(1),
            "{who} sees only Acme: {companies}"
        );
        for (method, template) in tenant_operations(&api) {
            let path = template
                .replace("{company}", &beta.to_string())
                .replace("{instance}", &beta_instance)
                .replace("{user}", &bo)
                .replace("{account}", &beta_account)
                .replace("{token}", &beta_token);
            let (status, answer) = match example_body(&method, &template) {
                Example::Csv(csv) => acme.send_text(method.clone(), &path, csv).await,
                Example::Json(body) => acme.send(method.clone(), &path, body).await,
            };
            assert_eq!(
                status,
                StatusCode::NOT_FOUND,
                "{who} {method} {path}: {answer}"
            );
            assert_eq!(
                answer["error"]["code"], "not_found",
                "{who} {method} {path}"
            );
            walked += 1;
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
    assert!(walked >= 2 * 20, "every operation walked: {walked}");
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
