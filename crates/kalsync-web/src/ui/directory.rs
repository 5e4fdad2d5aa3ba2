//! The instance's *Katalog* tab (Telenor's *Katalog Synk*): which groups decide who is
//! synchronised and how their attributes map, a dry run that shows what a sync would
//! add, change and remove before it is turned on, and what the last run did — its
//! problems per person, its error with the fix, removals held for a confirmation.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use kalsync_core::Lang;
use kalsync_directory::{DirectorySettings, ManualUsers, Problem, Transform};
use kalsync_store::{DirectoryRecord, DirectoryRun, Instance};
use maud::{Markup, html};

use super::i18n;
use super::{InstanceTab, Viewer, page};
use crate::api::directory::{parse_settings, run_directory, save_settings, take_password};
use crate::api::instances::visible_instance;
use crate::error::ApiError;
use crate::{DirectoryMode, WebState};

/// The page's own words.
struct Words {
    intro: &'static str,
    kind: &'static str,
    kind_entra: &'static str,
    kind_ldap: &'static str,
    ldap: &'static str,
    ldap_permissions: &'static str,
    ldap_url: &'static str,
    ldap_url_hint: &'static str,
    ldap_base: &'static str,
    ldap_bind: &'static str,
    ldap_bind_hint: &'static str,
    ldap_password: &'static str,
    ldap_password_kept: &'static str,
    ldap_ca: &'static str,
    ldap_ca_hint: &'static str,
    entra_app: &'static str,
    entra_app_hint: &'static str,
    entra_app_optional: &'static str,
    tenant: &'static str,
    client_id: &'static str,
    client_secret: &'static str,
    permissions: &'static str,
    groups: &'static str,
    groups_hint: &'static str,
    extension_from: &'static str,
    no_extension: &'static str,
    cut: &'static str,
    cut_whole: &'static str,
    cut_last: &'static str,
    cut_pattern: &'static str,
    digits: &'static str,
    pattern: &'static str,
    department: &'static str,
    every: &'static str,
    grace: &'static str,
    grace_none: &'static str,
    manual: &'static str,
    manual_keep: &'static str,
    manual_refuse: &'static str,
    enabled: &'static str,
    enabled_hint: &'static str,
    save: &'static str,
    dry_run: &'static str,
    run_now: &'static str,
    last_run: &'static str,
    never_ran: &'static str,
    dry: &'static str,
    applied: &'static str,
    failed: &'static str,
    members: &'static str,
    added: &'static str,
    updated: &'static str,
    leaving: &'static str,
    removed: &'static str,
    next_run: &'static str,
    problems: &'static str,
    no_problems: &'static str,
    held: &'static str,
    confirm: &'static str,
    remove: &'static str,
    saved: &'static str,
    person: &'static str,
    what: &'static str,
}

