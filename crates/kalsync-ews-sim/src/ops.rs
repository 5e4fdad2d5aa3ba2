//! The EWS operations the simulator answers, over the Graph simulator's calendars:
//! whose mailbox a request may touch (impersonation rights, delegate rights), calendar
//! views, items in the shape asked for, folder sync states, subscriptions.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jiff::{SignedDuration, Timestamp};
use kalsync_ews::request::{MESSAGES, TYPES};
use kalsync_ews::xml::{Writer, child, children, elements, text};
use kalsync_graph_sim::calendar::Occurrence;
use roxmltree::Node;

use crate::http::{Call, Fault};
use crate::notify::{Kind, Registry};
use crate::{DelegateRights, EwsSim, lock};

/// The mailbox a request is for: its Graph-simulator user id and address.
#[derive(Debug, Clone)]
pub(crate) struct Mailbox {
    pub(crate) id: String,
    pub(crate) upn: String,
}

/// A response message's failure (HTTP 200, `ResponseClass="Error"`).
pub(crate) struct Refusal {
    code: &'static str,
    text: String,
}

pub(crate) fn refusal(code: &'static str, text: impl Into<String>) -> Refusal {
    Refusal {
        code,
        text: text.into(),
    }
}

/// Whose calendar: the impersonated mailbox, or the one a delegate folder names.
fn resolve(
    sim: &EwsSim,
    call: &Call<'_, '_>,
    named: Option<&str>,
) -> Result<Result<Mailbox, Refusal>, Fault> {
    let config = lock(&sim.shared.config).clone();
    if let Some(addr) = &call.impersonating {
        let Ok((id, upn)) = sim.graph().mailbox(addr) else {
            return Err(Fault::new(
                "ErrorNonExistentMailbox",
                format!("The SMTP address has no mailbox associated with it: {addr}"),
            ));
        };
        if !config.impersonate_all && !config.impersonate.contains(&upn.to_ascii_lowercase()) {
            return Err(Fault::new(
                "ErrorImpersonateUserDenied",
                "The account does not have permission to impersonate the requested user.",
            ));
        }
        if let Some(other) = named.filter(|n| !n.eq_ignore_ascii_case(&upn)) {
            return Ok(Err(refusal(
                "ErrorAccessDenied",
                format!("Access is denied. {upn} may not open {other}."),
            )));
        }
        return Ok(Ok(Mailbox { id, upn }));
    }
    let Some(addr) = named else {
        return Err(Fault::new(
            "ErrorMissingEmailAddress",
            "When making a request as an account that does not have a mailbox, you must specify the mailbox primary SMTP address for any distinguished folder Ids.",
        ));
    };
    let Ok((id, upn)) = sim.graph().mailbox(addr) else {
        return Ok(Err(refusal(
            "ErrorNonExistentMailbox",
            format!("The SMTP address has no mailbox associated with it: {addr}"),
        )));
    };
    match config.delegate.get(&upn.to_ascii_lowercase()) {
        Some(DelegateRights::Reviewer) => Ok(Ok(Mailbox { id, upn })),
        Some(DelegateRights::FreeBusy) => Ok(Err(refusal(
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again. The account has free/busy rights only on this calendar.",
        ))),
        None => Ok(Err(refusal(
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        ))),
    }
}

/// The mailbox address a folder reference names (delegate access), if any.
fn folder_mailbox<'a>(folders: Option<Node<'a, '_>>) -> Option<&'a str> {
    let folder = elements(folders?).next()?;
    let mailbox = child(folder, "Mailbox")?;
    text(mailbox, "EmailAddress")
}

/// An item's EWS id: its mailbox, its Graph id and its start, so `GetItem` finds it.
fn item_id(mailbox: &str, o: &Occurrence) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{mailbox}\u{1f}{}\u{1f}{}",
        o.id,
        o.start.as_millisecond()
    ))
}

fn parse_item_id(id: &str) -> Option<(String, String, Timestamp)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(id).ok()?).ok()?;
    let mut parts = raw.split('\u{1f}');
    let (mailbox, graph, ms) = (parts.next()?, parts.next()?, parts.next()?);
    Some((
        mailbox.to_owned(),
        graph.to_owned(),
        Timestamp::from_millisecond(ms.parse().ok()?).ok()?,
    ))
}

