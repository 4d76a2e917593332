//! Counters that tests read through `GET /_emulator/stats` to prove what g2w did:
//! one refresh and not sixty-four, each registrant created once, 429s honoured.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// A snapshot of the emulator's counters.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Requests by route (`METHOD /path/{template}`) and then by status code.
    pub requests: BTreeMap<String, BTreeMap<u16, u64>>,
    /// Successful token grants by `grant_type`.
    pub token_grants: BTreeMap<String, u64>,
    /// Failed token requests by OAuth error code (`invalid_grant`, `invalid_client`, …).
    pub token_errors: BTreeMap<String, u64>,
    /// Refresh tokens handed out, by any grant.
    pub refresh_tokens_issued: u64,
    /// Registrants created (201 answers of create registrant).
    pub registrants_created: u64,
    /// 429 answers, from the rate limiter or from injected faults.
    pub rate_limited: u64,
    /// The most API calls each GoTo account made within any one second (a sliding
    /// window on real time), whatever the answer: what GoTo's limit is measured on.
    pub busiest_second: BTreeMap<String, u64>,
}

impl Stats {
    /// How many requests a route got, whatever their status.
    pub fn route_total(&self, route: &str) -> u64 {
        self.requests
            .get(route)
            .map(|m| m.values().sum())
            .unwrap_or(0)
    }

    /// How many requests a route got with one status.
    pub fn route_status(&self, route: &str, status: u16) -> u64 {
        self.requests
            .get(route)
            .and_then(|m| m.get(&status))
            .copied()
            .unwrap_or(0)
    }

    /// Successful grants of one type.
    pub fn grants(&self, grant_type: &str) -> u64 {
        self.token_grants.get(grant_type).copied().unwrap_or(0)
    }
}

/// The live counters, updated by handlers and middleware.
#[derive(Debug, Default)]
pub(crate) struct StatsRecorder {
    inner: Mutex<Stats>,
    /// Each account's calls of the last second.
    recent: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl StatsRecorder {
    fn with(&self, f: impl FnOnce(&mut Stats)) {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard);
    }

    pub fn request(&self, route: &str, status: u16) {
        self.with(|s| {
            *s.requests
                .entry(route.to_owned())
                .or_default()
                .entry(status)
                .or_default() += 1;
            if status == 429 {
                s.rate_limited += 1;
            }
        });
    }

    pub fn grant(&self, grant_type: &str, issued_refresh_token: bool) {
        self.with(|s| {
            *s.token_grants.entry(grant_type.to_owned()).or_default() += 1;
            if issued_refresh_token {
                s.refresh_tokens_issued += 1;
            }
        });
    }

    pub fn token_error(&self, error: &str) {
        self.with(|s| *s.token_errors.entry(error.to_owned()).or_default() += 1);
    }

    pub fn registrant_created(&self) {
        self.with(|s| s.registrants_created += 1);
    }

    /// An API call of `account` arrived now.
    pub fn arrival(&self, account: &str) {
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let calls = recent.entry(account.to_owned()).or_default();
        while calls
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            calls.pop_front();
        }
        calls.push_back(now);
        let within = calls.len() as u64;
        self.with(|s| {
            let busiest = s.busiest_second.entry(account.to_owned()).or_default();
            *busiest = (*busiest).max(within);
        });
    }

    pub fn snapshot(&self) -> Stats {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn reset(&self) {
        self.with(|s| *s = Stats::default());
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
