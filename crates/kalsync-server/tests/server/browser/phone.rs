//! Every page at phone width (390×844), in Swedish and English, as the operator, a
//! company admin and a receptionist: nothing is wider than the screen (no sideways
//! scrolling of the page), tables become stacked rows, and axe-core finds nothing
//! serious or critical (WCAG 2.1 A and AA). Screenshots of each.

use fantoccini::{Client, Locator};

use super::{ONE_BROWSER, accessible, account, browser, click, shot, sign_in, until_text};
use crate::support::Launch;
use crate::support::acme::{self, ANNA};
use crate::support::sims::anna_at_lunch;

/// Opens `path` and asserts the page is no wider than the window; its screenshot.
async fn fits(c: &Client, base: &str, path: &str, name: &str) {
    c.goto(&format!("{base}{path}")).await.expect("goto");
    until_text(c, "Kalsync", 5).await;
    fits_here(c, name).await;
}

/// Asserts the page shown is no wider than the window; its screenshot.
async fn fits_here(c: &Client, name: &str) {
    let widths = c
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth, location.pathname];",
            vec![],
        )
        .await
        .expect("widths");
    let (page, window) = (
        widths[0].as_u64().unwrap_or(u64::MAX),
        widths[1].as_u64().unwrap_or(0),
    );
    shot(name, &c.screenshot().await.expect("png"));
    accessible(c, name).await;
    if name.ends_with("-sv") {
        swedish(c, name).await;
    }
    assert!(
        page <= window,
        "{} is {page} px wide on a {window} px screen (see {name}.png)",
        widths[2]
    );
}

/// Words of the service's English messages and pages that must not show on a Swedish
/// page (the API's validation, the checks, the reports, the navigation).
const ENGLISH: [&str; 16] = [
    "required",
    "expected",
    "is not an",
    "already",
    "not found",
    "characters",
    "columns",
    "Sign out",
    "Dashboard",
    "Switchboard",
    "Users (",
    "Rules and settings",
    "Connection and name",
    "never",
    "Remove",
    "Save",
];

/// Asserts the Swedish page shows none of [`ENGLISH`].
async fn swedish(c: &Client, name: &str) {
    let text = c
        .find(Locator::Css("body"))
        .await
        .expect("body")
        .text()
        .await
        .expect("text");
    for english in ENGLISH {
        assert!(
            !text.contains(english),
            "{name}: English `{english}` on a Swedish page:\n{text}"
        );
    }
}

