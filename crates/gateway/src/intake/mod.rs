//! Turning a submission into a registration GoTo will accept, for every way in: parsed
//! once, trimmed, Unicode-normalised (NFC), length-limited, and checked against the
//! webinar's own registration fields and questions, every problem reported against the
//! field it belongs to ([`validate`]); then stored by the one intake use case
//! ([`Intake::register`]), which every door (the API, the hosted and series forms, form
//! builders' posts) calls.

use std::collections::{BTreeMap, HashMap};

use g2w_goto::{
    AnswerKey, NewRegistrant, QuestionKey, QuestionResponse, QuestionType, RegistrationFields,
};

mod parse;
mod register;
mod text;

pub use parse::{parse_form, parse_json};
pub(crate) use register::{
    Attempt, Caller, Intake, Invalid, Refused, STORE_DEADLINE_FLOOR, SeriesForm, Target, new_id,
};
pub use text::valid_email;

use text::clean;

/// More keys than this in one body is an attack or a bug, not a registration.
pub const MAX_FIELDS: usize = 100;
/// GoTo's maximum for a standard field (its forms say `maxSize: 128`, email included).
const FIELD_MAX: usize = 128;
/// The most a custom answer may hold, whatever the question says.
const ANSWER_MAX: usize = 1000;

/// The longest text a standard field may hold: the webinar's form decides (its
/// `maxSize`), never more than GoTo's 128; without the form, 128.
pub fn field_limit(form: Option<&RegistrationFields>, field: &str) -> usize {
    form.and_then(|f| f.fields.iter().find(|d| d.field == field))
        .and_then(|d| d.max_size)
        .map_or(FIELD_MAX, |m| m as usize)
        .min(FIELD_MAX)
}

/// The longest answer a custom question takes: its `maxSize`, never more than 1000.
pub fn answer_limit(question: &g2w_goto::Question) -> usize {
    question
        .max_size
        .map_or(ANSWER_MAX, |m| m as usize)
        .min(ANSWER_MAX)
}
/// The field a series' date is picked in (a webinar key, or the date as people write it).
pub(crate) const DATE_FIELD: &str = "webinarKey";
/// The hidden field of the series form naming the date whose questions it shows.
pub(crate) const FORM_OF_FIELD: &str = "formOf";

/// The honeypot: a field people never see, so only bots fill it.
pub const HONEYPOT: &str = "website";

