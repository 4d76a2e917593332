//! From a tool's fields to GoTo's: what the source sets (`--map email="Work e-mail"`)
//! first, then guesses from labels (`First name`, `E-mail`, `What's your company?`), and
//! every field left over offered as the answer to the webinar's question with its text.
//! The same assignment makes the submission and explains itself to people
//! (`g2w sources show`, `test`, the console), so what they read is what happens.

use g2w_goto::{QuestionKey, question_text};
use serde::Serialize;

use super::fields::{Field, Hint};
use super::{Source, SourceTarget};

use crate::intake::{DATE_FIELD, OPTIONAL_FIELDS, Submission};

/// What a mapping's left side names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// One of GoTo's standard fields.
    Field(&'static str),
    /// A series' date.
    Date,
    /// The custom question with this key.
    QuestionKey(QuestionKey),
    /// The custom question with this text.
    QuestionText(String),
}

/// GoTo's standard fields, in the order they are guessed (the email first: it is the
/// surest), each with the labels that name it.
const STANDARD: &[(&str, &[&str])] = &[
    (
        "email",
        &[
            "email",
            "e mail",
            "email address",
            "mail",
            "work email",
            "business email",
        ],
    ),
    (
        "firstName",
        &[
            "first name",
            "first",
            "given name",
            "forename",
            "vorname",
            "prenom",
            "nombre",
        ],
    ),
    (
        "lastName",
        &[
            "last name",
            "last",
            "surname",
            "family name",
            "nachname",
            "nom",
            "apellido",
        ],
    ),
    (
        "organization",
        &[
            "organization",
            "organisation",
            "company",
            "company name",
            "employer",
            "firma",
        ],
    ),
    ("jobTitle", &["job title", "title", "position", "role"]),
    (
        "phone",
        &["phone", "phone number", "telephone", "mobile", "tel"],
    ),
    ("address", &["address", "street", "street address"]),
    ("city", &["city", "town"]),
    ("state", &["state", "province", "region"]),
    (
        "zipCode",
        &["zip code", "zip", "zipcode", "postcode", "postal code"],
    ),
    ("country", &["country"]),
    (
        "questionsAndComments",
        &["questions and comments", "questions", "comments", "message"],
    ),
    ("industry", &["industry"]),
    (
        "numberOfEmployees",
        &["number of employees", "employees", "company size"],
    ),
    (
        "purchasingTimeFrame",
        &["purchasing time frame", "time frame", "timeframe"],
    ),
    ("purchasingRole", &["purchasing role"]),
];

/// Labels that name a field only when they are the whole label: inside a longer one
/// they mean something else (`Last name` is not `last`, `Email address` no `address`).
const WHOLE_ONLY: &[&str] = &[
    "first",
    "last",
    "title",
    "role",
    "mail",
    "tel",
    "state",
    "region",
    "town",
    "street",
    "address",
    "position",
    "message",
    "questions",
    "comments",
    "nom",
    "nombre",
];

/// Labels that hold a whole name, split into first and last when neither is there.
const FULL_NAME: &[&str] = &["name", "full name", "your name", "fullname"];

impl Rule {
    /// What `goto` names: a standard field (by its name or a label of it, `e-mail`), a
    /// series' `date`, a question's key, or else (or after `q:`) a question's text.
    ///
    /// # Errors
    /// An empty name.
    pub fn of(goto: &str) -> Result<Self, String> {
        let goto = goto.trim();
        if let Some(text) = goto.strip_prefix("q:") {
            let text = text.trim();
            return match text.parse::<QuestionKey>() {
                _ if text.is_empty() => Err("q: names no question".to_owned()),
                Ok(key) => Ok(Self::QuestionKey(key)),
                Err(_) => Ok(Self::QuestionText(text.to_owned())),
            };
        }
        if goto.is_empty() {
            return Err("a mapping names no GoTo field".to_owned());
        }
        let wanted = question_text(goto);
        if wanted == "date" {
            return Ok(Self::Date);
        }
        for (field, labels) in STANDARD {
            if question_text(field) == wanted || labels.iter().any(|l| question_text(l) == wanted) {
                return Ok(Self::Field(field));
            }
        }
        Ok(match goto.parse::<QuestionKey>() {
            Ok(key) => Self::QuestionKey(key),
            Err(_) => Self::QuestionText(goto.to_owned()),
        })
    }

    fn name(&self) -> String {
        match self {
            Self::Field(f) => (*f).to_owned(),
            Self::Date => "date".to_owned(),
            Self::QuestionKey(k) => format!("question {k}"),
            Self::QuestionText(t) => format!("question {t:?}"),
        }
    }
}

