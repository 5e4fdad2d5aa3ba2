//! The UI's words in Swedish and English. One struct per language, so a missing text is
//! a compile error, not a blank on the page. The language comes from the `kalsync_lang`
//! cookie (the switch on every page), else `Accept-Language`, else Swedish.

use axum::http::HeaderMap;
use axum::http::header;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use kalsync_core::Lang;

/// A connection check's step, named as `kalsync check` names it, in the page's language
/// (the details stay as the check wrote them).
pub(crate) fn check_step<'a>(t: &'a Texts, name: &'a str) -> &'a str {
    match name {
        "sign in" => t.step_sign_in,
        "reach the test mailbox" => t.step_mailbox,
        "read the calendar" => t.step_read,
        "subscribe to changes" => t.step_subscribe,
        other => other,
    }
}

/// The cookie the language switch sets.
pub const LANG_COOKIE: &str = "kalsync_lang";

/// Every text of the UI.
pub struct Texts {
    pub(crate) html_lang: &'static str,
    pub(crate) other_language: &'static str,
    pub(crate) other_code: &'static str,
    pub(crate) sign_in: &'static str,
    pub(crate) sign_out: &'static str,
    pub(crate) email: &'static str,
    pub(crate) password: &'static str,
    pub(crate) sign_in_intro: &'static str,
    pub(crate) dashboard: &'static str,
    pub(crate) switchboard: &'static str,
    pub(crate) instances: &'static str,
    pub(crate) instance: &'static str,
    pub(crate) company: &'static str,
    pub(crate) source: &'static str,
    pub(crate) users: &'static str,
    pub(crate) last_sync: &'static str,
    pub(crate) errors: &'static str,
    pub(crate) dead_letters: &'static str,
    pub(crate) active: &'static str,
    pub(crate) inactive: &'static str,
    pub(crate) never: &'static str,
    pub(crate) ok: &'static str,
    pub(crate) name: &'static str,
    pub(crate) extension: &'static str,
    pub(crate) status: &'static str,
    pub(crate) back: &'static str,
    pub(crate) available: &'static str,
    pub(crate) away_now: &'static str,
    pub(crate) filter: &'static str,
    pub(crate) search: &'static str,
    pub(crate) show_available: &'static str,
    pub(crate) nobody_away: &'static str,
    pub(crate) live: &'static str,
    pub(crate) no_instances: &'static str,
    pub(crate) signed_in_as: &'static str,
    pub(crate) added: &'static str,
    pub(crate) imported: &'static str,
    pub(crate) added_n: &'static str,
    pub(crate) existing_n: &'static str,
    pub(crate) errors_n: &'static str,
    pub(crate) line: &'static str,
    pub(crate) problem: &'static str,
    pub(crate) remove: &'static str,
    pub(crate) remove_hint: &'static str,
    pub(crate) confirm_remove: &'static str,
    pub(crate) remove_user_what: &'static str,
    pub(crate) remove_account_what: &'static str,
    pub(crate) cannot_undo: &'static str,
    pub(crate) cancel: &'static str,
    pub(crate) not_found_title: &'static str,
    pub(crate) not_found_text: &'static str,
    pub(crate) forbidden_title: &'static str,
    pub(crate) forbidden_text: &'static str,
    pub(crate) failed_title: &'static str,
    pub(crate) failed_text: &'static str,
    pub(crate) back_home: &'static str,
    pub(crate) add_user: &'static str,
    pub(crate) import_csv: &'static str,
    pub(crate) csv_hint: &'static str,
    pub(crate) reason: &'static str,
    pub(crate) mode: &'static str,
    pub(crate) from: &'static str,
    pub(crate) to: &'static str,
    pub(crate) why: &'static str,
    pub(crate) divert: &'static str,
    pub(crate) info: &'static str,
    pub(crate) own_choice: &'static str,
    pub(crate) no_title: &'static str,
    pub(crate) time_bar: &'static str,
    pub(crate) absences: &'static str,
    pub(crate) no_absences: &'static str,
    pub(crate) rules: &'static str,
    pub(crate) rules_intro: &'static str,
    pub(crate) rules_file: &'static str,
    pub(crate) calendar_to_try: &'static str,
    pub(crate) repeats_too_often: &'static str,
    pub(crate) calendar_too_slow: &'static str,
    pub(crate) preview: &'static str,
    pub(crate) save: &'static str,
    pub(crate) saved: &'static str,
    pub(crate) events_read: &'static str,
    pub(crate) paste_calendar: &'static str,
    pub(crate) edit_rules: &'static str,
    pub(crate) other_cloud: &'static str,
    pub(crate) graph_url: &'static str,
    pub(crate) login_url: &'static str,

