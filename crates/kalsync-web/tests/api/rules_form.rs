//! The rules as a form: a rule changed, moved, added and removed, the settings as
//! fields, all saved as the rules file the advanced tab shows; a mistake named by its
//! rule and field with nothing saved; the live preview follows the form.

use reqwest::StatusCode;

use crate::helpers::{graph_instance, spawn_app};
use crate::ui::{form_token, lunch_tomorrow_ics, page_at, signed_in_browser};

/// The form's fields for one rule.
fn rule(i: usize, prefix: &str, reason: &str, mode: &str) -> Vec<(String, String)> {
    vec![
        (format!("r{i}.prefix"), prefix.to_owned()),
        (format!("r{i}.reason"), reason.to_owned()),
        (format!("r{i}.mode"), mode.to_owned()),
    ]
}

#[tokio::test]
async fn the_rules_form_and_the_rules_file_edit_the_same_settings() {
    let app = spawn_app().await;
    let api = app.signed_in("it@acme.example").await;
    let instance = graph_instance(&api, app.acme).await;
    let sv = signed_in_browser(&app, "sv", "it@acme.example").await;
    let url = format!("{}/instances/{instance}/rules", app.base);
    let page = page_at(&sv, url.clone()).await;
    assert!(
        page.contains("Synkroniseringsregler") || page.contains("Regel 1"),
        "the form by default: {page}"
    );
    assert!(page.contains("Avancerat: regelfilen"), "{page}");
    let csrf = form_token(&page);
    let id: kalsync_store::InstanceId = instance.parse().expect("id");
    let stored = || async { app.store.instance(id).await.expect("instance").settings };
    let base = stored().await.to_toml();
    let form = format!("{url}/form");

    // Two rules, the settings as fields; saved.
    let mut fields: Vec<(String, String)> = vec![
        ("csrf".into(), csrf.clone()),
        ("base".into(), base.clone()),
        ("rules".into(), "2".into()),
        ("days_ahead".into(), "5".into()),
        ("time_zone".into(), "Europe/Stockholm".into()),
        ("user_choice".into(), "restricted".into()),
        ("allowed".into(), "lunch".into()),
        ("hide_titles".into(), "on".into()),
        ("private".into(), "skip".into()),
        ("wh.days".into(), "mon".into()),
        ("wh.days".into(), "tue".into()),
        ("wh.start".into(), "07:30".into()),
        ("wh.end".into(), "16:00".into()),
        ("r1.show_as".into(), "oof".into()),
    ];
    fields.extend(rule(0, "LUN", "lunch", "info"));
    fields.extend(rule(1, "", "out_of_office", "divert"));
    let pairs = |extra: &[(&str, &str)]| with(&fields, extra);
    let saved = sv
        .post(&form)
        .form(&pairs(&[("op", "save")]))
        .send()
        .await
        .expect("save");
    assert_eq!(saved.status(), StatusCode::OK);
    assert!(saved.text().await.expect("html").contains("Sparat."));
    let s = stored().await;
    assert_eq!(s.rules.len(), 2);
    assert_eq!(
        s.rules[0].when.prefix.as_ref().map(ToString::to_string),
        Some("LUN:".into())
    );
    assert_eq!(s.rules[0].mode.as_str(), "info");
    assert_eq!(s.rules[1].reason.as_str(), "out_of_office");
    assert_eq!(s.days_ahead, 5);
    assert!(s.hide_titles);
    assert_eq!(s.allowed_reasons.len(), 1);
    assert_eq!(s.working_hours.start().to_string(), "07:30:00");
    // Kept from the file though the form has no field for them.
    assert_eq!(s.reasons, app_reasons(&base));

    // The advanced tab shows what the form saved.
    let file = page_at(&sv, format!("{url}?view=file")).await;
    assert!(
        file.contains("prefix = &quot;LUN:&quot;") || file.contains("prefix = \"LUN:\""),
        "{file}"
    );

    // Moved, added, removed: shown, not saved until saved.
    let moved = post_form_pairs(&sv, &form, &pairs(&[("op", "down:0")])).await;
    let first = moved.find("name=\"r0.reason\"").expect("rule 1");
    assert!(
        moved[first..]
            .split("</select>")
            .next()
            .unwrap_or("")
            .contains("value=\"out_of_office\" selected"),
        "the away rule is first now"
    );
    assert_eq!(
        stored().await.rules[0].reason.as_str(),
        "lunch",
        "not saved"
    );
    let added = post_form_pairs(&sv, &form, &pairs(&[("op", "add")])).await;
    assert!(added.contains("Regel 3"), "{added}");
    let removed = post_form_pairs(&sv, &form, &pairs(&[("op", "remove:1")])).await;
    assert!(removed.contains("Regel 1") && !removed.contains("Regel 2"));

    // A mistake is named by its rule and field; nothing is saved.
    let bad = sv
        .post(&form)
        .form(&pairs(&[("op", "save"), ("r1.min", "soon")]))
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.expect("html");
    assert!(html.contains("Regel 2: Minst"), "{html}");
    assert!(
        html.contains("value=\"soon\""),
        "the form keeps what was typed"
    );
    assert!(stored().await.rules[1].when.min_duration.is_none());

    // The live preview follows the form: the lunch as information, then diverted (users'
    // own choices off, or "LUN:" would be Anna's own choice, diverted).
    let preview = format!("{form}/preview");
    let ics = lunch_tomorrow_ics();
    for (k, v) in &mut fields {
        if k == "user_choice" {
            *v = "off".into();
        }
    }
    let pairs = |extra: &[(&str, &str)]| with(&fields, extra);
    let live = post_form_pairs(&sv, &preview, &pairs(&[("calendar", ics.as_str())])).await;
    assert!(
        live.contains("class=\"info\"") && !live.contains("<html"),
        "{live}"
    );
    let mut diverted = pairs(&[("calendar", ics.as_str())]);
    for (k, v) in &mut diverted {
        if k == "r0.mode" {
            *v = "divert".into();
        }
    }
    let live = post_form_pairs(&sv, &preview, &diverted).await;
    assert!(live.contains("class=\"divert\""), "{live}");

    // A template's rules in place of the table's.
    let templated = post_form_pairs(
        &sv,
        &form,
        &pairs(&[("op", "template"), ("template", "showas-divert")]),
    )
    .await;
    assert!(templated.contains("Regel 3"), "{templated}");
}

