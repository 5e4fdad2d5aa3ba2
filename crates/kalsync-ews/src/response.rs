//! Reading Exchange's answers: SOAP faults and error messages become [`EwsError`]s with
//! their `BackOffMilliseconds`; calendar views, items, sync pages, subscriptions and
//! notifications (pull, streaming and push) become plain values.

use std::time::Duration;

use jiff::Timestamp;
use roxmltree::Node;

use crate::error::EwsError;
use crate::item::CalendarItem;
use crate::request::ItemRef;
use crate::xml::{child, children, elements, find, flag, parse, parse_bool, text};

fn malformed(what: impl Into<String>) -> EwsError {
    EwsError::Malformed(what.into())
}

/// `BackOffMilliseconds` from a `MessageXml`.
fn back_off(node: Node<'_, '_>) -> Option<Duration> {
    let xml = child(node, "MessageXml")?;
    children(xml, "Value")
        .find(|v| v.attribute("Name") == Some("BackOffMilliseconds"))
        .and_then(|v| v.text())
        .and_then(|t| t.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
}

/// The SOAP body of an answer, or its fault as an error.
fn body<'a, 'i>(doc: &'a roxmltree::Document<'i>) -> Result<Node<'a, 'i>, EwsError> {
    let envelope = doc.root_element();
    if envelope.tag_name().name() != "Envelope" {
        return Err(malformed(format!(
            "expected a SOAP Envelope, found <{}>",
            envelope.tag_name().name()
        )));
    }
    let body = child(envelope, "Body").ok_or_else(|| malformed("a SOAP Envelope without Body"))?;
    if let Some(fault) = child(body, "Fault") {
        let detail = child(fault, "detail");
        let code = detail
            .and_then(|d| text(d, "ResponseCode"))
            .or_else(|| text(fault, "faultcode").map(|c| c.rsplit(':').next().unwrap_or(c)))
            .unwrap_or("Fault");
        return Err(EwsError::Fault {
            code: code.to_owned(),
            message: text(fault, "faultstring").unwrap_or("").to_owned(),
            back_off: detail.and_then(back_off),
        });
    }
    Ok(body)
}

/// The response messages in the body's `container` element (`FindItemResponse` →
/// its `FindItemResponseMessage`s), each checked: an error message becomes its own
/// error, so one bad item does not cost the others.
fn messages<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    container: &str,
) -> Result<Vec<Result<Node<'a, 'i>, EwsError>>, EwsError> {
    let body = body(doc)?;
    let response_name = container;
    let response = child(body, response_name).ok_or_else(|| {
        let found = elements(body).next().map_or_else(
            || "nothing".to_owned(),
            |n| format!("<{}>", n.tag_name().name()),
        );
        malformed(format!("expected {response_name}, found {found}"))
    })?;
    let list = child(response, "ResponseMessages")
        .ok_or_else(|| malformed(format!("{response_name} without ResponseMessages")))?;
    Ok(elements(list).map(check).collect())
}

fn check<'a, 'i>(message: Node<'a, 'i>) -> Result<Node<'a, 'i>, EwsError> {
    match message.attribute("ResponseClass") {
        Some("Success" | "Warning") => Ok(message),
        Some("Error") => Err(EwsError::Response {
            code: text(message, "ResponseCode")
                .unwrap_or("ErrorUnknown")
                .to_owned(),
            message: text(message, "MessageText").unwrap_or("").to_owned(),
            back_off: back_off(message),
        }),
        other => Err(malformed(format!(
            "a response message with ResponseClass {other:?}"
        ))),
    }
}

/// The one message of a single-item operation.
fn single<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    operation: &str,
) -> Result<Node<'a, 'i>, EwsError> {
    messages(doc, &format!("{operation}Response"))?
        .into_iter()
        .next()
        .unwrap_or_else(|| Err(malformed(format!("{operation}Response without a message"))))
}

fn item_ref(node: Node<'_, '_>) -> Option<ItemRef> {
    let id = node.attribute("Id")?.to_owned();
    if id.is_empty() {
        return None;
    }
    Some(ItemRef {
        id,
        change_key: node.attribute("ChangeKey").map(str::to_owned),
    })
}

fn instant(node: Node<'_, '_>, name: &str) -> Result<Timestamp, EwsError> {
    let t = text(node, name).ok_or_else(|| malformed(format!("no {name}")))?;
    t.parse::<Timestamp>()
        .map_err(|e| malformed(format!("{name} `{t}`: {e}")))
}