    pub(crate) new_instance: &'static str,
    pub(crate) exchange_on_premises: &'static str,
    pub(crate) tenant: &'static str,
    pub(crate) client_id: &'static str,
    pub(crate) client_secret: &'static str,
    pub(crate) ews_address: &'static str,
    pub(crate) service_account: &'static str,
    pub(crate) sign_in_method: &'static str,
    pub(crate) version: &'static str,
    pub(crate) access: &'static str,
    pub(crate) create: &'static str,
    pub(crate) exchange_setup: &'static str,
    pub(crate) exchange_setup_intro: &'static str,
    pub(crate) connect_m365: &'static str,
    pub(crate) connect_intro: &'static str,
    pub(crate) own_app: &'static str,
    pub(crate) connected: &'static str,
    pub(crate) connected_text: &'static str,
    pub(crate) consent_refused: &'static str,
    pub(crate) tenant_taken: &'static str,
    pub(crate) no_longer_manages: &'static str,
    pub(crate) continue_to: &'static str,
    pub(crate) sign_in_microsoft: &'static str,
    pub(crate) or_password: &'static str,
    pub(crate) microsoft_failed: &'static str,
    pub(crate) microsoft_no_access: &'static str,
    pub(crate) microsoft_email_taken: &'static str,
    pub(crate) sign_in_expired: &'static str,
    pub(crate) microsoft_account: &'static str,
    pub(crate) link_microsoft: &'static str,
    pub(crate) unlink_microsoft: &'static str,
    pub(crate) linked_to: &'static str,
    pub(crate) not_linked: &'static str,
    pub(crate) microsoft_only: &'static str,
    pub(crate) linked_elsewhere: &'static str,
    pub(crate) linked: &'static str,
    pub(crate) microsoft_sign_in: &'static str,
    pub(crate) microsoft_sign_in_intro: &'static str,
    pub(crate) no_tenant_yet: &'static str,
    pub(crate) tenant_id: &'static str,
    pub(crate) admins_match: &'static str,
    pub(crate) readers_match: &'static str,
    pub(crate) signed_in_text: &'static str,
    pub(crate) roles_saved: &'static str,
    pub(crate) operator_tenant: &'static str,
    pub(crate) not_consented: &'static str,
    pub(crate) try_again: &'static str,
    pub(crate) settings: &'static str,
    pub(crate) settings_intro: &'static str,
    pub(crate) instance_on: &'static str,
    pub(crate) remove_instance: &'static str,
    pub(crate) remove_instance_confirm: &'static str,
    pub(crate) remove_instance_unconfirmed: &'static str,
    pub(crate) test_connection: &'static str,
    pub(crate) test_connection_intro: &'static str,
    pub(crate) test_mailbox: &'static str,
    pub(crate) check_passed: &'static str,
    pub(crate) check_failed: &'static str,
    pub(crate) showing: &'static str,
    pub(crate) of_total: &'static str,
    pub(crate) search_users: &'static str,
    pub(crate) subscriptions: &'static str,
    pub(crate) renewed_by: &'static str,
    pub(crate) throttled: &'static str,
    pub(crate) outbox: &'static str,
    pub(crate) my_account: &'static str,
    pub(crate) accounts: &'static str,
    pub(crate) operators: &'static str,
    pub(crate) role: &'static str,
    pub(crate) role_operator: &'static str,
    pub(crate) role_company_admin: &'static str,
    pub(crate) role_reader: &'static str,
    pub(crate) change_password: &'static str,
    pub(crate) current_password: &'static str,
    pub(crate) new_password: &'static str,
    pub(crate) repeat_password: &'static str,
    pub(crate) passwords_differ: &'static str,
    pub(crate) password_changed: &'static str,
    pub(crate) add_account: &'static str,
    pub(crate) first_password: &'static str,
    pub(crate) created: &'static str,
    pub(crate) account_added: &'static str,
    pub(crate) step_sign_in: &'static str,
    pub(crate) step_mailbox: &'static str,
    pub(crate) step_read: &'static str,
    pub(crate) step_subscribe: &'static str,
}

