//! The emulator's clock: real time plus an offset that tests move forward.
//!
//! Every expiry (codes, access and refresh tokens, webinar times) is measured on this
//! clock, so a test can jump 30 days ahead in one call. The rate limiter alone uses
//! real monotonic time, because it models throughput, not calendar time.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, SecondsFormat, Utc};

/// Seconds since the Unix epoch on the emulator's clock.
pub type Timestamp = i64;

/// A settable clock shared by every part of one emulator.
#[derive(Debug, Default)]
pub struct Clock {
    offset_seconds: AtomicI64,
}

impl Clock {
    /// Now, on the emulator's clock.
    pub fn now(&self) -> Timestamp {
        Utc::now().timestamp() + self.offset_seconds.load(Ordering::Relaxed)
    }

    /// How far the clock has been moved from real time.
    pub fn offset(&self) -> i64 {
        self.offset_seconds.load(Ordering::Relaxed)
    }

    /// Moves the clock forward.
    pub fn advance(&self, seconds: i64) {
        self.offset_seconds.fetch_add(seconds, Ordering::Relaxed);
    }

    /// Puts the clock back to real time.
    pub fn reset(&self) {
        self.offset_seconds.store(0, Ordering::Relaxed);
    }
}

/// Formats a timestamp as GoTo does: ISO 8601 in UTC, whole seconds, `Z` suffix.
pub fn to_iso(ts: Timestamp) -> String {
    DateTime::<Utc>::from_timestamp(ts, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Parses an RFC 3339 date-time (`2020-03-13T10:00:00Z`, offsets and fractions allowed).
pub fn parse_iso(text: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trip_and_offsets() {
        assert_eq!(to_iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_iso("2020-03-13T10:00:00Z"), Some(1_584_093_600));
        assert_eq!(parse_iso("2020-03-13T11:00:00+01:00"), Some(1_584_093_600));
        assert_eq!(parse_iso("2020-03-13T10:00:00.250Z"), Some(1_584_093_600));
        assert_eq!(parse_iso("13/03/2020"), None);
    }

    #[test]
    fn advance_moves_now() {
        let clock = Clock::default();
        let before = clock.now();
        clock.advance(7200);
        assert!(clock.now() - before >= 7200);
        clock.reset();
        assert_eq!(clock.offset(), 0);
    }
}