const SV: Words = Words {
    intro: "Katalogen bestämmer vilka som synkroniseras: medlemmarna i grupperna (även i grupper i grupperna) blir instansens användare och läses direkt; den som lämnar gruppen, stängs av eller tas bort försvinner med sina data. En körning som misslyckas tar aldrig bort någon.",
    kind: "Katalog",
    kind_entra: "Entra ID (Microsoft 365)",
    kind_ldap: "Active Directory (LDAP)",
    ldap: "Active Directory (LDAP)",
    ldap_permissions: "Ett tjänstekonto med läsrätt räcker. Servern ska tillåta sidindelade sökningar (Paged Results); grupper i grupper följs via memberOf.",
    ldap_url: "Server",
    ldap_url_hint: "ldaps://dc1.foretag.local, eller ldap://dc1.foretag.local med StartTLS. Okrypterat LDAP används aldrig.",
    ldap_base: "Sökbas",
    ldap_bind: "Tjänstekonto",
    ldap_bind_hint: "DN (CN=kalsync,OU=Tjänster,DC=foretag,DC=local) eller konto@foretag.local.",
    ldap_password: "Lösenord",
    ldap_password_kept: "Ett lösenord är sparat (krypterat, visas aldrig). Lämna tomt för att behålla det; byter du server eller konto måste det anges igen.",
    ldap_ca: "Företagets CA-certifikat (PEM, valfritt)",
    ldap_ca_hint: "Behövs när serverns certifikat är utfärdat av er egen certifikatutfärdare.",
    entra_app: "Entra ID-app (hybridmiljö)",
    entra_app_hint: "En Exchange-instans läser Entra ID med en egen appregistrering: ange klient-id och katalogens klienthemlighet. Appen behöver bara GroupMember.Read.All och User.Read.All.",
    entra_app_optional: "Valfritt: lämna tomt så läser instansens egen app katalogen.",
    tenant: "Klientorganisation (tenant-id eller domän)",
    client_id: "Program-id (klient-id)",
    client_secret: "Klienthemlighet",
    permissions: "Appen behöver programbehörigheterna GroupMember.Read.All och User.Read.All med administratörsmedgivande (Entra → Appregistreringar → appen → API-behörigheter).",
    groups: "Grupper (en per rad)",
    groups_hint: "Entra ID: gruppens objekt-id (Grupper → gruppen → Översikt). Active Directory: gruppens DN, t.ex. CN=Sälj,OU=Grupper,DC=foretag,DC=local.",
    extension_from: "Anknytning från",
    no_extension: "Ingen (anges för hand)",
    cut: "Hur anknytningen tas ut",
    cut_whole: "Hela värdet",
    cut_last: "De sista siffrorna",
    cut_pattern: "Reguljärt uttryck med en fångstgrupp",
    digits: "Antal siffror",
    pattern: "Uttryck (t.ex. ^\\+468(\\d{4})$)",
    department: "Avdelning från attributet department (för telefonistens filter)",
    every: "Läs katalogen",
    grace: "Ta bort den som lämnat",
    grace_none: "direkt",
    manual: "Användare som lagts till för hand",
    manual_keep: "Behålls (katalog och manuellt)",
    manual_refuse: "Tas bort och kan inte läggas till (endast katalogen)",
    enabled: "Synkronisera: lägg till, ändra och ta bort användare",
    enabled_hint: "Avstängd görs bara provkörningar: de visar vad som skulle ändras.",
    save: "Spara",
    dry_run: "Provkör",
    run_now: "Synkronisera nu",
    last_run: "Senaste körning",
    never_ran: "Katalogen har inte körts än.",
    dry: "provkörning",
    applied: "genomförd",
    failed: "misslyckad",
    members: "Medlemmar",
    added: "Läggs till",
    updated: "Ändras",
    leaving: "Har lämnat (väntar)",
    removed: "Tas bort",
    next_run: "Nästa körning",
    problems: "Personer som inte kan synkroniseras",
    no_problems: "Inga: alla medlemmar kan synkroniseras.",
    held: "Borttagningarna hålls kvar: mer än hälften av katalogens användare skulle tas bort på en gång. Det ser ut som fel grupp eller ett fel i katalogen. Bekräfta bara om det är meningen.",
    confirm: "Bekräfta och ta bort",
    remove: "Sluta använda katalogen",
    saved: "Sparat. Katalogen körs strax.",
    person: "Person",
    what: "Vad är fel",
};

const EN: Words = Words {
    intro: "The directory decides who is synchronised: the members of the groups (nested groups included) become the instance's users and are read at once; whoever leaves the group, is disabled or deleted goes with their data. A run that fails never removes anyone.",
    kind: "Directory",
    kind_entra: "Entra ID (Microsoft 365)",
    kind_ldap: "Active Directory (LDAP)",
    ldap: "Active Directory (LDAP)",
    ldap_permissions: "A service account that may read is enough. The server must allow paged searches (Paged Results); nested groups are followed through memberOf.",
    ldap_url: "Server",
    ldap_url_hint: "ldaps://dc1.company.local, or ldap://dc1.company.local with StartTLS. Unencrypted LDAP is never used.",
    ldap_base: "Search base",
    ldap_bind: "Service account",
    ldap_bind_hint: "A DN (CN=kalsync,OU=Service,DC=company,DC=local) or account@company.local.",
    ldap_password: "Password",
    ldap_password_kept: "A password is stored (encrypted, never shown). Leave empty to keep it; a new server or account needs it again.",
    ldap_ca: "The company's CA certificate (PEM, optional)",
    ldap_ca_hint: "Needed when the server's certificate is issued by your own certificate authority.",
    entra_app: "Entra ID app (hybrid)",
    entra_app_hint: "An Exchange instance reads Entra ID with an app registration of its own: give its client id and a client secret. The app needs only GroupMember.Read.All and User.Read.All.",
    entra_app_optional: "Optional: leave empty and the instance's own app reads the directory.",
    tenant: "Tenant (id or domain)",
    client_id: "Application (client) id",
    client_secret: "Client secret",
    permissions: "The app needs the application permissions GroupMember.Read.All and User.Read.All with admin consent (Entra → App registrations → the app → API permissions).",
    groups: "Groups (one per line)",
    groups_hint: "Entra ID: the group's object id (Groups → the group → Overview). Active Directory: the group's DN, such as CN=Sales,OU=Groups,DC=company,DC=local.",
    extension_from: "Extension from",
    no_extension: "None (set by hand)",
    cut: "How the extension is taken",
    cut_whole: "The whole value",
    cut_last: "The last digits",
    cut_pattern: "A regular expression with one capture group",
    digits: "Digits",
    pattern: "Expression (e.g. ^\\+468(\\d{4})$)",
    department: "Department from the attribute department (for the switchboard's filter)",
    every: "Read the directory",
    grace: "Remove a leaver",
    grace_none: "at once",
    manual: "Users added by hand",
    manual_keep: "Kept (directory and manual)",
    manual_refuse: "Removed and cannot be added (directory only)",
    enabled: "Synchronise: add, change and remove users",
    enabled_hint: "Off, only dry runs are made: they show what would change.",
    save: "Save",
    dry_run: "Dry run",
    run_now: "Synchronise now",
    last_run: "Last run",
    never_ran: "The directory has not run yet.",
    dry: "dry run",
    applied: "applied",
    failed: "failed",
    members: "Members",
    added: "Added",
    updated: "Changed",
    leaving: "Left (waiting)",
    removed: "Removed",
    next_run: "Next run",
    problems: "People who cannot be synchronised",
    no_problems: "None: every member can be synchronised.",
    held: "The removals are held back: more than half of the directory's users would go at once. That looks like a wrong group or a fault in the directory. Confirm only if it is meant.",
    confirm: "Confirm and remove",
    remove: "Stop using the directory",
    saved: "Saved. The directory runs shortly.",
    person: "Person",
    what: "What is wrong",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Sv => &SV,
        Lang::En => &EN,
    }
}

