//! The SOAP requests Kalsync sends to Exchange (SPEC §4.2): each is a set of header
//! elements and one body element, every one a standalone element declaring its own
//! namespaces — so each validates on its own against Microsoft's schema — wrapped in an
//! envelope to send. The property shape is always explicit: never `Body`; the subject
//! and location only when asked for.

use crate::xml::Writer as Xml;
use jiff::Timestamp;
use kalsync_core::WindowsZone;

/// The EWS types namespace.
pub const TYPES: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
/// The EWS messages namespace.
pub const MESSAGES: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
/// SOAP 1.1.
pub const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";

pub use kalsync_core::exchange::{Access, Version};

/// Whose mailbox a request is for, and how it is asked.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The server version asked for.
    pub version: Version,
    /// Impersonation or delegate access.
    pub access: Access,
    /// The mailbox's primary SMTP address.
    pub mailbox: &'a str,
    /// The zone times are given in (`TimeZoneContext`, 2010 and later).
    pub zone: Option<WindowsZone>,
}

/// Which optional properties to read (SPEC §3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// The subject: a rule needs it, or titles are shown.
    pub subject: bool,
    /// The location: shown.
    pub location: bool,
}

impl Shape {
    /// The `FieldURI`s of the §3.1 properties, for `version`. Never `item:Body`.
    pub fn field_uris(self, version: Version) -> Vec<&'static str> {
        let mut uris = vec![
            "item:ItemClass",
            "item:Sensitivity",
            "item:Categories",
            "calendar:Start",
            "calendar:End",
            "calendar:IsAllDayEvent",
            "calendar:LegacyFreeBusyStatus",
            "calendar:IsCancelled",
            "calendar:MyResponseType",
            "calendar:CalendarItemType",
            "calendar:UID",
        ];
        if version.has_time_zone_context() {
            uris.push("calendar:StartTimeZone");
        } else {
            uris.push("calendar:TimeZone");
        }
        if self.subject {
            uris.push("item:Subject");
        }
        if self.location {
            uris.push("calendar:Location");
        }
        uris
    }
}

/// An item and, when known, its change key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRef {
    /// `Id`.
    pub id: String,
    /// `ChangeKey`.
    pub change_key: Option<String>,
}

/// One request: header elements, the body element, the `SOAPAction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Header elements, each standalone.
    pub headers: Vec<String>,
    /// The body's element, standalone.
    pub body: String,
    /// The operation, e.g. `FindItem` (the `SOAPAction` is its URI).
    pub operation: &'static str,
}

impl Request {
    /// The whole SOAP envelope.
    pub fn envelope(&self) -> String {
        let mut out = String::with_capacity(self.body.len() + 512);
        out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
        out.push_str(&format!("<soap:Envelope xmlns:soap=\"{SOAP}\">"));
        out.push_str("<soap:Header>");
        for h in &self.headers {
            out.push_str(h);
        }
        out.push_str("</soap:Header><soap:Body>");
        out.push_str(&self.body);
        out.push_str("</soap:Body></soap:Envelope>");
        out
    }

    /// The `SOAPAction` header's value.
    pub fn soap_action(&self) -> String {
        format!("{MESSAGES}/{}", self.operation)
    }
}

/// The namespace declarations every body element carries.
const BODY_NS: [(&str, &str); 2] = [("xmlns:m", MESSAGES), ("xmlns:t", TYPES)];

fn headers(ctx: &Context<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let mut v = Xml::default();
    v.empty(
        "t:RequestServerVersion",
        &[("xmlns:t", TYPES), ("Version", ctx.version.as_str())],
    );
    out.push(v.done());
    if ctx.access == Access::Impersonation {
        // Any of the mailbox's addresses (a user added by an alias is found too);
        // Exchange 2007 knows only the primary one.
        let address = if ctx.version >= Version::Exchange2010 {
            "t:SmtpAddress"
        } else {
            "t:PrimarySmtpAddress"
        };
        let mut i = Xml::default();
        i.open("t:ExchangeImpersonation", &[("xmlns:t", TYPES)])
            .open("t:ConnectingSID", &[])
            .leaf(address, ctx.mailbox)
            .close("t:ConnectingSID")
            .close("t:ExchangeImpersonation");
        out.push(i.done());
    }
    if let Some(zone) = ctx.zone.filter(|_| ctx.version.has_time_zone_context()) {
        let mut z = Xml::default();
        z.open("t:TimeZoneContext", &[("xmlns:t", TYPES)])
            .empty("t:TimeZoneDefinition", &[("Id", zone.id())])
            .close("t:TimeZoneContext");
        out.push(z.done());
    }
    out
}

