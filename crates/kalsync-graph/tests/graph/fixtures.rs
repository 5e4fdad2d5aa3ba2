//! Every real Graph payload in the shared fixtures is read — or, where Microsoft's own
//! sample is not valid JSON, refused with an error — never a panic.

use kalsync_graph::Subscription;
use kalsync_graph::auth::{TokenError, classify_token_error};
use kalsync_graph::model::{BatchResponse, ErrorBody, Event, MailboxSettingsJson, Page};
use kalsync_graph::notifications::{self, LifecycleEvent, Notification};

use crate::helpers::*;

fn events(name: &str) -> Vec<Event> {
    let page: Page<serde_json::Value> =
        serde_json::from_str(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    page.value
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect()
}

#[test]
fn event_collections_read_into_bookings() {
    if !crate::helpers::have_fixtures() {
        return;
    }
    for name in [
        "events_list_response.json",
        "event_instances_response.json",
        "delta_calendarView_initial_page1_nextLink.json",
        "delta_calendarView_initial_page2_nextLink.json",
    ] {
        for e in events(name) {
            let b = e
                .to_booking(&stockholm())
                .unwrap_or_else(|err| panic!("{name}: {err}"));
            assert!(!b.id.as_str().is_empty());
        }
    }
    // Instances carry their series and Pacific times are read right.
    let instances = events("event_instances_response.json");
    let b = instances[0].to_booking(&stockholm()).expect("booking");
    assert_eq!(
        b.series_id.as_ref().map(|s| s.as_str()),
        Some("AAMkAGUzYRgWAAA=")
    );
    let list = events("events_list_response.json");
    let b = list[0].to_booking(&stockholm()).expect("booking");
    assert_eq!(
        b.time,
        kalsync_core::BookingTime::Timed {
            start: "2017-04-21T17:00:00Z".parse().expect("t"),
            end: "2017-04-21T19:00:00Z".parse().expect("t")
        }
    );
}

#[test]
fn a_calendar_view_sample_without_id_or_times_is_rejected_per_event() {
    if !crate::helpers::have_fixtures() {
        return;
    }
    // Microsoft's calendarView sample is shortened: its event has no id, start or end.
    let page: Page<Box<serde_json::value::RawValue>> = serde_json::from_str(&fixture(
        "calendarView_response_user-list-calendarview.json",
    ))
    .expect("page");
    let mut read = kalsync_graph::CalendarRead::default();
    read.push_page(page.value, &stockholm());
    assert!(read.bookings.is_empty());
    assert_eq!(read.rejected.len(), 1);
    assert!(
        matches!(&read.rejected[0].1, kalsync_graph::model::EventError::NotAnEvent(m) if m.contains("missing field `id`"))
    );
}

#[test]
fn single_events_and_pages_with_links_read() {
    if !crate::helpers::have_fixtures() {
        return;
    }
    let e: Event =
        serde_json::from_str(&fixture("event_get_response_prefer-timezone.json")).expect("event");
    assert!(e.to_booking(&stockholm()).is_ok());
    let e: Event = serde_json::from_str(&fixture("event_get_response_multiple-locations.json"))
        .expect("event");
    assert!(e.to_booking(&stockholm()).is_ok() || e.start.is_none());
    let page: Page<serde_json::Value> =
        serde_json::from_str(&fixture("delta_calendarView_initial_page1_nextLink.json"))
            .expect("page");
    assert!(page.next_link.is_some_and(|l| l.contains("skiptoken")));
    let page: Page<serde_json::Value> =
        serde_json::from_str(&fixture("delta_calendarView_initial_last_deltaLink.json"))
            .expect("page");
    assert!(page.delta_link.is_some());
    let page: Page<serde_json::Value> =
        serde_json::from_str(&fixture("delta_calendarView_incremental_removed.json"))
            .expect("page");
    assert!(!page.value.is_empty());
}

#[test]
fn mailbox_settings_give_zone_and_working_hours() {
    if !crate::helpers::have_fixtures() {
        return;
    }
    let all: MailboxSettingsJson =
        serde_json::from_str(&fixture("mailboxSettings_get_response_all.json")).expect("settings");
    let read = all.read();
    assert_eq!(read.zone.as_ref().map(|z| z.name()), Some("UTC"));
    assert!(read.working_hours.is_some(), "{all:?}");
    assert_eq!(
        read.working_hours_zone.as_ref().map(|z| z.name()),
        Some("America/Los_Angeles")
    );
    // A custom zone (bias and rules, no name) is not a zone: the instance's stands in,
    // while the working hours still count.
    let hours: kalsync_graph::model::WorkingHoursJson =
        serde_json::from_str(&fixture("mailboxSettings_get_response_workingHours.json"))
            .expect("working hours");
    let custom = MailboxSettingsJson {
        working_hours: Some(hours),
        ..MailboxSettingsJson::default()
    }
    .read();
    assert_eq!(custom.zone, None);
    let wh = custom.working_hours.expect("working hours");
    assert_eq!(wh.start(), jiff::civil::Time::constant(9, 0, 0, 0));
    assert_eq!(wh.days().count(), 6);
}

#[test]
fn notifications_and_lifecycle_events_read() {
    if !crate::helpers::have_fixtures() {
        return;
    }
    let batch =
        notifications::parse(fixture("notification_webhook_created_message.json").as_bytes())
            .expect("batch");
    assert!(
        matches!(&batch.notifications[0], Notification::Change { client_state: Some(c), .. } if c == "secretClientValue")
    );
    for (name, expected) in [
        ("lifecycle_missed.json", LifecycleEvent::Missed),
        (
            "lifecycle_reauthorizationRequired.json",
            LifecycleEvent::ReauthorizationRequired,
        ),
        (
            "lifecycle_subscriptionRemoved.json",
            LifecycleEvent::SubscriptionRemoved,
        ),
    ] {
        let batch = notifications::parse(fixture(name).as_bytes())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            matches!(&batch.notifications[..], [Notification::Lifecycle { event, .. }] if *event == expected),
            "{name}"
        );
    }
    // The template names its event "subscriptionRemoved or missed or …": refused, item by item.
    let batch = notifications::parse(fixture("lifecycle_notification_template.json").as_bytes())
        .expect("collection");
    assert!(batch.notifications.is_empty() && !batch.rejected.is_empty());
}

