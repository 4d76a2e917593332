//! The emulator's in-memory world: OAuth clients, grants, tokens, organizers, webinars
//! and registrants. One mutex guards it; handlers hold it only for map look-ups, never
//! across an `.await`, which keeps it fast and safe under concurrent load.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;

use crate::clock::Timestamp;
use crate::config::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorConfig};

/// Smallest key the emulator hands out: every key is above 2^53, so a client that
/// parses keys through `f64` (as JavaScript does) loses digits and its tests fail.
const MIN_KEY: u64 = (1 << 53) + 1;
const MAX_KEY: u64 = 1 << 62;

/// A fresh 64-bit key above 2^53.
pub(crate) fn new_key() -> u64 {
    rand::rng().random_range(MIN_KEY..MAX_KEY)
}

/// A fresh opaque token: 32 random bytes, URL-safe base64.
pub(crate) fn new_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The standard registration fields GoTo knows besides first name, last name and email.
pub(crate) const OPTIONAL_STANDARD_FIELDS: &[&str] = &[
    "address",
    "city",
    "state",
    "zipCode",
    "country",
    "phone",
    "organization",
    "jobTitle",
    "questionsAndComments",
    "industry",
    "numberOfEmployees",
    "purchasingTimeFrame",
    "purchasingRole",
];

/// GoTo's documented maximum length of a standard field.
pub(crate) const FIELD_MAX_SIZE: usize = 128;

/// A person who runs webinars; what `/admin/rest/v1/me` describes.
#[derive(Debug, Clone)]
pub(crate) struct Organizer {
    pub key: u64,
    pub account_key: u64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

/// An authorize request waiting on the consent page.
#[derive(Debug, Clone)]
pub(crate) struct PendingConsent {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
}

/// An authorization code, valid once.
#[derive(Debug, Clone)]
pub(crate) struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub organizer_key: u64,
    pub expires_at: Timestamp,
}

/// What an access or refresh token stands for.
#[derive(Debug, Clone)]
pub(crate) struct TokenGrant {
    pub client_id: String,
    pub organizer_key: u64,
    pub expires_at: Timestamp,
}

/// A standard field the organizer put on the registration form.
#[derive(Debug, Clone)]
pub(crate) struct FieldDef {
    pub name: String,
    pub required: bool,
    /// Allowed values, for fields GoTo shows as a list (such as `industry`).
    pub choices: Vec<String>,
}

/// The kind of a custom registration question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QuestionKind {
    ShortAnswer,
    MultipleChoice,
}

impl QuestionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ShortAnswer => "shortAnswer",
            Self::MultipleChoice => "multipleChoice",
        }
    }
}

/// A custom registration question.
#[derive(Debug, Clone)]
pub(crate) struct Question {
    pub key: u64,
    pub text: String,
    pub kind: QuestionKind,
    pub required: bool,
    pub max_size: usize,
    /// (answerKey, answer text), for multiple choice.
    pub answers: Vec<(u64, String)>,
}

/// One stored answer of a registrant.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub question: String,
    pub answer: String,
}

/// A registrant of one webinar.
#[derive(Debug, Clone)]
pub(crate) struct Registrant {
    pub key: u64,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub registered_at: Timestamp,
    pub status: &'static str,
    pub join_url: String,
    pub source: Option<String>,
    /// Optional standard fields that were given, by GoTo field name.
    pub fields: BTreeMap<String, String>,
    pub answers: Vec<Answer>,
}

/// Registrants of a webinar, findable by key and by email (case-insensitive).
#[derive(Debug, Clone, Default)]
pub(crate) struct Registrants {
    pub by_key: BTreeMap<u64, Registrant>,
    pub by_email: HashMap<String, u64>,
}

/// A webinar and everything registered for it.
#[derive(Debug, Clone)]
pub(crate) struct Webinar {
    pub key: u64,
    pub webinar_id: String,
    pub organizer_key: u64,
    pub subject: String,
    pub description: String,
    pub times: Vec<(Timestamp, Timestamp)>,
    pub time_zone: String,
    pub locale: String,
    pub manual_approval: bool,
    pub kind: String,
    pub experience_type: String,
    pub password_protected: bool,
    pub registration_limit: u32,
    pub cancelled: bool,
    /// Shared by the webinars of one series (each has its own key and one time).
    pub recurrence_key: Option<u64>,
    pub fields: Vec<FieldDef>,
    pub questions: Vec<Question>,
    pub registrants: Registrants,
    /// Sessions that ran or are running, oldest first.
    pub sessions: Vec<Session>,
}

/// One run of a webinar and who was in it.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub key: u64,
    pub started_at: Timestamp,
    /// `None` while it runs.
    pub ended_at: Option<Timestamp>,
    /// Per registrant, each stay: (joined, left; `None` while still in).
    pub attendance: BTreeMap<u64, Vec<(Timestamp, Option<Timestamp>)>>,
}

