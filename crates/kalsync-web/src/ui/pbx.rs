//! A company's PBX directory page (*Växelns katalog*): who has a subscription on the
//! company's PBX — uploaded (a CSV pasted from Excel) or fetched from the PBX — with the
//! last fetch's outcome; only these people may be added to the company's instances.

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use kalsync_core::Lang;
use kalsync_directory::PbxSource;
use kalsync_store::{CompanyId, PbxDirectoryRecord};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Viewer, i18n, page};
use crate::WebState;
use crate::api::companies::visible;
use crate::api::pbx::{
    fetch_now, parse_secret, parse_source, remove_pbx, save_source, upload_list,
};
use crate::error::ApiError;

/// Subscriptions the page lists (the count says how many there are).
const SHOWN: usize = 500;

struct Words {
    title: &'static str,
    intro: &'static str,
    none: &'static str,
    source_upload: &'static str,
    source_url: &'static str,
    count: &'static str,
    updated: &'static str,
    failed: &'static str,
    email: &'static str,
    extension: &'static str,
    name: &'static str,
    more: &'static str,
    upload: &'static str,
    upload_hint: &'static str,
    upload_button: &'static str,
    fetch: &'static str,
    fetch_hint: &'static str,
    url: &'static str,
    auth: &'static str,
    auth_bearer: &'static str,
    auth_signed: &'static str,
    every: &'static str,
    secret: &'static str,
    secret_kept: &'static str,
    fetch_button: &'static str,
    fetch_now: &'static str,
    remove: &'static str,
    saved: &'static str,
    secret_not_saved: &'static str,
}

const SV: Words = Words {
    title: "Växelns katalog",
    intro: "Vilka som har abonnemang i företagets växel. När listan finns kan bara de läggas till i företagets instanser — för hand, med CSV eller av katalogen — med växelns anknytning.",
    none: "Ingen växelkatalog: alla adresser kan läggas till.",
    source_upload: "Uppladdad lista",
    source_url: "Hämtas från växeln",
    count: "Abonnemang",
    updated: "Senast ändrad",
    failed: "Senaste hämtningen misslyckades (listan innan behålls)",
    email: "E-post",
    extension: "Anknytning",
    name: "Namn",
    more: "fler visas inte",
    upload: "Ladda upp listan",
    upload_hint: "Klistra in en CSV med rubrikrad: E-post och Anknytning (valfritt Namn), med komma eller semikolon som i Excel. Hela listan byts; en felaktig rad stoppar den med radnumret.",
    upload_button: "Ladda upp",
    fetch: "Hämta från växeln",
    fetch_hint: "En JSON-lista [{\"email\", \"extension\", \"name\"}] som växeln lämnar på en HTTPS-adress, hämtad med en token (Bearer) eller signerad enligt Standard Webhooks.",
    url: "Adress",
    auth: "Inloggning",
    auth_bearer: "Token (Bearer)",
    auth_signed: "Signerad (Standard Webhooks, whsec_…)",
    every: "Hämta",
    secret: "Token eller signeringshemlighet",
    secret_kept: "En hemlighet är sparad (krypterad, visas aldrig). Lämna tomt för att behålla den; ny adress kräver den igen.",
    fetch_button: "Spara och hämta",
    fetch_now: "Hämta nu",
    remove: "Ta bort växelkatalogen",
    saved: "Sparat.",
    secret_not_saved: "Hemligheten sparades inte: ange den igen.",
};

const EN: Words = Words {
    title: "PBX directory",
    intro: "Who has a subscription on the company's PBX. With a list, only they may be added to the company's instances — by hand, by CSV or by the directory — with the PBX's extension.",
    none: "No PBX directory: any address may be added.",
    source_upload: "Uploaded list",
    source_url: "Fetched from the PBX",
    count: "Subscriptions",
    updated: "Last changed",
    failed: "The last fetch failed (the list before it is kept)",
    email: "E-mail",
    extension: "Extension",
    name: "Name",
    more: "more not shown",
    upload: "Upload the list",
    upload_hint: "Paste a CSV with a header row: E-mail and Extension (optionally Name), separated by commas or semicolons as Excel writes them. The whole list is replaced; a bad line stops it, named by its number.",
    upload_button: "Upload",
    fetch: "Fetch from the PBX",
    fetch_hint: "A JSON list [{\"email\", \"extension\", \"name\"}] the PBX serves at an HTTPS address, fetched with a token (Bearer) or signed per Standard Webhooks.",
    url: "Address",
    auth: "Sign-in",
    auth_bearer: "Token (Bearer)",
    auth_signed: "Signed (Standard Webhooks, whsec_…)",
    every: "Fetch",
    secret: "Token or signing secret",
    secret_kept: "A secret is stored (encrypted, never shown). Leave empty to keep it; a new address needs it again.",
    fetch_button: "Save and fetch",
    fetch_now: "Fetch now",
    remove: "Remove the PBX directory",
    saved: "Saved.",
    secret_not_saved: "The secret was not saved: enter it again.",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Sv => &SV,
        Lang::En => &EN,
    }
}