/// Swedish.
pub const SV: Texts = Texts {
    html_lang: "sv",
    other_language: "English",
    other_code: "en",
    sign_in: "Logga in",
    sign_out: "Logga ut",
    email: "E-post",
    password: "Lösenord",
    sign_in_intro: "Logga in för att se vem som är borta, instanserna och reglerna.",
    dashboard: "Instrumentpanel",
    switchboard: "Telefonist",
    instances: "Instanser",
    instance: "Instans",
    company: "Företag",
    source: "Källa",
    users: "Användare",
    last_sync: "Senast läst",
    errors: "Fel",
    dead_letters: "Ej levererade",
    active: "aktiv",
    inactive: "avstängd",
    never: "aldrig",
    ok: "ok",
    name: "Namn",
    extension: "Anknytning",
    status: "Status",
    back: "Åter",
    available: "Tillgänglig",
    away_now: "Borta nu",
    filter: "Sök namn eller anknytning",
    search: "Sök",
    show_available: "Visa även tillgängliga",
    nobody_away: "Ingen är borta just nu.",
    live: "uppdateras direkt",
    no_instances: "Inga instanser ännu.",
    signed_in_as: "Inloggad som",
    added: "Lade till",
    imported: "Import klar",
    added_n: "tillagda",
    existing_n: "fanns redan",
    errors_n: "fel",
    line: "Rad",
    problem: "Problem",
    remove: "Ta bort",
    remove_hint: "Tar bort användaren och all dess data",
    confirm_remove: "Ta bort",
    remove_user_what: "Användarens bokningar, tidslinje och statusar som väntar på att skickas tas bort, och växeln får inga fler statusar för hen.",
    remove_account_what: "Kontot kan inte längre logga in; dess sessioner och API-nycklar upphör.",
    cannot_undo: "Det går inte att ångra.",
    cancel: "Avbryt",
    not_found_title: "Sidan finns inte",
    not_found_text: "Det du letar efter finns inte, eller så har ditt konto inte tillgång till det.",
    forbidden_title: "Inte tillåtet",
    forbidden_text: "Ditt konto får inte göra det här.",
    failed_title: "Något gick fel",
    failed_text: "Tjänsten kunde inte göra det just nu. Försök igen om en stund; händelsen är loggad.",
    back_home: "Till startsidan",
    add_user: "Lägg till användare",
    import_csv: "Importera CSV",
    csv_hint: "En rad per användare: e-post,namn,anknytning",
    reason: "Orsak",
    mode: "Läge",
    from: "Från",
    to: "Till",
    why: "Varför (bokningarna)",
    divert: "hänvisning",
    info: "information",
    own_choice: "eget val",
    no_title: "(rubrik visas inte)",
    time_bar: "Idag och framåt",
    absences: "Frånvaro",
    no_absences: "Ingen frånvaro bokad.",
    rules: "Regler",
    rules_intro: "Inställningar och regler som en regelfil. Prova dem mot en kalender (en .ics-fil från Outlook: Arkiv → Spara kalender) innan du sparar.",
    rules_file: "regelfilen",
    calendar_to_try: "Kalender att prova mot (.ics)",
    repeats_too_often: "upprepas för tätt för att läsas fram till de dagar som visas (Outlooks serier upprepas högst en gång om dagen).",
    calendar_too_slow: "Kalendern tog för lång tid att läsa. Prova med en mindre del av den.",
    preview: "Förhandsgranska",
    save: "Spara",
    saved: "Sparat. Ändringen når synkroniseringen inom tio sekunder.",
    events_read: "händelser lästa",
    paste_calendar: "Klistra in en kalender (.ics) att prova reglerna mot.",
    edit_rules: "Regler och inställningar",
    other_cloud: "Annat moln (nationella moln, simulator)",
    graph_url: "Graph-adress",
    login_url: "Inloggningsadress",

    new_instance: "Ny instans",
    exchange_on_premises: "Exchange på plats",
    tenant: "Katalog (tenant)",
    client_id: "Program-id (client id)",
    client_secret: "Klienthemlighet",
    ews_address: "EWS-adress",
    service_account: "Tjänstekonto",
    sign_in_method: "Inloggning",
    version: "Version",
    access: "Åtkomst",
    create: "Skapa",
    exchange_setup: "Förbered Exchange",
    exchange_setup_intro: "Exchange-administratören kör detta i Exchange Management Shell: tjänstekontot, dess rättigheter och en begränsningspolicy, med kontroller på slutet.",
    connect_m365: "Anslut Microsoft 365",
    connect_intro: "Logga in som global administratör för ert Microsoft 365 och godkänn Kalsyncs app. Appen får läsa kalendrarnas tider, aldrig innehållet. Ingen egen app-registrering behövs.",
    own_app: "Eller med en egen app-registrering i Entra ID",
    connected: "Microsoft 365 är anslutet",
    connected_text: "Instansen är skapad och läser kalendrar i tenant",
    consent_refused: "Microsoft 365 anslöts inte",
    tenant_taken: "Den här Microsoft 365-organisationen är redan ansluten av ett annat företag hos operatören. Logga in med en administratör i ert eget Microsoft 365, eller be operatören om hjälp.",
    no_longer_manages: "Kontot som började anslutningen administrerar inte längre företaget. Be en av företagets administratörer att ansluta.",
    sign_in_microsoft: "Logga in med Microsoft",
    or_password: "eller med e-post och lösenord",
    microsoft_failed: "Inloggningen med Microsoft misslyckades",
    microsoft_no_access: "Ditt Microsoft-konto har ingen åtkomst till Kalsync. Be er administratör tilldela dig approllen Kalsync.Admin eller Kalsync.Reader i Microsoft Entra (Företagsprogram → Kalsync → Användare och grupper).",
    microsoft_email_taken: "Det finns redan ett konto med den här e-postadressen. Logga in med dess lösenord och koppla ditt Microsoft-konto under Mitt konto:",
    sign_in_expired: "Inloggningen tog för lång tid eller startades inte här. Försök igen.",
    microsoft_account: "Microsoft-konto",
    link_microsoft: "Koppla ett Microsoft-konto",
    unlink_microsoft: "Ta bort kopplingen",
    linked_to: "Kopplat till Microsoft-kontot",
    not_linked: "Inget Microsoft-konto är kopplat. Koppla ditt för att kunna logga in med Microsoft.",
    microsoft_only: "Du loggar in med Microsoft; kontot har inget lösenord.",
    linked_elsewhere: "Det här Microsoft-kontot är redan kopplat till ett annat konto.",
    linked: "Microsoft-kontot är kopplat.",
    microsoft_sign_in: "Inloggning med Microsoft",
    microsoft_sign_in_intro: "Personer i organisationen som har någon av approllerna, eller är med i någon av grupperna, loggar in som administratörer respektive läsare. Tilldela approllerna i Microsoft Entra under Företagsprogram → Kalsync → Användare och grupper.",
    no_tenant_yet: "Ingen Microsoft 365-organisation är ansluten ännu. När en administratör har anslutit Microsoft 365 kan organisationens personer logga in med Microsoft.",
    tenant_id: "Organisation (Directory-id)",
    admins_match: "Administratörer: approller eller grupp-id:n, en per rad",
    readers_match: "Läsare: approller eller grupp-id:n, en per rad",
    signed_in_text: "Du är inloggad.",
    roles_saved: "Sparat. Det gäller från var och ens nästa inloggning.",
    not_consented: "Kalsync har inte fått läsa kalendrarna i er organisation: en global administratör (eller programadministratör) måste logga in och godkänna för hela organisationen.",
    operator_tenant: "Det här är operatörens egen Microsoft 365-organisation; ett företag kan inte ansluta den. Logga in med en administratör i ert eget Microsoft 365.",
    continue_to: "Fortsätt",
    try_again: "Försök igen",
    settings: "Anslutning och namn",
    settings_intro: "Lösenord och hemligheter visas aldrig; lämna fälten tomma för att behålla de sparade.",
    instance_on: "Instansen är på (kalendrar läses och status skickas)",
    remove_instance: "Ta bort instansen",
    remove_instance_confirm: "Jag förstår att alla användare och deras data tas bort",
    remove_instance_unconfirmed: "Kryssa i rutan för att bekräfta borttagningen.",
    test_connection: "Testa anslutningen",
    test_connection_intro: "Loggar in, når en brevlåda, läser dess kalender och prenumererar — och säger vad som behöver åtgärdas.",
    test_mailbox: "Testbrevlåda (tom: första användaren)",
    check_passed: "Anslutningen fungerar",
    check_failed: "Anslutningen behöver åtgärdas",
    showing: "Visar",
    of_total: "av",
    search_users: "Sök på namn, e-post eller anknytning",
    subscriptions: "Prenumerationer",
    renewed_by: "förnyas senast",
    throttled: "Strypta",
    outbox: "Kö till växeln",
    my_account: "Mitt konto",
    accounts: "Konton",
    operators: "Operatörens konton",
    role: "Roll",
    role_operator: "Operatör",
    role_company_admin: "Administratör",
    role_reader: "Läsare (t.ex. reception)",
    change_password: "Byt lösenord",
    current_password: "Nuvarande lösenord",
    new_password: "Nytt lösenord (minst 10 tecken)",
    repeat_password: "Nytt lösenord igen",
    passwords_differ: "De två nya lösenorden är inte lika.",
    password_changed: "Lösenordet är bytt och alla inloggningar avslutade. Logga in med det nya.",
    add_account: "Lägg till konto",
    first_password: "Första lösenord (minst 10 tecken; byts efter inloggning)",
    created: "Skapat",
    account_added: "Kontot är skapat:",
    step_sign_in: "Inloggning",
    step_mailbox: "Testbrevlådan nås",
    step_read: "Kalendern läses",
    step_subscribe: "Prenumeration på ändringar",
};

