//! The web UI as a browser without JavaScript sees it: redirects to the sign-in page,
//! the form's errors in the viewer's language, the dashboard, the switchboard and its
//! event stream, the language switch, CSRF and origin checks on forms.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, graph_instance, lunch_now, spawn_app};

pub(crate) fn browser(language: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::ACCEPT_LANGUAGE,
        reqwest::header::HeaderValue::from_str(language).expect("header"),
    );
    reqwest::Client::builder()
        .cookie_store(true)
        .default_headers(headers)
        .build()
        .expect("client")
}

#[tokio::test]
async fn pages_sign_in_show_who_is_away_in_both_languages_and_sign_out() {
    let app = spawn_app().await;
    // Anna of Acme at lunch; Bo of Beta too (Acme's people must not see him).
    let acme_admin = app.signed_in("it@acme.example").await;
    let instance = graph_instance(&acme_admin, app.acme).await;
    let (_, anna) = acme_admin
        .post(&format!("/api/v1/instances/{instance}/users"), json!({"email": "anna@acme.example", "display_name": "Anna Andersson", "extension": "201"}))
        .await;
    lunch_now(
        &app,
        anna["id"].as_str().expect("id").parse().expect("uuid"),
    )
    .await;
    let beta_admin = app.signed_in("it@beta.example").await;
    let beta_instance = graph_instance(&beta_admin, app.beta).await;
    let (_, bo) = beta_admin
        .post(
            &format!("/api/v1/instances/{beta_instance}/users"),
            json!({"email": "bo@beta.example", "display_name": "Bo Berg"}),
        )
        .await;
    lunch_now(&app, bo["id"].as_str().expect("id").parse().expect("uuid")).await;

    // Not signed in: the sign-in page, in Swedish by default.
    let sv = browser("sv-SE,sv;q=0.9");
    let page = sv.get(format!("{}/", app.base)).send().await.expect("get");
    assert!(page.url().path().ends_with("/sign-in"), "{}", page.url());
    let html = page.text().await.expect("html");
    assert!(
        html.contains("<html lang=\"sv\">") && html.contains("Logga in"),
        "{html}"
    );

    // A wrong password: the form again, with the error in Swedish.
    let wrong = post_form(
        &sv,
        format!("{}/sign-in", app.base),
        &[
            ("email", "reception@acme.example"),
            ("password", "fel-lösenord-här"),
        ],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let html = wrong.text().await.expect("html");
    assert!(html.contains("Fel e-post eller lösenord."), "{html}");
    assert!(
        html.contains("value=\"reception@acme.example\""),
        "the e-mail is kept"
    );

    // A form from another site is refused.
    let forged = sv
        .post(format!("{}/sign-in", app.base))
        .header("origin", "https://evil.example")
        .form(&[("email", "reception@acme.example"), ("password", PASSWORD)])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    // The receptionist signs in and lands on the switchboard, with Anna only; the
    // status says why (the PBX text on hover), "Åter" only when.
    let signed_in = post_form(
        &sv,
        format!("{}/sign-in", app.base),
        &[("email", "reception@acme.example"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(signed_in.url().path(), "/switchboard");
    let html = signed_in.text().await.expect("html");
    assert!(
        !html.contains("Beta AB"),
        "another company's instance: {html}"
    );
    assert!(
        html.contains("Anna Andersson") && html.contains("title=\"Lunch, åter"),
        "{html}"
    );
    assert!(
        html.contains("href=\"/users/"),
        "the name opens the person: {html}"
    );
    assert!(html.contains("201"));
    assert!(!html.contains("Bo Berg"), "{html}");
    let filtered = page_at(&sv, format!("{}/switchboard?q=nobody", app.base)).await;
    assert!(filtered.contains("Ingen är borta just nu."), "{filtered}");

    // The live stream's first event carries the rows.
    let mut events = sv
        .get(format!("{}/switchboard/events", app.base))
        .send()
        .await
        .expect("events");
    assert_eq!(
        events
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let mut seen = String::new();
    while !seen.contains("\n\n") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), events.chunk())
            .await
            .expect("in time")
            .expect("chunk")
            .expect("more");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.starts_with("event: rows"), "{seen}");
    assert!(seen.contains("Anna Andersson"), "{seen}");
    drop(events);

    // Switched to English: the same page in English, remembered.
    let switched = sv
        .get(format!("{}/lang?to=en&back=/switchboard", app.base))
        .send()
        .await
        .expect("switch");
    assert_eq!(switched.url().path(), "/switchboard");
    let html = switched.text().await.expect("html");
    assert!(
        html.contains("<html lang=\"en\">") && html.contains("Lunch, back"),
        "{html}"
    );
    assert!(html.contains("Switchboard") && html.contains("Sign out"));
    let outside = sv
        .get(format!("{}/lang?to=en&back=//evil.example/", app.base))
        .send()
        .await
        .expect("switch");
    // To `/`: a receptionist's `/` is the switchboard.
    assert_eq!(
        outside.url().path(),
        "/switchboard",
        "never away from this site"
    );
    assert!(outside.url().as_str().starts_with(&app.base));

    // Signing out needs the form's token.
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the sign-out form's token")
        .to_owned();
    let refused = post_form(&sv, format!("{}/sign-out", app.base), &[("csrf", "wrong")]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let out = post_form(
        &sv,
        format!("{}/sign-out", app.base),
        &[("csrf", csrf.as_str())],
    )
    .await;
    assert!(out.url().path().ends_with("/sign-in"));
    let again = sv
        .get(format!("{}/switchboard", app.base))
        .send()
        .await
        .expect("get");
    assert!(again.url().path().ends_with("/sign-in"), "signed out");

    // An English browser gets English from the start.
    let en = browser("en-GB,en;q=0.9");
    let html = page_at(&en, format!("{}/sign-in", app.base)).await;
    assert!(
        html.contains("<html lang=\"en\">") && html.contains("Sign in"),
        "{html}"
    );
}

/// A browser in `language` signed in as `email` through the form.
pub(crate) async fn signed_in_browser(
    app: &crate::helpers::App,
    language: &str,
    email: &str,
) -> reqwest::Client {
    let b = browser(language);
    b.post(format!("{}/sign-in", app.base))
        .form(&[("email", email), ("password", PASSWORD)])
        .send()
        .await
        .expect("sign in");
    b
}

/// A page's HTML.
pub(crate) async fn page_at(client: &reqwest::Client, url: String) -> String {
    client
        .get(url)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html")
}

/// Posts a form as the browser would.
pub(crate) async fn post_form(
    client: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    client.post(url).form(fields).send().await.expect("post")
}

/// The session's CSRF token as a page's forms carry it.
pub(crate) fn form_token(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a form's token")
        .to_owned()
}

#[tokio::test]
async fn an_admin_adds_imports_and_removes_users_and_sees_why_someone_is_diverted() {
    let app = spawn_app().await;
    let api = app.signed_in("it@acme.example").await;
    let instance = graph_instance(&api, app.acme).await;
    let en = signed_in_browser(&app, "en", "it@acme.example").await;
    let dashboard = page_at(&en, format!("{}/", app.base)).await;
    assert!(
        dashboard.contains(&format!("href=\"/instances/{instance}\"")),
        "{dashboard}"
    );
    let page = page_at(&en, format!("{}/instances/{instance}", app.base)).await;
    let csrf = form_token(&page);

    // One user by the form; a bad address is named.
    let added = post_form(
        &en,
        format!("{}/instances/{instance}/users", app.base),
        &[
            ("csrf", csrf.as_str()),
            ("email", "anna@acme.example"),
            ("name", "Anna Andersson"),
            ("extension", "201"),
        ],
    )
    .await;
    assert_eq!(added.status(), StatusCode::OK);
    let html = added.text().await.expect("html");
    assert!(
        html.contains("Added anna@acme.example") && html.contains("Anna Andersson"),
        "{html}"
    );
    let bad = post_form(
        &en,
        format!("{}/instances/{instance}/users", app.base),
        &[
            ("csrf", csrf.as_str()),
            ("email", "anna(at)acme"),
            ("name", ""),
            ("extension", ""),
        ],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.expect("html");
    assert!(
        html.contains("id=\"add-error\"") && html.contains("is not an e-mail address"),
        "the message in the form: {html}"
    );
    assert!(
        html.contains("value=\"anna(at)acme\"") && html.contains("aria-invalid=\"true\""),
        "what was typed is kept, the field marked: {html}"
    );
    let forged = post_form(
        &en,
        format!("{}/instances/{instance}/users", app.base),
        &[("csrf", "forged"), ("email", "eve@acme.example")],
    )
    .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    // A CSV: the good rows added, the bad one reported with its line.
    let imported = post_form(
        &en,
        format!("{}/instances/{instance}/import", app.base),
        &[
            ("csrf", csrf.as_str()),
            (
                "csv",
                "bo@acme.example,Bo Berg,202\nnot-an-address,X,\ncai@acme.example,,",
            ),
        ],
    )
    .await
    .text()
    .await
    .expect("html");
    assert!(
        imported.contains("2 added") && imported.contains("1 errors"),
        "{imported}"
    );
    assert!(
        imported.contains("not-an-address") && imported.contains("Bo Berg"),
        "{imported}"
    );
    assert!(
        imported.contains(">not-an-address,X,\n</textarea>"),
        "the failed line is kept in the box: {imported}"
    );

    // In Swedish: an extension another user has is refused, by the form and by a CSV
    // row, as is a row that gives a user already here another extension; the messages
    // are Swedish and the typed values kept.
    let sv = signed_in_browser(&app, "sv", "it@acme.example").await;
    let sv_csrf = form_token(&page_at(&sv, format!("{}/instances/{instance}", app.base)).await);
    let taken = post_form(
        &sv,
        format!("{}/instances/{instance}/users", app.base),
        &[
            ("csrf", sv_csrf.as_str()),
            ("email", "dan@acme.example"),
            ("name", "Dan"),
            ("extension", "201"),
        ],
    )
    .await;
    assert_eq!(taken.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = taken.text().await.expect("html");
    assert!(
        html.contains("Anknytning 201 har redan Anna Andersson i företaget.")
            && html.contains("value=\"dan@acme.example\""),
        "{html}"
    );
    let csv = post_form(
        &sv,
        format!("{}/instances/{instance}/import", app.base),
        &[
            ("csrf", sv_csrf.as_str()),
            (
                "csv",
                "bo@acme.example,Bo Berg,299\neva@acme.example,Eva,202\nfia@acme.example,Fia,12a",
            ),
        ],
    )
    .await
    .text()
    .await
    .expect("html");
    assert!(
        csv.contains("Finns redan, med anknytning 202 (raden säger 299")
            && csv.contains("Anknytning 202 har redan Bo Berg i företaget.")
            && csv.contains("är ingen anknytning"),
        "{csv}"
    );
    for english in ["is not", "already", "expected", "columns"] {
        let table = csv
            .split("id=\"import-errors\"")
            .nth(1)
            .and_then(|r| r.split("</table>").next())
            .unwrap_or("");
        assert!(
            !table.contains(english),
            "English on a Swedish page: {table}"
        );
    }

    // Anna at lunch: her page draws the block and says which booking it came from.
    let users: serde_json::Value = api
        .get(&format!("/api/v1/instances/{instance}/users"))
        .await
        .1;
    let anna = users
        .as_array()
        .and_then(|u| u.iter().find(|u| u["email"] == "anna@acme.example"))
        .and_then(|u| u["id"].as_str())
        .expect("anna")
        .to_owned();
    lunch_now(&app, anna.parse().expect("uuid")).await;
    let html = page_at(&en, format!("{}/users/{anna}", app.base)).await;
    assert!(html.contains("class=\"block divert\""), "{html}");
    assert!(html.contains("Lunch, back"), "{html}");
    assert!(
        html.contains("(title not shown)") && html.contains("Outlook: Busy"),
        "the booking, without its title, its state as Outlook names it: {html}"
    );
    assert!(
        html.contains("href=\"#absence-0\"") && html.contains("id=\"absence-0\""),
        "a block on the bar opens its absence below (a tap on a phone): {html}"
    );

    // The remove button asks first, saying what goes; nothing is gone yet.
    let asked = post_form(
        &en,
        format!("{}/users/{anna}/remove", app.base),
        &[("csrf", csrf.as_str())],
    )
    .await
    .text()
    .await
    .expect("html");
    assert!(
        asked.contains("Remove Anna Andersson (anna@acme.example)")
            && asked.contains("cannot be undone")
            && asked.contains("name=\"confirm\" value=\"yes\""),
        "{asked}"
    );
    assert!(
        page_at(&en, format!("{}/users/{anna}", app.base))
            .await
            .contains("Lunch, back"),
        "still there"
    );
    // Confirmed: gone with its data.
    let removed = post_form(
        &en,
        format!("{}/users/{anna}/remove", app.base),
        &[("csrf", csrf.as_str()), ("confirm", "yes")],
    )
    .await;
    assert_eq!(removed.url().path(), format!("/instances/{instance}"));
    let html = removed.text().await.expect("html");
    assert!(!html.contains("anna@acme.example"), "{html}");
    assert_eq!(
        en.get(format!("{}/users/{anna}", app.base))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::NOT_FOUND
    );

    // The receptionist sees the users but no forms, and may not post them.
    let reader = signed_in_browser(&app, "sv", "reception@acme.example").await;
    let html = page_at(&reader, format!("{}/instances/{instance}", app.base)).await;
    assert!(
        html.contains("Bo Berg") && !html.contains("Lägg till användare"),
        "{html}"
    );
    let token = form_token(&html);
    let refused = post_form(
        &reader,
        format!("{}/instances/{instance}/users", app.base),
        &[("csrf", token.as_str()), ("email", "x@acme.example")],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

/// A calendar with one "LUN: Lunch" tomorrow 11:00–12:00 UTC.
pub(crate) fn lunch_tomorrow_ics() -> String {
    let day = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .tomorrow()
        .expect("tomorrow");
    let stamp = |h: i8| day.at(h, 0, 0, 0).strftime("%Y%m%dT%H%M%SZ").to_string();
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nBEGIN:VEVENT\r\nUID:lunch-1\r\nDTSTAMP:{}\r\nDTSTART:{}\r\nDTEND:{}\r\nSUMMARY:LUN: Lunch\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        stamp(8),
        stamp(11),
        stamp(12)
    )
}

#[tokio::test]
async fn the_rules_editor_previews_a_pasted_calendar_and_saves_only_valid_rules() {
    let app = spawn_app().await;
    let api = app.signed_in("it@acme.example").await;
    let instance = graph_instance(&api, app.acme).await;
    let en = signed_in_browser(&app, "en", "it@acme.example").await;
    let page = page_at(
        &en,
        format!("{}/instances/{instance}/rules?view=file", app.base),
    )
    .await;
    assert!(
        page.contains("days_ahead = 7") && page.contains("Save"),
        "{page}"
    );
    let csrf = form_token(&page);
    let rules = format!("{}/instances/{instance}/rules", app.base);

    // A mistake is shown with its line and column, and nothing is saved.
    let bad = post_form(
        &en,
        &rules,
        &[
            ("csrf", csrf.as_str()),
            ("settings", "template = \"prefix\"\ndays_ahead = \"many\"\n"),
            ("calendar", ""),
            ("action", "save"),
        ],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.expect("html");
    assert!(html.contains("rules file:2:"), "{html}");
    assert!(
        html.contains("days_ahead = &quot;many&quot;") || html.contains("days_ahead = \"many\""),
        "the text is kept: {html}"
    );

    // The preview: tomorrow's lunch under the prefix rules, in English.
    let preview = post_form(
        &en,
        &rules,
        &[
            ("csrf", csrf.as_str()),
            ("settings", "template = \"prefix\"\ndays_ahead = 7\n"),
            ("calendar", lunch_tomorrow_ics().as_str()),
            ("action", "preview"),
        ],
    )
    .await
    .text()
    .await
    .expect("html");
    assert!(
        preview.contains("id=\"preview\"") && preview.contains("Lunch, back"),
        "{preview}"
    );
    assert!(preview.contains("1 events read"), "{preview}");
    let garbage = post_form(
        &en,
        &rules,
        &[
            ("csrf", csrf.as_str()),
            ("settings", "template = \"prefix\"\n"),
            ("calendar", "this is not a calendar"),
            ("action", "preview"),
        ],
    )
    .await;
    assert_eq!(garbage.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        garbage
            .text()
            .await
            .expect("html")
            .contains("not an iCalendar file")
    );

    // A calendar that repeats every second since 1970 is refused at once, with the
    // reason, and the service answers others meanwhile.
    let bomb = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:bomb\r\nDTSTART:19700101T000000Z\r\nDTEND:19700101T000001Z\r\nRRULE:FREQ=SECONDLY\r\nSUMMARY:LUN: x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let fields = [
        ("csrf", csrf.as_str()),
        ("settings", "template = \"prefix\"\n"),
        ("calendar", bomb),
        ("action", "preview"),
    ];
    let started = std::time::Instant::now();
    let (dense, other) = tokio::join!(
        post_form(&en, &rules, &fields),
        page_at(&en, format!("{}/instances/{instance}", app.base)),
    );
    assert_eq!(dense.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "answered in {:?}",
        started.elapsed()
    );
    let html = dense.text().await.expect("html");
    assert!(html.contains("repeats too often"), "{html}");
    assert!(!other.is_empty());

    // Saved: the instance has the new rules.
    let saved = post_form(
        &en,
        &rules,
        &[
            ("csrf", csrf.as_str()),
            (
                "settings",
                "template = \"showas-divert\"\ndays_ahead = 10\n",
            ),
            ("calendar", ""),
            ("action", "save"),
        ],
    )
    .await
    .text()
    .await
    .expect("html");
    assert!(saved.contains("Saved."), "{saved}");
    let stored = app
        .store
        .instance(instance.parse().expect("id"))
        .await
        .expect("instance");
    assert_eq!(stored.settings.days_ahead, 10);

    // The receptionist may preview but not save.
    let reader = signed_in_browser(&app, "en", "reception@acme.example").await;
    let page = page_at(&reader, rules.clone()).await;
    assert!(!page.contains("value=\"save\""), "{page}");
    let token = form_token(&page);
    let refused = post_form(
        &reader,
        &rules,
        &[
            ("csrf", token.as_str()),
            ("settings", "template = \"prefix\"\n"),
            ("calendar", ""),
            ("action", "save"),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.store
            .instance(instance.parse().expect("id"))
            .await
            .expect("instance")
            .settings
            .days_ahead,
        10
    );
}

#[tokio::test]
async fn an_admin_creates_instances_from_the_ui_and_sees_the_exchange_powershell() {
    let app = spawn_app().await;
    let sv = signed_in_browser(&app, "sv", "it@acme.example").await;
    let dashboard = page_at(&sv, format!("{}/", app.base)).await;
    let new = format!("/companies/{}/instances/new", app.acme);
    assert!(dashboard.contains(&new), "{dashboard}");
    assert!(!dashboard.contains(&format!("/companies/{}/instances/new", app.beta)));

    // For Exchange the page shows the PowerShell for the version chosen.
    let page = page_at(&sv, format!("{}{new}?kind=ews", app.base)).await;
    assert!(
        page.contains("Förbered Exchange") && page.contains("New-ManagementRoleAssignment"),
        "{page}"
    );
    let csrf = form_token(&page);

    // A wrong address is named, the form kept; then a good one is created.
    let bad = post_form(
        &sv,
        format!("{}{new}", app.base),
        &[
            ("csrf", csrf.as_str()),
            ("kind", "ews"),
            ("name", "Exchange"),
            ("url", "mail.acme.example"),
            ("username", "ACME\\svc-kalsync"),
            ("password", "pw"),
            ("auth", "ntlm"),
            ("version", "2010"),
            ("access", "impersonation"),
        ],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.expect("html");
    assert!(
        html.contains("EWS-adress")
            && !html.contains("source.url")
            && html.contains("value=\"Exchange\""),
        "the field by its Swedish name: {html}"
    );
    assert!(
        html.contains("Set-ThrottlingPolicy") || html.contains("ThrottlingPolicy"),
        "2010's PowerShell: {html}"
    );
    let made = post_form(
        &sv,
        format!("{}{new}", app.base),
        &[
            ("csrf", csrf.as_str()),
            ("kind", "graph"),
            ("name", "Microsoft 365"),
            ("tenant", crate::helpers::TENANT),
            ("client_id", "c"),
            ("client_secret", "s3cret"),
        ],
    )
    .await;
    assert!(
        made.url().path().starts_with("/instances/"),
        "{}",
        made.url()
    );
    // Another by the same name (in any case) is refused: two could not be told apart.
    let again = post_form(
        &sv,
        format!("{}{new}", app.base),
        &[
            ("csrf", csrf.as_str()),
            ("kind", "graph"),
            ("name", "microsoft 365"),
            ("tenant", crate::helpers::TENANT),
            ("client_id", ""),
            ("client_secret", "s3cret"),
        ],
    )
    .await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = again.text().await.expect("html");
    assert!(
        html.contains("Företaget har redan en instans med det namnet."),
        "{html}"
    );
    let list = app.store.instances(app.acme).await.expect("instances");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].source.kind(), "graph");

    // Not for another company, nor for a reader.
    assert_eq!(
        sv.get(format!("{}/companies/{}/instances/new", app.base, app.beta))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::NOT_FOUND
    );
    let reader = signed_in_browser(&app, "sv", "reception@acme.example").await;
    assert_eq!(
        reader
            .get(format!("{}{new}", app.base))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::FORBIDDEN
    );

    // A browser gets those refusals as pages in its language with the way back; the API
    // answers JSON as ever.
    let page = |client: &reqwest::Client, path: String| {
        let client = client.clone();
        async move {
            let answer = client
                .get(path)
                .header("accept", "text/html,application/xhtml+xml")
                .send()
                .await
                .expect("get");
            (answer.status(), answer.text().await.expect("text"))
        }
    };
    let (status, html) = page(
        &sv,
        format!("{}/companies/{}/instances/new", app.base, app.beta),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        html.contains("<html lang=\"sv\">")
            && html.contains("Sidan finns inte")
            && html.contains("href=\"/\""),
        "{html}"
    );
    let (status, html) = page(&reader, format!("{}{new}", app.base)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("Inte tillåtet"), "{html}");
    let api = sv
        .get(format!("{}/api/v1/companies/{}", app.base, app.beta))
        .header("accept", "text/html")
        .send()
        .await
        .expect("get");
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
    assert!(api.text().await.expect("text").contains("not_found"));
}

#[tokio::test]
async fn a_switchboard_stream_ends_at_sign_out_and_one_person_holds_a_few() {
    let app = spawn_app().await;
    let sv = signed_in_browser(&app, "sv", "reception@acme.example").await;
    let url = format!("{}/switchboard/events", app.base);
    let mut open = Vec::new();
    for _ in 0..kalsync_web::auth::STREAMS_PER_PERSON {
        let stream = sv.get(&url).send().await.expect("events");
        assert_eq!(stream.status(), StatusCode::OK);
        open.push(stream);
    }
    let refused = sv.get(&url).send().await.expect("answer");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another person is not held back by this one's streams.
    let other = signed_in_browser(&app, "sv", "it@acme.example").await;
    assert_eq!(
        other.get(&url).send().await.expect("events").status(),
        StatusCode::OK
    );

    // Signed out: every stream of the session ends by itself.
    let html = page_at(&sv, format!("{}/switchboard", app.base)).await;
    let csrf = form_token(&html);
    post_form(
        &sv,
        format!("{}/sign-out", app.base),
        &[("csrf", csrf.as_str())],
    )
    .await;
    let mut stream = open.pop().expect("a stream");
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream went on after signing out");
}