/// How often a list may be fetched, as the form offers it.
const EVERY: [(&str, &str, &str); 4] = [
    ("15m", "var 15:e minut", "every 15 minutes"),
    ("1h", "varje timme", "every hour"),
    ("4h", "var 4:e timme", "every 4 hours"),
    ("1d", "en gång om dagen", "once a day"),
];

/// The zone a company-wide time is shown in (the product's home market's).
fn home_zone() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get("Europe/Stockholm").unwrap_or(jiff::tz::TimeZone::UTC)
}

/// What the phone-events section says, in `lang`.
struct PhoneWords {
    title: &'static str,
    intro: &'static str,
    none: &'static str,
    made: &'static str,
    shown_once: &'static str,
    make: &'static str,
    remake: &'static str,
    remove: &'static str,
    dialplan: &'static str,
}

fn phone_words(lang: Lang) -> &'static PhoneWords {
    match lang {
        Lang::Sv => &PhoneWords {
            title: "Tillbaka från telefonen",
            intro: "Med en kortkod i växeln (till exempel *22) säger man att man är tillbaka, eller förlänger sin frånvaro. Växeln skickar en signerad händelse (Standard Webhooks) till adressen nedan, eller Asterisk en UserEvent via AMI.",
            none: "Ingen hemlighet skapad: växelns händelser tas inte emot.",
            made: "Hemligheten skapades",
            shown_once: "Kopiera hemligheten till växeln nu — den visas bara den här gången:",
            make: "Skapa hemlighet",
            remake: "Skapa ny hemlighet (den gamla slutar gälla)",
            remove: "Ta bort hemligheten",
            dialplan: "Asterisk/FreePBX (extensions_custom.conf), via AMI-målet:",
        },
        Lang::En => &PhoneWords {
            title: "Back from the phone",
            intro: "With a feature code on the PBX (say *22) people say they are back, or extend their absence. The PBX posts a signed event (Standard Webhooks) to the address below, or Asterisk sends a UserEvent over AMI.",
            none: "No secret made: the PBX's events are not taken.",
            made: "The secret was made",
            shown_once: "Copy the secret to the PBX now — it is shown this once:",
            make: "Make a secret",
            remake: "Make a new secret (the old one stops working)",
            remove: "Remove the secret",
            dialplan: "Asterisk/FreePBX (extensions_custom.conf), through the AMI target:",
        },
    }
}

/// The phone-events section: whether a secret is made (and when), the one just made
/// (shown once), where the PBX posts and a dialplan for Asterisk.
fn phone_section(
    viewer: &Viewer,
    company: CompanyId,
    path: &str,
    made: Option<jiff::Timestamp>,
    fresh: Option<&str>,
) -> Markup {
    let p = phone_words(viewer.lang);
    let csrf = viewer.principal.csrf();
    let example =
        serde_json::json!({"company": company.to_string(), "type": "back", "extension": "201"});
    let dialplan = "exten => *22,1,UserEvent(KalsyncBack,Exten: ${CALLERID(num)})\n same => n,Playback(beep)\n same => n,Hangup()\nexten => _*23XX,1,UserEvent(KalsyncExtend,Exten: ${CALLERID(num)},Minutes: ${EXTEN:3})\n same => n,Playback(beep)\n same => n,Hangup()";
    html! {
        section.card #phone-events {
            h2 { (p.title) }
            p.muted { (p.intro) }
            @if let Some(secret) = fresh {
                p.available role="status" { (p.shown_once) }
                pre.code #pbx-events-secret tabindex="0" { (secret) }
            }
            @match made {
                Some(at) => p { (p.made) " " (i18n::moment(viewer.lang, at, jiff::Timestamp::now(), &home_zone())) "." },
                None => p #phone-events-none { (p.none) },
            }
            pre.code tabindex="0" aria-label="POST /api/v1/pbx/events" { "POST /api/v1/pbx/events\n" (example) }
            p.muted { (p.dialplan) }
            pre.code tabindex="0" aria-label=(p.dialplan) { (dialplan) }
            div.actions {
                form.inline method="post" action={ (path) "/events-secret" } {
                    input type="hidden" name="csrf" value=(csrf);
                    button #make-events-secret type="submit" { (if made.is_some() { p.remake } else { p.make }) }
                }
                @if made.is_some() {
                    " "
                    form.inline method="post" action={ (path) "/events-remove" } {
                        input type="hidden" name="csrf" value=(csrf);
                        button.danger type="submit" { (p.remove) }
                    }
                }
            }
        }
    }
}