fn change_key(o: &Occurrence) -> String {
    STANDARD.encode(format!("CK{}", o.change_key))
}

/// Opens `op`'s response message: success, or the refusal's code and text.
pub(crate) fn message(x: &mut Writer, op: &str, result: Result<(), &Refusal>) {
    let name = format!("m:{op}ResponseMessage");
    match result {
        Ok(()) => {
            x.open(&name, &[("ResponseClass", "Success")])
                .leaf("m:ResponseCode", "NoError");
        }
        Err(r) => {
            x.open(&name, &[("ResponseClass", "Error")])
                .leaf("m:MessageText", &r.text)
                .leaf("m:ResponseCode", r.code)
                .leaf("m:DescriptiveLinkKey", "0");
        }
    }
}

/// `op`'s response: `inner` writes its messages.
pub(crate) fn response(op: &str, inner: impl FnOnce(&mut Writer)) -> String {
    messages_in(&format!("{op}Response"), inner)
}

/// The `container` element (`FindItemResponse`, or a push's `SendNotification`) with
/// the response messages `inner` writes.
pub(crate) fn messages_in(container: &str, inner: impl FnOnce(&mut Writer)) -> String {
    let name = format!("m:{container}");
    let mut x = Writer::default();
    x.open(&name, &[("xmlns:m", MESSAGES), ("xmlns:t", TYPES)])
        .open("m:ResponseMessages", &[]);
    inner(&mut x);
    x.close("m:ResponseMessages").close(&name);
    x.done()
}

fn refused(op: &str, r: &Refusal) -> String {
    response(op, |x| {
        message(x, op, Err(r));
        x.close(&format!("m:{op}ResponseMessage"));
    })
}

