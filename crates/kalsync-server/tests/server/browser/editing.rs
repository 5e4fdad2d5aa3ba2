//! Editing at desktop width, as One X's admins would: the operator goes from every
//! company to an instance and through its tabs; a company admin changes a rule in the
//! form and the preview beside it follows, the file tab shows the same; a wrong e-mail
//! keeps what was typed; removing the instance asks first and is cancelled.

use fantoccini::{Client, Locator};

use super::{ONE_BROWSER, accessible, account, browser, click, fill, shot, sign_in, until_text};
use crate::support::Launch;
use crate::support::acme;
use crate::support::polling;
use crate::support::sims::anna_at_lunch;

/// The text of the element `css` once it contains `text` (at most five seconds).
async fn until_in(c: &Client, css: &str, text: &str) -> String {
    let mut seen = String::new();
    let appeared = polling(
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(5),
        async || {
            if let Ok(element) = c.find(Locator::Css(css)).await
                && let Ok(t) = element.text().await
            {
                seen = t;
            }
            seen.contains(text)
        },
    )
    .await;
    assert!(appeared, "`{text}` never appeared in {css}: {seen}");
    seen
}

/// The value of the field `css`.
async fn value(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .expect(css)
        .prop("value")
        .await
        .expect("value")
        .unwrap_or_default()
}

/// The text of the tab marked as the current one.
async fn current_tab(c: &Client) -> String {
    c.find(Locator::Css("nav.tabs a[aria-current=page]"))
        .await
        .expect("a current tab")
        .text()
        .await
        .expect("text")
}