/// The attributes an extension may come from.
const ATTRIBUTES: [&str; 20] = [
    "businessPhones",
    "mobilePhone",
    "telephoneNumber",
    "ipPhone",
    "mobile",
    "extensionAttribute1",
    "extensionAttribute2",
    "extensionAttribute3",
    "extensionAttribute4",
    "extensionAttribute5",
    "extensionAttribute6",
    "extensionAttribute7",
    "extensionAttribute8",
    "extensionAttribute9",
    "extensionAttribute10",
    "extensionAttribute11",
    "extensionAttribute12",
    "extensionAttribute13",
    "extensionAttribute14",
    "extensionAttribute15",
];

/// How often, as the form offers it.
const EVERY: [(&str, &str, &str); 5] = [
    ("15m", "var 15:e minut", "every 15 minutes"),
    ("30m", "var 30:e minut", "every 30 minutes"),
    ("1h", "varje timme", "every hour"),
    ("4h", "var 4:e timme", "every 4 hours"),
    ("1d", "en gång om dagen", "once a day"),
];

/// Grace periods the form offers.
const GRACE: [(&str, &str, &str); 4] = [
    ("0s", "", ""),
    ("1d", "efter 1 dag", "after 1 day"),
    ("7d", "efter 7 dagar", "after 7 days"),
    ("30d", "efter 30 dagar", "after 30 days"),
];

/// A person's problem, in `lang`.
fn problem(lang: Lang, p: &Problem) -> String {
    match (lang, p) {
        (Lang::En, p) => p.to_string(),
        (Lang::Sv, Problem::NoEmail) => "Ingen e-postadress (mail) i katalogen.".into(),
        (Lang::Sv, Problem::BadEmail { value }) => format!("”{value}” är ingen e-postadress."),
        (Lang::Sv, Problem::BadExtension { .. }) => {
            "Attributet ger ingen anknytning (2–20 siffror).".into()
        }
        (Lang::Sv, Problem::SameExtension { extension, other }) => {
            format!("Anknytning {extension} har också {other}.")
        }
        (Lang::Sv, Problem::SameEmail { other }) => {
            format!("Samma e-postadress som katalogposten {other}.")
        }
        (Lang::Sv, Problem::NotInPbx) => {
            "Växeln har inget abonnemang för adressen (företagets växelkatalog).".into()
        }
    }
}

/// A run's error, in `lang`, with the fix.
fn error_text(lang: Lang, code: &str, message: &str) -> String {
    match (lang, code) {
        (Lang::Sv, "group_not_found") => "En grupp finns inte eller har tagits bort. Kontrollera gruppens objekt-id i Entra (Grupper → gruppen → Översikt) eller gruppens DN i Active Directory. Ingen har tagits bort.".into(),
        (Lang::Sv, "permission") => "Katalogen får inte läsas. Entra ID: ge appen programbehörigheterna GroupMember.Read.All och User.Read.All och bevilja administratörsmedgivande. Active Directory: ge tjänstekontot läsrätt till personer och grupper under sökbasen. Ingen har tagits bort.".into(),
        (Lang::Sv, "sign_in") => "Inloggningen misslyckades: kontrollera tjänstekontot och lösenordet (Active Directory) eller instansens anslutning (Entra ID, fliken Anslutning och namn). Ingen har tagits bort.".into(),
        (Lang::Sv, "certificate") => "Katalogserverns certifikat är inte betrott: klistra in företagets CA-certifikat (PEM) i inställningarna. Ingen har tagits bort.".into(),
        (Lang::Sv, "protocol") => format!("Katalogservern svarade oväntat: {message}. Ingen har tagits bort."),
        (Lang::Sv, "unreachable" | "throttled") => "Katalogen gick inte att läsa just nu; nästa körning försöker igen. Ingen har tagits bort.".into(),
        (Lang::Sv, _) => format!("Katalogen kunde inte läsas ({code}). Ingen har tagits bort."),
        (Lang::En, _) => format!("{message}. Nobody was removed."),
    }
}