/// The `FieldURI`s asked for, and whether the shape would return a body.
fn shape(sim: &EwsSim, op: Node<'_, '_>, body_in_default: bool) -> Vec<String> {
    let shape = child(op, "ItemShape");
    let base = shape.and_then(|s| text(s, "BaseShape")).unwrap_or("IdOnly");
    let uris: Vec<String> = shape
        .and_then(|s| child(s, "AdditionalProperties"))
        .map(|p| {
            children(p, "FieldURI")
                .filter_map(|f| f.attribute("FieldURI").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let asks_body = uris.iter().any(|u| {
        matches!(
            u.as_str(),
            "item:Body" | "item:TextBody" | "item:UniqueBody"
        )
    }) || (body_in_default && base != "IdOnly");
    if asks_body {
        sim.shared
            .stats
            .body_requested
            .fetch_add(1, Ordering::Relaxed);
    }
    uris
}

fn instant(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A calendar item with the properties asked for, in the schema's order.
fn calendar_item(x: &mut Writer, mailbox: &str, o: &Occurrence, uris: &[String]) {
    let has = |u: &str| uris.iter().any(|x| x == u);
    let id = item_id(mailbox, o);
    let key = change_key(o);
    x.open("t:CalendarItem", &[])
        .empty("t:ItemId", &[("Id", &id), ("ChangeKey", &key)]);
    if has("item:ItemClass") {
        x.leaf(
            "t:ItemClass",
            if o.kind == "singleInstance" {
                "IPM.Appointment"
            } else {
                "IPM.Appointment.Occurrence"
            },
        );
    }
    if has("item:Subject") {
        x.leaf("t:Subject", &o.subject);
    }
    if has("item:Sensitivity") {
        let s = match o.sensitivity.as_str() {
            "personal" => "Personal",
            "private" => "Private",
            "confidential" => "Confidential",
            _ => "Normal",
        };
        x.leaf("t:Sensitivity", s);
    }
    if has("item:Categories") && !o.categories.is_empty() {
        x.open("t:Categories", &[]);
        for c in &o.categories {
            x.leaf("t:String", c);
        }
        x.close("t:Categories");
    }
    if has("calendar:UID") {
        x.leaf("t:UID", o.series.as_deref().unwrap_or(&o.id));
    }
    x.leaf("t:Start", &instant(o.start))
        .leaf("t:End", &instant(o.end));
    if has("calendar:IsAllDayEvent") {
        x.leaf("t:IsAllDayEvent", if o.all_day { "true" } else { "false" });
    }
    if has("calendar:LegacyFreeBusyStatus") {
        let fb = match o.show_as.as_str() {
            "free" => "Free",
            "tentative" => "Tentative",
            "oof" => "OOF",
            "workingElsewhere" => "WorkingElsewhere",
            "unknown" => "NoData",
            _ => "Busy",
        };
        x.leaf("t:LegacyFreeBusyStatus", fb);
    }
    if has("calendar:Location") && !o.location.is_empty() {
        x.leaf("t:Location", &o.location);
    }
    if has("calendar:IsMeeting") {
        x.leaf("t:IsMeeting", if o.is_meeting { "true" } else { "false" });
    }
    if has("calendar:IsCancelled") {
        x.leaf(
            "t:IsCancelled",
            if o.is_cancelled { "true" } else { "false" },
        );
    }
    if has("calendar:CalendarItemType") {
        let kind = match o.kind {
            "occurrence" => "Occurrence",
            "exception" => "Exception",
            _ => "Single",
        };
        x.leaf("t:CalendarItemType", kind);
    }
    if has("calendar:MyResponseType") {
        let r = match o.response.as_str() {
            "organizer" => "Organizer",
            "accepted" => "Accept",
            "tentativelyAccepted" => "Tentative",
            "declined" => "Decline",
            "notResponded" => "NoResponseReceived",
            _ => "Unknown",
        };
        x.leaf("t:MyResponseType", r);
    }
    if has("calendar:TimeZone") {
        x.leaf("t:TimeZone", &o.time_zone);
    }
    if has("calendar:StartTimeZone") {
        x.empty(
            "t:StartTimeZone",
            &[("Id", &o.time_zone), ("Name", &o.time_zone)],
        );
    }
    x.close("t:CalendarItem");
}

fn attribute_instant(node: Node<'_, '_>, name: &str) -> Result<Timestamp, Fault> {
    node.attribute(name)
        .and_then(|v| v.parse::<Timestamp>().ok())
        .ok_or_else(|| {
            Fault::new(
                "ErrorSchemaValidation",
                format!(
                    "The request failed schema validation: CalendarView {name} is not a dateTime."
                ),
            )
        })
}

pub(crate) fn find_item(sim: &EwsSim, call: &Call<'_, '_>) -> Result<String, Fault> {
    let op = call.op;
    let uris = shape(sim, op, false);
    let view = child(op, "CalendarView").ok_or_else(|| {
        Fault::new(
            "ErrorInvalidRequest",
            "The simulator answers FindItem with a CalendarView only.",
        )
    })?;
    let (start, end) = (
        attribute_instant(view, "StartDate")?,
        attribute_instant(view, "EndDate")?,
    );
    let max: usize = view
        .attribute("MaxEntriesReturned")
        .and_then(|m| m.parse().ok())
        .unwrap_or(usize::MAX);
    let mailbox = match resolve(sim, call, folder_mailbox(child(op, "ParentFolderIds")))? {
        Ok(m) => m,
        Err(r) => return Ok(refused("FindItem", &r)),
    };
    let all = sim
        .graph()
        .occurrences(&mailbox.id, start, end)
        .map_err(|e| Fault::new("ErrorInternalServerError", e.to_string()))?;
    let total = all.len().to_string();
    let complete = all.len() <= max;
    Ok(response("FindItem", |x| {
        message(x, "FindItem", Ok(()));
        x.open(
            "m:RootFolder",
            &[
                ("TotalItemsInView", &total),
                (
                    "IncludesLastItemInRange",
                    if complete { "true" } else { "false" },
                ),
            ],
        )
        .open("t:Items", &[]);
        for o in all.iter().take(max) {
            calendar_item(x, &mailbox.id, o, &uris);
        }
        x.close("t:Items")
            .close("m:RootFolder")
            .close("m:FindItemResponseMessage");
    }))
}

pub(crate) fn get_item(sim: &EwsSim, call: &Call<'_, '_>) -> Result<String, Fault> {
    let op = call.op;
    let uris = shape(sim, op, true);
    let ids: Vec<String> = child(op, "ItemIds")
        .map(|list| {
            children(list, "ItemId")
                .filter_map(|n| n.attribute("Id").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut found = Vec::new();
    for id in &ids {
        let Some((mailbox_id, graph_id, start)) = parse_item_id(id) else {
            found.push(Err(refusal("ErrorInvalidIdMalformed", "Id is malformed.")));
            continue;
        };
        let upn = sim
            .graph()
            .mailbox(&mailbox_id)
            .map(|(_, upn)| upn)
            .unwrap_or_default();
        let mailbox = match resolve(sim, call, Some(upn.as_str()))? {
            Ok(m) => m,
            Err(r) => {
                found.push(Err(r));
                continue;
            }
        };
        match sim.graph().occurrence(
            &mailbox.id,
            &graph_id,
            start,
            start + SignedDuration::from_millis(1),
        ) {
            Ok(o) => found.push(Ok((mailbox.id, o))),
            Err(_) => found.push(Err(refusal(
                "ErrorItemNotFound",
                "The specified object was not found in the store.",
            ))),
        }
    }
    Ok(response("GetItem", |x| {
        for item in &found {
            match item {
                Ok((mailbox, o)) => {
                    message(x, "GetItem", Ok(()));
                    x.open("m:Items", &[]);
                    calendar_item(x, mailbox, o, &uris);
                    x.close("m:Items");
                }
                Err(r) => {
                    message(x, "GetItem", Err(r));
                    x.empty("m:Items", &[]);
                }
            }
            x.close("m:GetItemResponseMessage");
        }
    }))
}

/// What a sync state remembers: each item's change key.
type Snapshot = BTreeMap<String, String>;

/// The occurrences a folder sync reports: Exchange's sync has no window, but a series
/// without an end has no last occurrence, so the simulator reports from a day before
/// the calendar's first booking to 400 days after its last — taken from the calendar,
/// not the machine's clock, so a sync state means the same whatever today's date is.
fn sync_window(span: Option<(Timestamp, Timestamp)>) -> (Timestamp, Timestamp) {
    match span {
        Some((first, last)) => (
            first - SignedDuration::from_hours(24),
            last.max(first) + SignedDuration::from_hours(24 * 400),
        ),
        None => (Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH),
    }
}

pub(crate) fn sync_folder_items(sim: &EwsSim, call: &Call<'_, '_>) -> Result<String, Fault> {
    let op = call.op;
    shape(sim, op, false);
    let mailbox = match resolve(sim, call, folder_mailbox(child(op, "SyncFolderId")))? {
        Ok(m) => m,
        Err(r) => return Ok(refused("SyncFolderItems", &r)),
    };
    let old: Snapshot = match text(op, "SyncState") {
        None => Snapshot::new(),
        Some(state) => {
            let expired = {
                let mut faults = lock(&sim.shared.faults);
                let e = faults.expire_watermarks > 0;
                faults.expire_watermarks = faults.expire_watermarks.saturating_sub(1);
                e
            };
            let decoded = STANDARD
                .decode(state)
                .ok()
                .and_then(|b| serde_json::from_slice::<Snapshot>(&b).ok());
            match decoded {
                Some(s) if !expired => s,
                _ => {
                    return Ok(refused(
                        "SyncFolderItems",
                        &refusal(
                            "ErrorInvalidSyncStateData",
                            "Synchronization state data is corrupt or otherwise invalid.",
                        ),
                    ));
                }
            }
        }
    };
    let max: usize = text(op, "MaxChangesReturned")
        .and_then(|m| m.parse().ok())
        .unwrap_or(512);
    let (from, to) = sync_window(
        sim.graph()
            .calendar_span(&mailbox.id)
            .map_err(|e| Fault::new("ErrorInternalServerError", e.to_string()))?,
    );
    let now: Vec<Occurrence> = sim
        .graph()
        .occurrences(&mailbox.id, from, to)
        .map_err(|e| Fault::new("ErrorInternalServerError", e.to_string()))?;
    let current: Snapshot = now
        .iter()
        .map(|o| (item_id(&mailbox.id, o), change_key(o)))
        .collect();
    let mut state = old.clone();
    let mut changes: Vec<(&'static str, String, Option<String>)> = Vec::new();
    for (id, key) in &current {
        match old.get(id) {
            None => changes.push(("Create", id.clone(), Some(key.clone()))),
            Some(k) if k != key => changes.push(("Update", id.clone(), Some(key.clone()))),
            Some(_) => {}
        }
    }
    for id in old.keys().filter(|id| !current.contains_key(*id)) {
        changes.push(("Delete", id.clone(), None));
    }
    let complete = changes.len() <= max;
    changes.truncate(max);
    for (kind, id, key) in &changes {
        match (kind, key) {
            (&"Delete", _) => {
                state.remove(id);
            }
            (_, Some(k)) => {
                state.insert(id.clone(), k.clone());
            }
            _ => {}
        }
    }
    let encoded = STANDARD.encode(serde_json::to_vec(&state).unwrap_or_default());
    Ok(response("SyncFolderItems", |x| {
        message(x, "SyncFolderItems", Ok(()));
        x.leaf("m:SyncState", &encoded)
            .leaf(
                "m:IncludesLastItemInRange",
                if complete { "true" } else { "false" },
            )
            .open("m:Changes", &[]);
        for (kind, id, key) in &changes {
            x.open(&format!("t:{kind}"), &[]);
            if *kind == "Delete" {
                x.empty("t:ItemId", &[("Id", id)]);
            } else {
                x.open("t:CalendarItem", &[]);
                x.empty(
                    "t:ItemId",
                    &[("Id", id), ("ChangeKey", key.as_deref().unwrap_or(""))],
                );
                x.close("t:CalendarItem");
            }
            x.close(&format!("t:{kind}"));
        }
        x.close("m:Changes")
            .close("m:SyncFolderItemsResponseMessage");
    }))
}

pub(crate) fn subscribe(sim: &EwsSim, call: &Call<'_, '_>) -> Result<String, Fault> {
    let op = call.op;
    let Some(request) = elements(op).next() else {
        return Err(Fault::new(
            "ErrorSchemaValidation",
            "Subscribe without a request.",
        ));
    };
    let folders = child(request, "FolderIds");
    if call.impersonating.is_none() && folder_mailbox(folders).is_some() {
        return Ok(refused(
            "Subscribe",
            &refusal(
                "ErrorSubscriptionDelegateAccessNotSupported",
                "Subscription for delegate user access is not supported.",
            ),
        ));
    }
    let mailbox = match resolve(sim, call, folder_mailbox(folders))? {
        Ok(m) => m,
        Err(r) => return Ok(refused("Subscribe", &r)),
    };
    let kind = match request.tag_name().name() {
        "StreamingSubscriptionRequest" => Kind::Streaming,
        "PushSubscriptionRequest" => Kind::Push {
            url: text(request, "URL").unwrap_or("").to_owned(),
            status_minutes: text(request, "StatusFrequency")
                .and_then(|s| s.parse().ok())
                .unwrap_or(30),
        },
        "PullSubscriptionRequest" => Kind::Pull,
        other => {
            return Err(Fault::new(
                "ErrorSchemaValidation",
                format!("Unknown subscription request {other}."),
            ));
        }
    };
    let watermark = text(request, "Watermark");
    let name = match kind {
        Kind::Streaming => "streaming",
        Kind::Push { .. } => "push",
        Kind::Pull => "pull",
    };
    let hook = {
        let mut slot = lock(&sim.shared.before_subscribe);
        match slot.as_ref() {
            Some((only, _)) if only.is_none_or(|k| k == name) => slot.take(),
            _ => None,
        }
    };
    if let Some((_, f)) = hook {
        f();
    }
    // The subscription lives on the routed back end with affinity, else on the
    // mailbox's own.
    let back_end = match (&call.back_end, call.affinity) {
        (Some(b), true) => b.clone(),
        _ => crate::http::back_end_of(&mailbox.upn),
    };
    let added = lock(&sim.shared.subscriptions).add(kind, &mailbox, watermark, back_end);
    let (id, mark) = match added {
        Ok(x) => x,
        Err(code) => {
            return Ok(refused(
                "Subscribe",
                &refusal(code, "The watermark is invalid or has expired."),
            ));
        }
    };
    if watermark.is_some() && take_expiry(sim) {
        lock(&sim.shared.subscriptions).remove(&id);
        return Ok(refused(
            "Subscribe",
            &refusal(
                "ErrorInvalidWatermark",
                "The watermark used for creating this subscription was not recognized.",
            ),
        ));
    }
    crate::notify::replay(sim, &id);
    let streaming = matches!(request.tag_name().name(), "StreamingSubscriptionRequest");
    Ok(response("Subscribe", |x| {
        message(x, "Subscribe", Ok(()));
        x.leaf("m:SubscriptionId", &id);
        if !streaming {
            x.leaf("m:Watermark", &mark);
        }
        x.close("m:SubscribeResponseMessage");
    }))
}

fn take_expiry(sim: &EwsSim) -> bool {
    let mut faults = lock(&sim.shared.faults);
    let e = faults.expire_watermarks > 0;
    faults.expire_watermarks = faults.expire_watermarks.saturating_sub(1);
    e
}

pub(crate) fn get_events(sim: &EwsSim, call: &Call<'_, '_>) -> Result<String, Fault> {
    let op = call.op;
    let (Some(id), Some(watermark)) = (text(op, "SubscriptionId"), text(op, "Watermark")) else {
        return Err(Fault::new(
            "ErrorSchemaValidation",
            "GetEvents needs SubscriptionId and Watermark.",
        ));
    };
    let expired = take_expiry(sim);
    let pulled = {
        let mut registry = lock(&sim.shared.subscriptions);
        if expired {
            Err("ErrorInvalidWatermark")
        } else {
            registry.pull(id, watermark)
        }
    };
    match pulled {
        Ok(notification) => Ok(response("GetEvents", |x| {
            message(x, "GetEvents", Ok(()));
            x.raw(&notification);
            x.close("m:GetEventsResponseMessage");
        })),
        Err(code) => Ok(refused(
            "GetEvents",
            &refusal(code, Registry::explain(code)),
        )),
    }
}

/// `UpdateItem` of a calendar item's end (what a write-back sends): the item is found by
/// its id, its change key must be current, and `SendMeetingInvitationsOrCancellations`
/// must be given.
pub(crate) fn update_item(sim: &EwsSim, call: &Call<'_, '_>) -> Result<String, Fault> {
    let op = call.op;
    if op
        .attribute("SendMeetingInvitationsOrCancellations")
        .is_none()
    {
        return Err(Fault::new(
            "ErrorSchemaValidation",
            "The request failed schema validation: SendMeetingInvitationsOrCancellations is required for calendar items.",
        ));
    }
    let Some(change) = child(op, "ItemChanges").and_then(|c| child(c, "ItemChange")) else {
        return Err(Fault::new("ErrorSchemaValidation", "No ItemChange."));
    };
    let Some((id, key)) =
        child(change, "ItemId").and_then(|i| Some((i.attribute("Id")?, i.attribute("ChangeKey"))))
    else {
        return Err(Fault::new("ErrorSchemaValidation", "No ItemId."));
    };
    let end = child(change, "Updates")
        .and_then(|u| child(u, "SetItemField"))
        .filter(|f| {
            child(*f, "FieldURI").and_then(|u| u.attribute("FieldURI")) == Some("calendar:End")
        })
        .and_then(|f| child(f, "CalendarItem"))
        .and_then(|c| text(c, "End"))
        .and_then(|t| t.parse::<Timestamp>().ok());
    let Some(end) = end else {
        return Err(Fault::new(
            "ErrorInvalidRequest",
            "The simulator updates only a calendar item's End.",
        ));
    };
    let answer = |result: Result<(), Refusal>| {
        Ok(response("UpdateItem", |x| {
            match &result {
                Ok(()) => message(x, "UpdateItem", Ok(())),
                Err(r) => message(x, "UpdateItem", Err(r)),
            }
            x.close("m:UpdateItemResponseMessage");
        }))
    };
    let Some((mailbox_id, graph_id, start)) = parse_item_id(id) else {
        return answer(Err(refusal("ErrorInvalidIdMalformed", "Id is malformed.")));
    };
    let upn = sim
        .graph()
        .mailbox(&mailbox_id)
        .map(|(_, upn)| upn)
        .unwrap_or_default();
    let mailbox = match resolve(sim, call, Some(upn.as_str()))? {
        Ok(m) => m,
        Err(r) => return answer(Err(r)),
    };
    let found = sim.graph().occurrence(
        &mailbox.id,
        &graph_id,
        start,
        start + SignedDuration::from_millis(1),
    );
    let Ok(o) = found else {
        return answer(Err(refusal(
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        )));
    };
    if key.is_some_and(|k| k != change_key(&o)) {
        return answer(Err(refusal(
            "ErrorIrresolvableConflict",
            "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.",
        )));
    }
    let Ok(mut spec) = sim.graph().event(&mailbox.id, &graph_id) else {
        return answer(Err(refusal(
            "ErrorItemNotFound",
            "The simulator updates single appointments only.",
        )));
    };
    spec.end = end.to_string();
    match sim.graph().update_event(&mailbox.id, &graph_id, spec) {
        Ok(()) => answer(Ok(())),
        Err(e) => answer(Err(refusal("ErrorInvalidRequest", e.to_string()))),
    }
}

/// `GetUserOofSettings`: the mailbox's automatic replies, texts and all (as Exchange
/// answers; a reader must drop them).
pub(crate) fn get_user_oof_settings(sim: &EwsSim, call: &Call<'_, '_>) -> Result<String, Fault> {
    let named = child(call.op, "Mailbox").and_then(|m| text(m, "Address"));
    let mailbox = match resolve(sim, call, named)? {
        Ok(m) => m,
        Err(r) => {
            return Ok(oof_answer(|x| {
                x.open("m:ResponseMessage", &[("ResponseClass", "Error")])
                    .leaf("m:MessageText", &r.text)
                    .leaf("m:ResponseCode", r.code)
                    .leaf("m:DescriptiveLinkKey", "0")
                    .close("m:ResponseMessage");
            }));
        }
    };
    let spec = sim
        .graph()
        .automatic_replies(&mailbox.upn)
        .map_err(|e| Fault::new("ErrorNonExistentMailbox", e.to_string()))?;
    let state = match spec.status.as_str() {
        "alwaysEnabled" => "Enabled",
        "scheduled" => "Scheduled",
        _ => "Disabled",
    };
    // Exchange writes the period in UTC without the `Z`.
    let utc = |t: Option<Timestamp>| {
        t.unwrap_or(Timestamp::UNIX_EPOCH)
            .strftime("%Y-%m-%dT%H:%M:%S")
            .to_string()
    };
    Ok(oof_answer(|x| {
        x.open("m:ResponseMessage", &[("ResponseClass", "Success")])
            .leaf("m:ResponseCode", "NoError")
            .close("m:ResponseMessage")
            .open("t:OofSettings", &[])
            .leaf("t:OofState", state)
            .leaf("t:ExternalAudience", "All")
            .open("t:Duration", &[])
            .leaf("t:StartTime", &utc(spec.start))
            .leaf("t:EndTime", &utc(spec.end))
            .close("t:Duration")
            .open("t:InternalReply", &[])
            .leaf("t:Message", &spec.internal_message)
            .close("t:InternalReply")
            .open("t:ExternalReply", &[])
            .leaf("t:Message", &spec.external_message)
            .close("t:ExternalReply")
            .close("t:OofSettings")
            .leaf("m:AllowExternalOof", "All");
    }))
}

/// A `GetUserOofSettingsResponse` (not a list of response messages: one message, then
/// the settings) with what `inner` writes.
fn oof_answer(inner: impl FnOnce(&mut Writer)) -> String {
    let mut x = Writer::default();
    x.open(
        "m:GetUserOofSettingsResponse",
        &[("xmlns:m", MESSAGES), ("xmlns:t", TYPES)],
    );
    inner(&mut x);
    x.close("m:GetUserOofSettingsResponse");
    x.done()
}

pub(crate) fn unsubscribe(sim: &EwsSim, call: &Call<'_, '_>) -> Result<String, Fault> {
    let id = text(call.op, "SubscriptionId").unwrap_or("");
    if lock(&sim.shared.subscriptions).remove(id) {
        Ok(response("Unsubscribe", |x| {
            message(x, "Unsubscribe", Ok(()));
            x.close("m:UnsubscribeResponseMessage");
        }))
    } else {
        Ok(refused(
            "Unsubscribe",
            &refusal(
                "ErrorSubscriptionNotFound",
                Registry::explain("ErrorSubscriptionNotFound"),
            ),
        ))
    }
}

pub(crate) fn get_streaming_events(
    sim: &EwsSim,
    call: &Call<'_, '_>,
) -> Result<crate::notify::EventStream, Fault> {
    let op = call.op;
    let ids: Vec<String> = child(op, "SubscriptionIds")
        .map(|list| {
            children(list, "SubscriptionId")
                .filter_map(|n| n.text().map(|t| t.trim().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let minutes: u64 = text(op, "ConnectionTimeout")
        .and_then(|m| m.parse().ok())
        .unwrap_or(30)
        .clamp(1, 30);
    Ok(crate::notify::stream(
        sim,
        ids,
        minutes,
        call.back_end.clone(),
    ))
}
