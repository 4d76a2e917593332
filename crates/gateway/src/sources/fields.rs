//! A tool's post read the tool's way: its fields (key, label, value as text) and its own
//! id for the submission. Nothing here knows GoTo's fields; `mapping` does.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Kind, SourceSettings};

/// More fields than this in one post is not a sign-up form.
const MAX_FIELDS: usize = 200;
/// The longest submission id kept (the tool's; longer ones are digested).
const ID_MAX: usize = 200;
/// Unbounce's own entries in `data.json`: about the page, not the visitor's answers.
const UNBOUNCE_META: &[&str] = &[
    "ip_address",
    "page_uuid",
    "page_url",
    "page_name",
    "page_id",
    "variant",
    "time_submitted",
    "date_submitted",
];

/// What the tool says a field holds, when it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Hint {
    /// Nothing said.
    #[default]
    None,
    /// An email address field.
    Email,
    /// A phone number field.
    Phone,
}

/// One field of a post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// The tool's key for it (Typeform's `ref`, Tally's `key`, a form's name).
    pub key: String,
    /// Its label as the form shows it (the key where the tool sends none).
    pub label: String,
    /// The answer, as text (choices by their text, joined with ", ").
    #[serde(skip)]
    pub value: String,
    /// What the tool says it holds.
    #[serde(default, skip_serializing_if = "is_none")]
    pub hint: Hint,
}

fn is_none(hint: &Hint) -> bool {
    *hint == Hint::None
}

/// A post, read.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// A submission: the tool's id for it (when it has one) and its fields.
    Submission {
        id: Option<String>,
        fields: Vec<Field>,
    },
    /// Another of the tool's events (not a submission), named.
    Other(String),
}

/// Reads `body` the way `kind` writes it.
///
/// # Errors
/// Why it cannot be read, as a sentence.
pub(crate) fn parse(
    kind: Kind,
    settings: &SourceSettings,
    content_type: &str,
    body: &[u8],
) -> Result<Parsed, String> {
    let parsed = match kind {
        Kind::Typeform => typeform(&json(body)?),
        Kind::Webflow => webflow(&json(body)?),
        Kind::Tally => tally(&json(body)?),
        Kind::Unbounce => unbounce(body),
        Kind::Generic => generic(settings, content_type, body),
    }?;
    if let Parsed::Submission { fields, .. } = &parsed {
        if fields.len() > MAX_FIELDS {
            return Err(format!(
                "the post has {} fields; a sign-up has at most {MAX_FIELDS}",
                fields.len()
            ));
        }
        if fields.is_empty() {
            return Err("the post has no fields".to_owned());
        }
    }
    Ok(parsed)
}

fn json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("the body is not JSON ({e})"))
}

/// A JSON value as an answer's text: strings as they are, numbers and booleans written
/// out, lists joined with ", "; objects and nulls are no answer.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(true) => Some("Yes".to_owned()),
        Value::Bool(false) => Some("No".to_owned()),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(text).collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        }
        Value::Null | Value::Object(_) => None,
    }
}

/// An id as text, kept short: a tool's id longer than [`ID_MAX`] is stood in for by its
/// digest.
fn id_of(value: Option<&Value>) -> Option<String> {
    let id = match value? {
        Value::String(s) if !s.trim().is_empty() => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    Some(if id.len() > ID_MAX {
        digest(id.as_bytes())
    } else {
        id
    })
}

/// A short digest of `bytes`, to identify a submission by its content.
pub(crate) fn digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    crate::signing::hex(&sha2::Sha256::digest(bytes)[..16])
}