/// A refused setting, in `lang`.
fn setting_problem(lang: Lang, field: &str, message: &str) -> String {
    match (lang, field) {
        (Lang::Sv, "groups") => "Grupper: ange minst en och högst 50 grupper, en per rad (objekt-id i Entra ID, DN i Active Directory).".into(),
        (Lang::Sv, "extension.last_digits") => "Antal siffror: 2 till 20.".into(),
        (Lang::Sv, "extension.pattern") => "Uttrycket måste vara ett reguljärt uttryck med exakt en fångstgrupp, t.ex. ^\\+468(\\d{4})$.".into(),
        (Lang::Sv, "kind" | "entra_app") => "En Exchange-instans läser Entra ID med en egen app: fyll i klientorganisation, program-id och klienthemlighet — eller välj Active Directory (LDAP).".into(),
        (Lang::Sv, "entra_app.tenant" | "entra_app.client_id") => "Klientorganisation och program-id: bokstäver, siffror, punkt och bindestreck.".into(),
        (Lang::Sv, "client_secret") => "Klienthemlighet: ange appens klienthemlighet (den krävs igen när appen eller klientorganisationen ändras).".into(),
        (Lang::Sv, "ldap.url") => "Server: ange ldaps://server eller ldap://server (StartTLS), bara server och port.".into(),
        (Lang::Sv, "ldap.base") => "Sökbas: ett DN, t.ex. DC=foretag,DC=local.".into(),
        (Lang::Sv, "ldap.bind_dn") => "Tjänstekonto: ett DN eller konto@domän.".into(),
        (Lang::Sv, "ldap.ca") => "CA-certifikatet ska vara i PEM-format (-----BEGIN CERTIFICATE-----), högst 64 KiB.".into(),
        (Lang::Sv, "ldap") => "Active Directory: fyll i server, sökbas och tjänstekonto.".into(),
        (Lang::Sv, "password") => "Lösenord: ange tjänstekontots lösenord (det krävs igen när server eller konto ändras).".into(),
        (Lang::Sv, _) => format!("Inställningen går inte att spara ({field})."),
        (Lang::En, _) => message.to_owned(),
    }
}

/// The form's fields as typed (kept when refused) or as stored.
#[derive(Debug, Clone, Default)]
struct Fields {
    ldap: bool,
    tenant: String,
    client_id: String,
    url: String,
    base: String,
    bind_dn: String,
    ca: String,
    groups: String,
    attribute: String,
    cut: String,
    digits: String,
    pattern: String,
    department: bool,
    every: String,
    grace: String,
    refuse: bool,
    enabled: bool,
}

impl Fields {
    fn of(s: &DirectorySettings) -> Fields {
        let (cut, digits, pattern) = match s.extension.as_ref().map(|e| &e.transform) {
            Some(Transform::LastDigits(n)) => ("last", n.to_string(), String::new()),
            Some(Transform::Pattern(re)) => ("pattern", "4".into(), re.as_str().to_owned()),
            _ => ("whole", "4".into(), String::new()),
        };
        let every = format!("{:#}", s.every).replace(' ', "");
        let server = s.ldap.as_ref();
        Fields {
            ldap: s.kind == kalsync_directory::DirectoryKind::Ldap,
            tenant: s
                .entra_app
                .as_ref()
                .map(|a| a.tenant().to_owned())
                .unwrap_or_default(),
            client_id: s
                .entra_app
                .as_ref()
                .map(|a| a.client_id().to_owned())
                .unwrap_or_default(),
            url: server.map(|l| l.url().to_string()).unwrap_or_default(),
            base: server.map(|l| l.base().to_owned()).unwrap_or_default(),
            bind_dn: server.map(|l| l.bind_dn().to_owned()).unwrap_or_default(),
            ca: server.and_then(|l| l.ca()).unwrap_or_default().to_owned(),
            groups: s.groups.iter().map(|g| format!("{g}\n")).collect(),
            attribute: s
                .extension
                .as_ref()
                .map(|e| e.attribute.clone())
                .unwrap_or_default(),
            cut: cut.into(),
            digits,
            pattern,
            department: s.department.is_some(),
            every: if every == "24h" { "1d".into() } else { every },
            grace: if s.grace.is_zero() {
                "0s".into()
            } else {
                format!("{}d", s.grace.as_secs() / 86_400)
            },
            refuse: s.manual == ManualUsers::Refuse,
            enabled: s.enabled,
        }
    }

