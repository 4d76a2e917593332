//! Calls other programs make through g2w (its pass-through): sent as they came, with the
//! login's token, booked from the account's budget like every call of g2w's own, and
//! answered as GoTo answered them. Only what the login owes its caller is done here: a
//! rejected token is refreshed once and the call repeated; a 429 slows the account down
//! for everyone, and a read is repeated after it while anything else is handed back.

use reqwest::Method;
use reqwest::header::HeaderMap;

use super::answers::{classify, retry_after};
use super::{GotoClient, MAX_THROTTLED};
use crate::error::{GotoError, Result};

/// GoTo's answer as it came, whatever its status.
#[derive(Debug)]
pub struct Raw {
    /// Its status.
    pub status: reqwest::StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Vec<u8>,
}

impl GotoClient {
    /// Sends `method path_and_query` (a path of GoTo's API, with its query) and `body`
    /// (with its content type) with this organizer's token, and returns GoTo's answer.
    /// The call waits at most `max_wait` for its turn in the account's budget: a caller
    /// sending faster than the account's share allows is told to slow down, rather than
    /// booking turns ahead of g2w's own deliveries without end.
    ///
    /// # Errors
    /// [`GotoError::RateLimited`] when no turn is free within `max_wait`; the login is
    /// unusable (no token, a dead grant), GoTo could not be reached, or the store failed.
    /// GoTo's own refusals are answers, not errors.
    pub async fn forward(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<(&str, &[u8])>,
        max_wait: std::time::Duration,
    ) -> Result<Raw> {
        let mut url = self.url("");
        let (path, query) = path_and_query
            .split_once('?')
            .map_or((path_and_query, None), |(p, q)| (p, Some(q)));
        url.set_path(&format!("{}{path}", url.path().trim_end_matches('/')));
        url.set_query(query);
        let mut refreshed = false;
        let mut throttled = 0;
        loop {
            let Some((access, budget)) = self.login_and_budget(&mut refreshed).await? else {
                continue;
            };
            if throttled == 0 {
                if !self.limiter.try_acquire(&budget, 1, max_wait).await {
                    return Err(GotoError::RateLimited {
                        retry_after: Some(std::time::Duration::from_secs(1)),
                    });
                }
            } else {
                // A read GoTo refused for its pace: it waits its turn like any retry.
                self.limiter.acquire(&budget).await;
            }
            let sent_at = (self.limiter.clock())();
            let answer = self.send_raw(&method, url.clone(), body, &access).await?;
            if answer.status.is_success() {
                return Ok(answer);
            }
            let error = classify(answer.status, &answer.headers, &answer.body, false);
            match error {
                GotoError::InvalidToken if !refreshed => {
                    refreshed = true;
                    self.tokens.refresh_after_rejection(&access.token).await?;
                }
                GotoError::RateLimited { .. } => {
                    self.throttled(&budget, retry_after(&answer.headers), sent_at)
                        .await;
                    // A read changes nothing at GoTo: it goes again once the account may
                    // send. Anything else may have been acted on: its caller decides.
                    if method != Method::GET || throttled >= MAX_THROTTLED {
                        return Ok(answer);
                    }
                    throttled += 1;
                }
                _ => return Ok(answer),
            }
        }
    }
}
