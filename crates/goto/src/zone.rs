//! Times as people read them: in the webinar's own time zone, with the zone named.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone as _, Utc};
use chrono_tz::Tz;

/// A wall-clock time that names no single moment in its zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalTimeError {
    /// The zone is not an IANA name this build knows.
    #[error("{0:?} is not a time zone (an IANA name such as Europe/Berlin or America/New_York)")]
    UnknownZone(String),
    /// The clocks skip this time (moving forward for daylight saving).
    #[error(
        "{time} does not exist in {zone}: the clocks move forward that night and skip it. \
         Choose a time outside the skipped hour"
    )]
    Skipped {
        /// The time as given.
        time: String,
        /// The zone.
        zone: &'static str,
    },
    /// The clocks pass this time twice (going back at the end of daylight saving).
    #[error(
        "{time} happens twice in {zone}: the clocks go back that night ({first} and again \
         {second}). Choose another time, or give an offset such as {example}"
    )]
    Twice {
        /// The time as given.
        time: String,
        /// The zone.
        zone: &'static str,
        /// The first moment it names, with its offset.
        first: String,
        /// The second.
        second: String,
        /// The first moment written with its offset, which is unambiguous.
        example: String,
    },
}

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

    /// The zone IANA calls `name`; unlike [`Self::named`], an unknown name is an error.
    ///
    /// # Errors
    /// [`LocalTimeError::UnknownZone`].
    pub fn parse(name: &str) -> Result<Self, LocalTimeError> {
        name.trim()
            .parse::<Tz>()
            .map(Self)
            .map_err(|_| LocalTimeError::UnknownZone(name.to_owned()))
    }

    /// The moment `local` names on this zone's clocks.
    ///
    /// # Errors
    /// A time the clocks skip, or pass twice, on a daylight-saving day: guessing one
    /// would put a webinar an hour away from where its organizer meant it.
    pub fn moment(&self, local: NaiveDateTime) -> Result<DateTime<Utc>, LocalTimeError> {
        let time = local.format("%Y-%m-%d %H:%M").to_string();
        match self.0.from_local_datetime(&local) {
            LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
            LocalResult::None => Err(LocalTimeError::Skipped {
                time,
                zone: self.name(),
            }),
            LocalResult::Ambiguous(a, b) => Err(LocalTimeError::Twice {
                time,
                zone: self.name(),
                first: a.format("%H:%M %Z").to_string(),
                second: b.format("%H:%M %Z").to_string(),
                example: a.format("%Y-%m-%dT%H:%M%:z").to_string(),
            }),
        }
    }

    /// The date on this zone's calendars at `t`.
    #[must_use]
    pub fn date(&self, t: DateTime<Utc>) -> chrono::NaiveDate {
        t.with_timezone(&self.0).date_naive()
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
        // Across a change of the clocks each time carries its own offset: `01:30 CET –
        // 03:30 CEST` is one hour, where `01:30 – 03:30 CEST` would read as two.
        let start = if chrono::Offset::fix(s.offset()) == chrono::Offset::fix(e.offset()) {
            s.format("%A %-d %B %Y, %H:%M").to_string()
        } else {
            s.format("%A %-d %B %Y, %H:%M %Z").to_string()
        };
        format!("{start} – {end}{named}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn wall_clock_times_become_moments_and_daylight_saving_gaps_and_repeats_are_refused() {
        let berlin = WebinarZone::parse("Europe/Berlin").unwrap();
        assert_eq!(
            berlin.moment(local("2027-03-04 09:00")).unwrap(),
            utc("2027-03-04T08:00:00Z")
        );
        assert_eq!(
            berlin.moment(local("2027-07-01 09:00")).unwrap(),
            utc("2027-07-01T07:00:00Z")
        );
        let skipped = berlin.moment(local("2027-03-28 02:30")).unwrap_err();
        assert!(matches!(skipped, LocalTimeError::Skipped { .. }));
        assert!(
            skipped
                .to_string()
                .contains("2027-03-28 02:30 does not exist in Europe/Berlin")
        );
        let twice = berlin
            .moment(local("2027-10-31 02:30"))
            .unwrap_err()
            .to_string();
        assert!(twice.contains("happens twice"), "{twice}");
        assert!(twice.contains("02:30 CEST and again 02:30 CET"), "{twice}");
        assert!(twice.contains("2027-10-31T02:30+02:00"), "{twice}");
        assert!(matches!(
            WebinarZone::parse("Mars/Olympus"),
            Err(LocalTimeError::UnknownZone(_))
        ));
    }

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
        // The night the clocks go forward: one hour, each end with its own offset.
        assert_eq!(
            berlin.session(utc("2027-03-28T00:30:00Z"), utc("2027-03-28T01:30:00Z")),
            "Sunday 28 March 2027, 01:30 CET – 03:30 CEST (Europe/Berlin)"
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
