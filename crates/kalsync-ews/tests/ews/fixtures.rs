//! Every real EWS payload in the shared fixtures is read: well-formed answers give
//! their response messages or a typed error; the ones published broken are refused as
//! malformed, never with a panic. The calendar-relevant ones are checked field by field.

use std::path::PathBuf;
use std::time::Duration;

use kalsync_core::{FreeBusy, ResponseStatus, Zone};
use kalsync_ews::EwsError;
use kalsync_ews::response::{self, Change, EventKind};

fn ews() -> PathBuf {
    kalsync_testkit::fixtures("ews").expect("the shared EWS fixtures")
}

/// Whether the shared EWS fixtures are beside the checkout (else the test is skipped).
fn have_fixtures() -> bool {
    kalsync_testkit::fixtures("ews").is_some()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(ews().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The files `PROVENANCE.tsv` marks as not well-formed as published.
fn broken() -> Vec<String> {
    let provenance = std::fs::read_to_string(ews().join("../PROVENANCE.tsv")).expect("provenance");
    provenance
        .lines()
        .filter(|l| l.contains("NOT well-formed"))
        .filter_map(|l| l.split('\t').next())
        .filter_map(|p| p.strip_prefix("ews/"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_answer_is_read_or_refused_with_a_reason() {
    if !have_fixtures() {
        return;
    }
    let broken = broken();
    let mut read_ok = 0;
    for folder in ["responses", "errors", "notifications"] {
        for entry in std::fs::read_dir(ews().join(folder)).expect("dir") {
            let path = entry.expect("entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("xml") {
                continue;
            }
            let name = format!(
                "{folder}/{}",
                path.file_name().and_then(|n| n.to_str()).unwrap_or("")
            );
            let text = std::fs::read_to_string(&path).expect("read");
            let outcome = response::outcome(&text);
            // Every parser takes every file without panicking.
            let _ = response::calendar_view(&text);
            let _ = response::items(&text);
            let _ = response::sync_page(&text);
            let _ = response::subscribed(&text);
            let _ = response::pulled(&text);
            let _ = response::pushed(&text);
            let _ = response::stream_part(&text);
            let _ = response::notification_result(&text);
            if broken.contains(&name) {
                assert!(
                    matches!(outcome, Err(EwsError::Malformed(_))),
                    "{name} is broken as published: {outcome:?}"
                );
                continue;
            }
            match outcome {
                Ok(_) | Err(EwsError::Fault { .. }) => read_ok += 1,
                // Well-formed but not a whole answer (a fragment without its envelope).
                Err(EwsError::Malformed(why)) => {
                    assert!(
                        why.contains("expected") || why.contains("without"),
                        "{name}: {why}"
                    );
                }
                Err(other) => panic!("{name}: {other:?}"),
            }
        }
    }
    assert!(read_ok >= 40, "{read_ok} answers read");
}

#[test]
fn a_calendar_view_says_when_it_is_incomplete() {
    if !have_fixtures() {
        return;
    }
    let page = response::calendar_view(&read(
        "responses/docs_how-to-get-appointments_FindItemResponse_CalendarView.xml",
    ))
    .expect("view");
    assert_eq!(page.items.len(), 5);
    assert!(
        !page.complete,
        "IncludesLastItemInRange=false: split the window"
    );
    assert_eq!(page.total, Some(33));
    assert_eq!(
        page.items[0].start,
        "2013-08-21T19:30:00Z".parse().expect("t")
    );
    assert_eq!(page.items[0].item.change_key.as_deref(), Some("DwAA"));
}

#[test]
fn an_exchange_2007_item_becomes_a_booking() {
    if !have_fixtures() {
        return;
    }
    let items = response::items(&read(
        "responses/docs_getitem-operation-calendar-item_GetItemResponse_allproperties.xml",
    ))
    .expect("items");
    assert_eq!(
        items.len(),
        1,
        "conflicting meetings are not items of their own"
    );
    let item = items[0].as_ref().expect("item");
    assert_eq!(item.time_zone.as_deref(), Some("Pacific Standard Time"));
    let b = item.to_booking(&Zone::stockholm()).expect("booking");
    assert_eq!(b.free_busy, FreeBusy::Busy);
    assert_eq!(b.response, ResponseStatus::Organizer);
    assert_eq!(b.change_key.as_deref(), Some("otlIqB=="));
    assert_eq!(b.series_id, None, "a single item has no series");
    assert_eq!(b.subject, None, "the subject was not in the answer");

    // The id-only shape lacks a start: that item is an error of its own.
    let idonly = response::items(&read(
        "responses/docs_getitem-operation-calendar-item_GetItemResponse_idonly.xml",
    ))
    .expect("answer");
    assert!(matches!(&idonly[0], Err(EwsError::Malformed(m)) if m.contains("Start")));
    // A meeting response in a calendar read is refused by name, not misread.
    let meeting = response::items(&read(
        "responses/ewsjs_MockXHRData_GetItemWithTentativelyAcceptedMeetingResponseRequestResponse.xml",
    ))
    .expect("answer");
    assert!(matches!(&meeting[0], Err(EwsError::Malformed(m)) if m.contains("MeetingResponse")));
}

#[test]
fn sync_pages_and_subscriptions_are_read() {
    if !have_fixtures() {
        return;
    }
    let page = response::sync_page(&read(
        "responses/docs_how-to-synchronize-items_SyncFolderItemsResponse_changes.xml",
    ))
    .expect("page");
    assert!(!page.sync_state.is_empty());
    assert!(page.changes.iter().any(|c| matches!(c, Change::Created(_))));
    assert!(page.changes.iter().any(|c| matches!(c, Change::Updated(_))));
    assert!(page.changes.iter().any(|c| matches!(c, Change::Deleted(_))));

    for (file, watermark) in [
        (
            "responses/docs_subscribe-operation_SubscribeResponse_pull.xml",
            true,
        ),
        (
            "responses/docs_subscribe-operation_SubscribeResponse_push.xml",
            true,
        ),
        (
            "responses/docs_how-to-stream-notifications_SubscribeResponse_streaming.xml",
            false,
        ),
    ] {
        let s = response::subscribed(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(!s.id.is_empty(), "{file}");
        assert_eq!(s.watermark.is_some(), watermark, "{file}");
    }
    assert!(
        response::unsubscribed(&read(
            "responses/docs_unsubscribe-operation_UnsubscribeResponse.xml"
        ))
        .is_ok()
    );
    let gone = response::unsubscribed(&read(
        "errors/docs_unsubscribe-operation_UnsubscribeResponse_ErrorSubscriptionNotFound.xml",
    ));
    assert_eq!(
        gone.expect_err("not found").code(),
        Some("ErrorSubscriptionNotFound")
    );
}

#[test]
fn notifications_pull_push_and_streaming_are_read() {
    if !have_fixtures() {
        return;
    }
    let pulled = response::pulled(&read(
        "notifications/docs_getevents-operation_GetEventsResponse.xml",
    ))
    .expect("pulled");
    assert_eq!(pulled.events.len(), 2);
    assert_eq!(pulled.last_watermark(), Some("AAAAAOQGAAAAAAAAAQ=="));
    assert!(pulled.has_changes());

    let pushed = response::pushed(&read(
        "notifications/workmail_SendNotification_ModifiedEvent.xml",
    ))
    .expect("pushed");
    let n = pushed[0].as_ref().expect("notification");
    assert_eq!(n.last_watermark(), Some("ywwAAAAAAAA="));
    assert!(n.has_changes());
    let heartbeat = response::pushed(&read(
        "notifications/exchangelib_test_sync_SendNotification_push_StatusEvent.xml",
    ))
    .expect("heartbeat");
    // WorkMail's published heartbeat names an XML version that does not exist.
    assert!(matches!(
        response::pushed(&read("notifications/workmail_SendNotification_StatusEvent_heartbeat.xml")),
        Err(EwsError::Malformed(m)) if m.contains("version")
    ));
    let h = heartbeat[0].as_ref().expect("notification");
    assert!(h.events.iter().all(|e| e.kind == EventKind::Status));
    assert!(!h.has_changes());

    let closed = response::stream_part(&read(
        "notifications/exchangelib_test_sync_GetStreamingEventsResponse_ConnectionStatus_Closed.xml",
    ))
    .expect("closed");
    assert!(closed.closed);

    assert_eq!(
        response::notification_result(&read(
            "notifications/exchangelib_test_sync_SendNotificationResult_OK.xml"
        )),
        Ok(true)
    );
    assert_eq!(
        response::notification_result(&read(
            "notifications/workmail_SendNotificationResult_Unsubscribe.xml"
        )),
        Ok(false)
    );
    // Our own answers read back the same way.
    assert_eq!(
        response::notification_result(&kalsync_ews::request::send_notification_result(true)),
        Ok(true)
    );
    assert_eq!(
        response::notification_result(&kalsync_ews::request::send_notification_result(false)),
        Ok(false)
    );
}

#[test]
fn throttling_says_how_long_to_back_off() {
    if !have_fixtures() {
        return;
    }
    let fault = response::outcome(&read(
        "errors/exchangelib_test_services_Fault_ErrorServerBusy_BackOffMilliseconds.xml",
    ))
    .expect_err("fault");
    assert_eq!(fault.code(), Some("ErrorServerBusy"));
    assert_eq!(fault.back_off(), Some(Duration::from_millis(297_749)));
    assert!(fault.is_throttling());

    let busy = response::sync_page(&read(
        "errors/ewsrs_soap_SyncFolderItemsResponse_ErrorServerBusy_BackOff5000.xml",
    ))
    .expect_err("busy");
    assert_eq!(busy.back_off(), Some(Duration::from_secs(5)));
    assert!(busy.is_throttling());

    let schema = response::outcome(&read(
        "errors/exchangelib_test_services_Fault_ErrorSchemaValidation.xml",
    ))
    .expect_err("fault");
    assert_eq!(schema.code(), Some("ErrorSchemaValidation"));
    assert!(!schema.is_throttling());
    let state = response::sync_page(&read(
        "errors/docs_syncfolderitems-operation_SyncFolderItemsResponse_ErrorInvalidSyncStateData.xml",
    ))
    .expect_err("bad state");
    assert_eq!(state.code(), Some("ErrorInvalidSyncStateData"));
}

#[test]
fn hostile_or_broken_answers_are_refused() {
    if !have_fixtures() {
        return;
    }
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>&lol2;</s:Body></s:Envelope>";
    assert!(matches!(
        response::outcome(bomb),
        Err(EwsError::Malformed(_))
    ));
    let html =
        "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
    assert!(matches!(response::outcome(html), Err(EwsError::Malformed(m)) if m.contains("HTML")));
    let view = read("responses/docs_how-to-get-appointments_FindItemResponse_CalendarView.xml");
    let truncated = &view[..view.len() / 2];
    assert!(matches!(
        response::calendar_view(truncated),
        Err(EwsError::Malformed(_))
    ));
    let huge = format!("{}{}", view, " ".repeat(kalsync_ews::xml::MAX_ANSWER));
    assert!(matches!(
        response::calendar_view(&huge),
        Err(EwsError::TooLarge { .. })
    ));
    assert!(matches!(
        response::calendar_view(""),
        Err(EwsError::Malformed(_))
    ));
}