/// Splits `--map` text: `GOTO=TOOL` (GoTo's field, the tool's field's key or label).
///
/// # Errors
/// Text without `=`, or a side left empty.
pub fn parse_map(text: &str) -> Result<(String, String), String> {
    let (goto, tool) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not GOTO_FIELD=TOOL_FIELD"))?;
    let (goto, tool) = (goto.trim(), tool.trim().trim_matches('"'));
    if goto.is_empty() || tool.is_empty() {
        return Err(format!("{text:?} is not GOTO_FIELD=TOOL_FIELD"));
    }
    Rule::of(goto)?;
    Ok((goto.to_owned(), tool.to_owned()))
}

/// How a GoTo field got its tool field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum How {
    /// The source's mapping says so.
    Set,
    /// Guessed from the label.
    Guessed,
    /// Offered to the question with the same text.
    ByText,
    /// Nothing found.
    Missing,
}

/// One line of a mapping as people read it.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// GoTo's side: a field, `date`, or a question.
    pub goto: String,
    /// The tool's field (its label, and its key when that differs), when there is one.
    pub from: Option<String>,
    /// How.
    pub how: How,
}

/// Which field of the post each GoTo field takes (indexes into the post's fields).
struct Assignment {
    /// Each rule, the field it took, how, and (when the source sets it) the field it names.
    rules: Vec<(Rule, Option<usize>, How, Option<String>)>,
    /// Fields nothing took: offered to the questions by their text.
    rest: Vec<usize>,
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A name as matching compares it: whole (`question_text`) and word by word.
struct Spelled {
    whole: String,
    words: Vec<String>,
}

impl Spelled {
    fn of(text: &str) -> Self {
        Self {
            whole: question_text(text),
            words: words(text),
        }
    }
}

/// Each standard field's labels, spelled once for every post.
fn standard_spelled() -> &'static [Vec<(Spelled, bool)>] {
    static SPELLED: std::sync::OnceLock<Vec<Vec<(Spelled, bool)>>> = std::sync::OnceLock::new();
    SPELLED.get_or_init(|| {
        STANDARD
            .iter()
            .map(|(goto, labels)| {
                std::iter::once(*goto)
                    .chain(labels.iter().copied())
                    .map(|l| (Spelled::of(l), l != *goto && !WHOLE_ONLY.contains(&l)))
                    .collect()
            })
            .collect()
    })
}

/// A post's field as matching compares it.
struct FieldNames {
    label: Spelled,
    key: String,
}

/// How well a field looks like standard field `goto`, whose labels are `labels` (each
/// with whether it may stand inside a longer label): 1 (the tool says it is an email or
/// phone field), 2 (a label, all of it), 3 (a label inside a longer one).
fn likeness(
    goto: &str,
    labels: &[(Spelled, bool)],
    field: &Field,
    names: &FieldNames,
) -> Option<u8> {
    let hinted = match field.hint {
        Hint::Email => goto == "email",
        Hint::Phone => goto == "phone",
        Hint::None => false,
    };
    if hinted {
        return Some(1);
    }
    if labels
        .iter()
        .any(|(l, _)| l.whole == names.label.whole || l.whole == names.key)
    {
        return Some(2);
    }
    let said = &names.label.words;
    labels
        .iter()
        .filter(|(_, inside)| *inside)
        .any(|(l, _)| said.windows(l.words.len()).any(|w| w == l.words.as_slice()))
        .then_some(3)
}

/// The post's field a mapping's right side names: its key or label, exactly, else
/// written another way (`work_email` for `Work Email`).
fn named(fields: &[Field], tool: &str) -> Option<usize> {
    fields
        .iter()
        .position(|f| f.key == tool || f.label == tool)
        .or_else(|| {
            let wanted = question_text(tool);
            fields
                .iter()
                .position(|f| question_text(&f.key) == wanted || question_text(&f.label) == wanted)
        })
}

