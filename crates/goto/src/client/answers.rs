//! GoTo's answers: bodies read within a limit, decoded with the failing field named,
//! and error answers turned into the [`GotoError`] a caller acts on.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{GotoError, InvalidField, Result};
use crate::keys::RegistrantKey;
use crate::transport::describe_transport;

/// The largest body read from GoTo; anything bigger is refused, not buffered.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// The part of an error answer GoTo sends, in either of its two shapes.
#[derive(Debug, Default)]
struct ErrorBody {
    code: Option<String>,
    message: String,
    registrant_key: Option<RegistrantKey>,
    join_url: Option<String>,
    invalid_fields: Vec<InvalidField>,
    invalid_token: bool,
}

fn parse_error_body(bytes: &[u8]) -> ErrorBody {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(bytes) else {
        return ErrorBody {
            message: String::from_utf8_lossy(bytes).chars().take(300).collect(),
            ..ErrorBody::default()
        };
    };
    let text = |k: &str| map.get(k).and_then(Value::as_str).map(str::to_owned);
    let invalid_fields = map
        .get("invalidFields")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| match item {
                    Value::String(name) => Some(InvalidField {
                        field: name.clone(),
                        question_key: None,
                        reason: None,
                    }),
                    Value::Object(o) => Some(InvalidField {
                        field: o
                            .get("field")
                            .and_then(Value::as_str)
                            .unwrap_or("?")
                            .to_owned(),
                        question_key: o
                            .get("questionKey")
                            .and_then(|k| serde_json::from_value(k.clone()).ok()),
                        reason: o.get("reason").and_then(Value::as_str).map(str::to_owned),
                    }),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    ErrorBody {
        invalid_token: text("int_err_code").as_deref() == Some("InvalidToken"),
        code: text("errorCode").or_else(|| text("int_err_code")),
        message: text("description")
            .or_else(|| text("msg"))
            .unwrap_or_default(),
        registrant_key: map
            .get("registrantKey")
            .and_then(|k| serde_json::from_value(k.clone()).ok()),
        join_url: text("joinUrl"),
        invalid_fields,
    }
}

pub(super) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Turns a non-2xx answer into the error a caller can act on.
pub(super) fn classify(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    registering: bool,
) -> GotoError {
    let e = parse_error_body(body);
    match status.as_u16() {
        401 => GotoError::InvalidToken,
        403 if e.invalid_token => GotoError::InvalidToken,
        403 => GotoError::Forbidden {
            code: e.code,
            message: e.message,
        },
        404 => GotoError::NotFound { message: e.message },
        409 if registering => GotoError::AlreadyRegistered {
            registrant_key: e.registrant_key,
            join_url: e.join_url,
        },
        400 if registering || e.code.as_deref() == Some("RegistrationInvalid") => {
            GotoError::RegistrationInvalid {
                fields: e.invalid_fields,
                message: e.message,
            }
        }
        429 => GotoError::RateLimited {
            retry_after: retry_after(headers),
        },
        s if s >= 500 => GotoError::Upstream {
            status: s,
            message: e.message,
        },
        s => GotoError::BadRequest {
            status: s,
            code: e.code,
            message: e.message,
        },
    }
}

/// Parses a body, naming the field that failed.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| GotoError::Decode {
        path: format!("{what}.{}", e.path()),
        message: e.inner().to_string(),
    })
}

pub(crate) fn to_json(value: &impl Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| GotoError::Decode {
        path: "request".into(),
        message: e.to_string(),
    })
}

pub(super) async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(GotoError::Decode {
                        path: "body".into(),
                        message: format!("answer larger than {MAX_BODY} bytes"),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(GotoError::Transport(describe_transport(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Registrant;

    fn headers() -> reqwest::header::HeaderMap {
        reqwest::header::HeaderMap::new()
    }

    #[test]
    fn answers_map_to_the_errors_callers_decide_on() {
        let e = classify(
            StatusCode::FORBIDDEN,
            &headers(),
            br#"{"int_err_code":"InvalidToken","msg":"Invalid token passed"}"#,
            false,
        );
        assert!(matches!(e, GotoError::InvalidToken));
        let e = classify(
            StatusCode::FORBIDDEN,
            &headers(),
            br#"{"errorCode":"RegistrationLimitReached","description":"full"}"#,
            true,
        );
        assert!(
            matches!(e, GotoError::Forbidden { ref code, .. } if code.as_deref() == Some("RegistrationLimitReached"))
        );
        let e = classify(StatusCode::CONFLICT, &headers(), br#"{"errorCode":"DuplicateRegistrant","registrantKey":9007199254740993,"joinUrl":"j"}"#, true);
        assert!(
            matches!(e, GotoError::AlreadyRegistered { registrant_key: Some(k), .. } if k.get() == 9_007_199_254_740_993)
        );
        let e = classify(StatusCode::BAD_REQUEST, &headers(), br#"{"errorCode":"RegistrationInvalid","invalidFields":["email",{"field":"responses","questionKey":"7","reason":"required"}]}"#, true);
        let GotoError::RegistrationInvalid { fields, .. } = e else {
            panic!("{e:?}")
        };
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[1].question_key.map(crate::QuestionKey::get), Some(7));
        let mut h = headers();
        h.insert(reqwest::header::RETRY_AFTER, "3".parse().unwrap());
        assert!(
            matches!(classify(StatusCode::TOO_MANY_REQUESTS, &h, b"", false), GotoError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(3))
        );
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, &headers(), b"<html>", false),
            GotoError::Upstream { status: 502, .. }
        ));
        assert!(matches!(
            classify(StatusCode::NOT_FOUND, &headers(), b"", false),
            GotoError::NotFound { .. }
        ));
        assert!(matches!(
            classify(StatusCode::METHOD_NOT_ALLOWED, &headers(), b"{}", false),
            GotoError::BadRequest { status: 405, .. }
        ));
    }

    #[test]
    fn decode_errors_name_the_field() {
        let e = decode::<Vec<Registrant>>(
            br#"[{"registrantKey":1,"email":"a"},{"registrantKey":1.5,"email":"b"}]"#,
            "registrants",
        )
        .unwrap_err();
        let GotoError::Decode { path, .. } = e else {
            panic!()
        };
        assert_eq!(path, "registrants.[1].registrantKey");
    }
}
