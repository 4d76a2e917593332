//! Session times as people type them: a wall-clock time in the webinar's own zone
//! (`2027-03-04 09:00`), an end as a time of day on its start's date (`10:30`), or a
//! moment with an offset (`2027-03-04T09:00+01:00`), which no daylight-saving change
//! can make ambiguous.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use g2w_goto::{TimeRange, WebinarZone};

/// A time as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typed {
    /// A date and time on the webinar's clocks.
    Wall(NaiveDateTime),
    /// A time of day, on the date of the session's start (ends only).
    TimeOfDay(NaiveTime),
    /// An exact moment.
    Moment(DateTime<Utc>),
}

/// Reads `--start`/`--end`.
///
/// # Errors
/// A text that is none of the three forms, said with examples.
pub fn parse_typed(text: &str) -> Result<Typed, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(Typed::Moment(t.with_timezone(&Utc)));
    }
    for format in ["%Y-%m-%dT%H:%M%:z", "%Y-%m-%d %H:%M%:z"] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Ok(Typed::Moment(t.with_timezone(&Utc)));
        }
    }
    for format in [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(Typed::Wall(t));
        }
    }
    for format in ["%H:%M", "%H:%M:%S"] {
        if let Ok(t) = NaiveTime::parse_from_str(text, format) {
            return Ok(Typed::TimeOfDay(t));
        }
    }
    Err(format!(
        "{text:?} is not a time: write \"2027-03-04 09:00\" (in the webinar's time zone), \
         \"10:30\" (an end, on its start's date) or \"2027-03-04T09:00+01:00\""
    ))
}

/// Reads `--duration`: `1h`, `90m`, `1h30m`, `45m`.
///
/// # Errors
/// Anything else, or no length at all.
pub fn parse_length(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a length: write 1h, 90m or 1h30m");
    // Hours and minutes only: a session is not measured in days.
    if text
        .trim()
        .contains(|c: char| !c.is_ascii_digit() && !"hmHM".contains(c))
    {
        return Err(bad());
    }
    let span = crate::output::parse_span(text).map_err(|_| bad())?;
    let minutes = i64::try_from(span.as_secs() / 60).map_err(|_| bad())?;
    if span.as_secs() % 60 != 0 || !(1..=24 * 60 * 7).contains(&minutes) {
        return Err(bad());
    }
    Ok(Duration::minutes(minutes))
}

fn moment(
    zone: WebinarZone,
    flag: &str,
    typed: Typed,
    day: Option<NaiveDate>,
) -> anyhow::Result<DateTime<Utc>> {
    let local = match typed {
        Typed::Moment(t) => return Ok(t),
        Typed::Wall(t) => t,
        Typed::TimeOfDay(t) => match day {
            Some(day) => day.and_time(t),
            None => anyhow::bail!(
                "--{flag} {t}: a start needs a date, such as \"2027-03-04 {}\"",
                t.format("%H:%M")
            ),
        },
    };
    zone.moment(local)
        .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

/// The sessions `starts` and `ends` name in `zone`, paired in order. Without ends,
/// each session lasts `default_length` when there is one (a copy or an update keeps
/// its webinar's length).
///
/// # Errors
/// Times that are not moments in the zone, an end given as a time of day before its
/// start's, or starts and ends that do not pair up.
pub fn sessions(
    zone: WebinarZone,
    starts: &[Typed],
    ends: &[Typed],
    default_length: Option<Duration>,
) -> anyhow::Result<Vec<TimeRange>> {
    if ends.is_empty() && default_length.is_none() && !starts.is_empty() {
        anyhow::bail!("each --start needs an --end");
    }
    if !ends.is_empty() && ends.len() != starts.len() {
        anyhow::bail!(
            "each --start needs its --end: {} starts, {} ends",
            starts.len(),
            ends.len()
        );
    }
    starts
        .iter()
        .enumerate()
        .map(|(i, &start)| {
            let start_time = moment(zone, "start", start, None)?;
            let day = zone.date(start_time);
            let end_time = match ends.get(i) {
                Some(&end) => moment(zone, "end", end, Some(day))?,
                None => start_time + default_length.unwrap_or_default(),
            };
            Ok(TimeRange {
                start_time,
                end_time,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_read_as_people_write_them() {
        for (text, minutes) in [
            ("1h", 60),
            ("90m", 90),
            ("1h30m", 90),
            ("2H", 120),
            (" 45m ", 45),
        ] {
            assert_eq!(parse_length(text), Ok(Duration::minutes(minutes)), "{text}");
        }
        for bad in ["", "h", "0m", "1", "1.5h", "-1h", "1h-5m", "1d", "200h"] {
            assert!(parse_length(bad).is_err(), "{bad}");
        }
    }

    fn typed(t: &str) -> Typed {
        parse_typed(t).unwrap()
    }

    #[test]
    fn starts_and_ends_are_read_in_the_zone_and_paired() {
        let berlin = WebinarZone::parse("Europe/Berlin").unwrap();
        let got = sessions(
            berlin,
            &[typed("2027-03-04 09:00"), typed("2027-07-01T09:00")],
            &[typed("10:30"), typed("2027-07-01 10:00")],
            None,
        )
        .unwrap();
        assert_eq!(got[0].start_time.to_rfc3339(), "2027-03-04T08:00:00+00:00");
        assert_eq!(got[0].end_time.to_rfc3339(), "2027-03-04T09:30:00+00:00");
        assert_eq!(got[1].start_time.to_rfc3339(), "2027-07-01T07:00:00+00:00");
        let offset = sessions(
            berlin,
            &[typed("2027-10-31T02:30+01:00")],
            &[],
            Some(Duration::minutes(45)),
        )
        .unwrap();
        assert_eq!(
            offset[0].start_time.to_rfc3339(),
            "2027-10-31T01:30:00+00:00"
        );
        assert_eq!(offset[0].end_time.to_rfc3339(), "2027-10-31T02:15:00+00:00");
    }

    #[test]
    fn unpaired_dateless_and_daylight_saving_times_are_refused_clearly() {
        let berlin = WebinarZone::parse("Europe/Berlin").unwrap();
        let err = |starts: &[&str], ends: &[&str]| {
            let starts: Vec<_> = starts.iter().map(|s| typed(s)).collect();
            let ends: Vec<_> = ends.iter().map(|s| typed(s)).collect();
            sessions(berlin, &starts, &ends, None)
                .unwrap_err()
                .to_string()
        };
        assert!(err(&["2027-03-04 09:00"], &[]).contains("needs an --end"));
        assert!(
            err(&["2027-03-04 09:00", "2027-03-11 09:00"], &["10:00"]).contains("2 starts, 1 ends")
        );
        assert!(err(&["09:00"], &["10:00"]).contains("a start needs a date"));
        assert!(
            err(&["2027-03-28 02:30"], &["04:00"])
                .contains("--start: 2027-03-28 02:30 does not exist in Europe/Berlin")
        );
        assert!(err(&["2027-10-31 01:30"], &["02:30"]).contains("happens twice"));
        for bad in ["tomorrow", "2027-13-01 09:00", "25:00", ""] {
            assert!(
                parse_typed(bad).unwrap_err().contains("is not a time"),
                "{bad}"
            );
        }
    }
}