/// One item of a calendar view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewItem {
    /// Id and change key.
    pub item: ItemRef,
    /// Start.
    pub start: Timestamp,
    /// End.
    pub end: Timestamp,
}

/// A page of a calendar view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarPage {
    /// The occurrences returned.
    pub items: Vec<ViewItem>,
    /// `false`: the view held more than `MaxEntriesReturned`; split the window.
    pub complete: bool,
    /// `TotalItemsInView`.
    pub total: Option<u32>,
}

/// A `FindItem` answer to a calendar view.
pub fn calendar_view(answer: &str) -> Result<CalendarPage, EwsError> {
    let doc = parse(answer)?;
    let message = single(&doc, "FindItem")?;
    let root =
        child(message, "RootFolder").ok_or_else(|| malformed("FindItem without RootFolder"))?;
    let mut items = Vec::new();
    if let Some(list) = child(root, "Items") {
        for item in elements(list) {
            let Some(id) = child(item, "ItemId").and_then(item_ref) else {
                return Err(malformed("an item without ItemId"));
            };
            items.push(ViewItem {
                item: id,
                start: instant(item, "Start")?,
                end: instant(item, "End")?,
            });
        }
    }
    Ok(CalendarPage {
        items,
        complete: flag(root, "IncludesLastItemInRange").unwrap_or(true),
        total: root
            .attribute("TotalItemsInView")
            .and_then(|t| t.parse().ok()),
    })
}

/// A `GetItem` answer: one result per item asked for, in order; an item that could not
/// be read (deleted meanwhile, or odd) is its own error.
pub fn items(answer: &str) -> Result<Vec<Result<CalendarItem, EwsError>>, EwsError> {
    let doc = parse(answer)?;
    Ok(messages(&doc, "GetItemResponse")?
        .into_iter()
        .map(|message| {
            let message = message?;
            let list = child(message, "Items").ok_or_else(|| malformed("GetItem without Items"))?;
            let item = elements(list)
                .next()
                .ok_or_else(|| malformed("GetItem with an empty Items"))?;
            CalendarItem::read(item)
        })
        .collect())
}

/// One change of a `SyncFolderItems` page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new item.
    Created(ItemRef),
    /// A changed item.
    Updated(ItemRef),
    /// A removed item (id only).
    Deleted(String),
}

/// A `SyncFolderItems` page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPage {
    /// The state to persist and resume from.
    pub sync_state: String,
    /// `false`: more changes are waiting; ask again.
    pub complete: bool,
    /// The changes (read-flag changes are left out: they never matter to a calendar).
    pub changes: Vec<Change>,
}

/// A `SyncFolderItems` answer.
pub fn sync_page(answer: &str) -> Result<SyncPage, EwsError> {
    let doc = parse(answer)?;
    let message = single(&doc, "SyncFolderItems")?;
    let sync_state = text(message, "SyncState")
        .ok_or_else(|| malformed("SyncFolderItems without SyncState"))?
        .to_owned();
    let complete = text(message, "IncludesLastItemInRange")
        .and_then(parse_bool)
        .unwrap_or(true);
    let mut changes = Vec::new();
    if let Some(list) = child(message, "Changes") {
        for change in elements(list) {
            let id = elements(change).find_map(|n| {
                if n.tag_name().name() == "ItemId" {
                    item_ref(n)
                } else {
                    child(n, "ItemId").and_then(item_ref)
                }
            });
            let Some(id) = id else {
                continue;
            };
            match change.tag_name().name() {
                "Create" => changes.push(Change::Created(id)),
                "Update" => changes.push(Change::Updated(id)),
                "Delete" => changes.push(Change::Deleted(id.id)),
                _ => {}
            }
        }
    }
    Ok(SyncPage {
        sync_state,
        complete,
        changes,
    })
}

/// A subscription made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribed {
    /// `SubscriptionId`.
    pub id: String,
    /// The first watermark (pull and push).
    pub watermark: Option<String>,
}

/// A `Subscribe` answer.
pub fn subscribed(answer: &str) -> Result<Subscribed, EwsError> {
    let doc = parse(answer)?;
    let message = single(&doc, "Subscribe")?;
    Ok(Subscribed {
        id: text(message, "SubscriptionId")
            .ok_or_else(|| malformed("Subscribe without SubscriptionId"))?
            .to_owned(),
        watermark: text(message, "Watermark").map(str::to_owned),
    })
}

/// An `Unsubscribe` answer.
pub fn unsubscribed(answer: &str) -> Result<(), EwsError> {
    let doc = parse(answer)?;
    single(&doc, "Unsubscribe").map(|_| ())
}

