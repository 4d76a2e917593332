//! The registration outbox: what a landing page submitted, durably, and where its
//! delivery to GoTo stands.
//!
//! States: `pending` → `delivering` (leased to one attempt) → `delivered` |
//! `already_registered` | `failed` (permanent, with the reason) | `dead` (failing for
//! longer than the gateway's give-up age). A lease that runs out (a worker crashed) makes
//! the row due again, so a registration is never stuck; GoTo's 409 on a repeat makes a
//! second delivery harmless. Every claim bumps the row's fencing token: an attempt may
//! record its outcome or extend its lease only while the token is still its own.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use g2w_goto::{RegistrantKey, Timestamp, WebinarKey};

use crate::StoreError;

/// Where a registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutboxState {
    /// Waiting for (another) delivery attempt.
    Pending,
    /// Leased to a worker that is delivering it now.
    Delivering,
    /// GoTo registered the person.
    Delivered,
    /// GoTo already had the person registered.
    AlreadyRegistered,
    /// GoTo refused it for good (the reason is kept).
    Failed,
    /// Delivery kept failing for longer than the gateway waits.
    Dead,
}

impl OutboxState {
    /// Every state, in lifecycle order.
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::Delivering,
        Self::Delivered,
        Self::AlreadyRegistered,
        Self::Failed,
        Self::Dead,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivering => "delivering",
            Self::Delivered => "delivered",
            Self::AlreadyRegistered => "already_registered",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }

    /// Whether nothing more will happen to it (unless retried by hand).
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::Delivering)
    }
}

impl fmt::Display for OutboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutboxState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a state (pending, delivering, delivered, already_registered, failed, dead)"))
    }
}

/// A submission to store.
#[derive(Debug, Clone)]
pub struct NewRegistration {
    /// Its id (time-ordered, URL-safe).
    pub id: String,
    /// The g2w profile (GoTo login) that delivers it.
    pub profile: String,
    /// The webinar.
    pub webinar_key: WebinarKey,
    /// The person's email (for look-ups and support).
    pub email: String,
    /// What will be sent to GoTo, as JSON.
    pub payload: String,
    /// The client's `Idempotency-Key`, if it sent one.
    pub idempotency_key: Option<String>,
    /// Where it came from (`source`).
    pub source: Option<String>,
    /// When it arrived.
    pub created_at: Timestamp,
    /// Whether intake checked it against the webinar's form (else GoTo checks it).
    pub validated: bool,
}

/// A stored registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Its id.
    pub id: String,
    /// The profile.
    pub profile: String,
    /// The webinar.
    pub webinar_key: WebinarKey,
    /// The email.
    pub email: String,
    /// The JSON sent to GoTo.
    pub payload: String,
    /// The client's idempotency key.
    pub idempotency_key: Option<String>,
    /// Where it came from.
    pub source: Option<String>,
    /// Where it stands.
    pub state: OutboxState,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_attempt_at: Timestamp,
    /// GoTo's registrant key, once delivered.
    pub registrant_key: Option<RegistrantKey>,
    /// The join URL, once delivered or found.
    pub join_url: Option<String>,
    /// The last failure.
    pub last_error: Option<String>,
    /// Arrival.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// When it reached a final state.
    pub finished_at: Option<Timestamp>,
    /// The fencing token of the latest claim: only that attempt may record an outcome.
    pub fence: i64,
    /// When the current run of failed attempts began, if one is running.
    pub failing_since: Option<Timestamp>,
    /// Whether intake checked it against the webinar's form (else GoTo checks it).
    pub validated: bool,
}

/// What storing a submission did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored now.
    New(Registration),
    /// The idempotency key was seen before: this is the earlier registration.
    Existing(Registration),
}

impl Enqueued {
    /// The registration either way.
    pub fn registration(&self) -> &Registration {
        match self {
            Self::New(r) | Self::Existing(r) => r,
        }
    }
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Registered: GoTo's key and join URL.
    Delivered {
        /// Registrant key.
        registrant_key: RegistrantKey,
        /// Join URL.
        join_url: String,
    },
    /// Already registered: the existing join URL, when found.
    AlreadyRegistered {
        /// Registrant key, when known.
        registrant_key: Option<RegistrantKey>,
        /// Join URL, when found.
        join_url: Option<String>,
    },
    /// Refused for good.
    Failed {
        /// Why.
        reason: String,
    },
    /// Failing for too long.
    Dead {
        /// The last error.
        reason: String,
    },
}

/// Why a leased registration goes back to pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The attempt failed: it counts, and the give-up clock runs.
    Failed,
    /// GoTo asked to slow down (429): the give-up clock runs, but no attempt is used.
    Throttled,
    /// Delivery is paused (no usable login): nothing failed, nothing counts.
    Paused,
}

/// Which registration a claim may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The next one due now (or one whose lease ran out).
    Due,
    /// The next one in line even if its backoff has not run out: a probe of whether
    /// GoTo is back.
    Probe,
}

impl Claim {
    /// The latest `next_attempt_at` this claim may take at `now`.
    pub fn due_by(self, now: Timestamp) -> Timestamp {
        match self {
            Self::Due => now,
            Self::Probe => Timestamp::MAX,
        }
    }
}