fn str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// Typeform: `form_response.answers[]`, each with its `field` (`id`, `ref`, `type`) and
/// the answer under its `type`; labels from `definition.fields[].title`; `hidden` fields.
fn typeform(body: &Value) -> Result<Parsed, String> {
    if let Some(event) = str_at(body, "event_type")
        && event != "form_response"
    {
        return Ok(Parsed::Other(event.to_owned()));
    }
    let response = body
        .get("form_response")
        .filter(|r| r.is_object())
        .ok_or("the body has no form_response")?;
    let titles: Vec<(&str, &str)> = response
        .pointer("/definition/fields")
        .and_then(Value::as_array)
        .map(|fields| {
            fields
                .iter()
                .filter_map(|f| Some((str_at(f, "id")?, str_at(f, "title")?)))
                .collect()
        })
        .unwrap_or_default();
    let mut fields = Vec::new();
    for answer in response
        .get("answers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let Some(field) = answer.get("field") else {
            continue;
        };
        let id = str_at(field, "id").unwrap_or_default();
        let key = str_at(field, "ref").unwrap_or(id).to_owned();
        let kind = str_at(answer, "type").unwrap_or_default();
        let value = match kind {
            "choice" => answer
                .get("choice")
                .and_then(|c| c.get("label").or_else(|| c.get("other")))
                .and_then(text),
            "choices" => answer.get("choices").and_then(|c| {
                let mut all: Vec<String> = c
                    .get("labels")
                    .and_then(Value::as_array)
                    .map(|l| l.iter().filter_map(text).collect())
                    .unwrap_or_default();
                all.extend(c.get("other").and_then(text));
                (!all.is_empty()).then(|| all.join(", "))
            }),
            other => answer.get(other).and_then(text),
        };
        let Some(value) = value else {
            continue;
        };
        let label = titles
            .iter()
            .find(|(i, _)| *i == id)
            .map_or_else(|| key.clone(), |(_, t)| (*t).to_owned());
        let hint = match kind {
            "email" => Hint::Email,
            "phone_number" => Hint::Phone,
            _ => Hint::None,
        };
        fields.push(Field {
            key,
            label,
            value,
            hint,
        });
    }
    if let Some(hidden) = response.get("hidden").and_then(Value::as_object) {
        for (key, value) in hidden {
            if let Some(value) = text(value) {
                fields.push(Field {
                    key: key.clone(),
                    label: key.clone(),
                    value,
                    hint: Hint::None,
                });
            }
        }
    }
    Ok(Parsed::Submission {
        id: id_of(response.get("token")),
        fields,
    })
}

/// Webflow: `payload.data` by label; `payload.schema` says which fields are email and
/// phone fields.
fn webflow(body: &Value) -> Result<Parsed, String> {
    if let Some(trigger) = str_at(body, "triggerType")
        && trigger != "form_submission"
    {
        return Ok(Parsed::Other(trigger.to_owned()));
    }
    let payload = body
        .get("payload")
        .filter(|p| p.is_object())
        .ok_or("the body has no payload")?;
    let data = payload
        .get("data")
        .and_then(Value::as_object)
        .ok_or("the payload has no data")?;
    let schema: Vec<(&str, &str)> = payload
        .get("schema")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(|f| Some((str_at(f, "fieldName")?, str_at(f, "fieldType")?)))
                .collect()
        })
        .unwrap_or_default();
    let fields = data
        .iter()
        .filter_map(|(label, value)| {
            let kind = schema
                .iter()
                .find(|(n, _)| n == label)
                .map_or("", |(_, t)| *t)
                .to_ascii_lowercase();
            Some(Field {
                key: label.clone(),
                label: label.clone(),
                value: text(value)?,
                hint: if kind.contains("email") {
                    Hint::Email
                } else if kind.contains("phone") {
                    Hint::Phone
                } else {
                    Hint::None
                },
            })
        })
        .collect();
    Ok(Parsed::Submission {
        id: id_of(payload.get("id")),
        fields,
    })
}

/// Tally: `data.fields[]` with `key`, `label`, `type` and `value`; a choice's value is
/// its options' ids, written out as their text.
fn tally(body: &Value) -> Result<Parsed, String> {
    if let Some(event) = str_at(body, "eventType")
        && event != "FORM_RESPONSE"
    {
        return Ok(Parsed::Other(event.to_owned()));
    }
    let data = body
        .get("data")
        .filter(|d| d.is_object())
        .ok_or("the body has no data")?;
    let mut fields = Vec::new();
    for field in data
        .get("fields")
        .and_then(Value::as_array)
        .ok_or("the data has no fields")?
    {
        let Some(key) = str_at(field, "key") else {
            continue;
        };
        let options: Vec<(&str, &str)> = field
            .get("options")
            .and_then(Value::as_array)
            .map(|o| {
                o.iter()
                    .filter_map(|o| Some((str_at(o, "id")?, str_at(o, "text")?)))
                    .collect()
            })
            .unwrap_or_default();
        let value = match field.get("value") {
            Some(Value::Array(ids)) if !options.is_empty() => {
                let chosen: Vec<String> = ids
                    .iter()
                    .filter_map(|id| {
                        let id = id.as_str()?;
                        Some(
                            options
                                .iter()
                                .find(|(o, _)| *o == id)
                                .map_or(id, |(_, t)| *t)
                                .to_owned(),
                        )
                    })
                    .collect();
                (!chosen.is_empty()).then(|| chosen.join(", "))
            }
            Some(value) => text(value),
            None => None,
        };
        let Some(value) = value else {
            continue;
        };
        let kind = str_at(field, "type").unwrap_or_default();
        fields.push(Field {
            key: key.to_owned(),
            label: str_at(field, "label")
                .filter(|l| !l.trim().is_empty())
                .unwrap_or(key)
                .to_owned(),
            value,
            hint: match kind {
                "INPUT_EMAIL" => Hint::Email,
                "INPUT_PHONE_NUMBER" => Hint::Phone,
                _ => Hint::None,
            },
        });
    }
    Ok(Parsed::Submission {
        id: id_of(data.get("submissionId").or_else(|| data.get("responseId"))),
        fields,
    })
}

