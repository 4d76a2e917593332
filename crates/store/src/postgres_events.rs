//! [`EventStore`] on PostgreSQL: the same statements as SQLite's, with forwarding
//! claims that skip rows another gateway is claiming.

use std::collections::BTreeSet;
use std::time::Duration;

use g2w_goto::{RegistrantKey, SessionKey, Timestamp, WebinarKey};
use tokio_postgres::Row;

use crate::events::{
    ATTENDANCE_QUERY, Attendance, COMPACT_STATEMENTS, EVENT_COLUMNS, EventRow, EventStore,
    ForwardOutcome, ForwardState, NewEvent, SETTLE_STATEMENT, StoredEvent, attendance_row, key,
    outcome_columns, placeholders,
};
use crate::{PgStore, StoreError};

fn row(r: &Row) -> Result<EventRow, tokio_postgres::Error> {
    Ok(EventRow {
        event_key: r.try_get(0)?,
        event_name: r.try_get(1)?,
        source: r.try_get(2)?,
        webinar_key: r.try_get(3)?,
        registrant_key: r.try_get(4)?,
        session_key: r.try_get(5)?,
        email: r.try_get(6)?,
        headers: r.try_get(7)?,
        body: r.try_get(8)?,
        received_at: r.try_get(9)?,
        forward_state: r.try_get(10)?,
        forward_attempts: r.try_get(11)?,
        forward_error: r.try_get(12)?,
    })
}

impl EventStore for PgStore {
    fn record_event(&self, e: &NewEvent) -> Result<bool, StoreError> {
        let forward = if e.forward {
            ForwardState::Pending
        } else {
            ForwardState::None
        };
        let e = e.clone();
        let n = self.run(move |c| {
            Box::pin(async move {
                c.execute(
                    "INSERT INTO webhook_events (event_key, natural_key, event_name, source,
                         webinar_key, registrant_key, session_key, email, headers, body,
                         received_at, forward_state, forward_next_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $11)
                     ON CONFLICT DO NOTHING",
                    &[
                        &e.event_key,
                        &e.natural_key(),
                        &e.event_name,
                        &e.source.as_str(),
                        &e.webinar_key.map(|k| k.to_string()),
                        &e.registrant_key.map(|k| k.to_string()),
                        &e.session_key.map(|k| k.to_string()),
                        &e.email,
                        &e.headers,
                        &e.body,
                        &e.received_at.as_millis(),
                        &forward.as_str(),
                    ],
                )
                .await
            })
        })?;
        Ok(n == 1)
    }

    fn recent_events(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = self.run(move |c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        &format!(
                            "SELECT {EVENT_COLUMNS} FROM webhook_events
                             ORDER BY received_at DESC, event_key LIMIT $1"
                        ),
                        &[&i64::from(limit)],
                    )
                    .await?;
                rows.iter().map(row).collect::<Result<Vec<_>, _>>()
            })
        })?;
        rows.into_iter().map(EventRow::parse).collect()
    }

    fn attendance(&self) -> Result<Vec<Attendance>, StoreError> {
        let rows = self.run(move |c| {
            Box::pin(async move {
                let rows = c.query(ATTENDANCE_QUERY, &[]).await?;
                rows.iter()
                    .map(|r| {
                        Ok((
                            r.try_get::<_, String>(0)?,
                            r.try_get::<_, Option<String>>(1)?,
                            r.try_get::<_, String>(2)?,
                            r.try_get::<_, i64>(3)?,
                            r.try_get::<_, i64>(4)?,
                        ))
                    })
                    .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            })
        })?;
        rows.into_iter().map(attendance_row).collect()
    }

    fn known_registrants(
        &self,
        event_name: &str,
        webinar: WebinarKey,
        session: Option<SessionKey>,
    ) -> Result<BTreeSet<RegistrantKey>, StoreError> {
        let (event_name, webinar, session) = (
            event_name.to_owned(),
            webinar.to_string(),
            session.map(|s| s.to_string()),
        );
        let keys = self.run(move |c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        "SELECT DISTINCT registrant_key FROM webhook_events
                         WHERE event_name = $1 AND webinar_key = $2 AND registrant_key IS NOT NULL
                             AND ($3::text IS NULL OR session_key = $3)",
                        &[&event_name, &webinar, &session],
                    )
                    .await?;
                rows.iter()
                    .map(|r| r.try_get::<_, String>(0))
                    .collect::<Result<Vec<_>, _>>()
            })
        })?;
        keys.into_iter().map(|k| key(&k)).collect()
    }

    fn claim_forward(
        &self,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<StoredEvent>, StoreError> {
        let (until, now) = ((now + lease).as_millis(), now.as_millis());
        let found = self.run(move |c| {
            Box::pin(async move {
                let r = c
                    .query_opt(
                        &format!(
                            "UPDATE webhook_events SET forward_state = 'delivering',
                                 forward_lease_until = $1, forward_attempts = forward_attempts + 1
                             WHERE event_key = COALESCE(
                                 (SELECT event_key FROM webhook_events
                                  WHERE forward_state = 'delivering' AND forward_lease_until <= $2
                                  ORDER BY forward_lease_until LIMIT 1 FOR UPDATE SKIP LOCKED),
                                 (SELECT event_key FROM webhook_events
                                  WHERE forward_state = 'pending' AND forward_next_at <= $2
                                  ORDER BY forward_next_at LIMIT 1 FOR UPDATE SKIP LOCKED))
                             RETURNING {EVENT_COLUMNS}"
                        ),
                        &[&until, &now],
                    )
                    .await?;
                r.as_ref().map(row).transpose()
            })
        })?;
        found.map(EventRow::parse).transpose()
    }

    fn compact_events_before(&self, before: Timestamp) -> Result<u64, StoreError> {
        let before = before.as_millis();
        self.run(move |c| {
            Box::pin(async move {
                let tx = c.transaction().await?;
                let mut n = 0;
                for sql in COMPACT_STATEMENTS {
                    n += tx.execute(&placeholders(sql, "$"), &[&before]).await?;
                }
                tx.commit().await?;
                Ok(n)
            })
        })
    }

    fn settle_forward(
        &self,
        event_key: &str,
        attempt: u32,
        outcome: &ForwardOutcome,
    ) -> Result<bool, StoreError> {
        let (state, next_at, error) = outcome_columns(outcome);
        let (event_key, attempt) = (event_key.to_owned(), i64::from(attempt));
        let n = self.run(move |c| {
            Box::pin(async move {
                c.execute(
                    &placeholders(SETTLE_STATEMENT, "$"),
                    &[&state.as_str(), &next_at, &error, &event_key, &attempt],
                )
                .await
            })
        })?;
        Ok(n == 1)
    }
}
