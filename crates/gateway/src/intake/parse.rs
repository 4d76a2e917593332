//! Reading a body into a [`Submission`]: JSON (strictly: a key given twice is refused)
//! or an HTML form, within [`MAX_FIELDS`].

use serde_json::Value;

use super::{FieldErrors, HONEYPOT, MAX_FIELDS, Submission, one};

/// Parses a JSON body: `firstName`, …, `responses: [{questionKey, responseText |
/// answerKey | answer}]`, `source`.
///
/// # Errors
/// A body that is not a JSON object of strings, or has too many fields.
pub fn parse_json(body: &[u8]) -> Result<Submission, FieldErrors> {
    let value = strict_json(body)?;
    let Value::Object(map) = value else {
        return Err(one("body", "must be a JSON object"));
    };
    if map.len() > MAX_FIELDS {
        return Err(one("body", &format!("more than {MAX_FIELDS} fields")));
    }
    let mut sub = Submission::default();
    let mut errors = FieldErrors::new();
    for (key, value) in map {
        match (key.as_str(), value) {
            ("responses", Value::Array(items)) => {
                if items.len() > MAX_FIELDS {
                    errors.insert(
                        "responses".into(),
                        format!("more than {MAX_FIELDS} answers"),
                    );
                    continue;
                }
                for item in items {
                    let key = match item.get("questionKey") {
                        Some(Value::String(s)) => s.trim().to_owned(),
                        Some(Value::Number(n)) if n.is_u64() => n.to_string(),
                        _ => {
                            errors.insert(
                                "responses".into(),
                                "each answer needs a questionKey".into(),
                            );
                            continue;
                        }
                    };
                    let answer = ["responseText", "answerKey", "answer"]
                        .iter()
                        .find_map(|k| match item.get(*k) {
                            Some(Value::String(s)) => Some(s.clone()),
                            Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
                            _ => None,
                        });
                    match answer {
                        Some(a) => {
                            sub.answers.insert(key, a);
                        }
                        None => {
                            errors.insert(format!("q_{key}"), "the answer must be text".into());
                        }
                    }
                }
            }
            ("responses", Value::Null) => {}
            ("responses", _) => {
                errors.insert("responses".into(), "must be an array".into());
            }
            (_, Value::String(s)) => {
                if key == HONEYPOT {
                    sub.honeypot = !s.trim().is_empty();
                } else {
                    sub.fields.insert(key, s);
                }
            }
            (_, Value::Null) => {}
            (_, _) => {
                errors.insert(key, "must be text".into());
            }
        }
    }
    if errors.is_empty() {
        Ok(sub)
    } else {
        Err(errors)
    }
}

/// Parses JSON as `serde_json` does, except that a key given twice in an object is an
/// error (serde_json would keep the last silently, so what was checked and what the
/// sender meant could differ). The error names the top-level field the repeat is in.
fn strict_json(body: &[u8]) -> Result<Value, FieldErrors> {
    use serde::de::DeserializeSeed as _;
    let repeated = std::cell::RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = Strict {
        field: None,
        repeated: &repeated,
    }
    .deserialize(&mut de)
    .and_then(|value| de.end().map(|()| value));
    if let Some(field) = repeated.into_inner() {
        return Err(one(&field, "given more than once"));
    }
    parsed.map_err(|e| one("body", &format!("not valid JSON: {e}")))
}

/// A JSON value that notes the first repeated key, by the top-level field it is in.
struct Strict<'a> {
    field: Option<&'a str>,
    repeated: &'a std::cell::RefCell<Option<String>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict {
            field: self.field,
            repeated: self.repeated,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let field = self.field.unwrap_or(&key);
            let value = map.next_value_seed(Strict {
                field: Some(field),
                repeated: self.repeated,
            })?;
            if object.contains_key(&key) {
                self.repeated
                    .borrow_mut()
                    .get_or_insert_with(|| field.to_owned());
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Parses an HTML form body: standard fields by name, `q_<questionKey>` answers.
///
/// # Errors
/// Too many fields, or a field given twice.
pub fn parse_form(body: &[u8]) -> Result<Submission, FieldErrors> {
    let mut sub = Submission::default();
    let mut count = 0;
    for (key, value) in form_urlencoded::parse(body) {
        count += 1;
        if count > MAX_FIELDS {
            return Err(one("body", &format!("more than {MAX_FIELDS} fields")));
        }
        let key = key.into_owned();
        let value = value.into_owned();
        if key == HONEYPOT {
            sub.honeypot |= !value.trim().is_empty();
        } else if let Some(q) = key.strip_prefix("q_") {
            if sub.answers.insert(q.to_owned(), value).is_some() {
                return Err(one(&key, "given more than once"));
            }
        } else if sub.fields.insert(key.clone(), value).is_some() {
            return Err(one(&key, "given more than once"));
        }
    }
    Ok(sub)
}
