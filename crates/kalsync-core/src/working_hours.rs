//! Working hours and the instance's time zone: where a return time lands (SPEC §3.6).

use std::fmt;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

/// An IANA time zone, by name, resolved against the bundled time-zone database.
#[derive(Clone)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

impl Zone {
    /// Resolves an IANA name such as `Europe/Stockholm`.
    pub fn parse(name: &str) -> Result<Self, String> {
        let name = name.trim();
        TimeZone::get(name)
            .map(|tz| Zone {
                name: name.to_owned(),
                tz,
            })
            .map_err(|_| {
                format!(
                    "unknown time zone `{name}` (expected an IANA name such as Europe/Stockholm)"
                )
            })
    }

    /// `Europe/Stockholm`, the default of every instance.
    pub fn stockholm() -> Self {
        Self::parse("Europe/Stockholm").unwrap_or_else(|_| Zone {
            name: "UTC".into(),
            tz: TimeZone::UTC,
        })
    }

    /// The IANA name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zone's rules.
    pub fn tz(&self) -> &TimeZone {
        &self.tz
    }

    /// Reads a time as people write it: an RFC 3339 time with an offset, or a local
    /// `2026-11-23`, `2026-11-23T08:00` or `2026-11-23 08:00` in this zone.
    pub fn parse_instant(&self, text: &str) -> Result<Timestamp, String> {
        let text = text.trim();
        if let Ok(t) = text.parse::<Timestamp>() {
            return Ok(t);
        }
        let local = text
            .parse::<jiff::civil::DateTime>()
            .or_else(|_| text.parse::<Date>().map(|d| d.to_datetime(Time::midnight())))
            .map_err(|_| {
                format!(
                    "`{text}` is not a time (expected 2026-11-23, 2026-11-23T08:00 or 2026-11-23T08:00:00+01:00)"
                )
            })?;
        local
            .to_zoned(self.tz.clone())
            .map(|z| z.timestamp())
            .map_err(|e| format!("`{text}`: {e}"))
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Zone {}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zone({})", self.name)
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Serialize for Zone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Zone::parse(&name).map_err(serde::de::Error::custom)
    }
}

/// Working days and a daily half-open period `[start, end)` in local wall-clock time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingHours {
    /// Indexed Monday = 0 … Sunday = 6.
    days: [bool; 7],
    start: Time,
    end: Time,
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl WorkingHours {
    /// Working hours on the given days; `start` must be before `end`.
    pub fn new(
        days: impl IntoIterator<Item = Weekday>,
        start: Time,
        end: Time,
    ) -> Result<Self, String> {
        if start >= end {
            return Err(format!(
                "working hours start ({start}) must be before they end ({end})"
            ));
        }
        let mut set = [false; 7];
        for day in days {
            set[usize::from(day.to_monday_zero_offset().unsigned_abs())] = true;
        }
        Ok(WorkingHours {
            days: set,
            start,
            end,
        })
    }

    /// Parses a day name: `mon` … `sun`, English or Swedish (`mån` … `sön`), any case.
    pub fn parse_day(name: &str) -> Result<Weekday, String> {
        let lower = name.trim().to_lowercase();
        let day = match lower.as_str() {
            "mon" | "monday" | "mån" | "måndag" => Weekday::Monday,
            "tue" | "tuesday" | "tis" | "tisdag" => Weekday::Tuesday,
            "wed" | "wednesday" | "ons" | "onsdag" => Weekday::Wednesday,
            "thu" | "thursday" | "tor" | "torsdag" => Weekday::Thursday,
            "fri" | "friday" | "fre" | "fredag" => Weekday::Friday,
            "sat" | "saturday" | "lör" | "lördag" => Weekday::Saturday,
            "sun" | "sunday" | "sön" | "söndag" => Weekday::Sunday,
            _ => {
                return Err(format!(
                    "`{name}` is not a day (expected mon, tue, wed, thu, fri, sat or sun)"
                ));
            }
        };
        Ok(day)
    }

    /// Parses `HH:MM`.
    pub fn parse_time(text: &str) -> Result<Time, String> {
        text.trim()
            .parse::<Time>()
            .map_err(|_| format!("`{text}` is not a time of day (expected HH:MM, e.g. 08:00)"))
    }

    /// Whether `date` is a working day.
    pub fn is_working_day(&self, date: Date) -> bool {
        self.days[usize::from(date.weekday().to_monday_zero_offset().unsigned_abs())]
    }

    /// Start of the working day.
    pub fn start(&self) -> Time {
        self.start
    }

    /// End of the working day.
    pub fn end(&self) -> Time {
        self.end
    }

    /// The working days, Monday first.
    pub fn days(&self) -> impl Iterator<Item = Weekday> + '_ {
        (0..7u8).filter(|i| self.days[usize::from(*i)]).map(|i| {
            Weekday::from_monday_zero_offset(i8::try_from(i).unwrap_or(0))
                .unwrap_or(Weekday::Monday)
        })
    }

    /// `t` itself when it falls inside a working period, otherwise the start of the next
    /// working period. Without any working day, `t` unchanged.
    pub fn next_working_instant(&self, t: Timestamp, tz: &TimeZone) -> Timestamp {
        let local = t.to_zoned(tz.clone());
        let time = local.time();
        if self.is_working_day(local.date()) && self.start <= time && time < self.end {
            t
        } else {
            self.next_period_start_after(t, tz)
        }
    }

    /// The start of the first working period that begins strictly after `t`. Without any
    /// working day, `t` unchanged.
    pub fn next_period_start_after(&self, t: Timestamp, tz: &TimeZone) -> Timestamp {
        let mut date = t.to_zoned(tz.clone()).date();
        // Eight days always reach the same weekday again, so one week and a day suffice.
        for _ in 0..8 {
            if self.is_working_day(date) {
                if let Ok(start) = date.to_datetime(self.start).to_zoned(tz.clone()) {
                    if start.timestamp() > t {
                        return start.timestamp();
                    }
                }
            }
            match date.checked_add(1.day()) {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        t
    }
}

impl Default for WorkingHours {
    /// Monday to Friday, 08:00–17:00.
    fn default() -> Self {
        WorkingHours {
            days: [true, true, true, true, true, false, false],
            start: Time::constant(8, 0, 0, 0),
            end: Time::constant(17, 0, 0, 0),
        }
    }
}

/// The TOML/JSON shape: `days = ["mon", …]`, `start = "08:00"`, `end = "17:00"`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkingHoursText {
    #[serde(default = "default_days")]
    days: Vec<String>,
    #[serde(default = "default_start")]
    start: String,
    #[serde(default = "default_end")]
    end: String,
}

