//! Prometheus counters, gauges and one histogram, kept by hand: the set is small and
//! fixed, and a metrics crate would cost more build time than this file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use g2w_store::{QueueGauges, QueueName};

const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A closed set of label values: the enum, and each value's spelling in `/metrics`.
macro_rules! label {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// The label value.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

label!(
    /// How a registration request ended (`g2w_intake_total{outcome}`).
    IntakeOutcome {
        /// Stored in the outbox.
        Accepted = "accepted",
        /// A retry with a known idempotency key, answered from the first.
        Replayed = "replayed",
        /// The same person again for the same webinar while the first was on its way
        /// to GoTo: answered from that one (one GoTo call).
        Joined = "joined",
        /// A field or answer was refused.
        Invalid = "invalid",
        /// A bot filled the hidden field (and was told yes).
        Honeypot = "honeypot",
        /// Too many submissions from one address.
        RateLimited = "rate_limited",
        /// An API key that may not register (for this organizer).
        KeyRefused = "key_refused",
        /// Neither JSON nor a form.
        UnsupportedMediaType = "unsupported_media_type",
        /// The webinar is not the organizer's.
        UnknownWebinar = "unknown_webinar",
        /// The webinar has ended.
        WebinarOver = "webinar_over",
        /// The same idempotency key with another body.
        IdempotencyConflict = "idempotency_conflict",
        /// The store could not take it.
        StorageError = "storage_error",
        /// A bug of ours.
        Internal = "internal",
    }
);

label!(
    /// How one attempt of a queue ended (`g2w_queue_attempts_total{result}`).
    AttemptResult {
        /// GoTo registered the person.
        Delivered = "delivered",
        /// GoTo already had the person.
        AlreadyRegistered = "already_registered",
        /// The user's URL took the event.
        Forwarded = "forwarded",
        /// Refused for good.
        Failed = "failed",
        /// Given up after failing too long.
        Dead = "dead",
        /// Failed in a way that may pass; tried again later.
        Retry = "retry",
        /// Told to slow down (429); tried again after the wait.
        Throttled = "throttled",
        /// Nothing could be tried until someone signs in again.
        Paused = "paused",
    }
);

label!(
    /// What became of a webhook event GoTo sent (`g2w_webhook_events_total{what}`).
    WebhookOutcome {
        /// New, kept.
        Received = "received",
        /// Already kept.
        Duplicate = "duplicate",
        /// The store could not keep it (GoTo will send it again).
        StoreFailed = "store_failed",
    }
);

label!(
    /// What became of a form builder's post (`g2w_source_posts_total{source,outcome}`).
    SourceOutcome {
        /// Posted to a configured source (every post, whatever followed).
        Received = "received",
        /// Refused before it was read: no or a wrong signature, or an address not allowed.
        RefusedSignature = "refused_signature",
        /// Signed, but not registered yet: kept until its mapping is fixed.
        NeedsMapping = "needs_mapping",
        /// Stored as a registration (a repeat of the tool's is answered from the first).
        Registered = "registered",
        /// Another of the tool's events (not a submission): answered and left.
        Ignored = "ignored",
        /// The store could not keep it (the tool will post it again).
        StorageError = "storage_error",
    }
);

/// A counter's rows, one per label value.
fn labelled<K: std::fmt::Display>(label: &str, map: &BTreeMap<K, u64>) -> Vec<(String, String)> {
    map.iter()
        .map(|(k, v)| (format!("{{{label}=\"{k}\"}}"), v.to_string()))
        .collect()
}

/// One minute of what the console's Activity page draws, as this gateway saw it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Minute {
    /// Which minute (since the Unix epoch).
    pub at: i64,
    /// Registrations delivered (or found already registered) at GoTo.
    pub delivered: u64,
    /// GoTo's 429s to deliveries.
    pub throttled: u64,
    /// GoTo's answer times to deliveries, summed (ms), and how many.
    pub answer_ms: f64,
    pub answers: u64,
    /// Registrations waiting for GoTo when the minute was sampled.
    pub waiting: Option<u64>,
    /// Each organizer's GoTo calls this minute and its budget for a minute.
    pub calls: Vec<(String, u64, Option<f64>)>,
}

/// The minutes kept: a day.
const MINUTES_KEPT: usize = 24 * 60;

#[derive(Debug, Default)]
struct Inner {
    intake: BTreeMap<IntakeOutcome, u64>,
    attempts: BTreeMap<(QueueName, AttemptResult), u64>,
    webhooks: BTreeMap<WebhookOutcome, u64>,
    sources: BTreeMap<(String, SourceOutcome), u64>,
    latency_counts: [u64; LATENCY_BUCKETS.len()],
    latency_sum: f64,
    latency_total: u64,
    minutes: std::collections::VecDeque<Minute>,
}

