//! What GoTo sends and receives, typed. Optional wherever GoTo has been seen to leave a
//! field out; keys are lenient newtypes (number or string in, exact out).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::keys::{
    AccountKey, AnswerKey, OrganizerKey, QuestionKey, RecurrenceKey, RegistrantKey, WebinarKey,
};

/// One session of a webinar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeRange {
    /// Start, UTC.
    pub start_time: DateTime<Utc>,
    /// End, UTC.
    pub end_time: DateTime<Utc>,
}

/// A webinar as the organizer's webinar list describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webinar {
    /// The webinar's key.
    pub webinar_key: WebinarKey,
    /// The 9-digit id people see.
    #[serde(rename = "webinarID", default)]
    pub webinar_id: Option<String>,
    /// The organizer.
    #[serde(default)]
    pub organizer_key: Option<OrganizerKey>,
    /// The account.
    #[serde(default)]
    pub account_key: Option<AccountKey>,
    /// The title.
    pub subject: String,
    /// The description.
    #[serde(default)]
    pub description: Option<String>,
    /// The sessions.
    #[serde(default)]
    pub times: Vec<TimeRange>,
    /// The webinar's own time zone (IANA).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// `AUTOMATIC` or `MANUAL`.
    #[serde(default)]
    pub approval_type: Option<String>,
    /// GoTo's own registration page.
    #[serde(default)]
    pub registration_url: Option<String>,
    /// `single_session`, `series` or `sequence`.
    #[serde(default)]
    pub recurrence_type: Option<String>,
    /// The series it belongs to, when it is one webinar of a series.
    #[serde(default)]
    pub recurrence_key: Option<RecurrenceKey>,
    /// `CLASSIC`, `BROADCAST` or `SIMULIVE`.
    #[serde(default)]
    pub experience_type: Option<String>,
}

/// A webinar as `GET …/webinars/{key}` describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebinarDetail {
    /// The webinar's key.
    pub webinar_key: WebinarKey,
    /// The 9-digit id people see.
    #[serde(rename = "webinarID", default)]
    pub webinar_id: Option<String>,
    /// The title.
    pub subject: String,
    /// The description.
    #[serde(default)]
    pub description: Option<String>,
    /// The organizer.
    #[serde(default)]
    pub organizer_key: Option<OrganizerKey>,
    /// The sessions.
    #[serde(default)]
    pub times: Vec<TimeRange>,
    /// The webinar's own time zone.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// GoTo's own registration page.
    #[serde(default)]
    pub registration_url: Option<String>,
    /// How many have registered.
    #[serde(default)]
    pub number_of_registrants: Option<u64>,
    /// The registration limit.
    #[serde(default)]
    pub registration_limit: Option<u64>,
    /// Whether a session is running now.
    #[serde(default)]
    pub in_session: Option<bool>,
    /// `single_session`, `series` or `sequence`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The series it belongs to, when it is one webinar of a series.
    #[serde(default)]
    pub recurrence_key: Option<RecurrenceKey>,
    /// `AUTOMATIC` or `MANUAL`, when GoTo says.
    #[serde(default)]
    pub approval_type: Option<String>,
}

/// The organizer behind a token (`/admin/rest/v1/me`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organizer {
    /// The organizer key (GoTo calls it `key` here).
    pub key: OrganizerKey,
    /// The account.
    #[serde(default)]
    pub account_key: Option<AccountKey>,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
}

/// A standard field on a webinar's registration form.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationField {
    /// GoTo's field name (`firstName`, `organization`, …).
    pub field: String,
    /// Whether the form requires it.
    #[serde(default)]
    pub required: bool,
    /// Maximum length.
    #[serde(default)]
    pub max_size: Option<u32>,
    /// Allowed values, for list fields.
    #[serde(default)]
    pub answers: Vec<String>,
}

/// The kind of a custom question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum QuestionType {
    /// Free text (`responseText`).
    ShortAnswer,
    /// One of the answers (`answerKey`).
    MultipleChoice,
    /// A kind this client does not know.
    #[serde(other)]
    Unknown,
}

/// One answer of a multiple-choice question.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AnswerChoice {
    /// The text shown.
    pub answer: String,
    /// Its key.
    pub answer_key: AnswerKey,
}

/// A custom registration question.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Question {
    /// Its key.
    pub question_key: QuestionKey,
    /// Its text.
    pub question: String,
    /// Whether an answer is required.
    #[serde(default)]
    pub required: bool,
    /// Short answer or multiple choice.
    #[serde(rename = "type")]
    pub kind: QuestionType,
    /// Maximum answer length.
    #[serde(default)]
    pub max_size: Option<u32>,
    /// The choices, for multiple choice.
    #[serde(default)]
    pub answers: Vec<AnswerChoice>,
}

/// A webinar's registration form: standard fields and custom questions.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RegistrationFields {
    /// Standard fields.
    #[serde(default)]
    pub fields: Vec<RegistrationField>,
    /// Custom questions.
    #[serde(default)]
    pub questions: Vec<Question>,
}

