//! Everything one emulator instance shares between requests.

use std::sync::{Mutex, MutexGuard};

use crate::clock::Clock;
use crate::config::EmulatorConfig;
use crate::event_log::EventLog;
use crate::faults::Faults;
use crate::rate_limit::RateLimiter;
use crate::seed;
use crate::state::{State, new_key};
use crate::stats::StatsRecorder;

/// Everything one emulator instance shares between requests.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: EmulatorConfig,
    /// `http://127.0.0.1:PORT`, for join and registration URLs.
    pub base_url: String,
    pub clock: Clock,
    pub stats: StatsRecorder,
    pub faults: Mutex<Faults>,
    pub limiter: RateLimiter,
    /// Webhook deliveries made, and the control API's dials for them.
    pub events: EventLog,
    /// For webhook deliveries and callback validation.
    pub http: reqwest::Client,
    state: Mutex<State>,
    /// Kept across resets so that a test's organizer key stays valid.
    default_organizer: u64,
    account_key: u64,
    /// The demo's second organizer (in an account of their own), also kept across resets.
    second_organizer: (u64, u64),
}

impl Shared {
    pub fn new(config: EmulatorConfig, base_url: String) -> Self {
        let default_organizer = new_key();
        let account_key = new_key();
        let limiter = RateLimiter::new(config.rate_limit);
        let shared = Self {
            state: Mutex::new(State::new(&config, default_organizer, account_key)),
            config,
            base_url,
            clock: Clock::default(),
            stats: StatsRecorder::default(),
            faults: Mutex::new(Faults::default()),
            limiter,
            events: EventLog::default(),
            http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            default_organizer,
            account_key,
            second_organizer: (new_key(), new_key()),
        };
        shared.seed();
        shared
    }

    /// The world; never hold the guard across an `.await`.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn default_organizer(&self) -> u64 {
        self.default_organizer
    }

    fn seed(&self) {
        if self.config.seed_demo {
            let now = self.clock.now();
            seed::demo(&mut self.state(), now, self.second_organizer);
        }
    }

    /// Back to the state at start: data, tokens, faults, counters, clock.
    pub fn reset(&self) {
        *self.state() = State::new(&self.config, self.default_organizer, self.account_key);
        self.clock.reset();
        self.stats.reset();
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.limiter.reset();
        self.events.reset();
        self.seed();
    }

    pub fn join_url(&self, webinar_key: u64, registrant_key: u64) -> String {
        format!("{}/join/{webinar_key}/{registrant_key}", self.base_url)
    }

    pub fn registration_url(&self, webinar_key: u64) -> String {
        format!("{}/register/{webinar_key}", self.base_url)
    }
}