#[tokio::test]
async fn every_page_fits_a_phone() {
    let _one = ONE_BROWSER.lock().await;
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let (calendars, sim_url, _graph, _) = anna_at_lunch().await;
    // Anna is in a Teams call: the switchboard's Teams column says so.
    calendars
        .set_client_presence(ANNA, Some(("Busy", "InACall")))
        .expect("teams");
    let mut settings = acme::settings(&sim_url);
    settings.companies[0]
        .targets
        .push(kalsync_server::settings::TargetDecl::Teams {
            name: "Teams".into(),
            presence: false,
            language: kalsync_server::settings::TeamsLanguage::Sv,
        });
    settings.companies[0].instances[0].settings = Some(
        toml::from_str("template = \"prefix\"\n\n[teams]\nread = true\npoll_seconds = 10\n")
            .expect("rules"),
    );
    settings.accounts = vec![
        account("ops@operator.example", "operator", None),
        account("it@acme.example", "company_admin", Some("Acme")),
        account("reception@acme.example", "reader", Some("Acme")),
    ];
    let app = Launch::new(settings).spawn().await;
    let base = app.base.clone();
    let store = app.store();
    let company = store.companies().await.expect("companies").remove(0).id;
    let instance = store
        .instances(company)
        .await
        .expect("instances")
        .remove(0)
        .id;
    let anna = store
        .users(instance)
        .await
        .expect("users")
        .into_iter()
        .find(|u| u.email.as_str() == ANNA)
        .expect("anna")
        .id;
    // Acme's PBX directory: an uploaded list with Anna, for its page.
    store
        .set_pbx_directory(
            company,
            Some(&kalsync_directory::PbxSource::Upload),
            None,
            jiff::Timestamp::now(),
        )
        .await
        .expect("pbx");
    let list = kalsync_directory::PbxList::from_csv(&format!(
        "E-post;Anknytning;Namn\n{ANNA};201;Anna Andersson\nbo@acme.example;202;Bo Berg\n"
    ))
    .expect("list");
    store
        .save_pbx_list(company, None, Ok(&list), jiff::Timestamp::now())
        .await
        .expect("list saved");
    // The desktop switchboard with its Teams column, once Teams was read.
    c.set_window_size(1280, 800).await.expect("desktop size");
    c.goto(&format!("{base}/sign-in")).await.expect("goto");
    sign_in(&c, "reception@acme.example").await;
    c.goto(&format!("{base}/switchboard?all=1"))
        .await
        .expect("goto");
    until_text(&c, "I samtal", 15).await;
    fits_here(&c, "switchboard-teams-sv").await;
    click(&c, Locator::Css("form[action='/sign-out'] button")).await;
    until_text(&c, "Logga in", 5).await;
    c.set_window_size(390, 844).await.expect("phone size");

    for lang in ["sv", "en"] {
        c.goto(&format!("{base}/lang?to={lang}&back=/sign-in"))
            .await
            .expect("language");
        fits(&c, &base, "/sign-in", &format!("phone-sign-in-{lang}")).await;
        let on = |path: &str, name: &'static str| (path.to_owned(), name);
        for (who, pages) in [
            (
                "ops@operator.example",
                vec![
                    on("/", "dashboard"),
                    on("/switchboard?all=1", "switchboard-operator"),
                    on("/overview", "overview"),
                    on("/operators", "operators"),
                    on("/account", "account"),
                ],
            ),
            (
                "it@acme.example",
                vec![
                    on("/", "dashboard-admin"),
                    on(
                        &format!("/instances/{instance}/overview"),
                        "instance-overview",
                    ),
                    on(&format!("/instances/{instance}"), "instance"),
                    on(
                        &format!("/instances/{instance}/settings"),
                        "instance-settings",
                    ),
                    on(&format!("/instances/{instance}/rules"), "rules"),
                    on(
                        &format!("/instances/{instance}/directory"),
                        "instance-directory",
                    ),
                    on(&format!("/users/{anna}"), "user"),
                    on(
                        &format!("/companies/{company}/instances/new"),
                        "new-instance",
                    ),
                    on(&format!("/companies/{company}/accounts"), "accounts"),
                    on(&format!("/companies/{company}/pbx"), "pbx-directory"),
                ],
            ),
            (
                "reception@acme.example",
                vec![
                    on("/switchboard", "switchboard"),
                    on(&format!("/users/{anna}"), "user-reader"),
                ],
            ),
        ] {
            c.goto(&format!("{base}/sign-in")).await.expect("goto");
            sign_in(&c, who).await;
            until_text(&c, who, 5).await;
            for (path, name) in pages {
                fits(&c, &base, &path, &format!("phone-{name}-{lang}")).await;
            }
            click(&c, Locator::Css("form[action='/sign-out'] button")).await;
            until_text(&c, if lang == "sv" { "Logga in" } else { "Sign in" }, 5).await;
        }
    }
    // Removing a user asks first, saying what goes; cancelled, then confirmed.
    c.goto(&format!("{base}/sign-in")).await.expect("goto");
    sign_in(&c, "it@acme.example").await;
    until_text(&c, "it@acme.example", 5).await;
    c.goto(&format!("{base}/instances/{instance}"))
        .await
        .expect("goto");
    let remove = Locator::Css("form[action$='/remove'] button");
    click(&c, remove).await;
    let text = until_text(&c, "cannot be undone", 5).await;
    assert!(text.contains("Anna"), "{text}");
    fits_here(&c, "phone-confirm-remove-en").await;
    click(&c, Locator::LinkText("Cancel")).await;
    let text = until_text(&c, "Users (1)", 5).await;
    assert!(text.contains(ANNA), "cancelled: {text}");
    click(&c, remove).await;
    until_text(&c, "cannot be undone", 5).await;
    click(&c, Locator::Css("#confirm button.danger")).await;
    let text = until_text(&c, "Users (0)", 5).await;
    assert!(!text.contains(ANNA), "removed: {text}");

    c.close().await.expect("close");
    app.stop().await;
}