#[tokio::test]
async fn the_operator_walks_the_tabs_and_an_admin_edits_rules_users_and_removal() {
    let _one = ONE_BROWSER.lock().await;
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let (calendars, sim_url, _graph, _) = anna_at_lunch().await;
    // Acme's Sales group: Anna, and Bo, whose account has no mailbox address.
    calendars
        .add_user(kalsync_graph_sim::UserSpec {
            upn: "bo@acme.example".into(),
            id: None,
            display_name: Some("Bo Berg".into()),
            time_zone: "W. Europe Standard Time".into(),
            working_hours: None,
        })
        .expect("bo");
    calendars
        .set_profile(
            "bo@acme.example",
            kalsync_graph_sim::Profile {
                no_mail: true,
                ..kalsync_graph_sim::Profile::default()
            },
        )
        .expect("profile");
    calendars
        .add_group(kalsync_graph_sim::GroupSpec {
            id: Some("sales".into()),
            name: "Sales".into(),
            members: vec![crate::support::acme::ANNA.into(), "bo@acme.example".into()],
        })
        .expect("group");
    let mut settings = acme::settings(&sim_url);
    settings.accounts = vec![
        account("ops@operator.example", "operator", None),
        account("it@acme.example", "company_admin", Some("Acme")),
    ];
    let app = Launch::new(settings).spawn().await;
    let base = app.base.clone();
    let store = app.store();
    let company = store.companies().await.expect("companies").remove(0);
    let instance = store
        .instances(company.id)
        .await
        .expect("instances")
        .remove(0);

    // The operator: every company, then one instance's tabs, each marked where one is.
    c.goto(&format!("{base}/sign-in")).await.expect("goto");
    sign_in(&c, "ops@operator.example").await;
    until_text(&c, "ops@operator.example", 5).await;
    click(&c, Locator::LinkText("Alla företag")).await;
    let text = until_text(&c, "Alla personer", 5).await;
    assert!(
        text.contains(&company.name) && text.contains("borta nu"),
        "{text}"
    );
    shot("overview-sv", &c.screenshot().await.expect("png"));
    accessible(&c, "overview-sv").await;
    click(
        &c,
        Locator::Css(&format!(
            "#companies a[href='/instances/{}/overview']",
            instance.id
        )),
    )
    .await;
    until_text(&c, "Kö till växeln", 5).await;
    assert_eq!(current_tab(&c).await, "Översikt");
    for (href, tab) in [
        (format!("/instances/{}", instance.id), "Användare"),
        (
            format!("/instances/{}/rules", instance.id),
            "Regler och inställningar",
        ),
        (
            format!("/instances/{}/settings", instance.id),
            "Anslutning och namn",
        ),
    ] {
        click(&c, Locator::Css(&format!("nav.tabs a[href='{href}']"))).await;
        until_text(&c, &instance.name, 5).await;
        assert_eq!(current_tab(&c).await, tab, "{href}");
        let crumbs = c
            .find(Locator::Css("nav.crumbs"))
            .await
            .expect("where one is")
            .text()
            .await
            .expect("text");
        assert!(
            crumbs.contains(&company.name) && crumbs.contains(&instance.name),
            "{crumbs}"
        );
    }
    c.goto(&format!("{base}/lang?to=en&back=/overview"))
        .await
        .expect("English");
    until_text(&c, "Everyone", 5).await;
    shot("overview-en", &c.screenshot().await.expect("png"));
    c.goto(&format!("{base}/lang?to=sv&back=/overview"))
        .await
        .expect("Swedish");
    until_text(&c, "Alla personer", 5).await;
    click(&c, Locator::Css("form[action='/sign-out'] button")).await;
    until_text(&c, "Logga in", 5).await;

    // The admin changes a rule: the preview beside the form follows.
    sign_in(&c, "it@acme.example").await;
    until_text(&c, "it@acme.example", 5).await;
    c.goto(&format!("{base}/instances/{}/rules", instance.id))
        .await
        .expect("rules");
    until_text(&c, "Förhandsgranska", 5).await;
    c.find(Locator::Css("select#template"))
        .await
        .expect("templates")
        .select_by_value("showas-info")
        .await
        .expect("picked");
    click(&c, Locator::Css("button[value=template]")).await;
    until_text(&c, "Regel 2", 5).await;
    assert_eq!(value(&c, "select[name='r0.reason']").await, "busy");
    // A planning meeting in two hours, as Outlook exports it.
    let now = jiff::Timestamp::now();
    let stamp = |at: jiff::Timestamp| at.strftime("%Y%m%dT%H%M00Z").to_string();
    let calendar = format!(
        "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:planning\nSUMMARY:Planering\nDTSTART:{}\nDTEND:{}\nX-MICROSOFT-CDO-BUSYSTATUS:BUSY\nEND:VEVENT\nEND:VCALENDAR\n",
        stamp(now + jiff::SignedDuration::from_hours(2)),
        stamp(now + jiff::SignedDuration::from_hours(3)),
    );
    fill(&c, "#calendar", &calendar).await;
    until_in(&c, "#live", "Upptagen").await;
    c.find(Locator::Css("select[name='r0.reason']"))
        .await
        .expect("the first rule's reason")
        .select_by_value("meeting")
        .await
        .expect("picked");
    let live = until_in(&c, "#live", "Möte").await;
    assert!(!live.contains("Upptagen"), "{live}");
    // Beside the form, not under it, on a desktop screen.
    let placed = c
        .execute(
            "const f = document.getElementById('rules-form').getBoundingClientRect(); \
             const l = document.getElementById('live').getBoundingClientRect(); \
             return l.left >= f.right - 1 && l.top < f.bottom;",
            vec![],
        )
        .await
        .expect("layout");
    assert_eq!(
        placed,
        serde_json::Value::Bool(true),
        "the preview is beside"
    );
    shot("rules-form-preview-sv", &c.screenshot().await.expect("png"));
    accessible(&c, "rules-form-preview-sv").await;
    click(&c, Locator::Id("save-rules")).await;
    until_text(&c, "Sparat.", 5).await;
    click(&c, Locator::LinkText("Avancerat: regelfilen")).await;
    until_text(&c, "Förhandsgranska", 5).await;
    let file = value(&c, "#settings").await;
    assert!(
        file.contains("reason = \"meeting\"") && !file.contains("reason = \"busy\""),
        "{file}"
    );
    let saved = store.instance(instance.id).await.expect("instance");
    assert_eq!(saved.settings.rules[0].reason.as_str(), "meeting");

    // The directory tab: a refused setting keeps what was typed; saved, a dry run shows
    // what would change and who cannot be synchronised, and changes nobody.
    c.goto(&format!("{base}/instances/{}/directory", instance.id))
        .await
        .expect("directory");
    until_text(&c, "Katalogen bestämmer", 5).await;
    assert_eq!(current_tab(&c).await, "Katalog");
    fill(&c, "#groups", "sales").await;
    c.find(Locator::Css("select#attribute"))
        .await
        .expect("attribute")
        .select_by_value("businessPhones")
        .await
        .expect("picked");
    c.find(Locator::Css("select#cut"))
        .await
        .expect("cut")
        .select_by_value("pattern")
        .await
        .expect("picked");
    fill(&c, "#pattern", "\\d+").await;
    click(&c, Locator::Id("save-directory")).await;
    until_in(&c, "#directory-error", "fångstgrupp").await;
    assert_eq!(value(&c, "#groups").await.trim(), "sales");
    assert_eq!(value(&c, "#pattern").await, "\\d+");
    c.find(Locator::Css("select#cut"))
        .await
        .expect("cut")
        .select_by_value("last")
        .await
        .expect("picked");
    fill(&c, "#digits", "3").await;
    click(&c, Locator::Id("save-directory")).await;
    until_text(&c, "Sparat.", 5).await;
    let before = store.users(instance.id).await.expect("users").len();
    click(&c, Locator::Id("dry-run")).await;
    let text = until_in(&c, "#directory-status", "provkörning").await;
    assert!(text.contains("Medlemmar"), "{text}");
    until_in(&c, "#directory-problems", "Ingen e-postadress").await;
    assert_eq!(store.users(instance.id).await.expect("users").len(), before);
    shot("directory-sv", &c.screenshot().await.expect("png"));
    accessible(&c, "directory-sv").await;
    // Active Directory's fields show only when it is chosen (no script: the choice
    // decides by CSS).
    let ldap = c.find(Locator::Id("ldap")).await.expect("ldap fields");
    assert!(
        !ldap.is_displayed().await.expect("shown?"),
        "hidden for Entra ID"
    );
    c.find(Locator::Css("select#kind"))
        .await
        .expect("kind")
        .select_by_value("ldap")
        .await
        .expect("picked");
    assert!(ldap.is_displayed().await.expect("shown?"), "shown for LDAP");
    c.execute("document.getElementById('kind').scrollIntoView()", vec![])
        .await
        .expect("scrolled");
    shot("directory-ldap-sv", &c.screenshot().await.expect("png"));
    accessible(&c, "directory-ldap-sv").await;

    // A wrong e-mail: the form comes back with what was typed and says why beside it.
    c.goto(&format!("{base}/instances/{}", instance.id))
        .await
        .expect("users");
    until_text(&c, "Användare (", 5).await;
    let before = store.users(instance.id).await.expect("users").len();
    fill(&c, "#new-email", "bo@acme").await;
    fill(&c, "#new-name", "Bo Berg").await;
    fill(&c, "#new-extension", "209").await;
    click(&c, Locator::Css("form[action$='/users'] button")).await;
    let said = until_in(&c, "#add-error", "ingen giltig e-postadress").await;
    assert!(!said.contains("domain"), "in Swedish: {said}");
    assert_eq!(value(&c, "#new-email").await, "bo@acme");
    assert_eq!(value(&c, "#new-name").await, "Bo Berg");
    assert_eq!(value(&c, "#new-extension").await, "209");
    assert_eq!(store.users(instance.id).await.expect("users").len(), before);
    shot("add-user-error-sv", &c.screenshot().await.expect("png"));
    accessible(&c, "add-user-error-sv").await;

    // Removing the instance asks first, saying what goes; cancelled, nothing is gone.
    c.goto(&format!("{base}/instances/{}/settings", instance.id))
        .await
        .expect("settings");
    click(&c, Locator::Css("#remove-instance button")).await;
    let text = until_text(&c, "Det går inte att ångra.", 5).await;
    assert!(
        text.contains(&instance.name) && text.contains("användare"),
        "{text}"
    );
    shot(
        "confirm-remove-instance-sv",
        &c.screenshot().await.expect("png"),
    );
    accessible(&c, "confirm-remove-instance-sv").await;
    click(&c, Locator::LinkText("Avbryt")).await;
    until_text(&c, "Anslutning och namn", 5).await;
    assert_eq!(
        store.instances(company.id).await.expect("instances").len(),
        1
    );

    c.close().await.expect("close");
    app.stop().await;
}