/// English.
pub const EN: Texts = Texts {
    html_lang: "en",
    other_language: "Svenska",
    other_code: "sv",
    sign_in: "Sign in",
    sign_out: "Sign out",
    email: "E-mail",
    password: "Password",
    sign_in_intro: "Sign in to see who is away, the instances and their rules.",
    dashboard: "Dashboard",
    switchboard: "Switchboard",
    instances: "Instances",
    instance: "Instance",
    company: "Company",
    source: "Source",
    users: "Users",
    last_sync: "Last read",
    errors: "Errors",
    dead_letters: "Undelivered",
    active: "active",
    inactive: "switched off",
    never: "never",
    ok: "ok",
    name: "Name",
    extension: "Extension",
    status: "Status",
    back: "Back",
    available: "Available",
    away_now: "Away now",
    filter: "Search name or extension",
    search: "Search",
    show_available: "Show available people too",
    nobody_away: "Nobody is away right now.",
    live: "updates live",
    no_instances: "No instances yet.",
    signed_in_as: "Signed in as",
    added: "Added",
    imported: "Import done",
    added_n: "added",
    existing_n: "already there",
    errors_n: "errors",
    line: "Line",
    problem: "Problem",
    remove: "Remove",
    remove_hint: "Removes the user and all its data",
    confirm_remove: "Remove",
    remove_user_what: "The user's bookings, timeline and statuses waiting to be sent are deleted, and the PBX gets no more statuses for them.",
    remove_account_what: "The account can no longer sign in; its sessions and API tokens end.",
    cannot_undo: "This cannot be undone.",
    cancel: "Cancel",
    not_found_title: "Page not found",
    not_found_text: "What you are looking for does not exist, or your account has no access to it.",
    forbidden_title: "Not allowed",
    forbidden_text: "Your account may not do this.",
    failed_title: "Something went wrong",
    failed_text: "The service could not do this just now. Try again in a moment; it has been logged.",
    back_home: "To the start page",
    add_user: "Add a user",
    import_csv: "Import CSV",
    csv_hint: "One line per user: email,name,extension",
    reason: "Reason",
    mode: "Mode",
    from: "From",
    to: "To",
    why: "Why (the bookings)",
    divert: "divert",
    info: "info",
    own_choice: "own choice",
    no_title: "(title not shown)",
    time_bar: "Today and ahead",
    absences: "Absences",
    no_absences: "No absence booked.",
    rules: "Rules",
    rules_intro: "The settings and rules as a rules file. Try them on a calendar (an .ics file from Outlook: File → Save Calendar) before saving.",
    rules_file: "rules file",
    calendar_to_try: "Calendar to try (.ics)",
    repeats_too_often: "repeats too often to be read up to the days shown (Outlook's series repeat once a day at most).",
    calendar_too_slow: "The calendar took too long to read. Try a smaller part of it.",
    preview: "Preview",
    save: "Save",
    saved: "Saved. The change reaches the syncs within ten seconds.",
    events_read: "events read",
    paste_calendar: "Paste a calendar (.ics) to try the rules on.",
    edit_rules: "Rules and settings",
    other_cloud: "Another cloud (national clouds, a simulator)",
    graph_url: "Graph address",
    login_url: "Login address",

    new_instance: "New instance",
    exchange_on_premises: "On-premises Exchange",
    tenant: "Directory (tenant)",
    client_id: "Application (client) id",
    client_secret: "Client secret",
    ews_address: "EWS address",
    service_account: "Service account",
    sign_in_method: "Sign-in",
    version: "Version",
    access: "Access",
    create: "Create",
    exchange_setup: "Prepare Exchange",
    exchange_setup_intro: "The Exchange admin runs this in the Exchange Management Shell: the service account, its rights and a throttling policy, with checks at the end.",
    connect_m365: "Connect Microsoft 365",
    connect_intro: "Sign in as a global administrator of your Microsoft 365 and approve Kalsync's app. It may read the calendars' times, never their content. No app registration of your own is needed.",
    own_app: "Or with an app registration of your own in Entra ID",
    connected: "Microsoft 365 is connected",
    connected_text: "The instance is created and reads calendars in tenant",
    consent_refused: "Microsoft 365 was not connected",
    tenant_taken: "This Microsoft 365 organisation is already connected by another of the operator's companies. Sign in with an admin of your own Microsoft 365, or ask the operator for help.",
    no_longer_manages: "The account that started the connection no longer manages the company. Ask one of the company's admins to connect.",
    sign_in_microsoft: "Sign in with Microsoft",
    or_password: "or with e-mail and password",
    microsoft_failed: "Signing in with Microsoft failed",
    microsoft_no_access: "Your Microsoft account has no access to Kalsync. Ask your admin to assign you the app role Kalsync.Admin or Kalsync.Reader in Microsoft Entra (Enterprise applications → Kalsync → Users and groups).",
    microsoft_email_taken: "An account with this e-mail exists already. Sign in with its password and link your Microsoft account under My account:",
    sign_in_expired: "The sign-in took too long or was not started here. Try again.",
    microsoft_account: "Microsoft account",
    link_microsoft: "Link a Microsoft account",
    unlink_microsoft: "Unlink",
    linked_to: "Linked to the Microsoft account",
    not_linked: "No Microsoft account is linked. Link yours to sign in with Microsoft.",
    microsoft_only: "You sign in with Microsoft; the account has no password.",
    linked_elsewhere: "This Microsoft account is linked to another account already.",
    linked: "The Microsoft account is linked.",
    microsoft_sign_in: "Sign-in with Microsoft",
    microsoft_sign_in_intro: "People of the organisation with one of the app roles, or in one of the groups, sign in as admins or readers. Assign the app roles in Microsoft Entra under Enterprise applications → Kalsync → Users and groups.",
    no_tenant_yet: "No Microsoft 365 organisation is connected yet. Once an admin has connected Microsoft 365, the organisation's people can sign in with Microsoft.",
    tenant_id: "Organisation (directory id)",
    admins_match: "Admins: app roles or group ids, one per line",
    readers_match: "Readers: app roles or group ids, one per line",
    signed_in_text: "You are signed in.",
    roles_saved: "Saved. It applies from each person's next sign-in.",
    not_consented: "Kalsync has not been allowed to read your organisation's calendars: a Global Administrator (or Application Administrator) must sign in and accept for the whole organisation.",
    operator_tenant: "This is the operator's own Microsoft 365 organisation; a company cannot connect it. Sign in with an admin of your own Microsoft 365.",
    continue_to: "Continue",
    try_again: "Try again",
    settings: "Connection and name",
    settings_intro: "Passwords and secrets are never shown; leave the fields empty to keep the stored ones.",
    instance_on: "The instance is on (calendars are read and statuses sent)",
    remove_instance: "Remove the instance",
    remove_instance_confirm: "I understand that all users and their data are deleted",
    remove_instance_unconfirmed: "Tick the box to confirm the removal.",
    test_connection: "Test the connection",
    test_connection_intro: "Signs in, reaches a mailbox, reads its calendar and subscribes — and says what needs fixing.",
    test_mailbox: "Test mailbox (empty: the first user)",
    check_passed: "The connection works",
    check_failed: "The connection needs fixing",
    showing: "Showing",
    of_total: "of",
    search_users: "Search by name, e-mail or extension",
    subscriptions: "Subscriptions",
    renewed_by: "renewed by",
    throttled: "Throttled",
    outbox: "Queued for the PBX",
    my_account: "My account",
    accounts: "Accounts",
    operators: "The operator's accounts",
    role: "Role",
    role_operator: "Operator",
    role_company_admin: "Administrator",
    role_reader: "Reader (e.g. reception)",
    change_password: "Change password",
    current_password: "Current password",
    new_password: "New password (at least 10 characters)",
    repeat_password: "New password again",
    passwords_differ: "The two new passwords differ.",
    password_changed: "The password is changed and every session ended. Sign in with the new one.",
    add_account: "Add an account",
    first_password: "First password (at least 10 characters; changed after signing in)",
    created: "Created",
    account_added: "The account is created:",
    step_sign_in: "Sign-in",
    step_mailbox: "The test mailbox is reached",
    step_read: "The calendar is read",
    step_subscribe: "Subscription to changes",
};

