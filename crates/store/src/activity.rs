//! What the console draws of one webinar: its sign-ups per day, what g2w delivered since
//! a moment, and who of its registrants joined. Each reads one webinar's rows by index.

use g2w_goto::Timestamp;

use crate::db::args;
use crate::{Store, StoreError};

/// A webinar's registrants and attendees as GoTo's events told them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Turnout {
    /// Distinct registrants added (`registrant.added`).
    pub registered: u64,
    /// Distinct registrants who joined a session (`registrant.joined`).
    pub attended: u64,
}

const DAY_MS: i64 = 86_400_000;

impl Store {
    /// Registrations taken for `webinar_key` per day (UTC), oldest first: the day (its
    /// midnight) and how many.
    ///
    /// # Errors
    /// Database failures.
    pub async fn signups_by_day(
        &self,
        webinar_key: u64,
    ) -> Result<Vec<(Timestamp, u64)>, StoreError> {
        let rows = self
            .db
            .query(
                "SELECT created_at / $2, count(*) FROM registrations
                 WHERE webinar_key = $1 GROUP BY 1 ORDER BY 1",
                args![webinar_key.to_string(), DAY_MS],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    Timestamp::from_millis(r.int(0)? * DAY_MS),
                    u64::try_from(r.int(1)?).unwrap_or(0),
                ))
            })
            .collect()
    }

    /// Registrations for `webinar_key` g2w delivered to GoTo after `since` (GoTo made
    /// them registrants then).
    ///
    /// # Errors
    /// Database failures.
    pub async fn delivered_since(
        &self,
        webinar_key: u64,
        since: Timestamp,
    ) -> Result<u64, StoreError> {
        let row = self
            .db
            .query_one(
                // From the jobs finished since (their index), not the webinar's rows:
                // the cost follows what was delivered since, not the webinar's history.
                "SELECT count(*) FROM jobs j CROSS JOIN registrations r
                 WHERE j.kind = 'registrations' AND j.finished_at > $2 AND r.id = j.id
                   AND r.webinar_key = $1 AND r.outcome = 'delivered'",
                args![webinar_key.to_string(), since.as_millis()],
            )
            .await?;
        Ok(u64::try_from(row.int(0)?).unwrap_or(0))
    }

    /// Who of `webinar_key`'s registrants joined, from GoTo's events.
    ///
    /// # Errors
    /// Database failures.
    pub async fn turnout(&self, webinar_key: u64) -> Result<Turnout, StoreError> {
        let row = self
            .db
            .query_one(
                "SELECT count(DISTINCT CASE WHEN event_name = 'registrant.added' THEN registrant_key END),
                        count(DISTINCT CASE WHEN event_name = 'registrant.joined' THEN registrant_key END)
                 FROM webhook_events WHERE webinar_key = $1",
                args![webinar_key.to_string()],
            )
            .await?;
        Ok(Turnout {
            registered: u64::try_from(row.int(0)?).unwrap_or(0),
            attended: u64::try_from(row.int(1)?).unwrap_or(0),
        })
    }
}