impl Session {
    /// Seconds `registrant` spent in the session by `now` (open stays count until
    /// the session's end, or `now` while it runs).
    pub fn seconds_attended(&self, registrant: u64, now: Timestamp) -> i64 {
        let until = self.ended_at.unwrap_or(now);
        self.attendance.get(&registrant).map_or(0, |stays| {
            stays
                .iter()
                .map(|&(join, leave)| (leave.unwrap_or(until) - join).max(0))
                .sum()
        })
    }
}

impl Webinar {
    /// When the first session starts.
    pub fn starts_at(&self) -> Timestamp {
        self.times.iter().map(|t| t.0).min().unwrap_or_default()
    }

    /// When the last session ends.
    pub fn ends_at(&self) -> Timestamp {
        self.times.iter().map(|t| t.1).max().unwrap_or_default()
    }

    /// Whether a session is running at `now`.
    pub fn in_session(&self, now: Timestamp) -> bool {
        self.times.iter().any(|&(s, e)| s <= now && now < e)
    }
}

/// What it takes to create a webinar, from the API, the control API or the demo seed.
#[derive(Debug, Clone)]
pub(crate) struct NewWebinar {
    pub organizer_key: u64,
    pub subject: String,
    pub description: String,
    pub times: Vec<(Timestamp, Timestamp)>,
    pub time_zone: String,
    pub kind: String,
    pub experience_type: String,
    pub password_protected: bool,
    pub manual_approval: bool,
    pub registration_limit: u32,
    pub recurrence_key: Option<u64>,
    pub fields: Vec<FieldDef>,
    /// (text, kind, required, maxSize, answer texts)
    pub questions: Vec<(String, QuestionKind, bool, usize, Vec<String>)>,
}

impl NewWebinar {
    /// A one-session webinar with GoTo's defaults, for `organizer_key`.
    pub fn basic(organizer_key: u64, subject: &str, start: Timestamp, end: Timestamp) -> Self {
        Self {
            organizer_key,
            subject: subject.to_owned(),
            description: String::new(),
            times: vec![(start, end)],
            time_zone: "America/New_York".to_owned(),
            kind: "single_session".to_owned(),
            experience_type: "CLASSIC".to_owned(),
            password_protected: false,
            manual_approval: false,
            registration_limit: DEFAULT_REGISTRATION_LIMIT,
            recurrence_key: None,
            fields: Vec::new(),
            questions: Vec::new(),
        }
    }
}

/// GoTo requires `registrationLimit` on every webinar; plans cap it. The emulator's
/// default is high enough for load tests and benchmarks; the control API sets others.
pub(crate) const DEFAULT_REGISTRATION_LIMIT: u32 = 1_000_000;

/// Everything the emulator remembers.
#[derive(Debug)]
pub(crate) struct State {
    pub clients: HashMap<String, String>,
    pub consents: HashMap<String, PendingConsent>,
    pub codes: HashMap<String, CodeGrant>,
    pub access_tokens: HashMap<String, TokenGrant>,
    pub refresh_tokens: HashMap<String, TokenGrant>,
    pub pats: HashMap<String, u64>,
    pub organizers: BTreeMap<u64, Organizer>,
    pub webinars: BTreeMap<u64, Webinar>,
    /// The organizer who logs in on the consent page and owns the demo webinars.
    pub default_organizer: u64,
    pub webhooks: Webhooks,
}

/// Whether a webhook or a user subscription delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HookState {
    Active,
    Inactive,
}

impl HookState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ACTIVE" => Some(Self::Active),
            "INACTIVE" => Some(Self::Inactive),
            _ => None,
        }
    }
}

/// An application's webhook: one event name, one callback.
#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    pub key: String,
    pub client_id: String,
    pub callback_url: String,
    pub event_name: EventName,
    pub event_version: String,
    pub state: HookState,
    pub created_at: Timestamp,
}

/// A user's subscription to a webhook: events of that user's webinars are delivered.
#[derive(Debug, Clone)]
pub(crate) struct UserSubscription {
    pub key: String,
    pub webhook_key: String,
    pub organizer_key: u64,
    pub callback_url: Option<String>,
    pub state: HookState,
    pub created_at: Timestamp,
}

/// A signing secret of an application.
#[derive(Debug, Clone)]
pub(crate) struct SecretKey {
    pub id: u64,
    pub client_id: String,
    pub value: String,
    pub valid_from: Timestamp,
}

/// Everything about webhooks.
#[derive(Debug, Clone, Default)]
pub(crate) struct Webhooks {
    pub hooks: BTreeMap<String, Webhook>,
    pub subscriptions: BTreeMap<String, UserSubscription>,
    pub secrets: Vec<SecretKey>,
}

impl Webhooks {
    /// Whether webhook `key` exists and belongs to application `client_id`.
    pub fn hook_of(&self, key: &str, client_id: &str) -> bool {
        self.hooks
            .get(key)
            .is_some_and(|h| h.client_id == client_id)
    }

    /// Whether subscription `key` exists and is organizer `organizer_key`'s.
    pub fn subscription_of(&self, key: &str, organizer_key: u64) -> bool {
        self.subscriptions
            .get(key)
            .is_some_and(|s| s.organizer_key == organizer_key)
    }
}

/// The events GoTo publishes (version 1.0.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventName {
    RegistrantAdded,
    RegistrantJoined,
    WebinarCreated,
    WebinarChanged,
}