/// The texts of `lang`.
pub fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::Sv => &SV,
        Lang::En => &EN,
    }
}

/// The language of a request: the switch's cookie, else the first of `Accept-Language`
/// that is Swedish or English, else Swedish.
pub fn language(headers: &HeaderMap) -> Lang {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == LANG_COOKIE)
        .map(|(_, v)| v.trim().to_owned());
    if let Some(l) = cookie.as_deref().and_then(parse) {
        return l;
    }
    let mut asked: Vec<(f32, Lang)> = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next()?.trim();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            Some((q, parse(tag)?))
        })
        .collect();
    asked.sort_by(|a, b| b.0.total_cmp(&a.0));
    asked.first().map_or(Lang::Sv, |(_, l)| *l)
}

/// A weekday's short name.
pub fn weekday(lang: Lang, day: jiff::civil::Weekday) -> &'static str {
    use jiff::civil::Weekday::{Friday, Monday, Saturday, Sunday, Thursday, Tuesday, Wednesday};
    match (lang, day) {
        (Lang::Sv, Monday) => "mån",
        (Lang::Sv, Tuesday) => "tis",
        (Lang::Sv, Wednesday) => "ons",
        (Lang::Sv, Thursday) => "tor",
        (Lang::Sv, Friday) => "fre",
        (Lang::Sv, Saturday) => "lör",
        (Lang::Sv, Sunday) => "sön",
        (Lang::En, Monday) => "Mon",
        (Lang::En, Tuesday) => "Tue",
        (Lang::En, Wednesday) => "Wed",
        (Lang::En, Thursday) => "Thu",
        (Lang::En, Friday) => "Fri",
        (Lang::En, Saturday) => "Sat",
        (Lang::En, Sunday) => "Sun",
    }
}