fn assign(source: &Source, fields: &[Field]) -> Assignment {
    let mut used = vec![false; fields.len()];
    let mut rules: Vec<(Rule, Option<usize>, How, Option<String>)> = Vec::new();
    for (goto, tool) in &source.settings.map {
        let Ok(rule) = Rule::of(goto) else {
            continue;
        };
        let at = named(fields, tool);
        if let Some(i) = at {
            used[i] = true;
        }
        rules.push((rule, at, How::Set, Some(tool.clone())));
    }
    let set = |rules: &[(Rule, Option<usize>, How, Option<String>)], rule: &Rule| {
        rules.iter().any(|r| &r.0 == rule)
    };
    let names: Vec<FieldNames> = fields
        .iter()
        .map(|f| FieldNames {
            label: Spelled::of(&f.label),
            key: question_text(&f.key),
        })
        .collect();
    for ((goto, _), labels) in STANDARD.iter().zip(standard_spelled()) {
        let rule = Rule::Field(goto);
        if set(&rules, &rule) {
            continue;
        }
        let best = fields
            .iter()
            .enumerate()
            .filter(|(i, _)| !used[*i])
            .filter_map(|(i, f)| Some((likeness(goto, labels, f, &names[i])?, i)))
            .min();
        match best {
            Some((_, i)) => {
                used[i] = true;
                rules.push((rule, Some(i), How::Guessed, None));
            }
            None if ["email", "firstName", "lastName"].contains(goto) => {
                rules.push((rule, None, How::Missing, None));
            }
            None => {}
        }
    }
    if matches!(source.target, SourceTarget::Series(_)) && !set(&rules, &Rule::Date) {
        let labels = ["date", "session", "webinar date", "which date"];
        let guessed = fields.iter().enumerate().position(|(i, f)| {
            !used[i]
                && labels
                    .iter()
                    .any(|l| question_text(l) == question_text(&f.label))
        });
        if let Some(i) = guessed {
            used[i] = true;
        }
        rules.push((
            Rule::Date,
            guessed,
            if guessed.is_some() {
                How::Guessed
            } else {
                How::Missing
            },
            None,
        ));
    }
    let rest = (0..fields.len()).filter(|i| !used[*i]).collect();
    Assignment { rules, rest }
}

/// The submission `source` makes of a post's `fields`. A full name is split into first
/// and last when the post has no separate ones.
pub(crate) fn map(source: &Source, fields: &[Field]) -> Submission {
    let assignment = assign(source, fields);
    let mut sub = Submission::default();
    for &i in &assignment.rest {
        let f = &fields[i];
        sub.by_text
            .entry(question_text(&f.label))
            .or_insert_with(|| f.value.clone());
        sub.by_text
            .entry(question_text(&f.key))
            .or_insert_with(|| f.value.clone());
    }
    for (rule, at, _, _) in &assignment.rules {
        let Some(value) = at.map(|i| fields[i].value.clone()) else {
            continue;
        };
        match rule {
            Rule::Field(name) => {
                sub.fields.insert((*name).to_owned(), value);
            }
            Rule::Date => {
                sub.fields.insert(DATE_FIELD.to_owned(), value);
            }
            Rule::QuestionKey(key) => {
                sub.answers.insert(key.to_string(), value);
            }
            Rule::QuestionText(text) => {
                sub.by_text.insert(question_text(text), value);
            }
        }
    }
    let has = |name: &str| sub.fields.get(name).is_some_and(|v| !v.trim().is_empty());
    if !has("firstName") && !has("lastName") {
        let full = assignment.rest.iter().map(|&i| &fields[i]).find(|f| {
            FULL_NAME
                .iter()
                .any(|l| question_text(l) == question_text(&f.label))
        });
        if let Some(full) = full {
            let value = full.value.trim();
            let (first, last) = value
                .rsplit_once(char::is_whitespace)
                .unwrap_or((value, ""));
            sub.fields
                .insert("firstName".to_owned(), first.trim().to_owned());
            sub.fields
                .insert("lastName".to_owned(), last.trim().to_owned());
        }
    }
    sub.fields
        .entry("source".to_owned())
        .or_insert_with(|| source.name.clone());
    sub
}

/// `source`'s mapping against a post's (or the latest post's) fields, for people.
#[must_use]
pub fn explain(source: &Source, fields: &[Field]) -> Vec<Line> {
    let assignment = assign(source, fields);
    let tool = |i: usize| {
        let f = &fields[i];
        if f.key == f.label || f.key.is_empty() {
            f.label.clone()
        } else {
            format!("{} ({})", f.label, f.key)
        }
    };
    let mut lines: Vec<Line> = assignment
        .rules
        .iter()
        .map(|(rule, at, how, named)| Line {
            goto: rule.name(),
            // What the source names, even before a post shows whether it is there.
            from: at.map(tool).or_else(|| named.clone()),
            how: *how,
        })
        .collect();
    // Standard fields first, in GoTo's order, then the rest as the source set them.
    let order = |goto: &str| {
        STANDARD
            .iter()
            .position(|(f, _)| *f == goto)
            .unwrap_or(STANDARD.len())
    };
    lines.sort_by_key(|l| order(&l.goto));
    lines.extend(assignment.rest.iter().map(|&i| Line {
        goto: format!("the question {:?}, if the webinar has it", fields[i].label),
        from: Some(tool(i)),
        how: How::ByText,
    }));
    lines
}