impl EventName {
    pub(crate) const ALL: [Self; 4] = [
        Self::RegistrantAdded,
        Self::RegistrantJoined,
        Self::WebinarCreated,
        Self::WebinarChanged,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::RegistrantAdded => "registrant.added",
            Self::RegistrantJoined => "registrant.joined",
            Self::WebinarCreated => "webinar.created",
            Self::WebinarChanged => "webinar.changed",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

impl State {
    /// A fresh world: the configured clients and one organizer with key `default_organizer`.
    pub fn new(config: &EmulatorConfig, default_organizer: u64, account_key: u64) -> Self {
        let mut clients = HashMap::new();
        clients.insert(DEMO_CLIENT_ID.to_owned(), DEMO_CLIENT_SECRET.to_owned());
        for (id, secret) in &config.clients {
            clients.insert(id.clone(), secret.clone());
        }
        let mut organizers = BTreeMap::new();
        organizers.insert(
            default_organizer,
            Organizer {
                key: default_organizer,
                account_key,
                email: "dana.demo@example.com".to_owned(),
                first_name: "Dana".to_owned(),
                last_name: "Demo".to_owned(),
            },
        );
        Self {
            clients,
            consents: HashMap::new(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            pats: HashMap::new(),
            organizers,
            webinars: BTreeMap::new(),
            default_organizer,
            webhooks: Webhooks::default(),
        }
    }

    /// Stores a new webinar and returns its key.
    pub fn insert_webinar(&mut self, new: NewWebinar) -> u64 {
        let key = new_key();
        let questions = new
            .questions
            .into_iter()
            .map(|(text, kind, required, max_size, answers)| Question {
                key: new_key(),
                text,
                kind,
                required,
                max_size,
                answers: answers.into_iter().map(|a| (new_key(), a)).collect(),
            })
            .collect();
        let webinar_id = format!(
            "{:09}",
            rand::rng().random_range(100_000_000..1_000_000_000)
        );
        let webinar = Webinar {
            key,
            webinar_id,
            organizer_key: new.organizer_key,
            subject: new.subject,
            description: new.description,
            times: new.times,
            time_zone: new.time_zone,
            locale: "en_US".to_owned(),
            manual_approval: new.manual_approval,
            kind: new.kind,
            experience_type: new.experience_type,
            password_protected: new.password_protected,
            registration_limit: new.registration_limit,
            cancelled: false,
            recurrence_key: new.recurrence_key,
            fields: new.fields,
            questions,
            registrants: Registrants::default(),
            sessions: Vec::new(),
        };
        self.webinars.insert(key, webinar);
        key
    }

    /// Stores a webinar as GoTo's create and copy do: a `series` becomes one webinar per
    /// time, sharing a new recurrence key. Returns the keys made (the first is the one
    /// GoTo answers with) and, for a series, the recurrence key.
    pub fn insert_scheduled(&mut self, new: NewWebinar) -> (Vec<u64>, Option<u64>) {
        if new.kind != "series" {
            return (vec![self.insert_webinar(new)], None);
        }
        let recurrence = new_key();
        let keys = new
            .times
            .iter()
            .map(|&time| {
                let mut one = new.clone();
                one.times = vec![time];
                one.recurrence_key = Some(recurrence);
                self.insert_webinar(one)
            })
            .collect();
        (keys, Some(recurrence))
    }

    /// What a copy of `source` starts from: its form, questions and settings, with new
    /// question and answer keys given when it is stored.
    pub fn copy_of(source: &Webinar) -> NewWebinar {
        NewWebinar {
            organizer_key: source.organizer_key,
            subject: source.subject.clone(),
            description: source.description.clone(),
            times: source.times.clone(),
            time_zone: source.time_zone.clone(),
            kind: source.kind.clone(),
            experience_type: source.experience_type.clone(),
            password_protected: source.password_protected,
            manual_approval: source.manual_approval,
            registration_limit: source.registration_limit,
            recurrence_key: None,
            fields: source.fields.clone(),
            questions: source
                .questions
                .iter()
                .map(|q| {
                    let answers = q.answers.iter().map(|(_, a)| a.clone()).collect();
                    (q.text.clone(), q.kind, q.required, q.max_size, answers)
                })
                .collect(),
        }
    }

    /// Issues an access token (and, if asked, a refresh token) for a client and organizer.
    pub fn issue_access_token(
        &mut self,
        client_id: &str,
        organizer_key: u64,
        expires_at: Timestamp,
    ) -> String {
        let token = new_token();
        self.access_tokens.insert(
            token.clone(),
            TokenGrant {
                client_id: client_id.to_owned(),
                organizer_key,
                expires_at,
            },
        );
        token
    }

    /// Issues a refresh token.
    pub fn issue_refresh_token(
        &mut self,
        client_id: &str,
        organizer_key: u64,
        expires_at: Timestamp,
    ) -> String {
        let token = new_token();
        self.refresh_tokens.insert(
            token.clone(),
            TokenGrant {
                client_id: client_id.to_owned(),
                organizer_key,
                expires_at,
            },
        );
        token
    }
}
