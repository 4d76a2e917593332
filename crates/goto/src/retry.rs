//! When and how long the client waits before trying a call again.

use std::time::Duration;

use crate::error::GotoError;

/// How the GoTo client retries a call.
///
/// Retried: 429 (waiting for `Retry-After` when GoTo sends it, which wins over the
/// backoff, capped at `max_retry_after`), 5xx, and transport failures (connect errors,
/// dropped connections, timeouts). Never retried here: 400, 403, 404, 409. A 403
/// `InvalidToken` is not this policy's business either: the token manager refreshes
/// once and the call is repeated once.
///
/// Backoff is capped exponential with "equal jitter": attempt `n` (1-based) waits a
/// random time between half and all of `min(cap, base × 2^(n-1))`, so retries from many
/// callers spread out but never bunch at zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included; 1 means never retry.
    pub max_attempts: u32,
    /// The first backoff.
    pub base: Duration,
    /// No backoff is longer than this.
    pub cap: Duration,
    /// A `Retry-After` longer than this is cut to this (a hostile or broken header
    /// must not stall a worker for hours).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub const NEVER: Self = Self {
        max_attempts: 1,
        base: Duration::ZERO,
        cap: Duration::ZERO,
        max_retry_after: Duration::ZERO,
    };

    /// The backoff before retry number `retry` (1 = the first retry), with `jitter`
    /// in `[0, 1)` choosing where in the upper half of the window it falls.
    pub fn backoff(&self, retry: u32, jitter: f64) -> Duration {
        let exp = self
            .base
            .saturating_mul(2_u32.saturating_pow(retry.saturating_sub(1)));
        let window = exp.min(self.cap);
        window / 2 + window.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
    }

    /// How long to wait before the next attempt after `attempts` tries ended in `error`,
    /// or `None` to give up.
    pub fn delay_with(&self, attempts: u32, error: &GotoError, jitter: f64) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        match error {
            GotoError::RateLimited {
                retry_after: Some(wait),
            } => Some((*wait).min(self.max_retry_after)),
            GotoError::RateLimited { retry_after: None }
            | GotoError::Upstream { .. }
            | GotoError::Transport(_) => Some(self.backoff(attempts, jitter)),
            _ => None,
        }
    }

    /// [`Self::delay_with`] with random jitter.
    pub fn delay(&self, attempts: u32, error: &GotoError) -> Option<Duration> {
        self.delay_with(attempts, error, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream() -> GotoError {
        GotoError::Upstream {
            status: 503,
            message: String::new(),
        }
    }

    #[test]
    fn backoff_doubles_within_half_and_full_window_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(250));
        assert!(p.backoff(1, 0.999_999) < Duration::from_millis(500));
        assert_eq!(p.backoff(2, 0.0), Duration::from_millis(500));
        assert_eq!(p.backoff(3, 0.5), Duration::from_millis(1500));
        assert_eq!(
            p.backoff(10, 0.0),
            Duration::from_secs(15),
            "capped at 30 s, lower half"
        );
        assert_eq!(p.backoff(40, 1.0), Duration::from_secs(30));
    }

    #[test]
    fn retry_after_wins_and_is_capped() {
        let p = RetryPolicy::default();
        let limited = |s| GotoError::RateLimited {
            retry_after: Some(Duration::from_secs(s)),
        };
        assert_eq!(
            p.delay_with(1, &limited(7), 0.9),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            p.delay_with(1, &limited(86_400), 0.0),
            Some(Duration::from_secs(300))
        );
        let bare = GotoError::RateLimited { retry_after: None };
        assert_eq!(
            p.delay_with(2, &bare, 0.0),
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn only_transient_errors_are_retried_and_attempts_run_out() {
        let p = RetryPolicy::default();
        assert!(p.delay_with(1, &upstream(), 0.0).is_some());
        assert!(
            p.delay_with(4, &GotoError::Transport("reset".into()), 0.0)
                .is_some()
        );
        assert_eq!(p.delay_with(5, &upstream(), 0.0), None, "5 attempts in all");
        for permanent in [
            GotoError::InvalidToken,
            GotoError::NotFound {
                message: String::new(),
            },
            GotoError::AlreadyRegistered {
                registrant_key: None,
                join_url: None,
            },
            GotoError::Forbidden {
                code: None,
                message: String::new(),
            },
            GotoError::RegistrationInvalid {
                fields: vec![],
                message: String::new(),
            },
        ] {
            assert_eq!(p.delay_with(1, &permanent, 0.0), None, "{permanent:?}");
        }
        assert_eq!(RetryPolicy::NEVER.delay_with(1, &upstream(), 0.0), None);
    }
}