    fn posted(pairs: &[(String, String)]) -> Fields {
        let get = |k: &str| field(pairs, k).trim().to_owned();
        Fields {
            ldap: get("kind") == "ldap",
            tenant: get("tenant"),
            client_id: get("client_id"),
            url: get("url"),
            base: get("base"),
            bind_dn: get("bind_dn"),
            ca: get("ca"),
            groups: get("groups"),
            attribute: get("attribute"),
            cut: get("cut"),
            digits: get("digits"),
            pattern: get("pattern"),
            department: get("department") == "on",
            every: get("every"),
            grace: get("grace"),
            refuse: get("manual") == "refuse",
            enabled: get("enabled") == "on",
        }
    }

    /// The settings these fields say, as the API takes them.
    fn json(&self) -> serde_json::Value {
        let groups: Vec<&str> = self
            .groups
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let or = |v: &str, d: &'static str| {
            if v.is_empty() {
                d.to_owned()
            } else {
                v.to_owned()
            }
        };
        let mut json = serde_json::json!({
            "kind": if self.ldap { "ldap" } else { "entra" },
            "groups": groups,
            "every": or(&self.every, "15m"),
            "grace": or(&self.grace, "0s"),
            "manual": if self.refuse { "refuse" } else { "keep" },
            "enabled": self.enabled,
        });
        if !self.attribute.is_empty() {
            let mut rule = serde_json::json!({"attribute": self.attribute});
            match self.cut.as_str() {
                "last" => {
                    rule["last_digits"] = self
                        .digits
                        .parse::<u8>()
                        .map_or(serde_json::Value::from(0), serde_json::Value::from);
                }
                "pattern" => rule["pattern"] = serde_json::Value::from(self.pattern.clone()),
                _ => {}
            }
            json["extension"] = rule;
        }
        if self.department {
            json["department"] = serde_json::Value::from("department");
        }
        let app_named = !self.tenant.is_empty() || !self.client_id.is_empty();
        if !self.ldap && app_named {
            json["entra_app"] =
                serde_json::json!({"tenant": self.tenant, "client_id": self.client_id});
        }
        if self.ldap {
            let mut server = serde_json::json!({
                "url": self.url, "base": self.base, "bind_dn": self.bind_dn,
            });
            if !self.ca.is_empty() {
                server["ca"] = serde_json::Value::from(self.ca.clone());
            }
            json["ldap"] = server;
        }
        json
    }
}

/// What the page says above the form.
enum Notice {
    Saved,
    Error(String),
}

async fn shown(
    state: &WebState,
    viewer: &Viewer,
    instance: &str,
) -> Result<(Instance, String, bool, Option<DirectoryRecord>), ApiError> {
    let found = visible_instance(state, &viewer.principal, instance).await?;
    let company = super::company_name(state, found.company).await;
    let manages = viewer.principal.grant.manages(found.company);
    let record = state.store.directory(found.id).await?;
    Ok((found, company, manages, record))
}

/// The tab (`?saved=1` after a save).
pub(crate) async fn show(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(instance): Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let saved = q.get("saved").is_some_and(|v| v == "1");
    match shown(&state, &viewer, &instance).await {
        Ok((found, company, manages, record)) => directory_page(
            &viewer,
            &found,
            &company,
            manages,
            record.as_ref(),
            record.as_ref().map(|r| Fields::of(&r.settings)).as_ref(),
            saved.then_some(Notice::Saved),
        )
        .into_response(),
        Err(e) => e.into_response(),
    }
}