/// What the page says above its forms.
enum Notice {
    Saved,
    Error(String),
}

/// The fields typed in the forms (kept when refused; the secret never is).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PbxForm {
    csrf: String,
    #[serde(default)]
    list: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    auth: String,
    #[serde(default)]
    every: String,
    #[serde(default)]
    secret: String,
}

fn pbx_page(
    viewer: &Viewer,
    company: CompanyId,
    name: &str,
    record: Option<&PbxDirectoryRecord>,
    typed: &PbxForm,
    notice: Option<Notice>,
    events: (Option<jiff::Timestamp>, Option<&str>),
) -> Markup {
    let t = i18n::texts(viewer.lang);
    let w = words(viewer.lang);
    let sv = viewer.lang == Lang::Sv;
    let manages = viewer.principal.grant.manages(company);
    let path = format!("/companies/{company}/pbx");
    let csrf = viewer.principal.csrf();
    let (url, auth, every) = match record.map(|r| &r.source) {
        Some(PbxSource::Url { url, auth, every }) if typed.url.is_empty() => (
            url.to_string(),
            if *auth == kalsync_directory::PbxAuth::Bearer {
                "bearer"
            } else {
                "standard_webhooks"
            }
            .to_owned(),
            format!("{every:#}").replace(' ', ""),
        ),
        _ => (typed.url.clone(), typed.auth.clone(), typed.every.clone()),
    };
    let every = if every == "24h" { "1d".into() } else { every };
    page(
        t,
        &format!("{} · {name}", w.title),
        Some(&viewer.principal),
        &path,
        html! {
            nav.crumbs aria-label=(t.you_are_here) { a href="/" { (t.dashboard) } " › " span { (name) } }
            h1 { (w.title) " " span.muted { (name) } }
            p.muted { (w.intro) }
            @match &notice {
                Some(Notice::Saved) => p.available role="status" { (w.saved) },
                Some(Notice::Error(e)) => p.error #pbx-error role="alert" { (e) },
                None => {},
            }
            @match record {
                None => p #pbx-none { (w.none) },
                Some(r) => {
                    dl.health #pbx-status {
                        div { dt { (w.count) } dd {
                            (r.list.len()) " "
                            span.pill { (if matches!(r.source, PbxSource::Upload) { w.source_upload } else { w.source_url }) }
                        } }
                        @if let Some(at) = r.updated {
                            div { dt { (w.updated) } dd { (i18n::moment(viewer.lang, at, jiff::Timestamp::now(), &home_zone())) } }
                        }
                    }
                    @if let Some(e) = &r.last_error {
                        p.error #pbx-last-error role="alert" { (w.failed) ": " (e) }
                    }
                    @if !r.list.is_empty() {
                        table #pbx-list {
                            thead { tr { th { (w.email) } th { (w.extension) } th { (w.name) } } }
                            tbody {
                                @for e in r.list.entries().iter().take(SHOWN) {
                                    tr { td { (e.email) } td { (e.extension) } td { (e.name.as_deref().unwrap_or("")) } }
                                }
                            }
                        }
                        @if r.list.len() > SHOWN { p.muted { (r.list.len() - SHOWN) " " (w.more) } }
                    }
                }
            }
            @if manages {
                form.card #pbx-upload method="post" action={ (path) "/upload" } {
                    input type="hidden" name="csrf" value=(csrf);
                    h2 { (w.upload) }
                    p.muted #upload-hint { (w.upload_hint) }
                    label for="list" { "CSV" }
                    textarea #list name="list" rows="6" spellcheck="false" class="code" aria-describedby="upload-hint" { (typed.list) }
                    button type="submit" { (w.upload_button) }
                }
                form.card #pbx-fetch method="post" action={ (path) "/source" } {
                    input type="hidden" name="csrf" value=(csrf);
                    h2 { (w.fetch) }
                    p.muted { (w.fetch_hint) }
                    label for="url" { (w.url) }
                    input #url type="text" name="url" value=(url) spellcheck="false" placeholder="https://pbx.example/subscriptions";
                    label for="auth" { (w.auth) }
                    select #auth name="auth" {
                        option value="bearer" selected[auth != "standard_webhooks"] { (w.auth_bearer) }
                        option value="standard_webhooks" selected[auth == "standard_webhooks"] { (w.auth_signed) }
                    }
                    label for="every" { (w.every) }
                    select #every name="every" {
                        @for (v, s, e) in EVERY { option value=(v) selected[every == v || (every.is_empty() && v == "1h")] { (if sv { s } else { e }) } }
                    }
                    label for="secret" { (w.secret) }
                    input #secret type="password" name="secret" autocomplete="off";
                    @if record.is_some_and(|r| r.secret.is_some()) { p.muted { (w.secret_kept) } }
                    button.primary type="submit" { (w.fetch_button) }
                }
                (phone_section(viewer, company, &path, events.0, events.1))
                @if let Some(r) = record {
                    div.actions {
                        @if matches!(r.source, PbxSource::Url { .. }) {
                            form.inline method="post" action={ (path) "/fetch" } {
                                input type="hidden" name="csrf" value=(csrf);
                                button #fetch-now type="submit" { (w.fetch_now) }
                            }
                            " "
                        }
                        form.inline method="post" action={ (path) "/remove" } {
                            input type="hidden" name="csrf" value=(csrf);
                            button.danger type="submit" { (w.remove) }
                        }
                    }
                }
            }
        },
    )
}