/// The outbox operations a backend provides. SQLite implements it now; a PostgreSQL
/// backend must pass the same contract tests (`tests/outbox_contract.rs`).
pub trait OutboxStore: Send + Sync + 'static {
    /// Stores submissions in one durable transaction; an already-seen idempotency key
    /// returns the earlier registration instead of a new one.
    ///
    /// # Errors
    /// When the transaction cannot commit: then nothing of the batch is stored.
    fn enqueue(&self, batch: &[NewRegistration]) -> Result<Vec<Enqueued>, StoreError>;

    /// Leases the next registration of `profile` that `which` allows to `holder` until
    /// `now + lease`, counting an attempt and bumping its fencing token. Due: pending
    /// with `next_attempt_at <= now` (any pending for [`Claim::Probe`]), or delivering
    /// with an expired lease. Only the profile's own registrations: a gateway delivers
    /// with one GoTo login and must not send another's.
    ///
    /// # Errors
    /// Database failures.
    fn claim(
        &self,
        profile: &str,
        holder: &str,
        now: Timestamp,
        lease: Duration,
        which: Claim,
    ) -> Result<Option<Registration>, StoreError>;

    /// Extends the lease of the attempt holding `fence` to `lease_until`. False (and
    /// nothing changed) when that attempt no longer holds it.
    ///
    /// # Errors
    /// Database failures.
    fn renew(&self, id: &str, fence: i64, lease_until: Timestamp) -> Result<bool, StoreError>;

    /// Ends the attempt holding `fence` and returns the registration as it now stands;
    /// `None` (and nothing changed) if the registration was claimed again since.
    ///
    /// # Errors
    /// Database failures.
    fn complete(
        &self,
        id: &str,
        fence: i64,
        now: Timestamp,
        completion: &Completion,
    ) -> Result<Option<Registration>, StoreError>;

    /// Gives the attempt holding `fence` back as pending, due at `next_attempt_at`,
    /// with `error` as the last error, and returns the registration as it now stands
    /// (`None`: claimed again since, nothing changed). [`Release`] says whether the
    /// attempt counts and whether the give-up clock starts (if it is not running yet).
    ///
    /// # Errors
    /// Database failures.
    fn release(
        &self,
        id: &str,
        fence: i64,
        now: Timestamp,
        next_attempt_at: Timestamp,
        error: &str,
        why: Release,
    ) -> Result<Option<Registration>, StoreError>;

    /// Makes every pending registration of `profile` due at `now` (GoTo is back: the
    /// backlog goes out at the rate limit instead of when each backoff ends). Returns
    /// how many were waiting.
    ///
    /// # Errors
    /// Database failures.
    fn make_due(&self, profile: &str, now: Timestamp) -> Result<u64, StoreError>;

    /// When the oldest registration of `profile` still waiting for delivery arrived.
    ///
    /// # Errors
    /// Database failures.
    fn oldest_waiting(&self, profile: &str) -> Result<Option<Timestamp>, StoreError>;

    /// How many registrations of `profile` are due by `now` or being delivered: the
    /// queue a new registration joins. Served by the due and lease indexes, so its cost
    /// follows the queue, not the history.
    ///
    /// # Errors
    /// Database failures.
    fn waiting(&self, profile: &str, now: Timestamp) -> Result<u64, StoreError>;

    /// A small durable write, to tell whether the store can be written at all.
    ///
    /// # Errors
    /// The write's failure (disk full, read-only, locked, I/O).
    fn probe_write(&self, now: Timestamp) -> Result<(), StoreError>;

    /// One registration.
    ///
    /// # Errors
    /// Database failures.
    fn registration(&self, id: &str) -> Result<Option<Registration>, StoreError>;

    /// Registrations, newest first, optionally of one state or one email.
    ///
    /// # Errors
    /// Database failures.
    fn list(
        &self,
        state: Option<OutboxState>,
        email: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError>;

    /// How many registrations are in each state.
    ///
    /// # Errors
    /// Database failures.
    fn counts(&self) -> Result<BTreeMap<OutboxState, u64>, StoreError>;

    /// When the earliest pending (or leased) registration of `profile` is due.
    ///
    /// # Errors
    /// Database failures.
    fn next_due(&self, profile: &str) -> Result<Option<Timestamp>, StoreError>;

    /// Makes a failed or dead registration pending again with fresh attempts and a
    /// fresh give-up clock.
    ///
    /// # Errors
    /// Database failures.
    fn retry(&self, id: &str, now: Timestamp) -> Result<bool, StoreError>;

    /// [`Self::retry`] for every failed and dead registration; returns how many.
    ///
    /// # Errors
    /// Database failures.
    fn retry_all_failed(&self, now: Timestamp) -> Result<u64, StoreError>;

    /// Deletes a failed or dead registration (an operator gave up on it).
    ///
    /// # Errors
    /// Database failures.
    fn discard(&self, id: &str) -> Result<bool, StoreError>;

    /// Deletes delivered and already-registered rows finished before `before`.
    ///
    /// # Errors
    /// Database failures.
    fn purge_delivered_before(&self, before: Timestamp) -> Result<u64, StoreError>;
}