fn directory_page(
    viewer: &Viewer,
    found: &Instance,
    company: &str,
    manages: bool,
    record: Option<&DirectoryRecord>,
    typed: Option<&Fields>,
    notice: Option<Notice>,
) -> Markup {
    let t = i18n::texts(viewer.lang);
    let w = words(viewer.lang);
    let lang = viewer.lang;
    let zone = found.settings.time_zone.tz().clone();
    let now = jiff::Timestamp::now();
    let path = format!("/instances/{}/directory", found.id);
    let csrf = viewer.principal.csrf();
    let defaults = Fields {
        cut: "last".into(),
        digits: "3".into(),
        every: "15m".into(),
        grace: "0s".into(),
        ..Fields::default()
    };
    let f = typed.unwrap_or(&defaults);
    let graph = matches!(found.source, kalsync_store::SourceConfig::Graph { .. });
    let password_set = record.is_some_and(|r| r.password.is_some());
    let (attribute, cut, every, grace) = (
        f.attribute.as_str(),
        f.cut.as_str(),
        f.every.as_str(),
        f.grace.as_str(),
    );
    page(
        t,
        &format!("{} · {}", found.name, t.directory_tab),
        Some(&viewer.principal),
        &path,
        html! {
            (super::instance_head(t, company, found, InstanceTab::Directory, manages))
            p.muted { (w.intro) }
            @match &notice {
                Some(Notice::Saved) => p.available role="status" { (w.saved) },
                Some(Notice::Error(e)) => p.error #directory-error role="alert" { (e) },
                None => {},
            }
            @if let Some(r) = record { (last_run(w, lang, r, &zone, now, manages, csrf, &path)) }
            @if manages {
                form #directory-form method="post" action=(path) {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="kind" { (w.kind) }
                    select #kind name="kind" {
                        option value="entra" selected[!f.ldap && (graph || !f.tenant.is_empty())] { (w.kind_entra) }
                        option value="ldap" selected[f.ldap || (!graph && f.tenant.is_empty())] { (w.kind_ldap) }
                    }
                    p.muted #entra-permissions { "Entra ID: " (w.permissions) }
                    {
                        // An Exchange instance reads Entra ID with an app of the
                        // directory's own (a hybrid company); a Microsoft 365 one may.
                        fieldset #entra-app {
                            legend { (w.entra_app) }
                            p.muted { (if graph { w.entra_app_optional } else { w.entra_app_hint }) }
                            label for="tenant" { (w.tenant) }
                            input #tenant type="text" name="tenant" value=(f.tenant) spellcheck="false" placeholder="contoso.onmicrosoft.com";
                            label for="client_id" { (w.client_id) }
                            input #client_id type="text" name="client_id" value=(f.client_id) spellcheck="false";
                            label for="client_secret" { (w.client_secret) }
                            input #client_secret type="password" name="client_secret" autocomplete="off" aria-describedby=[password_set.then_some("secret-hint")];
                            @if password_set { p.muted #secret-hint { (w.ldap_password_kept) } }
                        }
                    }
                    fieldset #ldap {
                        legend { (w.ldap) }
                        p.muted { (w.ldap_permissions) }
                        label for="url" { (w.ldap_url) }
                        input #url type="text" name="url" value=(f.url) spellcheck="false" placeholder="ldaps://dc1.example.local" aria-describedby="url-hint";
                        p.muted #url-hint { (w.ldap_url_hint) }
                        label for="base" { (w.ldap_base) }
                        input #base type="text" name="base" value=(f.base) spellcheck="false" placeholder="DC=example,DC=local";
                        label for="bind_dn" { (w.ldap_bind) }
                        input #bind_dn type="text" name="bind_dn" value=(f.bind_dn) spellcheck="false" autocomplete="off" aria-describedby="bind-hint";
                        p.muted #bind-hint { (w.ldap_bind_hint) }
                        label for="password" { (w.ldap_password) }
                        input #password type="password" name="password" autocomplete="off" aria-describedby=[password_set.then_some("password-hint")];
                        @if password_set { p.muted #password-hint { (w.ldap_password_kept) } }
                        label for="ca" { (w.ldap_ca) }
                        textarea #ca name="ca" rows="3" spellcheck="false" class="code" aria-describedby="ca-hint" { (f.ca) }
                        p.muted #ca-hint { (w.ldap_ca_hint) }
                    }
                    label for="groups" { (w.groups) }
                    textarea #groups name="groups" rows="3" spellcheck="false" class="code" aria-describedby="groups-hint" {
                        (f.groups)
                    }
                    p.muted #groups-hint { (w.groups_hint) }
                    div.forms {
                        div {
                            label for="attribute" { (w.extension_from) }
                            select #attribute name="attribute" {
                                option value="" selected[attribute.is_empty()] { (w.no_extension) }
                                @for a in ATTRIBUTES { option value=(a) selected[attribute == a] { (a) } }
                            }
                        }
                        div {
                            label for="cut" { (w.cut) }
                            select #cut name="cut" {
                                option value="whole" selected[cut == "whole"] { (w.cut_whole) }
                                option value="last" selected[cut == "last"] { (w.cut_last) }
                                option value="pattern" selected[cut == "pattern"] { (w.cut_pattern) }
                            }
                        }
                        div {
                            label for="digits" { (w.digits) }
                            input #digits type="number" name="digits" min="2" max="20" value=(f.digits);
                        }
                        div {
                            label for="pattern" { (w.pattern) }
                            input #pattern type="text" name="pattern" value=(f.pattern) spellcheck="false";
                        }
                    }
                    label.check { input #department type="checkbox" name="department" value="on" checked[f.department]; " " (w.department) }
                    div.forms {
                        div {
                            label for="every" { (w.every) }
                            select #every name="every" {
                                @for (v, sv, en) in EVERY { option value=(v) selected[every == v] { (if lang == Lang::Sv { sv } else { en }) } }
                            }
                        }
                        div {
                            label for="grace" { (w.grace) }
                            select #grace name="grace" {
                                @for (v, sv, en) in GRACE {
                                    option value=(v) selected[grace == v] {
                                        @if v == "0s" { (w.grace_none) } @else { (if lang == Lang::Sv { sv } else { en }) }
                                    }
                                }
                            }
                        }
                    }
                    fieldset {
                        legend { (w.manual) }
                        label.check { input type="radio" name="manual" value="keep" checked[!f.refuse]; " " (w.manual_keep) }
                        label.check { input type="radio" name="manual" value="refuse" checked[f.refuse]; " " (w.manual_refuse) }
                    }
                    label.check { input #enabled type="checkbox" name="enabled" value="on" checked[f.enabled]; " " strong { (w.enabled) } }
                    p.muted { (w.enabled_hint) }
                    button.primary #save-directory type="submit" { (w.save) }
                }
                @if record.is_some() {
                    div.actions {
                        form.inline method="post" action={ (path) "/run" } {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="mode" value="dry_run";
                            button #dry-run type="submit" { (w.dry_run) }
                        }
                        " "
                        @if record.is_some_and(|r| r.settings.enabled) {
                            form.inline method="post" action={ (path) "/run" } {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="mode" value="now";
                                button #run-now type="submit" { (w.run_now) }
                            }
                            " "
                        }
                        form.inline method="post" action={ (path) "/remove" } {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { (w.remove) }
                        }
                    }
                }
            }
        },
    )
}