/// The standard fields people can name on the left of `--map`.
#[must_use]
pub fn standard_fields() -> Vec<&'static str> {
    let mut all: Vec<&str> = STANDARD.iter().map(|(f, _)| *f).collect();
    all.retain(|f| ["email", "firstName", "lastName"].contains(f) || OPTIONAL_FIELDS.contains(f));
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::{Kind, SourceSettings};

    fn source(map: &[(&str, &str)]) -> Source {
        Source {
            name: "spring".to_owned(),
            kind: Kind::Generic,
            target: SourceTarget::Webinar("1234".parse().unwrap()),
            secret: None,
            settings: SourceSettings {
                map: map
                    .iter()
                    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                    .collect(),
                ..SourceSettings::default()
            },
            seen: Vec::new(),
            created_at: g2w_goto::Timestamp::from_secs(0),
        }
    }

    fn field(key: &str, label: &str, value: &str) -> Field {
        Field {
            key: key.to_owned(),
            label: label.to_owned(),
            value: value.to_owned(),
            hint: Hint::None,
        }
    }

    #[test]
    fn labels_people_write_are_guessed_and_the_rest_offered_to_questions() {
        let fields = [
            field("q1", "What's your first name?", "Ada"),
            field("q2", "And your last name?", "Lovelace"),
            field("q3", "Work e-mail", "ada@example.com"),
            field("q4", "Company", "Analytical Engines"),
            field("q5", "Why are you coming?", "To learn"),
            field("q6", "IP address", "10.0.0.1"),
        ];
        let sub = map(&source(&[]), &fields);
        assert_eq!(sub.fields["firstName"], "Ada");
        assert_eq!(sub.fields["lastName"], "Lovelace");
        assert_eq!(sub.fields["email"], "ada@example.com");
        assert_eq!(sub.fields["organization"], "Analytical Engines");
        assert_eq!(sub.fields["source"], "spring");
        assert!(!sub.fields.contains_key("address"), "{sub:?}");
        assert_eq!(sub.by_text["whyareyoucoming"], "To learn");
    }

    #[test]
    fn what_the_source_sets_wins_over_guesses() {
        let fields = [
            field("email", "Email", "personal@example.com"),
            field("work", "Work e-mail address", "ada@work.example"),
            field("fn", "First name", "Ada"),
            field("ln", "Last name", "Lovelace"),
            field("why", "Reason", "To learn"),
        ];
        let sub = map(
            &source(&[
                ("email", "Work e-mail address"),
                ("Why are you coming?", "why"),
            ]),
            &fields,
        );
        assert_eq!(sub.fields["email"], "ada@work.example");
        assert_eq!(sub.by_text["whyareyoucoming"], "To learn");
        let lines = explain(&source(&[("email", "Work e-mail address")]), &fields);
        assert_eq!(lines[0].goto, "email");
        assert_eq!(lines[0].how, How::Set);
        assert_eq!(lines[1].goto, "firstName");
        assert_eq!(lines[1].how, How::Guessed);
    }

    #[test]
    fn a_full_name_is_split_when_there_are_no_first_and_last_names() {
        let fields = [
            field("name", "Name", "Ada King Lovelace"),
            field("email", "Email", "ada@example.com"),
        ];
        let sub = map(&source(&[]), &fields);
        assert_eq!(sub.fields["firstName"], "Ada King");
        assert_eq!(sub.fields["lastName"], "Lovelace");
    }

    #[test]
    fn a_missing_required_field_is_said_and_left_for_validation() {
        let fields = [field("email", "Email", "ada@example.com")];
        let lines = explain(&source(&[]), &fields);
        assert!(
            lines
                .iter()
                .any(|l| l.goto == "firstName" && l.how == How::Missing)
        );
        assert!(!map(&source(&[]), &fields).fields.contains_key("firstName"));
    }

    #[test]
    fn the_left_side_names_fields_by_name_label_or_question() {
        assert_eq!(Rule::of("E-mail"), Ok(Rule::Field("email")));
        assert_eq!(Rule::of("company"), Ok(Rule::Field("organization")));
        assert_eq!(Rule::of("date"), Ok(Rule::Date));
        assert_eq!(
            Rule::of("q:Company"),
            Ok(Rule::QuestionText("Company".to_owned()))
        );
        assert!(matches!(Rule::of("4321"), Ok(Rule::QuestionKey(_))));
        assert!(Rule::of(" ").is_err());
        assert!(parse_map("email").is_err());
        assert!(parse_map("=x").is_err());
        assert_eq!(
            parse_map("email=\"Work e-mail\"").unwrap(),
            ("email".to_owned(), "Work e-mail".to_owned())
        );
    }
}
