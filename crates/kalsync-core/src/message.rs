//! Announcement texts (SPEC §3.7): "Lunch, åter 13.00" / "Lunch, back 13:00", naming the
//! weekday and date when the return is on another day.

use jiff::Timestamp;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;

/// A language of the announcements and the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// Swedish.
    Sv,
    /// English.
    En,
}

const SV_DAYS: [&str; 7] = [
    "måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag",
];
const EN_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const SV_MONTHS: [&str; 12] = [
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
];
const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn weekday_index(day: Weekday) -> usize {
    usize::from(day.to_monday_zero_offset().unsigned_abs())
}

/// The message for an absence with `label` that began at `since` and returns at
/// `returns`, in the instance's zone.
pub fn announcement(
    lang: Lang,
    label: &str,
    since: Timestamp,
    returns: Timestamp,
    tz: &TimeZone,
) -> String {
    let since = since.to_zoned(tz.clone());
    let back = returns.to_zoned(tz.clone());
    let (word, clock) = match lang {
        Lang::Sv => ("åter", back.strftime("%H.%M").to_string()),
        Lang::En => ("back", back.strftime("%H:%M").to_string()),
    };
    if back.date() == since.date() {
        return format!("{label}, {word} {clock}");
    }
    let day = weekday_index(back.weekday());
    let month = usize::try_from(back.month() - 1).unwrap_or(0);
    let year = if back.year() == since.year() {
        String::new()
    } else {
        format!(" {}", back.year())
    };
    match lang {
        Lang::Sv => format!(
            "{label}, {word} {} {} {}{year} {clock}",
            SV_DAYS[day],
            back.day(),
            SV_MONTHS[month]
        ),
        Lang::En => format!(
            "{label}, {word} {} {} {}{year} {clock}",
            EN_DAYS[day],
            back.day(),
            EN_MONTHS[month]
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        crate::Zone::stockholm().parse_instant(s).expect("time")
    }

    #[test]
    fn same_day_returns_give_the_clock_only() {
        let tz = TimeZone::get("Europe/Stockholm").expect("tz");
        assert_eq!(
            announcement(
                Lang::Sv,
                "Lunch",
                at("2026-11-23 12:00"),
                at("2026-11-23 13:00"),
                &tz
            ),
            "Lunch, åter 13.00"
        );
        assert_eq!(
            announcement(
                Lang::En,
                "Lunch",
                at("2026-11-23 12:00"),
                at("2026-11-23 13:00"),
                &tz
            ),
            "Lunch, back 13:00"
        );
    }

    #[test]
    fn other_day_returns_name_weekday_and_date() {
        let tz = TimeZone::get("Europe/Stockholm").expect("tz");
        // 2024-12-02 was a Monday.
        assert_eq!(
            announcement(
                Lang::Sv,
                "Semester",
                at("2024-11-25 00:00"),
                at("2024-12-02 08:00"),
                &tz
            ),
            "Semester, åter måndag 2 december 08.00"
        );
        assert_eq!(
            announcement(
                Lang::En,
                "Vacation",
                at("2024-11-25 00:00"),
                at("2024-12-02 08:00"),
                &tz
            ),
            "Vacation, back Monday 2 December 08:00"
        );
        assert_eq!(
            announcement(
                Lang::Sv,
                "Semester",
                at("2026-12-21 00:00"),
                at("2027-01-04 08:00"),
                &tz
            ),
            "Semester, åter måndag 4 januari 2027 08.00"
        );
    }
}