/// The mailbox's calendar: its own (impersonation) or named by address (delegate).
fn calendar_folder(x: &mut Xml, ctx: &Context<'_>) {
    match ctx.access {
        Access::Impersonation => {
            x.empty("t:DistinguishedFolderId", &[("Id", "calendar")]);
        }
        Access::Delegate => {
            x.open("t:DistinguishedFolderId", &[("Id", "calendar")])
                .open("t:Mailbox", &[])
                .leaf("t:EmailAddress", ctx.mailbox)
                .close("t:Mailbox")
                .close("t:DistinguishedFolderId");
        }
    }
}

fn item_shape(x: &mut Xml, uris: &[&str]) {
    x.open("m:ItemShape", &[]).leaf("t:BaseShape", "IdOnly");
    if !uris.is_empty() {
        x.open("t:AdditionalProperties", &[]);
        for uri in uris {
            x.empty("t:FieldURI", &[("FieldURI", uri)]);
        }
        x.close("t:AdditionalProperties");
    }
    x.close("m:ItemShape");
}

fn instant(t: Timestamp) -> String {
    // Whole seconds, `Z`: what xs:dateTime and every Exchange version read.
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn request(ctx: &Context<'_>, operation: &'static str, body: Xml) -> Request {
    Request {
        headers: headers(ctx),
        body: body.done(),
        operation,
    }
}

/// `FindItem` with a `CalendarView` of `[start, end)`: occurrences expanded, at most
/// `max_entries` of them (the answer says whether the view was complete). Only ids,
/// start and end: the rest comes from `GetItem`.
pub fn find_calendar_view(
    ctx: &Context<'_>,
    start: Timestamp,
    end: Timestamp,
    max_entries: u32,
) -> Request {
    let mut x = Xml::default();
    let (from, to, max) = (instant(start), instant(end), max_entries.to_string());
    let mut attrs = BODY_NS.to_vec();
    attrs.push(("Traversal", "Shallow"));
    x.open("m:FindItem", &attrs);
    item_shape(&mut x, &["calendar:Start", "calendar:End"]);
    x.empty(
        "m:CalendarView",
        &[
            ("MaxEntriesReturned", &max),
            ("StartDate", &from),
            ("EndDate", &to),
        ],
    );
    x.open("m:ParentFolderIds", &[]);
    calendar_folder(&mut x, ctx);
    x.close("m:ParentFolderIds").close("m:FindItem");
    request(ctx, "FindItem", x)
}

/// `GetItem` of `items` with the explicit §3.1 shape.
pub fn get_items(ctx: &Context<'_>, items: &[ItemRef], shape: Shape) -> Request {
    let mut x = Xml::default();
    x.open("m:GetItem", &BODY_NS);
    item_shape(&mut x, &shape.field_uris(ctx.version));
    x.open("m:ItemIds", &[]);
    for item in items {
        match &item.change_key {
            Some(key) => x.empty("t:ItemId", &[("Id", &item.id), ("ChangeKey", key)]),
            None => x.empty("t:ItemId", &[("Id", &item.id)]),
        };
    }
    x.close("m:ItemIds").close("m:GetItem");
    request(ctx, "GetItem", x)
}

/// `GetItem` of one item's id, change key and whether it is a meeting and the mailbox
/// organised it (`calendar:IsMeeting`, `calendar:MyResponseType`): what a write-back
/// checks first.
pub fn get_meeting_flags(ctx: &Context<'_>, item: &str) -> Request {
    let mut x = Xml::default();
    x.open("m:GetItem", &BODY_NS);
    item_shape(&mut x, &["calendar:IsMeeting", "calendar:MyResponseType"]);
    x.open("m:ItemIds", &[])
        .empty("t:ItemId", &[("Id", item)])
        .close("m:ItemIds")
        .close("m:GetItem");
    request(ctx, "GetItem", x)
}

/// `UpdateItem` of a calendar item's end, telling no one
/// (`SendMeetingInvitationsOrCancellations="SendToNone"`), only while it is as read
/// (its change key; `NeverOverwrite`: a changed item is refused, not overwritten).
pub fn update_item_end(ctx: &Context<'_>, item: &ItemRef, end: Timestamp) -> Request {
    let mut x = Xml::default();
    let mut attributes = BODY_NS.to_vec();
    attributes.push(("ConflictResolution", "NeverOverwrite"));
    attributes.push(("SendMeetingInvitationsOrCancellations", "SendToNone"));
    x.open("m:UpdateItem", &attributes)
        .open("m:ItemChanges", &[])
        .open("t:ItemChange", &[]);
    match &item.change_key {
        Some(key) => x.empty("t:ItemId", &[("Id", &item.id), ("ChangeKey", key)]),
        None => x.empty("t:ItemId", &[("Id", &item.id)]),
    };
    x.open("t:Updates", &[])
        .open("t:SetItemField", &[])
        .empty("t:FieldURI", &[("FieldURI", "calendar:End")])
        .open("t:CalendarItem", &[])
        .leaf("t:End", &instant(end))
        .close("t:CalendarItem")
        .close("t:SetItemField")
        .close("t:Updates")
        .close("t:ItemChange")
        .close("m:ItemChanges")
        .close("m:UpdateItem");
    request(ctx, "UpdateItem", x)
}

/// `SyncFolderItems` on the calendar from `sync_state` (none: from the beginning).
pub fn sync_folder_items(ctx: &Context<'_>, sync_state: Option<&str>, max_changes: u32) -> Request {
    let mut x = Xml::default();
    x.open("m:SyncFolderItems", &BODY_NS);
    item_shape(&mut x, &[]);
    x.open("m:SyncFolderId", &[]);
    calendar_folder(&mut x, ctx);
    x.close("m:SyncFolderId");
    if let Some(state) = sync_state {
        x.leaf("m:SyncState", state);
    }
    x.leaf(
        "m:MaxChangesReturned",
        &max_changes.clamp(1, 512).to_string(),
    )
    .close("m:SyncFolderItems");
    request(ctx, "SyncFolderItems", x)
}

/// How notifications are to come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscription<'a> {
    /// Streaming (2010 SP1+): `GetStreamingEvents` holds a connection open.
    Streaming,
    /// Push: Exchange POSTs `SendNotification` to `url` at least every
    /// `status_minutes`.
    Push {
        /// Our endpoint, with the subscription's secret in its path.
        url: &'a str,
        /// Keep-alive interval, 1–1440 minutes.
        status_minutes: u32,
        /// Resume from this watermark.
        watermark: Option<&'a str>,
    },
    /// Pull: we ask with `GetEvents`; the subscription lapses after `timeout_minutes`
    /// without a call.
    Pull {
        /// 1–1440 minutes.
        timeout_minutes: u32,
        /// Resume from this watermark.
        watermark: Option<&'a str>,
    },
}

