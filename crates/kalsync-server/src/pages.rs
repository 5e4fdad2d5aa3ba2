//! The who-is-away page: every user, their absence now and what comes next, from the
//! stored timelines. Plain HTML that refreshes itself; the admin UI replaces it.

use axum::extract::State;
use axum::response::Html;
use jiff::Timestamp;

use crate::Service;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(crate) async fn who_is_away(State(service): State<Service>) -> Html<String> {
    let now = Timestamp::now();
    let mut rows = String::new();
    let mut away = 0;
    let mut total = 0;
    let companies = service.store.companies().await.unwrap_or_default();
    for company in &companies {
        for instance in service
            .store
            .instances(company.id)
            .await
            .unwrap_or_default()
        {
            let zone = instance.settings.time_zone.tz().clone();
            let clock = |t: Timestamp| t.to_zoned(zone.clone()).strftime("%a %H:%M").to_string();
            for user in service.store.users(instance.id).await.unwrap_or_default() {
                total += 1;
                let timeline = service
                    .store
                    .timeline(user.id)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let (status, class) = match timeline.at(now) {
                    Some(a) => {
                        away += 1;
                        (
                            escape(&timeline.message(
                                a,
                                &instance.settings,
                                kalsync_core::Lang::En,
                            )),
                            if a.mode == kalsync_core::Mode::Divert {
                                "divert"
                            } else {
                                "info"
                            },
                        )
                    }
                    None => ("Available".to_owned(), "available"),
                };
                let next: Vec<String> = timeline
                    .absences
                    .iter()
                    .filter(|a| a.start > now)
                    .take(3)
                    .map(|a| {
                        format!(
                            "{} {}–{}",
                            escape(a.label(&instance.settings, kalsync_core::Lang::En)),
                            clock(a.start),
                            clock(a.end)
                        )
                    })
                    .collect();
                let synced = user
                    .last_sync
                    .map(clock)
                    .unwrap_or_else(|| "not yet".into());
                let error = user
                    .last_error
                    .as_deref()
                    .map(|e| format!(" <span class=\"err\">{}</span>", escape(e)))
                    .unwrap_or_default();
                rows.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{status}</td><td>{}</td><td>{synced}{error}</td></tr>\n",
                    escape(user.display_name.as_deref().unwrap_or("")),
                    escape(user.email.as_str()),
                    escape(user.extension.as_ref().map(|e| e.as_str()).unwrap_or("")),
                    next.join("; "),
                ));
            }
        }
    }
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\">\
<title>Kalsync — who is away</title><style>body{{font-family:system-ui,sans-serif;margin:2rem}}table{{border-collapse:collapse}}\
td,th{{padding:.3rem .8rem;border-bottom:1px solid #ddd;text-align:left}}.divert{{color:#b00;font-weight:600}}.info{{color:#a60}}\
.available{{color:#070}}.err{{color:#b00;font-size:.85em}}</style></head><body><h1>Who is away</h1>\
<p>{away} of {total} away now. Updated {}; this page refreshes every 5 seconds. \
<a href=\"/metrics\">metrics</a> · <a href=\"/healthz\">health</a></p>\
<table><tr><th>Name</th><th>Mailbox</th><th>Ext.</th><th>Now</th><th>Next</th><th>Last read</th></tr>\n{rows}</table></body></html>",
        now.strftime("%H:%M:%S UTC"),
    ))
}
