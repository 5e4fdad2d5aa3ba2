//! An EWS `CalendarItem` as read with the §3.1 shape, and its booking: free/busy,
//! sensitivity, response, cancellation, categories; all-day items keep their dates in
//! the zone they were booked in; occurrences and exceptions name their series by `UID`.

use jiff::Timestamp;
use kalsync_core::{
    Booking, BookingId, BookingTime, FreeBusy, ResponseStatus, Sensitivity, WindowsZone, Zone,
};
use roxmltree::Node;

use crate::error::EwsError;
use crate::request::ItemRef;
use crate::xml::{child, children, parse_bool, text};

/// A calendar item's §3.1 properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarItem {
    /// Id and change key.
    pub id: ItemRef,
    /// `ItemClass` (`IPM.Appointment`, `IPM.Appointment.Occurrence`…).
    pub item_class: Option<String>,
    /// Start (UTC).
    pub start: Timestamp,
    /// End (UTC).
    pub end: Timestamp,
    /// `IsAllDayEvent`.
    pub all_day: bool,
    /// `LegacyFreeBusyStatus`.
    pub free_busy: Option<String>,
    /// `Sensitivity`.
    pub sensitivity: Option<String>,
    /// `Categories`.
    pub categories: Vec<String>,
    /// `IsCancelled`.
    pub cancelled: bool,
    /// `MyResponseType`.
    pub response: Option<String>,
    /// `CalendarItemType`: `Single`, `Occurrence`, `Exception`, `RecurringMaster`.
    pub item_type: Option<String>,
    /// `UID`, shared by a series and its occurrences.
    pub uid: Option<String>,
    /// The zone it was booked in: `StartTimeZone`'s `Id` (2010+) or `TimeZone` (2007).
    pub time_zone: Option<String>,
    /// `Subject`, when asked for.
    pub subject: Option<String>,
    /// `Location`, when asked for.
    pub location: Option<String>,
}

fn malformed(what: impl Into<String>) -> EwsError {
    EwsError::Malformed(what.into())
}

impl CalendarItem {
    /// Reads a `CalendarItem` element (another item type is an error naming it).
    pub fn read(node: Node<'_, '_>) -> Result<CalendarItem, EwsError> {
        let kind = node.tag_name().name();
        if kind != "CalendarItem" {
            return Err(malformed(format!("a {kind}, not a CalendarItem")));
        }
        let id = child(node, "ItemId")
            .and_then(|n| {
                Some(ItemRef {
                    id: n.attribute("Id").filter(|i| !i.is_empty())?.to_owned(),
                    change_key: n.attribute("ChangeKey").map(str::to_owned),
                })
            })
            .ok_or_else(|| malformed("a CalendarItem without ItemId"))?;
        let when = |name: &str| -> Result<Timestamp, EwsError> {
            let t =
                text(node, name).ok_or_else(|| malformed(format!("item {}: no {name}", id.id)))?;
            t.parse::<Timestamp>()
                .map_err(|e| malformed(format!("item {}: {name} `{t}`: {e}", id.id)))
        };
        let owned = |name: &str| text(node, name).map(str::to_owned);
        Ok(CalendarItem {
            start: when("Start")?,
            end: when("End")?,
            all_day: text(node, "IsAllDayEvent")
                .and_then(parse_bool)
                .unwrap_or(false),
            free_busy: owned("LegacyFreeBusyStatus"),
            sensitivity: owned("Sensitivity"),
            categories: child(node, "Categories")
                .map(|c| {
                    children(c, "String")
                        .filter_map(|s| s.text().map(|t| t.trim().to_owned()))
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            cancelled: text(node, "IsCancelled")
                .and_then(parse_bool)
                .unwrap_or(false),
            response: owned("MyResponseType"),
            item_type: owned("CalendarItemType"),
            uid: owned("UID"),
            time_zone: child(node, "StartTimeZone")
                .and_then(|z| z.attribute("Id"))
                .map(str::to_owned)
                .or_else(|| owned("TimeZone")),
            subject: child(node, "Subject").map(|s| s.text().unwrap_or("").trim().to_owned()),
            location: owned("Location"),
            item_class: owned("ItemClass"),
            id,
        })
    }

    /// The booking. All-day dates are read in the zone the item was booked in when
    /// Exchange names one we know, else in `mailbox_zone`.
    pub fn to_booking(&self, mailbox_zone: &Zone) -> Result<Booking, EwsError> {
        let bad = |what: String| malformed(format!("item {}: {what}", self.id.id));
        let id = BookingId::parse(self.id.id.clone()).map_err(|e| bad(e.to_string()))?;
        let time = if self.all_day {
            let zone = self
                .time_zone
                .as_deref()
                .and_then(|z| WindowsZone::parse(z).ok()?.to_zone())
                .unwrap_or_else(|| mailbox_zone.clone());
            let date = |t: Timestamp| t.to_zoned(zone.tz().clone()).date();
            BookingTime::all_day(date(self.start), date(self.end))
        } else {
            BookingTime::timed(self.start, self.end)
        }
        .map_err(|e| bad(e.to_string()))?;
        let mut b = Booking::new(id, time);
        b.change_key = self.id.change_key.clone();
        b.time_zone = self.time_zone.clone();
        b.free_busy = match self.free_busy.as_deref() {
            Some("Free") => FreeBusy::Free,
            Some("Tentative") => FreeBusy::Tentative,
            Some("Busy") | None => FreeBusy::Busy,
            Some("OOF") => FreeBusy::Oof,
            Some("WorkingElsewhere") => FreeBusy::WorkingElsewhere,
            Some(_) => FreeBusy::Unknown,
        };
        b.sensitivity = match self.sensitivity.as_deref() {
            Some("Personal") => Sensitivity::Personal,
            Some("Private") => Sensitivity::Private,
            Some("Confidential") => Sensitivity::Confidential,
            _ => Sensitivity::Normal,
        };
        b.response = match self.response.as_deref() {
            Some("Organizer") => ResponseStatus::Organizer,
            Some("Accept") => ResponseStatus::Accepted,
            Some("Tentative") => ResponseStatus::Tentative,
            Some("Decline") => ResponseStatus::Declined,
            Some("NoResponseReceived") => ResponseStatus::NotResponded,
            _ => ResponseStatus::None,
        };
        b.cancelled = self.cancelled;
        b.categories = self.categories.clone();
        if matches!(self.item_type.as_deref(), Some("Occurrence" | "Exception")) {
            b.series_id = self
                .uid
                .as_deref()
                .and_then(|u| BookingId::parse(u.to_owned()).ok());
        }
        b.subject = self.subject.clone();
        b.location = self.location.clone();
        Ok(b)
    }
}
