//! A company's PBX directory through the API: an uploaded list (Excel's Swedish CSV)
//! decides who may be added — by hand or by CSV — and fills extensions; a bad list is
//! refused whole with its line; a fetched one needs HTTPS and its secret, asked for again
//! when the address changes; a reader sees it and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{graph_instance, spawn_app};

#[tokio::test]
async fn only_people_the_pbx_knows_are_added_and_they_take_its_extension() {
    let app = spawn_app().await;
    let admin = app.signed_in("it@acme.example").await;
    let instance = graph_instance(&admin, app.acme).await;
    let pbx = format!("/api/v1/companies/{}/pbx-directory", app.acme);
    let users = format!("/api/v1/instances/{instance}/users");

    // A list with a bad line is refused whole, naming the line.
    let (status, body) = admin
        .send_text(
            Method::PUT,
            &format!("{pbx}/list"),
            "E-post;Anknytning\nanna@acme.example;201\nbo@acme;202\n".into(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "list");
    assert!(body.to_string().contains("line 3"), "{body}");
    assert_eq!(admin.get(&pbx).await.0, StatusCode::NOT_FOUND);

    // Uploaded: Anna and Bo have subscriptions.
    let (status, body) = admin
        .send_text(
            Method::PUT,
            &format!("{pbx}/list"),
            "Namn;E-post;Anknytning\nAnna Berg;anna@acme.example;201\nBo Ek;bo@acme.example;202\n"
                .into(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 2);
    assert_eq!(body["source"]["kind"], "upload");

    // Carl has none: refused. Anna without an extension takes the PBX's and its name;
    // Bo with another extension than the PBX's is refused.
    let (status, body) = admin
        .post(&users, json!({"email": "carl@acme.example"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "email");
    assert!(body.to_string().contains("no subscription"), "{body}");
    let (status, anna) = admin
        .post(&users, json!({"email": "anna@acme.example"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{anna}");
    assert_eq!(anna["extension"], "201");
    assert_eq!(anna["display_name"], "Anna Berg");
    let (status, body) = admin
        .post(
            &users,
            json!({"email": "bo@acme.example", "extension": "209"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "extension");

    // A CSV import: Bo is added with the PBX's extension, Carl is refused.
    let (status, report) = admin
        .post_text(
            &format!("{users}/import"),
            "email\nbo@acme.example\ncarl@acme.example\n".into(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (report["added"].as_u64(), report["errors"].as_u64()),
        (Some(1), Some(1))
    );
    let (_, list) = admin.get(&users).await;
    assert!(
        list.as_array().is_some_and(|l| l
            .iter()
            .any(|u| u["email"] == "bo@acme.example" && u["extension"] == "202")),
        "{list}"
    );

    // A reader sees the list and changes nothing.
    let reader = app.signed_in("reception@acme.example").await;
    let (status, seen) = reader.get(&pbx).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["count"], 2);
    let (status, _) = reader.send(Method::DELETE, &pbx, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A fetched list: HTTPS only, and its secret; the secret is never shown.
    let (status, body) = admin
        .send(
            Method::PUT,
            &pbx,
            Some(json!({"source": {"kind": "url", "url": "http://pbx.acme.example/subs", "auth": "bearer"}, "secret": "t0ken"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "url", "{body}");
    let url_source =
        json!({"kind": "url", "url": "https://pbx.acme.example/subs", "auth": "bearer"});
    let (status, body) = admin
        .send(Method::PUT, &pbx, Some(json!({"source": url_source})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "secret");
    let (status, body) = admin
        .send(
            Method::PUT,
            &pbx,
            Some(json!({"source": url_source, "secret": "t0ken-123"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["secret_set"], true);
    assert!(!body.to_string().contains("t0ken-123"));
    assert_eq!(body["count"], 2, "the list stays until a fetch");
    // The same address keeps it; another asks for it again.
    let (status, _) = admin
        .send(Method::PUT, &pbx, Some(json!({"source": url_source})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let elsewhere = json!({"kind": "url", "url": "https://evil.example/subs", "auth": "bearer"});
    let (status, body) = admin
        .send(Method::PUT, &pbx, Some(json!({"source": elsewhere})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // An upload while the list is fetched is refused.
    let (status, body) = admin
        .send_text(
            Method::PUT,
            &format!("{pbx}/list"),
            "email,extension\n".into(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Removed: anyone may be added again.
    let (status, _) = admin.delete(&pbx).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = admin
        .post(&users, json!({"email": "carl@acme.example"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn the_pbx_directory_page_takes_a_pasted_list_and_says_what_is_wrong() {
    use crate::ui::{form_token, page_at, post_form, signed_in_browser};
    let app = spawn_app().await;
    let sv = signed_in_browser(&app, "sv", "it@acme.example").await;
    let url = format!("{}/companies/{}/pbx", app.base, app.acme);
    let page = page_at(&sv, url.clone()).await;
    assert!(
        page.contains("Växelns katalog") && page.contains("id=\"pbx-none\""),
        "{page}"
    );
    let dashboard = page_at(&sv, format!("{}/", app.base)).await;
    assert!(
        dashboard.contains(&format!("/companies/{}/pbx", app.acme)),
        "linked from the dashboard"
    );
    let csrf = form_token(&page);

    // A bad line: refused in Swedish with its number; what was pasted is kept.
    let pasted = "E-post;Anknytning\nanna@acme.example;201\nbo@acme;202";
    let refused = post_form(
        &sv,
        format!("{url}/upload"),
        &[("csrf", &csrf), ("list", pasted)],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused = refused.text().await.expect("html");
    assert!(
        refused.contains("Listan togs inte emot: rad 3: en e-postadress är ogiltig"),
        "{refused}"
    );
    assert!(refused.contains("bo@acme;202"), "{refused}");
    // Good: listed.
    let saved = post_form(
        &sv,
        format!("{url}/upload"),
        &[
            ("csrf", &csrf),
            (
                "list",
                "E-post;Anknytning;Namn\nanna@acme.example;201;Anna Berg\n",
            ),
        ],
    )
    .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let saved = saved.text().await.expect("html");
    assert!(
        saved.contains("Sparat.")
            && saved.contains("Anna Berg")
            && saved.contains("Uppladdad lista"),
        "{saved}"
    );
    // A fetched list over plain HTTP: refused, and a typed secret is said not to be kept.
    let refused = post_form(
        &sv,
        format!("{url}/source"),
        &[
            ("csrf", &csrf),
            ("url", "http://pbx.acme.example/subs"),
            ("auth", "bearer"),
            ("every", "1h"),
            ("secret", "t0ken-x"),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused = refused.text().await.expect("html");
    assert!(
        refused.contains("https://") && refused.contains("Hemligheten sparades inte"),
        "{refused}"
    );
    assert!(!refused.contains("t0ken-x"));

    // A reader sees the list, not the forms; another company's admin gets 404.
    let reader = signed_in_browser(&app, "sv", "reception@acme.example").await;
    let seen = page_at(&reader, url.clone()).await;
    assert!(
        seen.contains("Anna Berg") && !seen.contains("pbx-upload"),
        "{seen}"
    );
    let beta = signed_in_browser(&app, "en", "it@beta.example").await;
    assert_eq!(
        beta.get(&url).send().await.expect("get").status(),
        StatusCode::NOT_FOUND
    );
}