/// What an event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Created, modified, moved, copied, deleted, or new mail: read the item again.
    Changed,
    /// `StatusEvent`: a keep-alive, nothing changed.
    Status,
}

/// One notification event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Change or keep-alive.
    pub kind: EventKind,
    /// The watermark after this event (absent in streaming).
    pub watermark: Option<String>,
    /// The item, when the event names one.
    pub item: Option<ItemRef>,
}

/// A notification: one subscription's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// `SubscriptionId`.
    pub subscription: String,
    /// `PreviousWatermark`.
    pub previous_watermark: Option<String>,
    /// `MoreEvents`: ask again at once (pull).
    pub more: bool,
    /// The events, in order.
    pub events: Vec<Event>,
}

impl Notification {
    /// The watermark to persist: the last event's, else the previous one.
    pub fn last_watermark(&self) -> Option<&str> {
        self.events
            .iter()
            .rev()
            .find_map(|e| e.watermark.as_deref())
            .or(self.previous_watermark.as_deref())
    }

    /// Whether anything changed (not only keep-alives).
    pub fn has_changes(&self) -> bool {
        self.events.iter().any(|e| e.kind == EventKind::Changed)
    }
}

fn notification(node: Node<'_, '_>) -> Result<Notification, EwsError> {
    let subscription = text(node, "SubscriptionId")
        .ok_or_else(|| malformed("a Notification without SubscriptionId"))?
        .to_owned();
    let mut events = Vec::new();
    for e in elements(node) {
        let kind = match e.tag_name().name() {
            "SubscriptionId" | "PreviousWatermark" | "MoreEvents" => continue,
            "StatusEvent" => EventKind::Status,
            _ => EventKind::Changed,
        };
        events.push(Event {
            kind,
            watermark: text(e, "Watermark").map(str::to_owned),
            item: child(e, "ItemId").and_then(item_ref),
        });
    }
    Ok(Notification {
        subscription,
        previous_watermark: text(node, "PreviousWatermark").map(str::to_owned),
        more: text(node, "MoreEvents")
            .and_then(parse_bool)
            .unwrap_or(false),
        events,
    })
}

/// A `GetEvents` answer (pull).
pub fn pulled(answer: &str) -> Result<Notification, EwsError> {
    let doc = parse(answer)?;
    let message = single(&doc, "GetEvents")?;
    notification(
        child(message, "Notification")
            .ok_or_else(|| malformed("GetEvents without Notification"))?,
    )
}

/// A push notification's body (`SendNotification` from Exchange to our endpoint): one
/// result per subscription it carries.
pub fn pushed(request: &str) -> Result<Vec<Result<Notification, EwsError>>, EwsError> {
    let doc = parse(request)?;
    Ok(messages(&doc, "SendNotification")?
        .into_iter()
        .map(|m| {
            let m = m?;
            notification(
                child(m, "Notification")
                    .ok_or_else(|| malformed("SendNotification without Notification"))?,
            )
        })
        .collect())
}

/// One part of a streaming answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPart {
    /// The notifications it carries.
    pub notifications: Vec<Notification>,
    /// `ConnectionStatus` `Closed`: the server ended the connection; connect again.
    pub closed: bool,
    /// Subscriptions the server no longer knows (`ErrorSubscriptionNotFound` and the
    /// like): subscribe again and read those mailboxes afresh.
    pub lost: Vec<(Option<String>, EwsError)>,
}

