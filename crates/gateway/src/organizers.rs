//! The organizers one gateway serves. Each is a stored GoTo login (a profile) with its
//! own client, its own cache of webinars and its own delivery engine: one organizer's
//! dead login or failing calls hold only that organizer's registrations.
//!
//! Landing pages name only a webinar key; [`Organizers::find`] says whose it is, from
//! what the caches already hold when it can, else by asking each organizer's GoTo.

use std::sync::Arc;
use std::time::Duration;

use g2w_goto::{GotoClient, RecurrenceKey, Webinar, WebinarKey};

use crate::cache::{Lookup, SeriesDate, WebinarCache};
use crate::delivery::registrations::Worker;

/// One organizer: the profile its login is stored under, and what works for it.
pub(crate) struct Organizer {
    pub profile: String,
    pub client: GotoClient,
    pub webinars: Arc<WebinarCache>,
    pub worker: Arc<Worker>,
}

/// Every organizer served, the first being the one the admin console connects.
#[derive(Clone)]
pub(crate) struct Organizers(Arc<Vec<Arc<Organizer>>>);

/// Whose a webinar is, and what the cache knows of it.
pub(crate) struct Found {
    /// The owner; when nobody could say (GoTo unavailable), the organizer to try.
    pub organizer: Arc<Organizer>,
    pub lookup: Lookup,
}

impl Organizers {
    /// The organizers, in the order given; at least one.
    pub(crate) fn new(all: Vec<Arc<Organizer>>) -> Self {
        assert!(!all.is_empty(), "a gateway serves at least one organizer");
        Self(Arc::new(all))
    }

    pub(crate) fn all(&self) -> &[Arc<Organizer>] {
        &self.0
    }

    /// The first organizer: the one the admin console connects and shows first.
    pub(crate) fn primary(&self) -> &Arc<Organizer> {
        &self.0[0]
    }

    /// Whether the gateway serves more than one organizer (pages then name them).
    pub(crate) fn several(&self) -> bool {
        self.0.len() > 1
    }

    /// The organizer whose login is stored as `profile`.
    pub(crate) fn named(&self, profile: &str) -> Option<&Arc<Organizer>> {
        self.0.iter().find(|o| o.profile == profile)
    }

    /// The organizer `text` names: a profile served here, or the organizer key of one's
    /// stored login.
    pub(crate) async fn resolve(&self, text: &str) -> Option<Arc<Organizer>> {
        if let Some(found) = self.named(text) {
            return Some(found.clone());
        }
        let key = text.parse::<g2w_goto::OrganizerKey>().ok()?;
        for o in self.all() {
            // The login as last read (at most a second ago), not a store read per call.
            if o.client
                .tokens()
                .access()
                .await
                .is_ok_and(|a| a.organizer == Some(key))
            {
                return Some(o.clone());
            }
        }
        None
    }

    /// The organizer a form or a registration names (by profile), else the first.
    pub(crate) fn named_or_first(&self, profile: &str) -> &Arc<Organizer> {
        self.named(profile).unwrap_or_else(|| self.primary())
    }

    /// Wakes every delivery engine (new work may be anyone's).
    pub(crate) fn wake_all(&self) {
        for o in self.all() {
            o.worker.wake();
        }
    }

    /// Whose webinar `key` is. With one organizer, that one's lookup. With several:
    /// an organizer whose cache or webinar list holds it is asked first; else every
    /// organizer is asked at once, within `deadline`, and the one GoTo finds it for
    /// owns it. When none finds it and some could not say, the first of those is the
    /// one to try (its lookup says why it could not).
    pub(crate) async fn find(&self, key: WebinarKey, deadline: Duration) -> Found {
        if !self.several() {
            let organizer = self.primary().clone();
            let lookup = organizer.webinars.lookup(key, deadline).await;
            return Found { organizer, lookup };
        }
        let known = self.all().iter().find(|o| {
            o.webinars
                .held_upcoming()
                .is_some_and(|list| list.iter().any(|w| w.webinar_key == key))
        });
        if let Some(organizer) = known {
            let lookup = organizer.webinars.lookup(key, deadline).await;
            if !matches!(lookup, Lookup::NotFound) {
                return Found {
                    organizer: organizer.clone(),
                    lookup,
                };
            }
        }
        let mut asked = tokio::task::JoinSet::new();
        for (i, o) in self.all().iter().enumerate() {
            let o = o.clone();
            asked.spawn(async move { (i, o.webinars.lookup(key, deadline).await) });
        }
        let mut answers: Vec<(usize, Lookup)> = Vec::new();
        while let Some(Ok((i, lookup))) = asked.join_next().await {
            if matches!(lookup, Lookup::Found(_)) {
                asked.abort_all();
                return Found {
                    organizer: self.0[i].clone(),
                    lookup,
                };
            }
            answers.push((i, lookup));
        }
        answers.sort_by_key(|(i, _)| *i);
        let unsure = answers
            .iter()
            .position(|(_, l)| matches!(l, Lookup::Unavailable(_)));
        let (i, lookup) = match unsure {
            Some(at) => answers.swap_remove(at),
            None => (0, Lookup::NotFound),
        };
        Found {
            organizer: self.0[i].clone(),
            lookup,
        }
    }