/// A question's text as questions are matched by it: lower case, letters and digits only
/// (`"Why are you coming?"` and `"why are you coming"` are one).
#[must_use]
pub fn question_text(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

impl RegistrationFields {
    /// The question whose text is `text` (compared as [`question_text`] spells both).
    #[must_use]
    pub fn question_by_text(&self, text: &str) -> Option<&Question> {
        let wanted = question_text(text);
        self.questions
            .iter()
            .find(|q| question_text(&q.question) == wanted)
    }
}

fn key_as_number<S: Serializer, K: Copy + Into<u64>>(key: &K, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64((*key).into())
}

fn opt_key_as_number<S: Serializer, K: Copy + Into<u64>>(
    key: &Option<K>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match key {
        Some(k) => s.serialize_u64((*k).into()),
        None => s.serialize_none(),
    }
}

/// An answer to a custom question, as sent to GoTo (keys as JSON integers, as the spec
/// types them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuestionResponse {
    /// The question.
    #[serde(serialize_with = "key_as_number")]
    pub question_key: QuestionKey,
    /// For short-answer questions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_text: Option<String>,
    /// For multiple-choice questions.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_key_as_number"
    )]
    pub answer_key: Option<AnswerKey>,
}

/// A registration to send.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewRegistrant {
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email.
    pub email: String,
    /// Where the registration came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Optional standard fields by GoTo name (`organization`, `jobTitle`, …).
    #[serde(flatten)]
    pub fields: BTreeMap<String, String>,
    /// Custom-question answers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responses: Vec<QuestionResponse>,
}

/// GoTo's answer to a registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrantCreated {
    /// The new registrant.
    pub registrant_key: RegistrantKey,
    /// The personal join link.
    pub join_url: String,
    /// `APPROVED`, or `WAITING` for manual approval.
    #[serde(default)]
    pub status: Option<String>,
}

/// A registrant as the registrant list describes them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registrant {
    /// The registrant.
    pub registrant_key: RegistrantKey,
    /// First name.
    #[serde(default)]
    pub first_name: String,
    /// Last name.
    #[serde(default)]
    pub last_name: String,
    /// Email.
    pub email: String,
    /// When they registered.
    #[serde(default)]
    pub registration_date: Option<String>,
    /// `APPROVED`, `WAITING` or `DENIED`.
    #[serde(default)]
    pub status: Option<String>,
    /// The personal join link.
    #[serde(default)]
    pub join_url: Option<String>,
    /// The webinar's time zone.
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// A registrant with everything GoTo keeps about them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrantDetail {
    /// The summary fields.
    #[serde(flatten)]
    pub registrant: Registrant,
    /// Custom-question answers, as question and answer text.
    #[serde(default)]
    pub responses: Vec<AnsweredQuestion>,
    /// Every other field GoTo sent (standard fields, `source`, `type`, …).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A question and the registrant's answer, as text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AnsweredQuestion {
    /// The question.
    pub question: String,
    /// The answer.
    pub answer: String,
}

macro_rules! into_u64 {
    ($($t:ty),*) => {$(
        impl From<$t> for u64 {
            fn from(k: $t) -> u64 {
                k.get()
            }
        }
    )*};
}
into_u64!(QuestionKey, AnswerKey);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_serializes_keys_as_numbers_and_fields_flat() {
        let mut fields = BTreeMap::new();
        fields.insert("organization".to_owned(), "Acme".to_owned());
        let r = NewRegistrant {
            first_name: "A".into(),
            last_name: "B".into(),
            email: "a@b.co".into(),
            source: None,
            fields,
            responses: vec![QuestionResponse {
                question_key: QuestionKey::new(9_007_199_254_740_993),
                response_text: None,
                answer_key: Some(AnswerKey::new(18_000_000_000_000_000_001)),
            }],
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"firstName":"A","lastName":"B","email":"a@b.co","organization":"Acme","responses":[{"questionKey":9007199254740993,"answerKey":18000000000000000001}]}"#
        );
    }

    #[test]
    fn a_registration_reads_back_what_it_wrote() {
        let text = r#"{"firstName":"A","lastName":"B","email":"a@b.co","jobTitle":"CTO","responses":[{"questionKey":9007199254740993,"responseText":"hi"}]}"#;
        let r: NewRegistrant = serde_json::from_str(text).unwrap();
        assert_eq!(r.fields["jobTitle"], "CTO");
        assert_eq!(serde_json::to_string(&r).unwrap(), text);
    }

    #[test]
    fn unknown_question_types_do_not_break_parsing() {
        let f: RegistrationFields = serde_json::from_str(
            r#"{"fields":[],"questions":[{"questionKey":"1","question":"q","type":"rating","required":false}]}"#,
        )
        .unwrap();
        assert_eq!(f.questions[0].kind, QuestionType::Unknown);
    }
}