fn default_days() -> Vec<String> {
    DAY_NAMES[..5].iter().map(|d| (*d).to_owned()).collect()
}
fn default_start() -> String {
    "08:00".into()
}
fn default_end() -> String {
    "17:00".into()
}

impl Serialize for WorkingHours {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WorkingHoursText {
            days: (0..7)
                .filter(|i| self.days[*i])
                .map(|i| DAY_NAMES[i].to_owned())
                .collect(),
            start: self.start.strftime("%H:%M").to_string(),
            end: self.end.strftime("%H:%M").to_string(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for WorkingHours {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = WorkingHoursText::deserialize(d)?;
        let days = text
            .days
            .iter()
            .map(|d| WorkingHours::parse_day(d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(serde::de::Error::custom)?;
        let start = WorkingHours::parse_time(&text.start).map_err(serde::de::Error::custom)?;
        let end = WorkingHours::parse_time(&text.end).map_err(serde::de::Error::custom)?;
        WorkingHours::new(days, start, end).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Zone::stockholm().parse_instant(s).expect("time")
    }

    #[test]
    fn return_times_move_to_the_next_working_period() {
        let wh = WorkingHours::default();
        let tz = Zone::stockholm().tz().clone();
        // 2026-11-27 is a Friday: (time, next working instant, next period start after).
        for (t, working, next_start) in [
            ("2026-11-27 13:00", "2026-11-27 13:00", "2026-11-30 08:00"),
            ("2026-11-27 08:00", "2026-11-27 08:00", "2026-11-30 08:00"),
            ("2026-11-27 17:00", "2026-11-30 08:00", "2026-11-30 08:00"),
            ("2026-11-28 00:00", "2026-11-30 08:00", "2026-11-30 08:00"),
            ("2026-11-24 07:00", "2026-11-24 08:00", "2026-11-24 08:00"),
            ("2026-11-24 08:00", "2026-11-24 08:00", "2026-11-25 08:00"),
        ] {
            assert_eq!(wh.next_working_instant(at(t), &tz), at(working), "{t}");
            assert_eq!(
                wh.next_period_start_after(at(t), &tz),
                at(next_start),
                "{t}"
            );
        }
    }

    #[test]
    fn no_working_days_leaves_times_alone() {
        let wh = WorkingHours::new([], Time::constant(8, 0, 0, 0), Time::constant(17, 0, 0, 0))
            .expect("valid");
        let tz = Zone::stockholm().tz().clone();
        assert_eq!(
            wh.next_working_instant(at("2026-11-28 00:00"), &tz),
            at("2026-11-28 00:00")
        );
    }

    #[test]
    fn parse_rejects_bad_input_precisely() {
        assert!(Zone::parse("Europe/Stockholm").is_ok());
        assert!(
            Zone::parse("W. Europe Standard Time")
                .unwrap_err()
                .contains("IANA")
        );
        assert!(
            WorkingHours::parse_day("frd")
                .unwrap_err()
                .contains("not a day")
        );
        assert_eq!(WorkingHours::parse_day("Fredag"), Ok(Weekday::Friday));
        assert!(WorkingHours::parse_time("8").is_err());
        let z = Zone::stockholm();
        assert_eq!(
            z.parse_instant("2026-11-23"),
            z.parse_instant("2026-11-23T00:00:00+01:00")
        );
        assert_eq!(
            z.parse_instant("2026-07-01 08:00"),
            z.parse_instant("2026-07-01T06:00:00Z")
        );
        assert!(
            z.parse_instant("tomorrow")
                .unwrap_err()
                .contains("not a time")
        );
        let t = |s| WorkingHours::parse_time(s).expect("time");
        assert!(WorkingHours::new([Weekday::Monday], t("17:00"), t("08:00")).is_err());
    }
}