    /// `work` done for every organizer at once; the answers in the organizers' order
    /// (one that panicked is left out).
    pub(crate) async fn each<T, F>(
        &self,
        work: impl Fn(Arc<Organizer>) -> F,
    ) -> Vec<(Arc<Organizer>, T)>
    where
        T: Send + 'static,
        F: std::future::Future<Output = T> + Send + 'static,
    {
        let mut running = tokio::task::JoinSet::new();
        for (i, o) in self.all().iter().enumerate() {
            let done = work(o.clone());
            running.spawn(async move { (i, done.await) });
        }
        let mut answers = Vec::with_capacity(self.0.len());
        while let Some(Ok(answer)) = running.join_next().await {
            answers.push(answer);
        }
        answers.sort_by_key(|(i, _)| *i);
        answers
            .into_iter()
            .map(|(i, answer)| (self.0[i].clone(), answer))
            .collect()
    }

    /// Every organizer's upcoming webinars, each with its organizer. An organizer GoTo
    /// cannot list in time is left out and named in the error list.
    pub(crate) async fn upcoming(
        &self,
        deadline: Duration,
    ) -> (Vec<(Arc<Organizer>, Webinar)>, Vec<String>) {
        let answers = self
            .each(|o| async move { o.webinars.upcoming(deadline).await })
            .await;
        let mut found = Vec::new();
        let mut errors = Vec::new();
        for (organizer, answer) in answers {
            match answer {
                Ok(list) => found.extend(list.iter().map(|w| (organizer.clone(), w.clone()))),
                Err(e) if self.several() => errors.push(format!("{}: {e}", organizer.profile)),
                Err(e) => errors.push(e),
            }
        }
        (found, errors)
    }

    /// The open dates of series `recurrence`, from the organizer whose webinar list
    /// names it (every organizer's list is read at once), else from whichever
    /// organizer's GoTo has it further ahead.
    ///
    /// # Errors
    /// Why the dates cannot be known: an organizer GoTo could not list (in time) may
    /// own the series.
    ///
    /// `may_ask` says whether the caller may cost GoTo a look-up (a visitor's budget of
    /// look-ups by address, as for an unknown webinar); it is asked only when the cached
    /// list does not hold the series.
    pub(crate) async fn series(
        &self,
        recurrence: RecurrenceKey,
        deadline: Duration,
        may_ask: impl FnOnce() -> bool,
    ) -> Result<Vec<SeriesDate>, String> {
        let (listed, mut errors) = self.upcoming(deadline).await;
        if let Some((owner, _)) = listed
            .iter()
            .find(|(_, w)| w.recurrence_key == Some(recurrence))
        {
            return owner.webinars.series(recurrence, deadline).await;
        }
        // Not in the cached window: further ahead, or made since the list was read. Each
        // organizer's GoTo is asked for the series itself.
        if !may_ask() {
            return Err("too many look-ups of unknown series from this address".into());
        }
        let answers = self
            .each(|o| async move { o.webinars.series_far(recurrence, deadline).await })
            .await;
        for (organizer, answer) in answers {
            match answer {
                Ok(Some(dates)) => return Ok(dates),
                Ok(None) => {}
                Err(e) => errors.push(format!("{}: {e}", organizer.profile)),
            }
        }
        if errors.is_empty() {
            Ok(Vec::new())
        } else {
            Err(errors.join("; "))
        }
    }
}
