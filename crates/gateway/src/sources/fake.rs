//! For tests and benchmarks: a tool's post as the tool sends it (signed its way) and its
//! fixture for someone else. Never in a release.

use g2w_goto::{ExposeSecret as _, Timestamp};
use serde_json::{Value, json};

use super::{Kind, Source};
use crate::signing::{hex, hmac_sha256};

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Each tool's example in `crates/gateway/tests/fixtures/sources`, with its body's type.
pub const EXAMPLES: [(Kind, &str, &str); 5] = [
    (Kind::Typeform, "typeform.json", "application/json"),
    (Kind::Webflow, "webflow.json", "application/json"),
    (Kind::Tally, "tally.json", "application/json"),
    (
        Kind::Unbounce,
        "unbounce.form",
        "application/x-www-form-urlencoded",
    ),
    (Kind::Generic, "generic.json", "application/json"),
];

/// The headers `source`'s tool sends with `body` at `at`, signed with `secret`.
#[must_use]
pub fn signed_headers(
    source: &Source,
    secret: &str,
    body: &[u8],
    at: Timestamp,
) -> Vec<(String, String)> {
    let key = secret.as_bytes();
    match source.kind {
        Kind::Typeform => vec![(
            "Typeform-Signature".into(),
            format!("sha256={}", base64(&hmac_sha256(key, &[body]))),
        )],
        Kind::Tally => vec![("Tally-Signature".into(), base64(&hmac_sha256(key, &[body])))],
        Kind::Webflow => {
            let ms = (at.as_secs() * 1000).to_string();
            let sig = hex(&hmac_sha256(key, &[ms.as_bytes(), b":", body]));
            vec![
                ("x-webflow-timestamp".into(), ms),
                ("x-webflow-signature".into(), sig),
            ]
        }
        Kind::Generic => match &source.settings.signature {
            Some(sig) => {
                let stamp = at.as_secs().to_string();
                let mac = match &sig.timestamp_header {
                    Some(_) => {
                        hmac_sha256(key, &[stamp.as_bytes(), sig.separator.as_bytes(), body])
                    }
                    None => hmac_sha256(key, &[body]),
                };
                let digest = match sig.encoding {
                    super::Encoding::Hex => hex(&mac),
                    super::Encoding::Base64 => base64(&mac),
                };
                let mut headers = vec![(sig.header.clone(), format!("{}{digest}", sig.prefix))];
                if let Some(name) = &sig.timestamp_header {
                    headers.push((name.clone(), stamp));
                }
                headers
            }
            None => Vec::new(),
        },
        Kind::Unbounce => Vec::new(),
    }
}

/// The path `source`'s tool posts to, with `secret` where the URL carries it.
#[must_use]
pub fn path_with(source: &Source, secret: &str) -> String {
    if source.kind.signs(&source.settings) {
        format!("/in/{}", source.name)
    } else {
        format!("/in/{}/{secret}", source.name)
    }
}

/// The secret `source` holds (for the test that made it).
#[must_use]
pub fn secret_of(source: &Source) -> String {
    source
        .secret
        .as_ref()
        .map(|s| s.expose_secret().to_owned())
        .unwrap_or_default()
}

/// The tool's fixture (as in `tests/fixtures/sources`) for person `n`: another
/// submission id and email, the rest as it was.
#[must_use]
pub fn someone(kind: Kind, body: &[u8], n: usize) -> Vec<u8> {
    let email = format!("person{n}@example.com");
    let id = format!("submission-{n}");
    if kind == Kind::Unbounce {
        let mut pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
        for (k, v) in &mut pairs {
            if k == "data.json"
                && let Ok(mut data) = serde_json::from_str::<Value>(v)
            {
                data["email"] = json!([email]);
                *v = data.to_string();
            }
        }
        return form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .into_bytes();
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    match kind {
        Kind::Typeform => {
            v["form_response"]["token"] = json!(id);
            v["form_response"]["answers"][2]["email"] = json!(email);
        }
        Kind::Webflow => {
            v["payload"]["id"] = json!(id);
            v["payload"]["data"]["Email"] = json!(email);
        }
        Kind::Tally => {
            v["data"]["submissionId"] = json!(id);
            v["data"]["fields"][2]["value"] = json!(email);
        }
        Kind::Generic => {
            v["submission"]["id"] = json!(id);
            v["email"] = json!(email);
        }
        Kind::Unbounce => {}
    }
    serde_json::to_vec(&v).unwrap_or_default()
}
