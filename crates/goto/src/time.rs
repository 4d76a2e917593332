//! One unit of time for everything g2w keeps and compares: a [`Timestamp`] is a moment
//! to the millisecond, spans are [`Duration`]s, and [`Clock`] says what "now" is. Stores
//! choose their own column units (seconds for logins, milliseconds for the outbox) and
//! convert at their edge, so no caller ever guesses which one a bare number is.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A moment: milliseconds since the Unix epoch.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

fn clamp_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Self = Self(0);
    /// Later than any moment g2w will see ("never", for sorting).
    pub const MAX: Self = Self(i64::MAX);

    /// The moment `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// The moment `secs` seconds after the epoch.
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (rounded down).
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// Now, on the system clock.
    pub fn now() -> Self {
        Self(chrono::Utc::now().timestamp_millis())
    }

    /// The time from `earlier` to this moment, or zero when `earlier` is later.
    pub fn since(self, earlier: Self) -> Duration {
        u64::try_from(self.0.saturating_sub(earlier.0))
            .map_or(Duration::ZERO, Duration::from_millis)
    }

    /// As UTC date and time (the epoch for moments chrono cannot show).
    pub fn to_utc(self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_millis(self.0).unwrap_or_default()
    }

    /// RFC 3339 in UTC, to the second.
    pub fn to_rfc3339(self) -> String {
        self.to_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

impl std::ops::Add<Duration> for Timestamp {
    type Output = Self;
    fn add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(clamp_millis(d)))
    }
}

impl std::ops::AddAssign<Duration> for Timestamp {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl std::ops::Sub<Duration> for Timestamp {
    type Output = Self;
    fn sub(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(clamp_millis(d)))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} ms)", self.to_rfc3339(), self.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Where "now" comes from; tests replace it to move through days in a moment.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Timestamp::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_millis_are_one_scale() {
        let t = Timestamp::from_secs(90);
        assert_eq!(t.as_millis(), 90_000);
        assert_eq!(
            Timestamp::from_millis(-1).as_secs(),
            -1,
            "rounds down before 1970"
        );
        assert_eq!(Timestamp::from_millis(1_999).as_secs(), 1);
    }

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        assert_eq!(Timestamp::MAX + Duration::from_secs(1), Timestamp::MAX);
        assert_eq!(Timestamp::from_secs(i64::MAX), Timestamp::MAX);
        let t = Timestamp::from_secs(10);
        assert_eq!(t.since(Timestamp::from_secs(4)), Duration::from_secs(6));
        assert_eq!(Timestamp::from_secs(4).since(t), Duration::ZERO);
        assert_eq!(
            t - Duration::from_millis(500),
            Timestamp::from_millis(9_500)
        );
    }

    #[test]
    fn shows_as_utc() {
        assert_eq!(
            Timestamp::from_secs(1_700_000_000).to_string(),
            "2023-11-14T22:13:20Z"
        );
    }
}