impl Inner {
    /// The minute now is in, begun if need be (the oldest dropped past a day).
    fn this_minute(&mut self) -> &mut Minute {
        let at = g2w_goto::Timestamp::now().as_secs().div_euclid(60);
        if self.minutes.back().is_none_or(|m| m.at != at) {
            if self.minutes.len() >= MINUTES_KEPT {
                self.minutes.pop_front();
            }
            self.minutes.push_back(Minute {
                at,
                ..Minute::default()
            });
        }
        self.minutes
            .back_mut()
            .unwrap_or_else(|| unreachable!("a minute was just pushed"))
    }
}

/// One queue's gauges, read at scrape time from the store and its engine.
#[derive(Debug, Clone, Default)]
pub struct QueueState {
    /// Items by state, from the store's indexes.
    pub items: QueueGauges,
    /// How long the oldest waiting item has waited (0 when none waits).
    pub oldest_waiting_secs: f64,
    /// Whether the queue waits for someone (a new login).
    pub paused: bool,
    /// Whether the breaker holds attempts back.
    pub breaker_open: bool,
}

/// The gauges read at scrape time.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Each queue's.
    pub queues: Vec<(QueueName, QueueState)>,
    /// Token requests made to GoTo.
    pub token_refreshes: u64,
    /// Each organizer's delivery (by profile): paused (its login is gone), and its
    /// breaker open (its GoTo failing).
    pub organizers: Vec<(String, bool, bool)>,
}

