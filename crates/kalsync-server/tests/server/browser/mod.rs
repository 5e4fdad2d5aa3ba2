//! The admin UI in a real headless Chromium, driven over WebDriver (chromedriver): a
//! company admin sets Microsoft 365 up and the receptionist sees a booking live
//! (`set_up`); a new company connects its tenant, checks the connection and tries its
//! rules (`connect`); the operator walks an instance's tabs and an admin edits rules,
//! users and removal (`editing`); every page fits a phone (`phone`). Screenshots of each page in both languages are kept under
//! `target/screenshots/` of the checkout. Without chromedriver the tests say they are
//! skipped — except under CI, where `.ci/run` installs it and its absence fails.
//!
//! What this module owns: starting chromedriver and a session, and the steps on a page.

mod connect;
mod editing;
mod phone;
mod set_up;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use crate::support::polling;

/// The password of every account the browser signs in with.
pub(crate) const PASSWORD: &str = "receptionens-lösenord";

/// An account the browser signs in with ([`PASSWORD`]); `company` none for the operator.
pub(crate) fn account(
    email: &str,
    role: &str,
    company: Option<&str>,
) -> kalsync_server::settings::AccountDecl {
    kalsync_server::settings::AccountDecl {
        email: email.into(),
        role: role.into(),
        company: company.map(str::to_owned),
        password: PASSWORD.to_owned().into(),
    }
}

/// chromedriver on a free port, stopped when dropped.
pub(crate) struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver() -> Option<String> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(str::to_owned)
}

/// A headless Chromium session.
pub(crate) async fn browser() -> Option<(Driver, Client)> {
    let Some(path) = chromedriver() else {
        assert!(
            std::env::var("CI").is_err(),
            "chromedriver is missing; .ci/run installs chromium-driver"
        );
        eprintln!(
            "skipped: chromedriver is not installed (apt-get install chromium chromium-driver)"
        );
        return None;
    };
    let port = kalsync_testkit::free_port();
    // The browser keeps the machine's own clock even when the service's is shifted
    // (scripts/time-sweep preloads libfaketime into the test): Chromium under a faked
    // clock stalls, and a browser whose clock differs from the server's is what people
    // have anyway.
    let child = Command::new(path)
        .env_remove("LD_PRELOAD")
        .env_remove("FAKETIME")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver(child);
    // fantoccini's TLS stack finds two crypto providers in this workspace; the talk to
    // chromedriver is plain HTTP on loopback anyway.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=sv-SE"],
            "prefs": {"intl.accept_languages": "sv-SE,sv"},
        }),
    );
    // chromedriver takes a moment to listen.
    let mut client = None;
    polling(
        Duration::from_millis(100),
        Duration::from_secs(5),
        async || {
            client = ClientBuilder::rustls()
                .expect("tls")
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
                .ok();
            client.is_some()
        },
    )
    .await;
    Some((driver, client.expect("chromedriver did not answer")))
}

/// Where screenshots go: `target/screenshots/` of the checkout.
pub(crate) fn shot(name: &str, png: &[u8]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot");
}

/// Waits (at most `secs`) until the page's text contains `text`.
pub(crate) async fn until_text(c: &Client, text: &str, secs: u64) -> String {
    let mut body = String::new();
    let appeared = polling(
        Duration::from_millis(100),
        Duration::from_secs(secs),
        async || {
            // While a page loads its old body goes stale: look again.
            if let Ok(element) = c.find(Locator::Css("body")).await
                && let Ok(t) = element.text().await
            {
                body = t;
            }
            body.contains(text)
        },
    )
    .await;
    assert!(appeared, "`{text}` never appeared: {body}");
    body
}

/// Types `text` into the field `css`.
pub(crate) async fn fill(c: &Client, css: &str, text: &str) {
    let field = c.find(Locator::Css(css)).await.expect(css);
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

/// Clicks what `locator` finds.
pub(crate) async fn click(c: &Client, locator: Locator<'_>) {
    c.find(locator)
        .await
        .expect("to click")
        .click()
        .await
        .expect("click");
}

/// Signs in through the form (the page must show it).
pub(crate) async fn sign_in(c: &Client, email: &str) {
    fill(c, "#email", email).await;
    fill(c, "#password", PASSWORD).await;
    click(c, Locator::Css("form[action='/sign-in'] button")).await;
}

/// Reloads until the page's text no longer contains `text` (at most `secs`).
pub(crate) async fn until_gone_reloading(c: &Client, text: &str, secs: u64) -> String {
    let mut body = String::new();
    let mut first = true;
    let gone = polling(
        Duration::from_secs(1),
        Duration::from_secs(secs),
        async || {
            if !first {
                c.refresh().await.expect("reload");
            }
            first = false;
            if let Ok(element) = c.find(Locator::Css("body")).await
                && let Ok(t) = element.text().await
            {
                body = t;
                return !body.contains(text);
            }
            false
        },
    )
    .await;
    assert!(gone, "`{text}` stayed: {body}");
    body
}

/// One Chromium at a time: two on two cores make each other's waits flaky.
pub(crate) static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// axe-core's script (`KALSYNC_AXE`, which `.ci/run` sets after fetching the pinned
/// package), read once; `None` where it is not installed (outside CI only).
fn axe_source() -> Option<&'static str> {
    static AXE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    AXE.get_or_init(|| {
        let path = std::env::var("KALSYNC_AXE").ok();
        let source = path
            .as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok());
        if source.is_none() {
            assert!(
                std::env::var("CI").is_err(),
                "axe-core is missing (KALSYNC_AXE={path:?}); .ci/run fetches it"
            );
            eprintln!("skipped: the accessibility checks need axe-core (KALSYNC_AXE)");
        }
        source
    })
    .as_deref()
}

/// Runs axe-core (WCAG 2 A and AA rules) on the page shown and asserts it finds nothing
/// serious or critical; what it found, with the elements, otherwise.
pub(crate) async fn accessible(c: &Client, name: &str) {
    let Some(axe) = axe_source() else {
        return;
    };
    c.execute(&format!("{axe}\n;return true;"), vec![])
        .await
        .expect("axe injected");
    let found = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
               .then(r => done(r.violations
                 .filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 4).map(n => n.target.join(' ')).join(' | '))))
               .catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await
        .expect("axe ran");
    let found: Vec<String> = found
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert!(found.is_empty(), "{name}: {}", found.join("\n"));
}
