//! The who-is-away page: every user, their absence now and what comes next, from the
//! stored timelines; then each company's targets and the deliveries given up on (dead
//! letters). Plain HTML that refreshes itself; the admin UI replaces it.

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

/// Every company's people and their status, for the operator (signed in).
pub(crate) async fn who_is_away(
    State(service): State<Service>,
    parts: axum::http::request::Parts,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    match kalsync_web::auth::authenticate(&parts, &service.web, None).await {
        Ok(p) if p.grant.role == kalsync_store::Role::Operator => {
            who_is_away_page(&service).await.into_response()
        }
        Ok(_) => kalsync_web::ApiError::Forbidden("only the operator sees every company".into())
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn who_is_away_page(service: &Service) -> Html<String> {
    let now = Timestamp::now();
    let mut rows = String::new();
    let mut away = 0;
    let mut total = 0;
    let mut faults = String::new();
    let companies = service.store.companies().await.unwrap_or_default();
    for company in &companies {
        faults.push_str(&company_faults(service, company).await);
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
<table><tr><th>Name</th><th>Mailbox</th><th>Ext.</th><th>Now</th><th>Next</th><th>Last read</th></tr>\n{rows}</table>\n{faults}</body></html>",
        now.strftime("%H:%M:%S UTC"),
    ))
}

/// How many dead letters a company shows.
const DEAD_SHOWN: usize = 20;

/// A company's targets (on or off) and its newest dead letters: what was not delivered,
/// to which target, after how many attempts and why.
async fn company_faults(service: &Service, company: &kalsync_store::Company) -> String {
    let targets = service.store.targets(company.id).await.unwrap_or_default();
    let dead = service
        .store
        .deliveries(company.id, kalsync_store::DeliveryState::Dead, DEAD_SHOWN)
        .await
        .unwrap_or_default();
    let listed: Vec<String> = targets
        .iter()
        .map(|t| {
            format!(
                "{} ({}){}",
                escape(&t.name),
                t.config.kind(),
                if t.active {
                    ""
                } else {
                    " <span class=\"err\">off</span>"
                }
            )
        })
        .collect();
    let mut out = format!(
        "<h2>{}</h2><p>Targets: {}</p>\n",
        escape(&company.name),
        if listed.is_empty() {
            "none".to_owned()
        } else {
            listed.join(", ")
        }
    );
    if dead.is_empty() {
        out.push_str("<p>No deliveries given up.</p>\n");
        return out;
    }
    out.push_str("<h3>Deliveries given up</h3><table><tr><th>Written</th><th>Mailbox</th><th>Status</th><th>Target</th><th>Attempts</th><th>Last error</th></tr>\n");
    for d in dead {
        let status = serde_json::from_value::<kalsync_engine::StatusUpdate>(d.payload).ok();
        let (who, what) = status.map_or_else(
            || ("?".to_owned(), "?".to_owned()),
            |s| {
                (
                    s.user.email,
                    s.absence
                        .map_or_else(|| "Available".to_owned(), |a| a.message_en),
                )
            },
        );
        let target = targets
            .iter()
            .find(|t| t.id == d.target)
            .map_or_else(|| d.target.to_string(), |t| t.name.clone());
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"err\">{}</td></tr>\n",
            d.created.strftime("%Y-%m-%d %H:%M:%S UTC"),
            escape(&who),
            escape(&what),
            escape(&target),
            d.attempts,
            escape(d.last_error.as_deref().unwrap_or("")),
        ));
    }
    out.push_str("</table>\n");
    out
}
