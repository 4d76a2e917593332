//! What the outbox holds for a registration: what GoTo gets, and, for one taken while GoTo
//! could not describe the webinar's form, the answers known only by their question's text
//! (a form builder's), matched to the form's questions at delivery, once GoTo answers.
//! A bad moment of GoTo's costs neither the registration nor its answers.

use std::collections::BTreeMap;

use g2w_goto::{NewRegistrant, QuestionResponse, QuestionType, RegistrationFields};
use serde::{Deserialize, Serialize};

/// A registration as the outbox keeps it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Payload {
    /// Answers by text still to match to the webinar's questions.
    Pending {
        registrant: NewRegistrant,
        #[serde(rename = "answersByText")]
        by_text: BTreeMap<String, String>,
    },
    /// Ready to send (every registration checked against its form, and every one older
    /// g2w stored: plain JSON of what GoTo gets).
    Ready(NewRegistrant),
}

impl Payload {
    /// `registrant`, with the answers by text it still needs matched, if any.
    pub(crate) fn new(registrant: NewRegistrant, by_text: BTreeMap<String, String>) -> Self {
        if by_text.is_empty() {
            Self::Ready(registrant)
        } else {
            Self::Pending {
                registrant,
                by_text,
            }
        }
    }

    /// The registrant with the answers by text that name a question of `form`, unless it
    /// answers that question already: a choice by its text (when it is one of the
    /// question's), anything else as text. Texts no question has are left out.
    pub(crate) fn matched(
        mut registrant: NewRegistrant,
        by_text: &BTreeMap<String, String>,
        form: &RegistrationFields,
    ) -> NewRegistrant {
        for (text, value) in by_text {
            let Some(q) = form.question_by_text(text) else {
                continue;
            };
            if registrant
                .responses
                .iter()
                .any(|r| r.question_key == q.question_key)
            {
                continue;
            }
            let value = value.trim();
            let response = match q.kind {
                QuestionType::MultipleChoice => q
                    .answers
                    .iter()
                    .find(|a| a.answer.trim().eq_ignore_ascii_case(value))
                    .map(|a| QuestionResponse {
                        question_key: q.question_key,
                        response_text: None,
                        answer_key: Some(a.answer_key),
                    }),
                _ => (!value.is_empty()).then(|| QuestionResponse {
                    question_key: q.question_key,
                    response_text: Some(value.to_owned()),
                    answer_key: None,
                }),
            };
            registrant.responses.extend(response);
        }
        registrant
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_registrants_stored_before_are_read_as_ready() {
        let old = r#"{"firstName":"Ada","lastName":"Lovelace","email":"ada@example.com","organization":"Engines"}"#;
        let Payload::Ready(r) = serde_json::from_str(old).unwrap() else {
            panic!("not ready")
        };
        assert_eq!(r.fields["organization"], "Engines");
        let pending = Payload::new(r, BTreeMap::from([("why".into(), "To learn".into())]));
        let text = serde_json::to_string(&pending).unwrap();
        assert!(matches!(
            serde_json::from_str::<Payload>(&text).unwrap(),
            Payload::Pending { .. }
        ));
    }
}
