//! Webinar details and registration forms, cached so visitors rarely wait on GoTo.
//!
//! - **Single flight**: any number of callers missing the same webinar at once share
//!   one fetch, and a fetch asks for the details and the fields together.
//! - **Stale while revalidate**: an entry older than the TTL is still served while one
//!   background fetch renews it; **stale if error**: while GoTo fails, an entry is
//!   served for up to `stale_for` past its TTL.
//! - **Unknown keys are remembered** for `not_found_ttl`, so repeating a bad key costs
//!   GoTo nothing after the first miss.
//! - **Lookups never crowd out deliveries**: they spend their own small budget of GoTo
//!   requests (a share of the account's rate) and give up rather than queue for it.
//! - Callers bound how long they wait ([`WebinarCache::lookup`]'s deadline); the fetch
//!   goes on without them and fills the cache for the next caller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use g2w_goto::{
    Clock, GotoClient, GotoError, RateLimiter, RecurrenceKey, RegistrationFields, Timestamp,
    Webinar, WebinarDetail, WebinarKey,
};
use tokio::sync::watch;

/// A webinar with its form.
#[derive(Debug, Clone)]
pub struct WebinarInfo {
    /// The details (times, subject…).
    pub detail: WebinarDetail,
    /// The registration form.
    pub form: RegistrationFields,
    /// When GoTo said all this (its registrant count is as of then).
    pub fetched_at: Timestamp,
    /// Its hosted page, rendered (and compressed) at the first view and kept with the
    /// entry: every view until the entry is renewed serves the same bytes.
    pub(crate) page: std::sync::OnceLock<RenderedPage>,
}

impl WebinarInfo {
    /// Whether every session has ended by `now` (registration is closed).
    pub(crate) fn is_over(&self, now: Timestamp) -> bool {
        let now = now.to_utc();
        !self.detail.times.is_empty() && self.detail.times.iter().all(|t| t.end_time <= now)
    }
}

/// One date of a series that takes registrations: as the webinar list names it, and
/// its details and form.
#[derive(Debug, Clone)]
pub struct SeriesDate {
    /// The list's entry.
    pub listed: Webinar,
    /// Its details and registration form.
    pub info: Arc<WebinarInfo>,
}

/// A page rendered once and kept, as it is and gzipped.
#[derive(Debug, Clone)]
pub(crate) struct RenderedPage {
    pub html: axum::body::Bytes,
    pub gzip: Option<axum::body::Bytes>,
}

impl RenderedPage {
    pub(crate) fn of(html: String) -> Self {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let gzip = encoder
            .write_all(html.as_bytes())
            .and_then(|()| encoder.finish())
            .map(axum::body::Bytes::from)
            .ok();
        Self {
            html: html.into(),
            gzip,
        }
    }
}

/// What a lookup found.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The webinar, fresh or stale.
    Found(Arc<WebinarInfo>),
    /// GoTo says there is no such webinar (or it was cancelled).
    NotFound,
    /// Neither the cache nor GoTo could answer in time; why.
    Unavailable(String),
}

/// How the cache behaves.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// How long an entry is fresh.
    pub ttl: Duration,
    /// How long past its TTL an entry is still served (while it is being renewed, or
    /// while GoTo fails).
    pub stale_for: Duration,
    /// How long "no such webinar" is remembered.
    pub not_found_ttl: Duration,
    /// GoTo requests a second that lookups may spend (0 = no budget of their own).
    pub lookup_rate: u32,
}

/// The name of the look-ups' own budget (kept in this process only).
const LOOKUPS: &str = "lookups";

/// Lookups wait at most this long for their share of GoTo's budget, then give up.
const BUDGET_WAIT: Duration = Duration::from_secs(2);
/// The webinar list is renewed at least this often, whatever the TTL.
const UPCOMING_TTL: Duration = Duration::from_secs(60);
/// After a renewal failed, a stale entry is served without trying again for this long:
/// during an outage, page views must not turn into a stream of GoTo calls.
const RENEW_PAUSE: Duration = Duration::from_secs(30);
/// Past this many entries, expired ones are dropped (a flood of distinct keys must not
/// grow the map without bound).
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone)]
enum Cached {
    Found(Arc<WebinarInfo>),
    NotFound,
}

#[derive(Debug)]
struct Entry {
    fetched_at: Timestamp,
    /// When a stale entry may be renewed (pushed back after a failed renewal).
    renew_after: Timestamp,
    value: Cached,
}