#[allow(clippy::too_many_arguments)]
fn last_run(
    w: &Words,
    lang: Lang,
    r: &DirectoryRecord,
    zone: &jiff::tz::TimeZone,
    now: jiff::Timestamp,
    manages: bool,
    csrf: &str,
    path: &str,
) -> Markup {
    html! {
        section #directory-status {
            h2 { (w.last_run) }
            @match &r.last {
                None => p.muted { (w.never_ran) },
                Some(run) => { (run_summary(w, lang, run, zone, now)) }
            }
            p { (w.next_run) ": " (i18n::moment(lang, r.next_run, now, zone)) }
            @if let Some(run) = &r.last && run.held.is_some() && manages && r.settings.enabled {
                p.error role="alert" { (w.held) }
                form.inline method="post" action={ (path) "/run" } {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="mode" value="confirmed";
                    button.danger #confirm-removals type="submit" { (w.confirm) }
                }
            }
            @if let Some(run) = &r.last && run.error.is_none() {
                h2 { (w.problems) " (" (run.problem_count) ")" }
                @if run.problems.is_empty() { p.muted { (w.no_problems) } } @else {
                    table #directory-problems .stack {
                        thead { tr { th { (w.person) } th { (w.what) } } }
                        tbody { @for p in &run.problems {
                            tr { td data-label=(w.person) { (p.who) } td data-label=(w.what) { (problem(lang, &p.problem)) } }
                        } }
                    }
                }
            }
        }
    }
}

fn run_summary(
    w: &Words,
    lang: Lang,
    run: &DirectoryRun,
    zone: &jiff::tz::TimeZone,
    now: jiff::Timestamp,
) -> Markup {
    html! {
        dl.health {
            div { dt { (w.last_run) } dd {
                @if let Some(at) = run.at { (i18n::moment(lang, at, now, zone)) " " }
                @if run.error.is_some() { span.pill.bad { (w.failed) } }
                @else if run.held.is_some() { span.pill.warn { (w.held.split(':').next().unwrap_or(w.held)) } }
                @else if run.applied { span.pill.ok { (w.applied) } }
                @else { span.pill.off { (w.dry) } }
            } }
            @if run.error.is_none() {
                div { dt { (w.members) } dd { (run.members) } }
                div { dt { (w.added) } dd { (run.added) } }
                div { dt { (w.updated) } dd { (run.updated) } }
                div { dt { (w.leaving) } dd { (run.leaving) } }
                div { dt { (w.removed) } dd { @match run.held { Some((go, _)) => span.pill.warn { (go) }, None => (run.removed) } } }
            }
        }
        @if let Some((code, message)) = &run.error {
            p.error #directory-run-error role="alert" { (error_text(lang, code, message)) }
        }
    }
}

/// The tab again with what was refused and why: the fields as typed, else as stored.
async fn refused_page(
    state: &WebState,
    viewer: &Viewer,
    found: &Instance,
    typed: Option<&Fields>,
    status: StatusCode,
    text: String,
) -> Response {
    let company = super::company_name(state, found.company).await;
    let record = state.store.directory(found.id).await.ok().flatten();
    let stored = record.as_ref().map(|r| Fields::of(&r.settings));
    (
        status,
        directory_page(
            viewer,
            found,
            &company,
            true,
            record.as_ref(),
            typed.or(stored.as_ref()),
            Some(Notice::Error(text)),
        ),
    )
        .into_response()
}