/// The standard fields GoTo knows besides first name, last name and email.
pub const OPTIONAL_FIELDS: &[&str] = &[
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

/// A submission before validation: field name → text, answers by question key.
#[derive(Debug, Default)]
pub struct Submission {
    /// Standard fields and `source`.
    pub fields: BTreeMap<String, String>,
    /// Answers by question key: text, or a multiple-choice answer's key or text.
    pub answers: BTreeMap<String, String>,
    /// Answers by their question's text (as [`g2w_goto::question_text`] spells it), for doors that
    /// know questions by text (form builders): each becomes an answer by key for the
    /// webinar's question with that text ([`answer_by_text`]); the others are not answers.
    pub by_text: BTreeMap<String, String>,
    /// Whether the honeypot was filled.
    pub honeypot: bool,
}

/// Problems, by field name (`email`, `q_<questionKey>`, `body`).
pub type FieldErrors = BTreeMap<String, String>;

/// The errors for people who cannot see the form: each field by its label, each custom
/// question by its text (`"Why are you coming?" an answer is required`), never by key.
pub fn describe(errors: &FieldErrors, form: Option<&RegistrationFields>) -> Vec<String> {
    errors
        .iter()
        .map(|(field, message)| {
            let question = field.strip_prefix("q_").and_then(|key| {
                form?
                    .questions
                    .iter()
                    .find(|q| q.question_key.to_string() == key)
            });
            match question {
                Some(q) => format!("{:?} {message}", q.question.trim()),
                None => format!("{field} {message}"),
            }
        })
        .collect()
}

fn one(field: &str, message: &str) -> FieldErrors {
    FieldErrors::from([(field.to_owned(), message.to_owned())])
}

/// Rewrites the answers of a form filled in as `from` for the webinar with form `to`:
/// the dates of a series may number their questions and answers differently, so each
/// answer follows its question's (and answer's) text. An answer with no counterpart is
/// left as it is, for validation to name.
pub fn translate(sub: &mut Submission, from: &RegistrationFields, to: &RegistrationFields) {
    let answers = std::mem::take(&mut sub.answers);
    for (key, value) in answers {
        let pair = from
            .questions
            .iter()
            .find(|q| q.question_key.to_string() == key)
            .and_then(|q| {
                let there = to
                    .questions
                    .iter()
                    .find(|t| t.question.trim() == q.question.trim())?;
                let value = match q.answers.iter().find(|a| a.answer_key.to_string() == value) {
                    Some(a) => there
                        .answers
                        .iter()
                        .find(|b| b.answer.trim() == a.answer.trim())
                        .map_or_else(|| value.clone(), |b| b.answer_key.to_string()),
                    None => value.clone(),
                };
                Some((there.question_key.to_string(), value))
            });
        let (key, value) = pair.unwrap_or((key, value));
        sub.answers.insert(key, value);
    }
}

/// Moves each answer by text to its question's key in `form`, unless the submission
/// answers that question by key already; texts no question has are dropped (a form
/// builder posts more fields than GoTo asks for).
pub fn answer_by_text(sub: &mut Submission, form: &RegistrationFields) {
    let mut by_text = std::mem::take(&mut sub.by_text);
    if by_text.is_empty() {
        return;
    }
    for q in &form.questions {
        if let Some(value) = by_text.remove(&g2w_goto::question_text(&q.question)) {
            sub.answers
                .entry(q.question_key.to_string())
                .or_insert(value);
        }
    }
}

/// The registration to deliver, with the email kept apart for look-ups.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// What GoTo gets.
    pub registrant: NewRegistrant,
}