const EVENT_TYPES: [&str; 5] = [
    "CopiedEvent",
    "CreatedEvent",
    "DeletedEvent",
    "ModifiedEvent",
    "MovedEvent",
];

/// `Subscribe` to changes of the mailbox's calendar.
pub fn subscribe(ctx: &Context<'_>, kind: &Subscription<'_>) -> Request {
    let mut x = Xml::default();
    x.open("m:Subscribe", &BODY_NS);
    let element = match kind {
        Subscription::Streaming => "m:StreamingSubscriptionRequest",
        Subscription::Push { .. } => "m:PushSubscriptionRequest",
        Subscription::Pull { .. } => "m:PullSubscriptionRequest",
    };
    x.open(element, &[]).open("t:FolderIds", &[]);
    calendar_folder(&mut x, ctx);
    x.close("t:FolderIds").open("t:EventTypes", &[]);
    for event in EVENT_TYPES {
        x.leaf("t:EventType", event);
    }
    x.close("t:EventTypes");
    match kind {
        Subscription::Streaming => {}
        Subscription::Push {
            url,
            status_minutes,
            watermark,
        } => {
            if let Some(w) = watermark {
                x.leaf("t:Watermark", w);
            }
            x.leaf(
                "t:StatusFrequency",
                &(*status_minutes).clamp(1, 1440).to_string(),
            )
            .leaf("t:URL", url);
        }
        Subscription::Pull {
            timeout_minutes,
            watermark,
        } => {
            if let Some(w) = watermark {
                x.leaf("t:Watermark", w);
            }
            x.leaf("t:Timeout", &(*timeout_minutes).clamp(1, 1440).to_string());
        }
    }
    x.close(element).close("m:Subscribe");
    request(ctx, "Subscribe", x)
}

/// `GetEvents` of a pull subscription from `watermark`.
pub fn get_events(ctx: &Context<'_>, subscription: &str, watermark: &str) -> Request {
    let mut x = Xml::default();
    x.open("m:GetEvents", &BODY_NS)
        .leaf("m:SubscriptionId", subscription)
        .leaf("m:Watermark", watermark)
        .close("m:GetEvents");
    request(ctx, "GetEvents", x)
}

/// `GetStreamingEvents` for a group of subscriptions, the connection held for
/// `minutes` (1–30). `ctx` names the group's anchor mailbox.
pub fn get_streaming_events(ctx: &Context<'_>, subscriptions: &[&str], minutes: u32) -> Request {
    let mut x = Xml::default();
    x.open("m:GetStreamingEvents", &BODY_NS)
        .open("m:SubscriptionIds", &[]);
    for id in subscriptions {
        x.leaf("t:SubscriptionId", id);
    }
    x.close("m:SubscriptionIds")
        .leaf("m:ConnectionTimeout", &minutes.clamp(1, 30).to_string())
        .close("m:GetStreamingEvents");
    request(ctx, "GetStreamingEvents", x)
}