/// What the cache holds for a key at a moment.
enum Held {
    Fresh(Lookup),
    /// Stale, and whether it is time to try renewing it.
    Stale(Arc<WebinarInfo>, bool),
    Nothing,
}

/// The list of upcoming webinars as last fetched.
#[derive(Debug, Clone)]
struct Listed {
    at: Timestamp,
    renew_after: Timestamp,
    list: Arc<Vec<Webinar>>,
}

type Flight = watch::Receiver<Option<Lookup>>;

/// How far ahead a series the cached window does not hold is looked for.
const FAR_AHEAD_DAYS: i64 = 366;

/// The cache.
pub struct WebinarCache {
    client: GotoClient,
    clock: Clock,
    settings: CacheSettings,
    budget: RateLimiter,
    entries: Mutex<HashMap<WebinarKey, Entry>>,
    flights: Mutex<HashMap<WebinarKey, Flight>>,
    upcoming: Mutex<Option<Listed>>,
    upcoming_flight: tokio::sync::Mutex<()>,
    /// Series GoTo said it has no dates of, and when it said so.
    no_series: Mutex<HashMap<RecurrenceKey, Timestamp>>,
}

impl std::fmt::Debug for WebinarCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebinarCache")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl WebinarCache {
    /// An empty cache that fetches with `client`.
    pub fn new(client: GotoClient, clock: Clock, settings: CacheSettings) -> Self {
        Self {
            client,
            clock,
            // A burst of five seconds' worth: a cold start (every webinar's form at once)
            // goes out together; a flood is held to the rate.
            budget: RateLimiter::new(
                settings.lookup_rate,
                settings.lookup_rate.saturating_mul(5).max(2),
            ),
            settings,
            entries: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
            upcoming: Mutex::new(None),
            upcoming_flight: tokio::sync::Mutex::new(()),
            no_series: Mutex::default(),
        }
    }

    fn held(&self, key: WebinarKey, now: Timestamp) -> Held {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = entries.get(&key) else {
            return Held::Nothing;
        };
        let age = now.since(entry.fetched_at);
        match &entry.value {
            Cached::Found(info) if age < self.settings.ttl => {
                Held::Fresh(Lookup::Found(info.clone()))
            }
            Cached::Found(info) if age < self.settings.ttl + self.settings.stale_for => {
                Held::Stale(info.clone(), now >= entry.renew_after)
            }
            Cached::NotFound if age < self.settings.not_found_ttl => Held::Fresh(Lookup::NotFound),
            _ => Held::Nothing,
        }
    }

    /// Whether a lookup of `key` would cost GoTo nothing new: the cache holds it, or
    /// a fetch of it is already under way.
    pub fn costs_nothing(&self, key: WebinarKey) -> bool {
        !matches!(self.held(key, (self.clock)()), Held::Nothing)
            || self
                .flights
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&key)
    }

    /// The webinar's details and form. Waits at most `deadline` for GoTo when the cache
    /// has nothing usable; a stale entry is answered at once (and renewed behind).
    pub async fn lookup(self: &Arc<Self>, key: WebinarKey, deadline: Duration) -> Lookup {
        match self.held(key, (self.clock)()) {
            Held::Fresh(found) => return found,
            Held::Stale(info, renew) => {
                if renew {
                    drop(self.flight(key));
                }
                return Lookup::Found(info);
            }
            Held::Nothing => {}
        }
        let mut flight = self.flight(key);
        match tokio::time::timeout(deadline, flight.wait_for(Option::is_some)).await {
            Ok(Ok(answer)) => answer
                .clone()
                .unwrap_or_else(|| Lookup::Unavailable("no answer".into())),
            Ok(Err(_)) => Lookup::Unavailable("the lookup stopped".into()),
            Err(_) => Lookup::Unavailable(format!(
                "GoTo did not answer within {} ms",
                deadline.as_millis()
            )),
        }
    }

    /// Joins the fetch of `key` under way, or starts one.
    fn flight(self: &Arc<Self>, key: WebinarKey) -> Flight {
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(flight) = flights.get(&key) {
            return flight.clone();
        }
        let (tx, rx) = watch::channel(None);
        flights.insert(key, rx.clone());
        let cache = self.clone();
        tokio::spawn(async move {
            let fetched = cache.fetch(key).await;
            let answer = cache.settle(key, fetched);
            cache
                .flights
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
            let _ = tx.send(Some(answer));
        });
        rx
    }

    async fn fetch(&self, key: WebinarKey) -> Result<WebinarInfo, GotoError> {
        if !self.budget.try_acquire(LOOKUPS, 2, BUDGET_WAIT).await {
            return Err(GotoError::RateLimited { retry_after: None });
        }
        let (detail, form) = tokio::join!(
            self.client.webinar(key),
            self.client.registration_fields(key)
        );
        Ok(WebinarInfo {
            detail: detail?,
            form: form?,
            fetched_at: (self.clock)(),
            page: std::sync::OnceLock::new(),
        })
    }

    /// Records what a fetch found and says what callers get: on failure, a stale
    /// entry if one is still within `stale_for`.
    fn settle(&self, key: WebinarKey, fetched: Result<WebinarInfo, GotoError>) -> Lookup {
        let now = (self.clock)();
        let value = match fetched {
            Ok(info) => Cached::Found(Arc::new(info)),
            Err(GotoError::NotFound { .. }) => Cached::NotFound,
            Err(e) => {
                return match self.held(key, now) {
                    Held::Fresh(found) => found,
                    Held::Stale(info, _) => {
                        tracing::warn!(%key, "serving a stale registration form: {e}");
                        if let Some(entry) = self
                            .entries
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_mut(&key)
                        {
                            entry.renew_after = now + RENEW_PAUSE;
                        }
                        Lookup::Found(info)
                    }
                    Held::Nothing => Lookup::Unavailable(e.to_string()),
                };
            }
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            let keep_for = self.settings.ttl + self.settings.stale_for;
            entries.retain(|_, e| {
                matches!(e.value, Cached::Found(_)) && now.since(e.fetched_at) < keep_for
            });
        }
        entries.insert(
            key,
            Entry {
                fetched_at: now,
                renew_after: now + self.settings.ttl,
                value: value.clone(),
            },
        );
        match value {
            Cached::Found(info) => Lookup::Found(info),
            Cached::NotFound => Lookup::NotFound,
        }
    }

    /// Webinars with a session in the next 90 days. Fresh for a minute; after that the
    /// last list is answered at once while one renewal runs behind (paused for a while
    /// after a failure), for up to `stale_for`. Only with nothing usable cached does a
    /// caller wait, at most `deadline`, for GoTo.
    ///
    /// # Errors
    /// Why there is no list: GoTo failed (or was too slow) and nothing usable is cached.
    pub async fn upcoming(
        self: &Arc<Self>,
        deadline: Duration,
    ) -> Result<Arc<Vec<Webinar>>, String> {
        let now = (self.clock)();
        let fresh_for = self.upcoming_fresh_for();
        let usable_for = fresh_for + self.settings.stale_for;
        let stale = {
            let mut current = self.upcoming.lock().unwrap_or_else(|e| e.into_inner());
            match current.as_mut() {
                Some(l) if now.since(l.at) < fresh_for => return Ok(l.list.clone()),
                Some(l) if now.since(l.at) < usable_for => {
                    // Claim the renewal: other callers see it paused and do not start one.
                    let renew = now >= l.renew_after;
                    if renew {
                        l.renew_after = now + RENEW_PAUSE;
                    }
                    Some((l.list.clone(), renew))
                }
                _ => None,
            }
        };
        match stale {
            Some((list, renew)) => {
                if renew {
                    let cache = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = cache.renew_upcoming().await {
                            tracing::warn!("serving a stale webinar list: {e}");
                        }
                    });
                }
                Ok(list)
            }
            None => tokio::time::timeout(deadline, self.renew_upcoming())
                .await
                .unwrap_or_else(|_| Err(format!("GoTo did not answer within {deadline:?}"))),
        }
    }

    /// The dates of series `recurrence` that still take registrations, soonest first:
    /// not started, not over, not full (as of the cached registrant count). The list
    /// and each date's form come from the cache as [`Self::upcoming`] and
    /// [`Self::lookup`] keep them; a date GoTo cannot describe in time is left out.
    ///
    /// # Errors
    /// Why there is no list: GoTo failed (or was too slow) and nothing usable is cached.
    pub async fn series(
        self: &Arc<Self>,
        recurrence: RecurrenceKey,
        deadline: Duration,
    ) -> Result<Vec<SeriesDate>, String> {
        let list = self.upcoming(deadline).await?;
        Ok(self.dates_of(&list, recurrence, deadline).await)
    }

    /// The dates of series `recurrence` as GoTo lists them now, however far ahead (a year):
    /// for a series the cached window does not hold (beyond it, or made since it was
    /// read). `None` when GoTo has no date of it; a miss is remembered as briefly as an
    /// unknown webinar, and each asking costs the look-up budget, so made-up keys cost
    /// GoTo little.
    ///
    /// # Errors
    /// GoTo failed, was too slow, or the look-up budget is spent.
    pub async fn series_far(
        self: &Arc<Self>,
        recurrence: RecurrenceKey,
        deadline: Duration,
    ) -> Result<Option<Vec<SeriesDate>>, String> {
        let now = (self.clock)();
        {
            let mut missing = self.no_series.lock().unwrap_or_else(|e| e.into_inner());
            missing.retain(|_, at| now.since(*at) < self.settings.not_found_ttl);
            if missing.contains_key(&recurrence) {
                return Ok(None);
            }
        }
        if !self.budget.try_acquire(LOOKUPS, 1, BUDGET_WAIT).await {
            return Err("too many look-ups of unknown series; try again shortly".into());
        }
        let from = now.to_utc();
        let asked = self
            .client
            .webinars(from, from + chrono::Duration::days(FAR_AHEAD_DAYS));
        let list = match tokio::time::timeout(deadline, asked).await {
            Ok(Ok(list)) => list,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(format!("GoTo did not answer within {deadline:?}")),
        };
        if !list.iter().any(|w| w.recurrence_key == Some(recurrence)) {
            self.no_series
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(recurrence, now);
            return Ok(None);
        }
        Ok(Some(self.dates_of(&list, recurrence, deadline).await))
    }

    /// The dates in `list` of series `recurrence` that take registrations, soonest first.
    async fn dates_of(
        self: &Arc<Self>,
        list: &[Webinar],
        recurrence: RecurrenceKey,
        deadline: Duration,
    ) -> Vec<SeriesDate> {
        let now = (self.clock)().to_utc();
        let mut lookups = tokio::task::JoinSet::new();
        for w in list.iter().filter(|w| w.recurrence_key == Some(recurrence)) {
            let (cache, listed) = (self.clone(), w.clone());
            lookups.spawn(async move {
                let lookup = cache.lookup(listed.webinar_key, deadline).await;
                (listed, lookup)
            });
        }
        let mut dates = Vec::new();
        while let Some(Ok((listed, lookup))) = lookups.join_next().await {
            if let Lookup::Found(info) = lookup {
                let d = &info.detail;
                let ahead = d.times.first().is_some_and(|t| t.start_time > now);
                let full = d
                    .registration_limit
                    .zip(d.number_of_registrants)
                    .is_some_and(|(limit, count)| count >= limit);
                if ahead && !full {
                    dates.push(SeriesDate { listed, info });
                }
            }
        }
        dates.sort_by_key(|d| {
            (
                d.info.detail.times.first().map(|t| t.start_time),
                d.info.detail.webinar_key,
            )
        });
        dates
    }

    /// The webinar list as last fetched, however old, without asking GoTo.
    pub fn held_upcoming(&self) -> Option<Arc<Vec<Webinar>>> {
        self.upcoming
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|l| l.list.clone())
    }

    fn upcoming_fresh_for(&self) -> Duration {
        self.settings.ttl.min(UPCOMING_TTL)
    }

    /// Fetches the list once (one renewal at a time); a failure leaves the last list in
    /// place with its renewal paused.
    async fn renew_upcoming(&self) -> Result<Arc<Vec<Webinar>>, String> {
        let _turn = self.upcoming_flight.lock().await;
        let fresh = self
            .upcoming
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|l| (self.clock)().since(l.at) < self.upcoming_fresh_for())
            .map(|l| l.list.clone());
        if let Some(list) = fresh {
            return Ok(list);
        }
        let fetched = async {
            if !self.budget.try_acquire(LOOKUPS, 1, BUDGET_WAIT).await {
                return Err("the lookup budget is used up".to_owned());
            }
            let from = (self.clock)().to_utc();
            self.client
                .webinars(from, from + chrono::Duration::days(90))
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        let now = (self.clock)();
        let mut current = self.upcoming.lock().unwrap_or_else(|e| e.into_inner());
        match fetched {
            Ok(list) => {
                let list = Arc::new(list);
                *current = Some(Listed {
                    at: now,
                    renew_after: now + self.upcoming_fresh_for(),
                    list: list.clone(),
                });
                Ok(list)
            }
            Err(e) => {
                if let Some(l) = current.as_mut() {
                    l.renew_after = now + RENEW_PAUSE;
                }
                Err(e)
            }
        }
    }
}
