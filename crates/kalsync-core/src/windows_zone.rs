//! Windows time-zone ids (`W. Europe Standard Time`) as Exchange and Graph write them,
//! mapped to and from IANA zones with the Unicode CLDR table.

use std::fmt;
use std::str::FromStr;

use windows_timezones::WindowsTimezone;

use crate::working_hours::Zone;

/// A Windows time-zone id known to CLDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowsZone(WindowsTimezone);

impl WindowsZone {
    /// Parses an id such as `W. Europe Standard Time` (exact, as Windows writes it).
    pub fn parse(id: &str) -> Result<Self, String> {
        WindowsTimezone::from_str(id.trim())
            .map(WindowsZone)
            .map_err(|_| format!("`{id}` is not a Windows time zone id known to CLDR"))
    }

    /// The id, e.g. `W. Europe Standard Time`.
    pub fn id(self) -> &'static str {
        self.0.name()
    }

    /// The IANA zone CLDR names for it (its "001" territory).
    pub fn to_zone(self) -> Option<Zone> {
        Zone::parse(self.0.tzdb_id()).ok()
    }

    /// The Windows id CLDR gives an IANA zone (`Europe/Stockholm` → `W. Europe Standard
    /// Time`).
    pub fn from_zone(zone: &Zone) -> Option<Self> {
        let tz = chrono_tz::Tz::from_str(zone.name()).ok()?;
        WindowsTimezone::try_from(tz).ok().map(WindowsZone)
    }
}

impl fmt::Display for WindowsZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl Zone {
    /// An IANA name, or a Windows id mapped through CLDR: sources write either.
    pub fn parse_any(name: &str) -> Result<Zone, String> {
        Zone::parse(name).or_else(|iana_error| {
            WindowsZone::parse(name)
                .ok()
                .and_then(WindowsZone::to_zone)
                .ok_or(iana_error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_ids_map_to_iana_and_back() {
        let w = WindowsZone::parse("W. Europe Standard Time").expect("known");
        assert_eq!(
            w.to_zone().map(|z| z.name().to_owned()),
            Some("Europe/Berlin".into())
        );
        let stockholm = Zone::parse("Europe/Stockholm").expect("zone");
        assert_eq!(WindowsZone::from_zone(&stockholm), Some(w));
        assert_eq!(
            WindowsZone::parse("Pacific Standard Time")
                .ok()
                .and_then(WindowsZone::to_zone),
            Zone::parse("America/Los_Angeles").ok()
        );
        assert!(WindowsZone::parse("Customized Time Zone").is_err());
        assert_eq!(
            Zone::parse_any("FLE Standard Time").map(|z| z.name().to_owned()),
            Ok("Europe/Kiev".into())
        );
        assert_eq!(
            Zone::parse_any("Europe/Stockholm").map(|z| z.name().to_owned()),
            Ok("Europe/Stockholm".into())
        );
        assert!(Zone::parse_any("Mars/Olympus").is_err());
    }
}