async fn shown(
    state: &WebState,
    viewer: &Viewer,
    company: &str,
    typed: &PbxForm,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    shown_with(state, viewer, company, typed, notice, status, None).await
}

/// The page, with a PBX secret just made (`fresh`, shown this once).
async fn shown_with(
    state: &WebState,
    viewer: &Viewer,
    company: &str,
    typed: &PbxForm,
    notice: Option<Notice>,
    status: StatusCode,
    fresh: Option<&str>,
) -> Response {
    let id = match visible(state, &viewer.principal, company).await {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let name = super::company_name(state, id).await;
    let made = match state.store.pbx_event_secret(id).await {
        Ok(m) => m.map(|(_, at)| at),
        Err(e) => return ApiError::from(e).into_response(),
    };
    match state.store.pbx_directory(id).await {
        Ok(record) => (
            status,
            pbx_page(
                viewer,
                id,
                &name,
                record.as_ref(),
                typed,
                notice,
                (made, fresh),
            ),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The page (`?saved=1` after a change).
pub(crate) async fn show(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(company): Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let notice = q.contains_key("saved").then_some(Notice::Saved);
    shown(
        &state,
        &viewer,
        &company,
        &PbxForm::default(),
        notice,
        StatusCode::OK,
    )
    .await
}

/// The company a form was posted for, checked (this site, the session's token, a company
/// the viewer manages).
async fn form_company(
    state: &WebState,
    viewer: &Viewer,
    headers: &HeaderMap,
    company: &str,
    csrf: &str,
) -> Result<CompanyId, Response> {
    viewer
        .check_form(headers, csrf)
        .map_err(IntoResponse::into_response)?;
    let id = visible(state, &viewer.principal, company)
        .await
        .map_err(IntoResponse::into_response)?;
    viewer
        .principal
        .manages(id, "company")
        .map_err(IntoResponse::into_response)?;
    Ok(id)
}

/// What a form's refusal says, in the page's language.
fn refusal(lang: Lang, e: &ApiError) -> String {
    match (lang, e) {
        (Lang::Sv, ApiError::Invalid { field, message }) => match field.as_str() {
            "list" => list_refusal_sv(message),
            "url" => "Adressen måste vara https:// (hemligheten skickas med), utan användarnamn eller lösenord.".into(),
            "secret" => "Ange växelns token eller signeringshemlighet (den krävs igen när adressen ändras; en Standard Webhooks-hemlighet börjar med whsec_).".into(),
            "every" => "Hämta högst var 15:e minut.".into(),
            _ => format!("Det gick inte att spara ({field})."),
        },
        (Lang::Sv, ApiError::TooMany(secs)) => format!("Hämtas för ofta: försök igen om {secs} s."),
        (_, e) => e.to_string(),
    }
}

/// Why a list was refused, in Swedish (the line and what kind of fault).
fn list_refusal_sv(message: &str) -> String {
    let line = message
        .split("line ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .and_then(|n| n.trim().parse::<u64>().ok());
    let what = if message.contains("no email column") || message.contains("no extension column") {
        "rubrikraden ska namnge kolumnerna E-post och Anknytning (och gärna Namn)"
    } else if message.contains("listed twice") {
        "samma e-postadress finns två gånger"
    } else if message.contains("is listed for both") {
        "samma anknytning finns för två personer"
    } else if message.contains(": extension `") {
        "en anknytning är inte 2–20 siffror"
    } else if message.contains("MB") {
        "listan är för stor"
    } else if message.contains("subscriptions") && message.contains("at most") {
        "listan har fler än 200 000 abonnemang"
    } else if message.contains("not the JSON list") {
        "JSON-listan ska vara [{\"email\", \"extension\", \"name\"}]"
    } else if message.contains("not CSV") || message.contains("the header") {
        "texten är inte CSV (spara från Excel som ”CSV UTF-8”)"
    } else {
        "en e-postadress är ogiltig"
    };
    match line {
        Some(n) => format!("Listan togs inte emot: rad {n}: {what}. Rätta och ladda upp igen."),
        None => format!("Listan togs inte emot: {what}."),
    }
}

async fn after(
    state: &WebState,
    viewer: &Viewer,
    company: &str,
    form: &PbxForm,
    done: Result<(), ApiError>,
) -> Response {
    match done {
        Ok(()) => Redirect::to(&format!("/companies/{company}/pbx?saved=1")).into_response(),
        Err(e @ (ApiError::Invalid { .. } | ApiError::TooMany(_))) => {
            let mut text = refusal(viewer.lang, &e);
            if !form.secret.is_empty() {
                text.push(' ');
                text.push_str(words(viewer.lang).secret_not_saved);
            }
            let status = e.status();
            shown(
                state,
                viewer,
                company,
                form,
                Some(Notice::Error(text)),
                status,
            )
            .await
        }
        Err(e) => e.into_response(),
    }
}

/// A form of the page: `upload` (a pasted list), `source` (a fetched list's address and
/// secret, fetched at once), `fetch` (now) or `remove`.
pub(crate) async fn act(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path((company, action)): Path<(String, String)>,
    Form(form): Form<PbxForm>,
) -> Response {
    let id = match form_company(&state, &viewer, &headers, &company, &form.csrf).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    let principal = &viewer.principal;
    let done = match action.as_str() {
        "upload" => upload_list(&state, principal, id, &form.list)
            .await
            .map(|_| ()),
        "source" => {
            let every = if form.every.is_empty() {
                "1h"
            } else {
                form.every.as_str()
            };
            async {
                let source = parse_source(serde_json::json!({
                    "kind": "url", "url": form.url, "auth": form.auth, "every": every,
                }))?;
                let secret = parse_secret(Some(form.secret.clone()))?;
                save_source(&state, principal, id, &source, secret).await?;
                // Saved: a fetch now shows its outcome on the page (the list, or why
                // not); refused (too often), the schedule fetches it in a moment.
                let _fetched = fetch_now(&state, principal, id).await;
                Ok(())
            }
            .await
        }
        "fetch" => fetch_now(&state, principal, id).await.map(|_| ()),
        "events-secret" => {
            return match crate::api::phone::new_secret(&state, principal, id).await {
                Ok((secret, _)) => {
                    shown_with(
                        &state,
                        &viewer,
                        &company,
                        &PbxForm::default(),
                        None,
                        StatusCode::OK,
                        Some(&secret),
                    )
                    .await
                }
                Err(e) => e.into_response(),
            };
        }
        "events-remove" => crate::api::phone::forget_secret(&state, principal, id).await,
        "remove" => remove_pbx(&state, principal, id).await,
        _ => Err(ApiError::NotFound(format!("no such form: {action}"))),
    };
    after(&state, &viewer, &company, &form, done).await
}