/// Validates a submission against the webinar's form. With `form == None` (GoTo's
/// fields could not be fetched) only the basics are checked and GoTo checks the rest
/// at delivery: accepting now loses nothing.
///
/// # Errors
/// Every problem, by field.
pub fn validate(
    sub: &Submission,
    form: Option<&RegistrationFields>,
) -> Result<Accepted, FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut get = |name: &str, required: bool, max: usize, choices: &[String]| -> Option<String> {
        let raw = sub.fields.get(name).map(String::as_str).unwrap_or("");
        let text = match clean(raw) {
            Ok(t) => t,
            Err(why) => {
                errors.insert(name.to_owned(), why);
                return None;
            }
        };
        if text.is_empty() {
            if required {
                errors.insert(name.to_owned(), "is required".to_owned());
            }
            return None;
        }
        if text.chars().count() > max {
            errors.insert(name.to_owned(), format!("is longer than {max} characters"));
            return None;
        }
        if !choices.is_empty() && !choices.iter().any(|c| c == &text) {
            errors.insert(
                name.to_owned(),
                format!("must be one of: {}", choices.join(", ")),
            );
            return None;
        }
        Some(text)
    };
    let first_name = get("firstName", true, field_limit(form, "firstName"), &[]);
    let last_name = get("lastName", true, field_limit(form, "lastName"), &[]);
    let email = get("email", true, field_limit(form, "email"), &[]);
    let source = get("source", false, FIELD_MAX, &[]);
    let mut fields = BTreeMap::new();
    for name in OPTIONAL_FIELDS {
        let def = form.and_then(|f| f.fields.iter().find(|d| d.field == *name));
        let required = def.is_some_and(|d| d.required);
        let max = field_limit(form, name);
        let choices = def.map(|d| d.answers.as_slice()).unwrap_or_default();
        if let Some(v) = get(name, required, max, choices) {
            fields.insert((*name).to_owned(), v);
        }
    }
    if let Some(e) = &email
        && !valid_email(e)
    {
        errors.insert("email".into(), "is not a valid email address".into());
    }

    let mut responses = Vec::new();
    match form {
        Some(form) => {
            let by_key: HashMap<String, &g2w_goto::Question> = form
                .questions
                .iter()
                .map(|q| (q.question_key.to_string(), q))
                .collect();
            for key in sub.answers.keys() {
                if !by_key.contains_key(key) {
                    errors.insert(
                        format!("q_{key}"),
                        "is not a question of this webinar".into(),
                    );
                }
            }
            for q in &form.questions {
                let field = format!("q_{}", q.question_key);
                let raw = sub
                    .answers
                    .get(&q.question_key.to_string())
                    .map(String::as_str)
                    .unwrap_or("");
                let text = match clean(raw) {
                    Ok(t) => t,
                    Err(why) => {
                        errors.insert(field, why);
                        continue;
                    }
                };
                if text.is_empty() {
                    if q.required {
                        errors.insert(field, "an answer is required".into());
                    }
                    continue;
                }
                match q.kind {
                    QuestionType::MultipleChoice => {
                        let choice = q.answers.iter().find(|a| {
                            a.answer_key.to_string() == text || a.answer.eq_ignore_ascii_case(&text)
                        });
                        match choice {
                            Some(a) => responses.push(QuestionResponse {
                                question_key: q.question_key,
                                response_text: None,
                                answer_key: Some(a.answer_key),
                            }),
                            None => {
                                let answers: Vec<&str> =
                                    q.answers.iter().map(|a| a.answer.as_str()).collect();
                                errors.insert(
                                    field,
                                    format!("must be one of: {}", answers.join(", ")),
                                );
                            }
                        }
                    }
                    _ => {
                        let max = answer_limit(q);
                        if text.chars().count() > max {
                            errors.insert(field, format!("is longer than {max} characters"));
                        } else {
                            responses.push(QuestionResponse {
                                question_key: q.question_key,
                                response_text: Some(text),
                                answer_key: None,
                            });
                        }
                    }
                }
            }
        }
        None => {
            // Without the form we cannot tell a choice's key from free text: keys go as
            // answer keys, anything else as text; GoTo judges at delivery.
            for (key, raw) in &sub.answers {
                let field = format!("q_{key}");
                let Ok(question_key) = key.parse::<QuestionKey>() else {
                    errors.insert(field, "is not a question key".into());
                    continue;
                };
                match clean(raw) {
                    Err(why) => {
                        errors.insert(field, why);
                    }
                    Ok(text) if text.is_empty() => {}
                    Ok(text) if text.chars().count() > ANSWER_MAX => {
                        errors.insert(field, format!("is longer than {ANSWER_MAX} characters"));
                    }
                    Ok(text) => responses.push(match text.parse::<AnswerKey>() {
                        Ok(answer_key) => QuestionResponse {
                            question_key,
                            response_text: None,
                            answer_key: Some(answer_key),
                        },
                        Err(_) => QuestionResponse {
                            question_key,
                            response_text: Some(text),
                            answer_key: None,
                        },
                    }),
                }
            }
        }
    }

    match (first_name, last_name, email) {
        (Some(first_name), Some(last_name), Some(email)) if errors.is_empty() => Ok(Accepted {
            registrant: NewRegistrant {
                first_name,
                last_name,
                email,
                source,
                fields,
                responses,
            },
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use g2w_goto::{AnswerChoice, Question, RegistrationField};

    use super::*;

    fn form() -> RegistrationFields {
        RegistrationFields {
            fields: vec![
                RegistrationField {
                    field: "organization".into(),
                    required: true,
                    max_size: Some(128),
                    answers: vec![],
                },
                RegistrationField {
                    field: "industry".into(),
                    required: false,
                    max_size: Some(128),
                    answers: vec!["Retail".into()],
                },
            ],
            questions: vec![
                Question {
                    question_key: QuestionKey::new(11),
                    question: "Why?".into(),
                    required: true,
                    kind: QuestionType::ShortAnswer,
                    max_size: Some(10),
                    answers: vec![],
                },
                Question {
                    question_key: QuestionKey::new(22),
                    question: "Size?".into(),
                    required: false,
                    kind: QuestionType::MultipleChoice,
                    max_size: None,
                    answers: vec![AnswerChoice {
                        answer: "Small".into(),
                        answer_key: AnswerKey::new(9_007_199_254_740_993),
                    }],
                },
            ],
        }
    }

    #[test]
    fn a_good_form_post_becomes_a_registration() {
        let sub = parse_form(b"firstName=+Ada+&lastName=Lovelace&email=ada%40example.com&organization=Engines&q_11=Learn&q_22=small&source=landing").unwrap();
        let ok = validate(&sub, Some(&form())).unwrap().registrant;
        assert_eq!(ok.first_name, "Ada", "trimmed");
        assert_eq!(ok.fields["organization"], "Engines");
        assert_eq!(ok.source.as_deref(), Some("landing"));
        assert_eq!(ok.responses[0].response_text.as_deref(), Some("Learn"));
        assert_eq!(
            ok.responses[1].answer_key,
            Some(AnswerKey::new(9_007_199_254_740_993)),
            "answer text -> key"
        );
    }

    #[test]
    fn every_problem_is_named_by_its_field() {
        let sub = parse_json(br#"{"firstName":"","email":"nope","industry":"Mining","responses":[{"questionKey":"11","responseText":"far too long an answer"},{"questionKey":99,"responseText":"x"}]}"#).unwrap();
        let errors = validate(&sub, Some(&form())).unwrap_err();
        let names: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "email",
                "firstName",
                "industry",
                "lastName",
                "organization",
                "q_11",
                "q_99"
            ]
        );
    }

    #[test]
    fn unicode_is_normalised_and_control_characters_refused() {
        let decomposed =
            "{\"firstName\":\"Jose\u{301}\",\"lastName\":\"L\",\"email\":\"j@example.com\"}";
        let ok = validate(&parse_json(decomposed.as_bytes()).unwrap(), None).unwrap();
        assert_eq!(ok.registrant.first_name, "Jos\u{e9}", "NFC");
        let nasty = br#"{"firstName":"A\u0000","lastName":"B\u001b[31m","email":"a@example.com"}"#;
        let errors = validate(&parse_json(nasty).unwrap(), None).unwrap_err();
        assert!(errors["firstName"].contains("control") && errors["lastName"].contains("control"));
    }

    #[test]
    fn hostile_bodies_are_refused_without_panicking() {
        assert!(parse_json(b"not json").is_err());
        assert!(parse_json(b"[1,2]").is_err());
        assert!(parse_json(br#"{"firstName":{"$gt":""}}"#).is_err());
        let many: String = (0..10_000).map(|i| format!("f{i}=x&")).collect();
        assert!(parse_form(many.as_bytes()).is_err());
        let many_json = format!(
            "{{{}}}",
            (0..200)
                .map(|i| format!("\"f{i}\":\"x\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(parse_json(many_json.as_bytes()).is_err());
        assert!(parse_form(b"email=a&email=b").is_err());
        let sql = validate(&parse_json(br#"{"firstName":"Robert'); DROP TABLE outbox;--","lastName":"<script>alert(1)</script>","email":"x@example.com"}"#).unwrap(), None).unwrap();
        assert_eq!(
            sql.registrant.last_name, "<script>alert(1)</script>",
            "stored as text, escaped where shown"
        );
        let long = format!(
            r#"{{"firstName":"{}","lastName":"B","email":"a@example.com"}}"#,
            "x".repeat(129)
        );
        assert!(
            validate(&parse_json(long.as_bytes()).unwrap(), None)
                .unwrap_err()
                .contains_key("firstName")
        );
    }

    #[test]
    fn emails_are_held_to_what_mail_servers_take() {
        for good in [
            "ada@example.com",
            "ada.lovelace+webinar@mail.example.co.uk",
            "o'brien@example.ie",
            "x@xn--mnchen-3ya.de",
            "jos\u{e9}@m\u{fc}nchen.de",
            "a1@b-c.io",
        ] {
            assert!(valid_email(good), "{good}");
        }
        for bad in [
            "x@exa\u{202e}mple.com",
            "x@b..com",
            "x@-b.com",
            "x@b-.com",
            "x@ex_ample.com",
            "x@localhost",
            "x@example.123",
            "x@[127.0.0.1]",
            "\"x y\"@example.com",
            "Ada <ada@example.com>",
            "ada@@example.com",
            ".ada@example.com",
            "ada.@example.com",
            "a..b@example.com",
            "ada example@example.com",
            "ada@",
            "@example.com",
            "",
        ] {
            assert!(!valid_email(bad), "{bad:?}");
        }
        let long_label = format!("x@{}.com", "a".repeat(64));
        assert!(!valid_email(&long_label));
    }

    #[test]
    fn invisible_formatting_characters_are_refused_in_every_field() {
        for (field, text) in [
            ("firstName", "Ada\u{202e}"),
            ("lastName", "Love\u{200c}lace"),
            ("organization", "Engines\u{e0041}\u{e0042}"),
            ("jobTitle", "\u{2066}Engineer\u{2069}"),
            ("city", "Lon\u{200b}don"),
            ("email", "x@exa\u{202e}mple.com"),
        ] {
            let mut sub = Submission::default();
            for (k, v) in [
                ("firstName", "Ada"),
                ("lastName", "Lovelace"),
                ("email", "a@example.com"),
            ] {
                sub.fields.insert(k.into(), v.into());
            }
            sub.fields.insert(field.into(), text.into());
            let errors = validate(&sub, None).unwrap_err();
            assert!(errors.contains_key(field), "{field}: {errors:?}");
            if field != "email" {
                assert!(errors[field].contains("invisible"), "{errors:?}");
            }
        }
        let mut sub = parse_json(br#"{"firstName":"A","lastName":"B","email":"a@example.com","responses":[{"questionKey":"11","responseText":"fine\u200d"}]}"#).unwrap();
        let errors = validate(&sub, Some(&form())).unwrap_err();
        assert!(errors["q_11"].contains("U+200D"), "{errors:?}");
        // Ordinary accents, scripts and line breaks stay welcome.
        sub.answers.insert("11".into(), "Zoë\nok".into());
        sub.fields
            .insert("organization".into(), "Ærø Ltd — 東京".into());
        assert!(validate(&sub, Some(&form())).is_ok());
    }

    #[test]
    fn a_key_given_twice_is_refused_by_name() {
        let twice = parse_json(br#"{"firstName":"A","lastName":"B","email":"a@example.com","email":"evil@example.com"}"#).unwrap_err();
        assert_eq!(twice.keys().collect::<Vec<_>>(), ["email"], "{twice:?}");
        assert!(twice["email"].contains("more than once"));
        let nested = parse_json(br#"{"email":"a@example.com","responses":[{"questionKey":"1","questionKey":"2","responseText":"x"}]}"#).unwrap_err();
        assert_eq!(
            nested.keys().collect::<Vec<_>>(),
            ["responses"],
            "{nested:?}"
        );
        assert!(parse_form(b"q_1=a&q_1=b").unwrap_err().contains_key("q_1"));
        assert!(parse_json(br#"{"email":"a@example.com"} trailing"#).is_err());
        assert!(
            parse_json(br#"{"n":1.5,"b":true,"z":null,"l":[1,"x"],"email":"a@example.com"}"#)
                .is_err(),
            "non-text fields are still refused"
        );
    }

    #[test]
    fn the_honeypot_is_noticed() {
        assert!(
            parse_form(b"firstName=A&website=http%3A%2F%2Fspam")
                .unwrap()
                .honeypot
        );
        assert!(!parse_json(br#"{"website":""}"#).unwrap().honeypot);
    }
}
