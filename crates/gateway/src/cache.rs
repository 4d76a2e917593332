//! Webinar details and registration forms, cached so intake does not ask GoTo on every
//! submission. Entries expire after the configured TTL; a failed fetch is not cached.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use g2w_goto::{GotoClient, GotoError, RegistrationFields, Webinar, WebinarDetail, WebinarKey};

/// A webinar with its form.
#[derive(Debug, Clone)]
pub struct WebinarInfo {
    /// The details (times, subject…).
    pub detail: WebinarDetail,
    /// The registration form.
    pub form: RegistrationFields,
}

/// The cache.
#[derive(Debug)]
pub struct WebinarCache {
    ttl: Duration,
    entries: Mutex<HashMap<WebinarKey, (Instant, WebinarInfo)>>,
    upcoming: Mutex<Option<(Instant, Vec<Webinar>)>>,
}

impl WebinarCache {
    /// An empty cache.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
            upcoming: Mutex::new(None),
        }
    }

    /// The webinar's details and form, from the cache or GoTo.
    ///
    /// # Errors
    /// GoTo's error (`NotFound` for unknown or cancelled webinars).
    pub async fn webinar(
        &self,
        client: &GotoClient,
        key: WebinarKey,
    ) -> Result<WebinarInfo, GotoError> {
        if let Some((at, info)) = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            && at.elapsed() < self.ttl
        {
            return Ok(info.clone());
        }
        let detail = client.webinar(key).await?;
        let form = client.registration_fields(key).await?;
        let info = WebinarInfo { detail, form };
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (Instant::now(), info.clone()));
        Ok(info)
    }

    /// Webinars with a session in the next 90 days.
    ///
    /// # Errors
    /// GoTo's error.
    pub async fn upcoming(&self, client: &GotoClient) -> Result<Vec<Webinar>, GotoError> {
        if let Some((at, list)) = &*self.upcoming.lock().unwrap_or_else(|e| e.into_inner())
            && at.elapsed() < self.ttl.min(Duration::from_secs(60))
        {
            return Ok(list.clone());
        }
        let now = chrono::Utc::now();
        let list = client
            .webinars(now, now + chrono::Duration::days(90))
            .await?;
        *self.upcoming.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), list.clone()));
        Ok(list)
    }
}
