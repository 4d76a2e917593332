//! Prometheus counters, gauges and one histogram, kept by hand: the set is small and
//! fixed, and a metrics crate would cost more build time than this file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default)]
struct Inner {
    intake: BTreeMap<&'static str, u64>,
    deliveries: BTreeMap<&'static str, u64>,
    webhooks: BTreeMap<&'static str, u64>,
    latency_counts: [u64; LATENCY_BUCKETS.len()],
    latency_sum: f64,
    latency_total: u64,
}

/// The gauges read at scrape time, from the store and the worker.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Registrations by state.
    pub outbox: BTreeMap<String, u64>,
    /// Token requests made to GoTo.
    pub token_refreshes: u64,
    /// Whether delivery waits for a new login.
    pub paused: bool,
    /// Whether the breaker holds deliveries back.
    pub breaker_open: bool,
    /// How long the oldest registration not yet delivered has waited.
    pub oldest_waiting_secs: f64,
}

/// The gateway's metrics.
#[derive(Debug, Default)]
pub struct Metrics(Mutex<Inner>);

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Inner)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Counts an intake request by outcome (`accepted`, `invalid`, `rate_limited`, …).
    pub fn intake(&self, outcome: &'static str) {
        self.with(|m| *m.intake.entry(outcome).or_default() += 1);
    }

    /// Counts a delivery attempt by result (`delivered`, `retry`, `failed`, …).
    pub fn delivery(&self, result: &'static str) {
        self.with(|m| *m.deliveries.entry(result).or_default() += 1);
    }

    /// Counts a webhook event by what happened (`received`, `duplicate`, `forwarded`, …).
    pub fn webhook(&self, what: &'static str) {
        self.with(|m| *m.webhooks.entry(what).or_default() += 1);
    }

    /// Records how long a GoTo call took.
    pub fn goto_latency(&self, took: Duration) {
        let secs = took.as_secs_f64();
        self.with(|m| {
            for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    m.latency_counts[i] += 1;
                }
            }
            m.latency_sum += secs;
            m.latency_total += 1;
        });
    }

    /// The Prometheus text exposition, with the gauges given by the caller.
    pub fn render(&self, gauges: &Gauges) -> String {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, rows: &[(String, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in rows {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let labelled = |label: &str, map: &BTreeMap<&'static str, u64>| -> Vec<(String, String)> {
            map.iter()
                .map(|(k, v)| (format!("{{{label}=\"{k}\"}}"), v.to_string()))
                .collect()
        };
        family(
            "g2w_intake_total",
            "counter",
            "Registration requests by outcome.",
            &labelled("outcome", &m.intake),
        );
        family(
            "g2w_outbox_registrations",
            "gauge",
            "Registrations in the outbox by state.",
            &gauges
                .outbox
                .iter()
                .map(|(k, v)| (format!("{{state=\"{k}\"}}"), v.to_string()))
                .collect::<Vec<_>>(),
        );
        family(
            "g2w_outbox_oldest_waiting_seconds",
            "gauge",
            "Age of the oldest registration not yet delivered (0 when none waits).",
            &[(String::new(), gauges.oldest_waiting_secs.to_string())],
        );
        family(
            "g2w_delivery_attempts_total",
            "counter",
            "Delivery attempts to GoTo by result.",
            &labelled("result", &m.deliveries),
        );
        family(
            "g2w_webhook_events_total",
            "counter",
            "GoTo webhook events: received, duplicates, forwarded, forward retries and failures.",
            &labelled("what", &m.webhooks),
        );
        family(
            "g2w_token_refreshes_total",
            "counter",
            "Token requests made to GoTo (refresh and PAT grants).",
            &[(String::new(), gauges.token_refreshes.to_string())],
        );
        family(
            "g2w_delivery_paused",
            "gauge",
            "1 while delivery waits for a new login.",
            &[(String::new(), u8::from(gauges.paused).to_string())],
        );
        family(
            "g2w_goto_breaker_open",
            "gauge",
            "1 while GoTo is failing and deliveries wait for a probe to succeed.",
            &[(String::new(), u8::from(gauges.breaker_open).to_string())],
        );
        let _ = writeln!(
            out,
            "# HELP g2w_goto_request_duration_seconds Latency of registration calls to GoTo."
        );
        let _ = writeln!(out, "# TYPE g2w_goto_request_duration_seconds histogram");
        for (bound, count) in LATENCY_BUCKETS.iter().zip(m.latency_counts) {
            let _ = writeln!(
                out,
                "g2w_goto_request_duration_seconds_bucket{{le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "g2w_goto_request_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            m.latency_total
        );
        let _ = writeln!(
            out,
            "g2w_goto_request_duration_seconds_sum {}",
            m.latency_sum
        );
        let _ = writeln!(
            out,
            "g2w_goto_request_duration_seconds_count {}",
            m.latency_total
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_buckets() {
        let m = Metrics::default();
        m.intake("accepted");
        m.intake("accepted");
        m.goto_latency(Duration::from_millis(30));
        let text = m.render(&Gauges {
            outbox: BTreeMap::from([("pending".to_owned(), 3)]),
            breaker_open: true,
            oldest_waiting_secs: 12.5,
            ..Gauges::default()
        });
        assert!(text.contains("g2w_intake_total{outcome=\"accepted\"} 2"));
        assert!(text.contains("g2w_outbox_registrations{state=\"pending\"} 3"));
        assert!(text.contains("g2w_goto_breaker_open 1\n"));
        assert!(text.contains("g2w_outbox_oldest_waiting_seconds 12.5\n"));
        assert!(text.contains("le=\"0.025\"} 0"));
        assert!(text.contains("le=\"0.05\"} 1"));
        assert!(text.contains("le=\"+Inf\"} 1"));
    }
}
