//! [`EventStore`] on SQLite.

use std::collections::BTreeSet;
use std::time::Duration;

use g2w_goto::{RegistrantKey, SessionKey, Timestamp, WebinarKey};
use rusqlite::{OptionalExtension as _, Row, params};

use crate::events::{
    ATTENDANCE_QUERY, Attendance, COMPACT_STATEMENTS, EVENT_COLUMNS, EventRow, EventStore,
    ForwardOutcome, ForwardState, NewEvent, SETTLE_STATEMENT, StoredEvent, attendance_row, key,
    outcome_columns, placeholders,
};
use crate::{SqliteStore, StoreError};

fn row(r: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        event_key: r.get(0)?,
        event_name: r.get(1)?,
        source: r.get(2)?,
        webinar_key: r.get(3)?,
        registrant_key: r.get(4)?,
        session_key: r.get(5)?,
        email: r.get(6)?,
        headers: r.get(7)?,
        body: r.get(8)?,
        received_at: r.get(9)?,
        forward_state: r.get(10)?,
        forward_attempts: r.get(11)?,
        forward_error: r.get(12)?,
    })
}

impl EventStore for SqliteStore {
    fn record_event(&self, e: &NewEvent) -> Result<bool, StoreError> {
        let forward = if e.forward {
            ForwardState::Pending
        } else {
            ForwardState::None
        };
        let n = self.conn().execute(
            "INSERT INTO webhook_events (event_key, natural_key, event_name, source, webinar_key,
                 registrant_key, session_key, email, headers, body, received_at, forward_state,
                 forward_next_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?11)
             ON CONFLICT DO NOTHING",
            params![
                e.event_key,
                e.natural_key(),
                e.event_name,
                e.source.as_str(),
                e.webinar_key.map(|k| k.to_string()),
                e.registrant_key.map(|k| k.to_string()),
                e.session_key.map(|k| k.to_string()),
                e.email,
                e.headers,
                e.body,
                e.received_at.as_millis(),
                forward.as_str(),
            ],
        )?;
        Ok(n == 1)
    }

    fn recent_events(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM webhook_events ORDER BY received_at DESC, event_key LIMIT ?1"
        ))?;
        let rows = stmt
            .query_map(params![limit], row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(EventRow::parse).collect()
    }

    fn attendance(&self) -> Result<Vec<Attendance>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(ATTENDANCE_QUERY)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(attendance_row).collect()
    }

    fn known_registrants(
        &self,
        event_name: &str,
        webinar: WebinarKey,
        session: Option<SessionKey>,
    ) -> Result<BTreeSet<RegistrantKey>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT registrant_key FROM webhook_events
             WHERE event_name = ?1 AND webinar_key = ?2 AND registrant_key IS NOT NULL
                 AND (?3 IS NULL OR session_key = ?3)",
        )?;
        let keys = stmt
            .query_map(
                params![
                    event_name,
                    webinar.to_string(),
                    session.map(|s| s.to_string())
                ],
                |r| r.get::<_, String>(0),
            )?
            .collect::<Result<Vec<_>, _>>()?;
        keys.into_iter().map(|k| key(&k)).collect()
    }

    fn claim_forward(
        &self,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<StoredEvent>, StoreError> {
        let found = self.bookkeeping(|conn| {
            conn.query_row(
                &format!(
                    "UPDATE webhook_events SET forward_state = 'delivering',
                         forward_lease_until = ?1, forward_attempts = forward_attempts + 1
                     WHERE event_key = COALESCE(
                         (SELECT event_key FROM webhook_events WHERE forward_state = 'delivering'
                              AND forward_lease_until <= ?2 ORDER BY forward_lease_until LIMIT 1),
                         (SELECT event_key FROM webhook_events WHERE forward_state = 'pending'
                              AND forward_next_at <= ?2 ORDER BY forward_next_at LIMIT 1))
                     RETURNING {EVENT_COLUMNS}"
                ),
                params![(now + lease).as_millis(), now.as_millis()],
                row,
            )
            .optional()
        })?;
        found.map(EventRow::parse).transpose()
    }

    fn compact_events_before(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut n = 0;
        for sql in COMPACT_STATEMENTS {
            n += tx.execute(&placeholders(sql, "?"), params![before.as_millis()])?;
        }
        tx.commit()?;
        Ok(n as u64)
    }

    fn settle_forward(
        &self,
        event_key: &str,
        attempt: u32,
        outcome: &ForwardOutcome,
    ) -> Result<bool, StoreError> {
        let (state, next_at, error) = outcome_columns(outcome);
        let n = self.bookkeeping(|conn| {
            conn.execute(
                &placeholders(SETTLE_STATEMENT, "?"),
                params![state.as_str(), next_at, error, event_key, attempt],
            )
        })?;
        Ok(n == 1)
    }
}