/// The form's fields and `extra` ones.
fn with(fields: &[(String, String)], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut all = fields.to_vec();
    all.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    all
}

/// The reason catalogue of a rules file.
fn app_reasons(file: &str) -> kalsync_core::ReasonCatalogue {
    kalsync_core::InstanceSettings::from_toml(file)
        .expect("settings")
        .reasons
}

async fn post_form_pairs(
    client: &reqwest::Client,
    url: &str,
    pairs: &[(String, String)],
) -> String {
    let answer = client.post(url).form(pairs).send().await.expect("post");
    let status = answer.status();
    let html = answer.text().await.expect("html");
    assert_eq!(status, StatusCode::OK, "{html}");
    html
}

/// The form's routes are the instance's: another company's admin gets 404 and changes
/// nothing, a receptionist may look but not save, and a form from another site is
/// refused.
#[tokio::test]
async fn the_rules_form_is_refused_to_another_company_a_reader_and_another_site() {
    let app = spawn_app().await;
    let api = app.signed_in("it@acme.example").await;
    let instance = graph_instance(&api, app.acme).await;
    let id: kalsync_store::InstanceId = instance.parse().expect("id");
    let before = app.store.instance(id).await.expect("instance").settings;
    let url = format!("{}/instances/{instance}/rules/form", app.base);
    let attempt = |csrf: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("base".to_owned(), "days_ahead = 3\n".to_owned()),
            ("rules".to_owned(), "0".to_owned()),
            ("op".to_owned(), "save".to_owned()),
        ]
    };

    let beta = signed_in_browser(&app, "en", "it@beta.example").await;
    let beta_csrf = form_token(&page_at(&beta, format!("{}/", app.base)).await);
    for path in ["", "/preview"] {
        let answer = beta
            .post(format!("{url}{path}"))
            .form(&attempt(&beta_csrf))
            .send()
            .await
            .expect("post");
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let overview = beta
        .get(format!("{}/instances/{instance}/overview", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(overview.status(), StatusCode::NOT_FOUND);
    // Every company's page is the operator's alone; without a session it asks for one.
    let all = beta
        .get(format!("{}/overview", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(all.status(), StatusCode::FORBIDDEN);
    let all = all.text().await.expect("html");
    assert!(!all.contains("Acme") && !all.contains("anna@"), "{all}");
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{}/overview", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);

    let reader = signed_in_browser(&app, "en", "reception@acme.example").await;
    let page = page_at(&reader, format!("{}/instances/{instance}/rules", app.base)).await;
    assert!(!page.contains("id=\"save-rules\""), "no save for a reader");
    let answer = reader
        .post(&url)
        .form(&attempt(&form_token(&page)))
        .send()
        .await
        .expect("post");
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);

    let admin = signed_in_browser(&app, "en", "it@acme.example").await;
    let csrf =
        form_token(&page_at(&admin, format!("{}/instances/{instance}/rules", app.base)).await);
    let forged = admin
        .post(&url)
        .header("origin", "https://evil.example")
        .form(&attempt(&csrf))
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    assert_eq!(
        app.store.instance(id).await.expect("instance").settings,
        before,
        "nothing saved"
    );
}
