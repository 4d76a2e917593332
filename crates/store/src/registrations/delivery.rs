//! Registrations as the delivery engine works them: the rows its claimed jobs name, and
//! GoTo's answers recorded with the end of each job.

use super::*;
use crate::db::{Arg, Dialect, Statement, args};
use crate::jobs::{Ending, finish_many};
use crate::{Store, StoreError};

/// The rows of claimed jobs.
const ROWS: &str = concat!(
    "SELECT ",
    registration_columns!(),
    " FROM registrations r WHERE r.id = ANY($1)"
);

/// GoTo's answer, written only where this attempt's end of the job was recorded (SQLite:
/// after each job's own end, in the same transaction).
const ANSWER_ONE: &str = "UPDATE registrations SET outcome = $2, registrant_key = $3,
         join_url = $4, flight = id
     WHERE id = $1 AND EXISTS (SELECT 1 FROM jobs WHERE kind = 'registrations' AND id = $1
         AND fence = $5 AND state IN ('done', 'failed', 'dead'))";

/// The jobs' ends and GoTo's answers in one statement (PostgreSQL): `$7..$9` are arrays
/// of outcomes, registrant keys and join URLs beside the ids in `$3`.
const ANSWER_MANY: &str = concat!(
    "WITH done AS (",
    finish_many!(),
    "), answered AS (
         UPDATE registrations SET outcome = o.o_outcome, registrant_key = o.o_key,
             join_url = o.o_url, flight = registrations.id
         FROM unnest($3::text[], $4::bigint[], $7::text[], $8::text[], $9::text[])
             AS o(o_id, o_fence, o_outcome, o_key, o_url), done
         WHERE registrations.id = o.o_id AND done.id = o.o_id AND done.fence = o.o_fence)
     SELECT ",
    crate::jobs::job_columns!(),
    " FROM done"
);

impl Store {
    /// The registrations `jobs` work on, each as its job leaves it, in the jobs' order (a
    /// job whose row is gone is left out).
    ///
    /// # Errors
    /// Database failures.
    pub async fn registrations_of(&self, jobs: Vec<Job>) -> Result<Vec<Registration>, StoreError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let ids = Arg::Texts(jobs.iter().map(|j| Some(j.id.clone())).collect());
        let mut rows: std::collections::HashMap<String, Row12> = self
            .db
            .query(ROWS, vec![ids])
            .await?
            .iter()
            .map(|r| read_own(r).map(|own| (own.registration.id.clone(), own)))
            .collect::<Result<_, _>>()?;
        Ok(jobs
            .iter()
            .filter_map(|job| {
                let own = rows.remove(&job.id)?;
                Some(own.registration.with_job(job, own.outcome))
            })
            .collect())
    }

    /// Ends the attempts that hold `done`'s registrations, recording GoTo's answers; each
    /// registration as it now stands, or `None` (nothing changed) where its attempt no
    /// longer held it, in the order given. One statement (PostgreSQL) or one transaction
    /// (SQLite).
    ///
    /// # Errors
    /// Database failures (then none is recorded).
    pub async fn complete(
        &self,
        now: Timestamp,
        done: Vec<(Registration, Completion)>,
    ) -> Result<Vec<Option<Registration>>, StoreError> {
        let columns: Vec<_> = done.iter().map(|(_, c)| completion_columns(c)).collect();
        let ends: Vec<Ending> = done
            .iter()
            .zip(&columns)
            .map(|((r, _), (end, ..))| (r.id.clone(), r.fence, end.clone()))
            .collect();
        let mut steps = self.finish_steps(KIND, now, &ends);
        match self.db.dialect() {
            Dialect::Postgres => {
                let texts =
                    |f: fn(&Answer) -> Option<String>| Arg::Texts(columns.iter().map(f).collect());
                let step = &mut steps[0];
                step.sql = ANSWER_MANY.into();
                step.args.extend([
                    texts(|c| c.1.map(|s| s.as_str().to_owned())),
                    texts(|c| c.2.clone()),
                    texts(|c| c.3.clone()),
                ]);
            }
            Dialect::Sqlite => {
                for ((r, _), (_, outcome, key, url)) in done.iter().zip(&columns) {
                    steps.push(Statement::new(
                        ANSWER_ONE,
                        args![
                            &r.id,
                            outcome.map(|s| s.as_str()),
                            key.clone(),
                            url.clone(),
                            r.fence
                        ],
                    ));
                }
            }
        }
        let finished = self.finish_by(steps, &ends).await?;
        Ok(finished
            .into_iter()
            .zip(done)
            .zip(columns)
            .map(|((job, (mut reg, _)), (_, outcome, key, url))| {
                let job = job?;
                if job.state.is_final() {
                    reg.registrant_key = key.map(|k| crate::key(&k)).transpose().ok().flatten();
                    reg.join_url = url;
                }
                Some(reg.with_job(&job, outcome))
            })
            .collect())
    }
}