#[test]
fn broken_samples_are_refused_not_crashed_on() {
    if !crate::helpers::have_fixtures() {
        return;
    }
    for name in [
        "notification_without_resource_data_outlook.json",
        "notification_with_resource_data_encryptedContent.json",
    ] {
        let r = notifications::receive(None, fixture(name).as_bytes(), |_| Some("x".into()));
        assert!(r.accepted.is_empty() && r.status >= 400, "{name}: {r:?}");
    }
    // The schema sample is an empty collection (with validation tokens): nothing to do.
    let r = notifications::receive(
        None,
        fixture("notification_changeNotificationCollection_schema.json").as_bytes(),
        |_| None,
    );
    assert_eq!((r.status, r.accepted.len(), r.rejected.len()), (202, 0, 0));
}

#[test]
fn subscriptions_batches_errors_and_tokens_read() {
    if !crate::helpers::have_fixtures() {
        return;
    }
    for name in [
        "subscription_create_response.json",
        "subscription_create_response_outlook_messages.json",
        "subscription_renew_response.json",
    ] {
        let s: Subscription =
            serde_json::from_str(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(s.expires().is_ok(), "{name}");
    }
    let batch: BatchResponse =
        serde_json::from_str(&fixture("batch_response.json").replace("\"...\"", "\"x\""))
            .expect("batch");
    assert_eq!(batch.responses.len(), 4);
    for name in [
        "error_429_TooManyRequests.json",
        "error_generic_innerError.json",
    ] {
        let e: ErrorBody =
            serde_json::from_str(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!e.error.code.is_empty());
    }
    for name in [
        "token_client_credentials_error_invalid_scope_AADSTS70011.json",
        "token_authorization_code_error_invalid_scope_AADSTS70011.json",
    ] {
        assert!(
            matches!(
                classify_token_error(fixture(name).as_bytes()),
                TokenError::InvalidScope(_)
            ),
            "{name}"
        );
    }
}

#[test]
fn every_json_fixture_is_valid_or_marked_broken_in_the_provenance() {
    if !crate::helpers::have_fixtures() {
        return;
    }
    let provenance =
        std::fs::read_to_string(graph_fixtures().join("../PROVENANCE.tsv")).expect("provenance");
    for entry in std::fs::read_dir(graph_fixtures()).expect("dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let valid = serde_json::from_str::<serde_json::Value>(
            &std::fs::read_to_string(&path).expect("read"),
        )
        .is_ok();
        let marked = provenance
            .lines()
            .any(|l| l.starts_with(&format!("graph/{name}")) && l.contains("NOT valid JSON"));
        assert!(
            valid || marked,
            "{name} is neither valid JSON nor marked broken"
        );
    }
}

#[test]
fn microsofts_automatic_replies_read_without_their_texts() {
    if !crate::helpers::have_fixtures() {
        return;
    }
    let text = crate::helpers::fixture("mailboxSettings_get_response_automaticReplies.json");
    let parsed: kalsync_graph::model::AutomaticRepliesJson =
        serde_json::from_str(&text).expect("parsed");
    // Nothing of the reply texts is kept: what was parsed, written out, has none.
    let kept = format!("{parsed:?}");
    assert!(!kept.contains("reunion"), "{kept}");
    assert_eq!(parsed.read(), Ok(kalsync_core::AutomaticReplies::Always));
    // The same, scheduled: its period (the fixture's times are UTC).
    let scheduled = text.replace("alwaysEnabled", "scheduled");
    let parsed: kalsync_graph::model::AutomaticRepliesJson =
        serde_json::from_str(&scheduled).expect("parsed");
    assert_eq!(
        parsed.read(),
        Ok(kalsync_core::AutomaticReplies::Scheduled {
            start: at("2016-03-19T02:00:00Z"),
            end: at("2016-03-20T02:00:00Z"),
        })
    );
    // Ending before it starts, or an unknown status: said, not guessed.
    let backwards = scheduled.replace("2016-03-20T02", "2016-03-18T02");
    let parsed: kalsync_graph::model::AutomaticRepliesJson =
        serde_json::from_str(&backwards).expect("parsed");
    assert!(parsed.read().is_err());
    let odd = text.replace("alwaysEnabled", "sometimes");
    let parsed: kalsync_graph::model::AutomaticRepliesJson =
        serde_json::from_str(&odd).expect("parsed");
    assert!(parsed.read().is_err());
}