/// The gateway's metrics.
#[derive(Debug, Default)]
pub struct Metrics(Mutex<Inner>);

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Inner)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Counts an intake request by outcome.
    pub fn intake(&self, outcome: IntakeOutcome) {
        self.with(|m| *m.intake.entry(outcome).or_default() += 1);
    }

    /// Counts an attempt of `queue` by result.
    pub fn attempt(&self, queue: QueueName, result: AttemptResult) {
        self.with(|m| {
            *m.attempts.entry((queue, result)).or_default() += 1;
            if queue == QueueName::Registrations {
                match result {
                    AttemptResult::Delivered | AttemptResult::AlreadyRegistered => {
                        m.this_minute().delivered += 1;
                    }
                    AttemptResult::Throttled => m.this_minute().throttled += 1,
                    _ => {}
                }
            }
        });
    }

    /// Records, once a minute, how many registrations wait and each organizer's GoTo
    /// calls since the last sample (with its budget for a minute).
    pub fn sample(&self, waiting: u64, calls: Vec<(String, u64, Option<f64>)>) {
        self.with(|m| {
            let minute = m.this_minute();
            minute.waiting = Some(waiting);
            minute.calls = calls;
        });
    }

    /// The last day's minutes, oldest first.
    pub fn minutes(&self) -> Vec<Minute> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .minutes
            .iter()
            .cloned()
            .collect()
    }

    /// Counts a webhook event by what happened.
    pub fn webhook(&self, what: WebhookOutcome) {
        self.with(|m| *m.webhooks.entry(what).or_default() += 1);
    }

    /// Counts a post to source `name` (a configured one: the set is the operator's).
    pub fn source(&self, name: &str, outcome: SourceOutcome) {
        self.with(|m| {
            *m.sources.entry((name.to_owned(), outcome)).or_default() += 1;
        });
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
            let minute = m.this_minute();
            minute.answer_ms += secs * 1_000.0;
            minute.answers += 1;
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
        family(
            "g2w_intake_total",
            "counter",
            "Registration requests by outcome.",
            &labelled("outcome", &m.intake),
        );
        let per_queue = |value: &dyn Fn(&QueueState) -> String| -> Vec<(String, String)> {
            gauges
                .queues
                .iter()
                .map(|(q, state)| (format!("{{queue=\"{q}\"}}"), value(state)))
                .collect()
        };
        let mut items = Vec::new();
        for (q, state) in &gauges.queues {
            let i = &state.items;
            for (name, n) in [
                ("pending", i.pending),
                ("delivering", i.delivering),
                ("failed", i.failed),
                ("dead", i.dead),
            ] {
                items.push((format!("{{queue=\"{q}\",state=\"{name}\"}}"), n.to_string()));
            }
        }
        family(
            "g2w_queue_items",
            "gauge",
            "Items of each durable queue (registrations to GoTo, events to your URL) waiting or needing a person, by state.",
            &items,
        );
        family(
            "g2w_queue_oldest_waiting_seconds",
            "gauge",
            "Age of each queue's oldest item not yet delivered (0 when none waits).",
            &per_queue(&|s| s.oldest_waiting_secs.to_string()),
        );
        family(
            "g2w_queue_attempts_total",
            "counter",
            "Attempts of each queue by result.",
            &m.attempts
                .iter()
                .map(|((q, r), v)| (format!("{{queue=\"{q}\",result=\"{r}\"}}"), v.to_string()))
                .collect::<Vec<_>>(),
        );
        family(
            "g2w_queue_paused",
            "gauge",
            "1 while a queue waits for someone (a new GoTo login).",
            &per_queue(&|s| u8::from(s.paused).to_string()),
        );
        family(
            "g2w_queue_breaker_open",
            "gauge",
            "1 while a queue's other side is failing and attempts wait for a probe.",
            &per_queue(&|s| u8::from(s.breaker_open).to_string()),
        );
        let per_organizer = |value: &dyn Fn(bool, bool) -> bool| -> Vec<(String, String)> {
            gauges
                .organizers
                .iter()
                .map(|(o, paused, open)| {
                    (
                        format!("{{organizer=\"{o}\"}}"),
                        u8::from(value(*paused, *open)).to_string(),
                    )
                })
                .collect()
        };
        family(
            "g2w_organizer_paused",
            "gauge",
            "1 while an organizer's registrations wait for its GoTo login (g2w auth login --profile ORGANIZER).",
            &per_organizer(&|paused, _| paused),
        );
        family(
            "g2w_organizer_breaker_open",
            "gauge",
            "1 while an organizer's GoTo is failing and its deliveries wait for a probe.",
            &per_organizer(&|_, open| open),
        );
        family(
            "g2w_webhook_events_total",
            "counter",
            "GoTo webhook events: received, duplicates, and those that could not be stored.",
            &labelled("what", &m.webhooks),
        );
        family(
            "g2w_source_posts_total",
            "counter",
            "Form builders' posts by source: received, refused by signature, needing mapping, registered, ignored, not stored.",
            &m.sources
                .iter()
                .map(|((name, o), v)| {
                    (
                        format!("{{source=\"{name}\",outcome=\"{o}\"}}"),
                        v.to_string(),
                    )
                })
                .collect::<Vec<_>>(),
        );
        family(
            "g2w_token_refreshes_total",
            "counter",
            "Token requests made to GoTo (refresh and PAT grants).",
            &[(String::new(), gauges.token_refreshes.to_string())],
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
        m.intake(IntakeOutcome::Accepted);
        m.intake(IntakeOutcome::Accepted);
        m.goto_latency(Duration::from_millis(30));
        m.attempt(QueueName::Forwards, AttemptResult::Retry);
        let text = m.render(&Gauges {
            queues: vec![
                (
                    QueueName::Registrations,
                    QueueState {
                        items: QueueGauges {
                            pending: 3,
                            ..QueueGauges::default()
                        },
                        oldest_waiting_secs: 12.5,
                        breaker_open: true,
                        paused: false,
                    },
                ),
                (QueueName::Forwards, QueueState::default()),
            ],
            token_refreshes: 0,
            organizers: vec![
                ("sales".into(), true, false),
                ("support".into(), false, true),
            ],
        });
        assert!(text.contains("g2w_organizer_paused{organizer=\"sales\"} 1\n"));
        assert!(text.contains("g2w_organizer_paused{organizer=\"support\"} 0\n"));
        assert!(text.contains("g2w_organizer_breaker_open{organizer=\"support\"} 1\n"));
        assert!(text.contains("g2w_intake_total{outcome=\"accepted\"} 2"));
        assert!(text.contains("g2w_queue_items{queue=\"registrations\",state=\"pending\"} 3"));
        assert!(text.contains("g2w_queue_items{queue=\"forwards\",state=\"pending\"} 0"));
        assert!(text.contains("g2w_queue_breaker_open{queue=\"registrations\"} 1\n"));
        assert!(text.contains("g2w_queue_oldest_waiting_seconds{queue=\"registrations\"} 12.5\n"));
        assert!(text.contains("g2w_queue_attempts_total{queue=\"forwards\",result=\"retry\"} 1"));
        assert!(text.contains("le=\"0.025\"} 0"));
        assert!(text.contains("le=\"0.05\"} 1"));
        assert!(text.contains("le=\"+Inf\"} 1"));
    }
}
