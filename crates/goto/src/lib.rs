//! # g2w-goto: a typed GoTo Webinar v2 client whose tokens look after themselves
//!
//! - [`GotoClient`] calls the Webinar v2 API: webinars (every page; made, changed,
//!   cancelled and copied through a [`ScheduleCall`]), registration fields, registrants. Keys are exact 64-bit newtypes ([`WebinarKey`], …).
//! - [`TokenManager`] hands out access tokens: refreshed ahead of expiry, refreshed once
//!   after a 403 `InvalidToken`, single-flight across tasks and (through the store's
//!   lock) across processes; a dead grant marks the profile "reauthorization required".
//! - [`OAuthClient`] does the authorization-code flow (state, PKCE S256), refresh, and
//!   the personal-access-token grant, with HTTP Basic client authentication.
//! - [`RateLimiter`] keeps every call of one account under GoTo's limit;
//!   [`RetryPolicy`] says exactly what is retried and how long it waits.
//!
//! Failure model: every call returns a [`GotoError`] whose variants say whether a retry
//! can help. Calls are retried in place only for 429, 5xx and transport errors; a
//! create-registrant retried after a dropped answer may come back as
//! [`GotoError::AlreadyRegistered`], which callers treat as success. Secrets are
//! [`secrecy::SecretString`] and never appear in `Debug` output or logs.
//!
//! This crate knows nothing of databases: [`TokenStore`] is the trait a store implements.

mod attendance;
mod client;
mod error;
mod keys;
mod models;
mod oauth;
mod ratelimit;
mod registrants;
mod retry;
mod scheduling;
mod time;
mod tokens;
mod transport;
mod webhooks;
mod zone;

pub use attendance::{Attendance, Attendee, Session};
pub use client::{DEFAULT_API_URL, DEFAULT_AUTH_URL, DEFAULT_RATE_LIMIT, GotoClient, Raw};
pub use error::{GotoError, InvalidField, Result, chain};
pub use keys::{
    AccountKey, AnswerKey, KeyParseError, OrganizerKey, QuestionKey, RecurrenceKey, RegistrantKey,
    SessionKey, WebinarKey,
};
pub use models::{
    AnswerChoice, AnsweredQuestion, NewRegistrant, Organizer, Question, QuestionResponse,
    QuestionType, Registrant, RegistrantCreated, RegistrantDetail, RegistrationField,
    RegistrationFields, TimeRange, Webinar, WebinarDetail, question_text,
};
pub use oauth::{
    AuthorizeRequest, ClientCredentials, OAuthClient, OAuthError, TokenResponse,
    parse_token_response,
};
pub use ratelimit::{
    FLOOR_PERMILLE, RECOVERY_PERMILLE_PER_SEC, RateLimiter, SPREAD, Schedule, SharedBudget,
};
pub use retry::RetryPolicy;
pub use scheduling::{
    DESCRIPTION_MAX, NotSchedulable, SUBJECT_MAX, ScheduleCall, Scheduled, WebinarChanges,
    WebinarCopy, WebinarPlan, WebinarType,
};
pub use secrecy::{ExposeSecret, SecretString};
pub use time::{Clock, Timestamp, system_clock};
pub use tokens::{Access, REFRESH_MARGIN, StoreFailure, TokenManager, TokenRecord, TokenStore};
pub use transport::{CONNECT_TIMEOUT, REQUEST_TIMEOUT, describe_transport, http_client};
pub use url::Url;
pub use webhooks::{EventName, HookState, UserSubscription, Webhook, WebhookSecret};
pub use zone::{LocalTimeError, WebinarZone};