/// Unbounce: a form whose `data.json` holds every field as a list of values; the page's
/// id, the submission's date and time and its email make the submission's id.
fn unbounce(body: &[u8]) -> Result<Parsed, String> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let data: serde_json::Map<String, Value> = match get("data.json") {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| format!("data.json is not a JSON object ({e})"))?,
        None => return Err("the form has no data.json".to_owned()),
    };
    let first = |key: &str| data.get(key).and_then(text).unwrap_or_default();
    let fields: Vec<Field> = data
        .iter()
        .filter(|(key, _)| !UNBOUNCE_META.contains(&key.as_str()))
        .filter_map(|(key, value)| {
            Some(Field {
                key: key.clone(),
                label: key.replace('_', " "),
                value: text(value)?,
                hint: Hint::None,
            })
        })
        .collect();
    let email = fields
        .iter()
        .find(|f| f.key.contains("email"))
        .map(|f| f.value.trim().to_lowercase())
        .unwrap_or_default();
    let page = get("page_id").unwrap_or_default();
    let id = format!(
        "{page}|{} {}|{email}",
        first("date_submitted"),
        first("time_submitted")
    );
    Ok(Parsed::Submission {
        id: id_of(Some(&Value::String(id))),
        fields,
    })
}

/// Any tool: a JSON object (nested objects by dotted path) or a form; its id in the
/// field the source names.
fn generic(settings: &SourceSettings, content_type: &str, body: &[u8]) -> Result<Parsed, String> {
    let mut fields = Vec::new();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        for (key, value) in form_urlencoded::parse(body) {
            match fields.iter_mut().find(|f: &&mut Field| f.key == key) {
                Some(f) => {
                    f.value.push_str(", ");
                    f.value.push_str(&value);
                }
                None => fields.push(Field {
                    key: key.to_string(),
                    label: key.to_string(),
                    value: value.into_owned(),
                    hint: Hint::None,
                }),
            }
        }
    } else if content_type.starts_with("application/json") || content_type.is_empty() {
        let body = json(body)?;
        if !body.is_object() {
            return Err("the body is not a JSON object".to_owned());
        }
        flatten("", &body, &mut fields, 0);
    } else {
        return Err(format!(
            "a generic source takes JSON or a form, not {content_type:?}"
        ));
    }
    let id = settings.id_field.as_deref().and_then(|path| {
        fields
            .iter()
            .find(|f| f.key == path)
            .map(|f| Value::String(f.value.clone()))
    });
    Ok(Parsed::Submission {
        id: id_of(id.as_ref()),
        fields,
    })
}

/// Objects' entries by dotted path (`contact.email`), labelled by their own name;
/// anything nested deeper than a form ever is, is left out.
fn flatten(prefix: &str, value: &Value, into: &mut Vec<Field>, depth: usize) {
    if into.len() > MAX_FIELDS || depth > 8 {
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, value, into, depth + 1);
            }
        }
        other => {
            if let Some(value) = text(other) {
                // Labelled by its own name, known by its whole path.
                let label = prefix.rsplit('.').next().unwrap_or(prefix);
                into.push(Field {
                    key: prefix.to_owned(),
                    label: label.to_owned(),
                    value,
                    hint: Hint::None,
                });
            }
        }
    }
}