/// `Unsubscribe`.
pub fn unsubscribe(ctx: &Context<'_>, subscription: &str) -> Request {
    let mut x = Xml::default();
    x.open("m:Unsubscribe", &BODY_NS)
        .leaf("m:SubscriptionId", subscription)
        .close("m:Unsubscribe");
    request(ctx, "Unsubscribe", x)
}

/// `GetUserOofSettings`: the mailbox's automatic replies (its state and period; the
/// answer carries the texts too, which are passed over when it is read).
pub fn get_user_oof_settings(ctx: &Context<'_>) -> Request {
    let mut x = Xml::default();
    x.open("m:GetUserOofSettingsRequest", &BODY_NS)
        .open("t:Mailbox", &[])
        .leaf("t:Address", ctx.mailbox)
        .close("t:Mailbox")
        .close("m:GetUserOofSettingsRequest");
    request(ctx, "GetUserOofSettings", x)
}

/// What our push endpoint answers a `SendNotification`: keep sending (`OK`) or stop
/// (`Unsubscribe`).
pub fn send_notification_result(keep: bool) -> String {
    let mut x = Xml::default();
    x.open("m:SendNotificationResult", &[("xmlns:m", MESSAGES)])
        .leaf(
            "m:SubscriptionStatus",
            if keep { "OK" } else { "Unsubscribe" },
        )
        .close("m:SendNotificationResult");
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<soap:Envelope xmlns:soap=\"{SOAP}\"><soap:Body>{}</soap:Body></soap:Envelope>",
        x.done()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(access: Access) -> Context<'static> {
        Context {
            version: Version::Exchange2010Sp2,
            access,
            mailbox: "anna@corp.example",
            zone: WindowsZone::parse("W. Europe Standard Time").ok(),
        }
    }

    #[test]
    fn the_shape_never_asks_for_the_body_and_the_subject_only_when_needed() {
        for v in Version::ALL {
            for shape in [
                Shape::default(),
                Shape {
                    subject: true,
                    location: true,
                },
            ] {
                let uris = shape.field_uris(v);
                assert!(!uris.iter().any(|u| u.contains("Body")));
                assert_eq!(uris.contains(&"item:Subject"), shape.subject);
                assert_eq!(uris.contains(&"calendar:Location"), shape.location);
            }
        }
        let body = get_items(
            &ctx(Access::Impersonation),
            &[ItemRef {
                id: "AAMk".into(),
                change_key: None,
            }],
            Shape::default(),
        )
        .envelope();
        assert!(
            !body.contains("Body\"") && !body.contains("item:Subject"),
            "{body}"
        );
    }

    #[test]
    fn impersonation_names_the_mailbox_in_the_header_delegate_in_the_folder() {
        let imp = find_calendar_view(
            &ctx(Access::Impersonation),
            Timestamp::UNIX_EPOCH,
            Timestamp::UNIX_EPOCH,
            10,
        );
        assert!(
            imp.headers
                .iter()
                .any(|h| h.contains("ExchangeImpersonation")
                    && h.contains("<t:SmtpAddress>anna@corp.example<"))
        );
        let on_2007 = Context {
            version: Version::Exchange2007Sp1,
            ..ctx(Access::Impersonation)
        };
        assert!(
            find_calendar_view(&on_2007, Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH, 10)
                .headers
                .iter()
                .any(|h| h.contains("<t:PrimarySmtpAddress>anna@corp.example<")),
            "Exchange 2007 has no SmtpAddress"
        );
        assert!(!imp.body.contains("t:Mailbox"));
        let del = find_calendar_view(
            &ctx(Access::Delegate),
            Timestamp::UNIX_EPOCH,
            Timestamp::UNIX_EPOCH,
            10,
        );
        assert!(
            !del.headers
                .iter()
                .any(|h| h.contains("ExchangeImpersonation"))
        );
        assert!(
            del.body
                .contains("<t:EmailAddress>anna@corp.example</t:EmailAddress>")
        );
    }

    #[test]
    fn text_is_escaped_and_2007_has_no_time_zone_context() {
        let mut c = ctx(Access::Delegate);
        c.mailbox = "a&b<c>@corp.example";
        c.version = Version::Exchange2007Sp1;
        let r = sync_folder_items(&c, Some("H4sI\"&"), 100);
        assert!(
            r.body.contains("a&amp;b&lt;c&gt;@corp.example"),
            "{}",
            r.body
        );
        assert!(r.body.contains("H4sI&quot;&amp;"), "{}", r.body);
        assert!(!r.headers.iter().any(|h| h.contains("TimeZoneContext")));
        assert!(Version::parse("2019").is_ok_and(|v| v == Version::Exchange2013Sp1));
        assert!(Version::parse("Exchange2010_sp1").is_ok_and(Version::has_streaming));
        assert!(Version::parse("2003").is_err());
    }
}