/// When someone is back, as a receptionist reads it at a glance: the time alone today
/// (`08.00` / `08:00`), else the weekday and date too (`ons 2/12 08.00` /
/// `Wed 2 Dec 08:00`), in `zone`. `now` decides what today is.
pub fn back_at(lang: Lang, returns: Timestamp, now: Timestamp, zone: &TimeZone) -> String {
    let back = returns.to_zoned(zone.clone());
    let today = now.to_zoned(zone.clone()).date();
    let day = weekday(lang, back.weekday());
    match lang {
        Lang::Sv if back.date() == today => back.strftime("%H.%M").to_string(),
        Lang::Sv => format!(
            "{day} {}/{} {}",
            back.day(),
            back.month(),
            back.strftime("%H.%M")
        ),
        Lang::En if back.date() == today => back.strftime("%H:%M").to_string(),
        Lang::En => format!("{day} {}", back.strftime("%-d %b %H:%M")),
    }
}

/// `sv`, `sv-SE`, `en`, `en-GB` … → the language.
pub fn parse(tag: &str) -> Option<Lang> {
    let primary = tag.split(['-', '_']).next()?.to_ascii_lowercase();
    match primary.as_str() {
        "sv" => Some(Lang::Sv),
        "en" => Some(Lang::En),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn back_is_the_time_today_and_the_day_too_otherwise() {
        let zone = TimeZone::get("Europe/Stockholm").expect("zone");
        let at = |s: &str| {
            jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M", s)
                .expect("time")
                .to_zoned(zone.clone())
                .expect("zoned")
                .timestamp()
        };
        let now = at("2026-12-01 10:00");
        assert_eq!(
            back_at(Lang::Sv, at("2026-12-01 13:00"), now, &zone),
            "13.00"
        );
        assert_eq!(
            back_at(Lang::En, at("2026-12-01 13:00"), now, &zone),
            "13:00"
        );
        assert_eq!(
            back_at(Lang::Sv, at("2026-12-02 08:00"), now, &zone),
            "ons 2/12 08.00"
        );
        assert_eq!(
            back_at(Lang::En, at("2026-12-02 08:00"), now, &zone),
            "Wed 2 Dec 08:00"
        );
    }

    #[test]
    fn the_cookie_wins_then_accept_language_by_weight() {
        let mut h = HeaderMap::new();
        assert_eq!(language(&h), Lang::Sv);
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("de-DE, en-GB;q=0.8, sv;q=0.5"),
        );
        assert_eq!(language(&h), Lang::En);
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("fr, sv-SE;q=0.9, en;q=0.7"),
        );
        assert_eq!(language(&h), Lang::Sv);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; kalsync_lang=en"),
        );
        assert_eq!(language(&h), Lang::En);
        h.insert(header::COOKIE, HeaderValue::from_static("kalsync_lang=xx"));
        assert_eq!(language(&h), Lang::Sv);
    }
}