/// A posted field (empty when absent).
fn field(pairs: &[(String, String)], name: &str) -> String {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// The instance a form of the tab was posted for: the form from this site with the
/// session's token, the instance one the viewer manages.
async fn form_for(
    state: &WebState,
    viewer: &Viewer,
    headers: &HeaderMap,
    instance: &str,
    pairs: &[(String, String)],
) -> Result<Instance, Response> {
    let found = viewer
        .form_instance(state, headers, &field(pairs, "csrf"), instance)
        .await
        .map_err(IntoResponse::into_response)?;
    viewer
        .principal
        .manages(found.company, "instance")
        .map_err(IntoResponse::into_response)?;
    Ok(found)
}

/// Saves the form's settings: the page again, with what was typed and why not.
pub(crate) async fn save(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(instance): Path<String>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    let found = match form_for(&state, &viewer, &headers, &instance, &pairs).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let typed = Fields::posted(&pairs);
    // The secret of what was chosen: an LDAP account's password or an Entra app's.
    let typed_secret = field(
        &pairs,
        if typed.ldap {
            "password"
        } else {
            "client_secret"
        },
    );
    let password = match typed_secret {
        p if p.is_empty() => Ok(None),
        p => take_password(&mut serde_json::json!({ "password": p })),
    };
    let outcome = match (parse_settings(typed.json()), password) {
        (Ok(settings), Ok(password)) => save_settings(
            &state,
            &viewer.principal,
            &found,
            &settings,
            password.as_ref(),
        )
        .await
        .map(|()| settings),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match outcome {
        Ok(_) => {
            Redirect::to(&format!("/instances/{}/directory?saved=1", found.id)).into_response()
        }
        Err(ApiError::Invalid {
            field: named,
            message,
        }) => {
            let mut text = setting_problem(viewer.lang, &named, &message);
            // A typed password is never sent back: say it was not saved.
            if !field(&pairs, "password").is_empty() || !field(&pairs, "client_secret").is_empty() {
                text.push_str(match viewer.lang {
                    Lang::Sv => " Lösenordet sparades inte: ange det igen.",
                    Lang::En => " The password was not saved: enter it again.",
                });
            }
            refused_page(
                &state,
                &viewer,
                &found,
                Some(&typed),
                StatusCode::UNPROCESSABLE_ENTITY,
                text,
            )
            .await
        }
        Err(e) => e.into_response(),
    }
}

/// A run asked for from the page: the page again, with what it did.
pub(crate) async fn run(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(instance): Path<String>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    let found = match form_for(&state, &viewer, &headers, &instance, &pairs).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mode = match field(&pairs, "mode").as_str() {
        "now" => DirectoryMode::Now,
        "confirmed" => DirectoryMode::Confirmed,
        _ => DirectoryMode::DryRun,
    };
    match run_directory(&state, &viewer.principal, &found, mode).await {
        Ok(_) => Redirect::to(&format!("/instances/{}/directory", found.id)).into_response(),
        Err(ApiError::TooMany(secs)) => {
            let text = match viewer.lang {
                Lang::Sv => format!(
                    "Katalogen har körts många gånger den senaste minuten; försök igen om {secs} sekunder."
                ),
                Lang::En => format!(
                    "The directory ran many times in the last minute; try again in {secs} seconds."
                ),
            };
            refused_page(
                &state,
                &viewer,
                &found,
                None,
                StatusCode::TOO_MANY_REQUESTS,
                text,
            )
            .await
        }
        Err(e) => e.into_response(),
    }
}

/// Stops using the directory (asks first): the users stay, as if added by hand.
pub(crate) async fn remove(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(instance): Path<String>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    let found = match form_for(&state, &viewer, &headers, &instance, &pairs).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let t = i18n::texts(viewer.lang);
    if field(&pairs, "confirm") != "yes" {
        let (what, consequences) = match viewer.lang {
            Lang::Sv => (
                format!("katalogen för {}", found.name),
                "Användarna blir kvar som om de lagts till för hand; ingen läggs till eller tas bort av katalogen längre.",
            ),
            Lang::En => (
                format!("the directory of {}", found.name),
                "The users stay as if added by hand; the directory adds and removes nobody any more.",
            ),
        };
        return super::confirm_removal(
            t,
            &viewer.principal,
            &what,
            consequences,
            &format!("/instances/{}/directory/remove", found.id),
            &format!("/instances/{}/directory", found.id),
        )
        .into_response();
    }
    match crate::api::directory::remove_directory(&state, &viewer.principal, &found).await {
        Ok(()) => Redirect::to(&format!("/instances/{}/directory", found.id)).into_response(),
        Err(e) => e.into_response(),
    }
}
