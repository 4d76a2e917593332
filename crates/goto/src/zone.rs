//! Times as people read them: in the webinar's own time zone, with the zone named.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// A webinar's time zone as GoTo names it (`America/New_York`); UTC when GoTo names
/// none, or one this build does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebinarZone(Tz);

impl WebinarZone {
    /// The zone GoTo calls `name`.
    #[must_use]
    pub fn named(name: Option<&str>) -> Self {
        Self(
            name.and_then(|n| n.trim().parse::<Tz>().ok())
                .unwrap_or(Tz::UTC),
        )
    }

    /// Its IANA name (`Europe/Berlin`, `UTC`).
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// `2027-03-04 09:00 CET`: a moment, short.
    #[must_use]
    pub fn short(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.0)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    }

    /// `Thursday 4 March 2027, 09:00 – 10:00 CET (Europe/Berlin)`: a session, for
    /// people; the end's date is named when it differs from the start's.
    #[must_use]
    pub fn session(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> String {
        let (s, e) = (start.with_timezone(&self.0), end.with_timezone(&self.0));
        let end = if s.date_naive() == e.date_naive() {
            e.format("%H:%M %Z").to_string()
        } else {
            e.format("%A %-d %B %Y, %H:%M %Z").to_string()
        };
        let named = if self.0 == Tz::UTC {
            String::new()
        } else {
            format!(" ({})", self.name())
        };
        format!("{} – {end}{named}", s.format("%A %-d %B %Y, %H:%M"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn sessions_read_in_the_webinars_own_zone_across_daylight_saving() {
        let berlin = WebinarZone::named(Some("Europe/Berlin"));
        assert_eq!(
            berlin.session(utc("2027-03-04T08:00:00Z"), utc("2027-03-04T09:00:00Z")),
            "Thursday 4 March 2027, 09:00 – 10:00 CET (Europe/Berlin)"
        );
        assert_eq!(
            berlin.session(utc("2027-07-01T08:00:00Z"), utc("2027-07-01T09:00:00Z")),
            "Thursday 1 July 2027, 10:00 – 11:00 CEST (Europe/Berlin)"
        );
        let new_york = WebinarZone::named(Some("America/New_York"));
        assert_eq!(
            new_york.short(utc("2027-03-04T14:30:00Z")),
            "2027-03-04 09:30 EST"
        );
        assert_eq!(
            new_york.session(utc("2027-03-05T04:00:00Z"), utc("2027-03-05T06:00:00Z")),
            "Thursday 4 March 2027, 23:00 – Friday 5 March 2027, 01:00 EST (America/New_York)"
        );
        for unknown in [None, Some(""), Some("Mars/Olympus")] {
            let zone = WebinarZone::named(unknown);
            assert_eq!(zone.name(), "UTC");
            assert_eq!(
                zone.session(utc("2027-03-04T08:00:00Z"), utc("2027-03-04T09:00:00Z")),
                "Thursday 4 March 2027, 08:00 – 09:00 UTC"
            );
        }
    }
}