/// One `GetStreamingEventsResponse` envelope of a stream (the connection carries one
/// after another).
pub fn stream_part(part: &str) -> Result<StreamPart, EwsError> {
    let doc = parse(part)?;
    let mut out = StreamPart {
        notifications: Vec::new(),
        closed: false,
        lost: Vec::new(),
    };
    for message in messages(&doc, "GetStreamingEventsResponse")? {
        match message {
            Ok(m) => {
                if let Some(list) = child(m, "Notifications") {
                    for n in children(list, "Notification") {
                        out.notifications.push(notification(n)?);
                    }
                }
                if text(m, "ConnectionStatus") == Some("Closed") {
                    out.closed = true;
                }
            }
            Err(e) => {
                // The subscriptions an error names, when it names them.
                let ids: Vec<String> = find(doc.root_element(), "ErrorSubscriptionIds")
                    .map(|list| {
                        elements(list)
                            .filter_map(|n| n.text().map(|t| t.trim().to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                if ids.is_empty() {
                    out.lost.push((None, e));
                } else {
                    for id in ids {
                        out.lost.push((Some(id), e.clone()));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Our push endpoint's answer as Exchange reads it (the simulator uses this): `true`
/// for `OK`, `false` for `Unsubscribe`.
pub fn notification_result(answer: &str) -> Result<bool, EwsError> {
    let doc = parse(answer)?;
    let body = body(&doc)?;
    let result = child(body, "SendNotificationResult")
        .ok_or_else(|| malformed("expected SendNotificationResult"))?;
    match text(result, "SubscriptionStatus") {
        Some("OK") => Ok(true),
        Some("Unsubscribe") => Ok(false),
        other => Err(malformed(format!("SubscriptionStatus {other:?}"))),
    }
}

/// What a write-back checks of an item: its id and change key, whether it is a meeting
/// (has attendees) and whether the mailbox organised it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingFlags {
    /// The item.
    pub item: ItemRef,
    /// `IsMeeting`.
    pub is_meeting: bool,
    /// `MyResponseType` is `Organizer`.
    pub organised: bool,
}

/// A `GetItem` answer for [`crate::request::get_meeting_flags`].
pub fn meeting_flags(answer: &str) -> Result<MeetingFlags, EwsError> {
    let doc = parse(answer)?;
    let message = single(&doc, "GetItem")?;
    let item =
        find(message, "CalendarItem").ok_or_else(|| malformed("GetItem without a CalendarItem"))?;
    let id = child(item, "ItemId")
        .and_then(item_ref)
        .ok_or_else(|| malformed("a CalendarItem without ItemId"))?;
    Ok(MeetingFlags {
        item: id,
        // Without the property (it is not set on an appointment), not a meeting.
        is_meeting: text(item, "IsMeeting")
            .and_then(parse_bool)
            .unwrap_or(false),
        organised: text(item, "MyResponseType") == Some("Organizer"),
    })
}

/// An `UpdateItem` answer.
pub fn updated(answer: &str) -> Result<(), EwsError> {
    let doc = parse(answer)?;
    single(&doc, "UpdateItem").map(|_| ())
}

/// A `GetUserOofSettings` answer: the automatic replies' state and period. The reply
/// texts are never read out of the answer.
pub fn oof_settings(answer: &str) -> Result<kalsync_core::AutomaticReplies, EwsError> {
    use kalsync_core::AutomaticReplies;
    let doc = parse(answer)?;
    let body = body(&doc)?;
    let response = child(body, "GetUserOofSettingsResponse")
        .ok_or_else(|| malformed("expected GetUserOofSettingsResponse"))?;
    let message = child(response, "ResponseMessage")
        .ok_or_else(|| malformed("GetUserOofSettingsResponse without ResponseMessage"))?;
    check(message)?;
    let settings = child(response, "OofSettings")
        .ok_or_else(|| malformed("GetUserOofSettingsResponse without OofSettings"))?;
    match text(settings, "OofState").map(str::trim) {
        Some("Disabled") => Ok(AutomaticReplies::Off),
        Some("Enabled") => Ok(AutomaticReplies::Always),
        Some("Scheduled") => {
            let duration = child(settings, "Duration")
                .ok_or_else(|| malformed("scheduled automatic replies without a Duration"))?;
            // Exchange writes the period in UTC, with or without the `Z`.
            let utc = |name: &str| -> Result<jiff::Timestamp, EwsError> {
                let t = text(duration, name).ok_or_else(|| malformed(format!("no {name}")))?;
                t.parse::<jiff::Timestamp>()
                    .or_else(|_| {
                        t.parse::<jiff::civil::DateTime>()
                            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC))
                            .map(|z| z.timestamp())
                    })
                    .map_err(|e| malformed(format!("{name} `{t}`: {e}")))
            };
            AutomaticReplies::scheduled(utc("StartTime")?, utc("EndTime")?).map_err(malformed)
        }
        other => Err(malformed(format!("OofState {other:?}"))),
    }
}

/// The outcome of any EWS answer, whatever the operation: the name of each response
/// message, or its error; a fault or an unreadable answer as the error of the whole.
pub fn outcome(answer: &str) -> Result<Vec<Result<String, EwsError>>, EwsError> {
    let doc = parse(answer)?;
    let body = body(&doc)?;
    let container = elements(body)
        .next()
        .ok_or_else(|| malformed("an empty SOAP Body"))?;
    let name = container.tag_name().name().to_owned();
    Ok(messages(&doc, &name)?
        .into_iter()
        .map(|m| m.map(|n| n.tag_name().name().to_owned()))
        .collect())
}
