//! Fault injection: for requests matching a method and a path prefix, answer a status
//! (optionally with `Retry-After`), add a delay, or drop the connection, either for the
//! next N matching requests or with a probability. `traffic` applies them.

use axum::http::StatusCode;
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A fault as posted to `POST /_emulator/faults`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    /// Only requests with this method (any method when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Only requests whose path starts with this (every path when absent).
    #[serde(default)]
    pub path_prefix: String,
    /// Answer this status instead of the real response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// With `status`: a `Retry-After` header, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// With `status`: this JSON body instead of the default one for the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Wait this long (real milliseconds) before answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Close the connection without any response.
    #[serde(default)]
    pub drop: bool,
    /// Apply to the next N matching requests only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Apply to each matching request with this probability (0 < p ≤ 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
}

impl FaultSpec {
    /// Checks the spec makes sense; the error says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.status.is_none() && self.delay_ms.is_none() && !self.drop {
            return Err("a fault needs one of status, delayMs or drop".into());
        }
        if self.drop && self.status.is_some() {
            return Err("drop and status exclude each other".into());
        }
        if let Some(status) = self.status
            && !(100..=599).contains(&status)
        {
            return Err(format!("status {status} is not an HTTP status"));
        }
        if self.retry_after.is_some() && self.status.is_none() {
            return Err("retryAfter goes with status".into());
        }
        if let Some(p) = self.probability
            && !(p > 0.0 && p <= 1.0)
        {
            return Err("probability must be in (0, 1]".into());
        }
        if self.count == Some(0) {
            return Err("count must be at least 1".into());
        }
        if let Some(m) = &self.method
            && m.parse::<axum::http::Method>().is_err()
        {
            return Err(format!("{m:?} is not an HTTP method"));
        }
        Ok(())
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path.starts_with(&self.path_prefix)
    }
}

/// The active faults, in the order they were added; the first match wins.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    rules: Vec<(u64, FaultSpec)>,
    next_id: u64,
}

impl Faults {
    pub fn add(&mut self, spec: FaultSpec) -> u64 {
        self.next_id += 1;
        self.rules.push((self.next_id, spec));
        self.next_id
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    pub fn list(&self) -> Vec<Value> {
        self.rules
            .iter()
            .map(|(id, spec)| {
                let mut v = serde_json::to_value(spec).unwrap_or(Value::Null);
                v["id"] = json!(id);
                v
            })
            .collect()
    }

    /// The fault this request meets, if any; a counted fault is used up by it.
    pub fn take(&mut self, method: &str, path: &str) -> Option<FaultSpec> {
        let index = self.rules.iter().position(|(_, spec)| {
            spec.matches(method, path)
                && spec.probability.is_none_or(|p| rand::rng().random_bool(p))
        })?;
        let spec = self.rules[index].1.clone();
        if let Some(count) = &mut self.rules[index].1.count {
            *count -= 1;
            if *count == 0 {
                self.rules.remove(index);
            }
        }
        Some(spec)
    }
}

/// Status recorded in the stats for a dropped connection.
pub const DROPPED: u16 = 0;

pub(crate) fn default_body(status: StatusCode) -> Value {
    match status.as_u16() {
        429 => json!({"int_err_code": "TooManyRequests", "msg": "Too many requests"}),
        403 => json!({"int_err_code": "InvalidToken", "msg": "Invalid token passed"}),
        s => json!({
            "errorCode": if s >= 500 { "InternalError" } else { "InjectedFault" },
            "description": format!("Injected fault: {}", status.canonical_reason().unwrap_or("error")),
            "incident": 4_000_000_000_u64 + u64::from(s),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: Value) -> FaultSpec {
        serde_json::from_value(json).expect("valid fault json")
    }

    #[test]
    fn counted_faults_are_used_up_and_first_match_wins() {
        let mut faults = Faults::default();
        faults.add(spec(
            json!({"method": "POST", "pathPrefix": "/a", "status": 500, "count": 2}),
        ));
        faults.add(spec(json!({"pathPrefix": "/a", "status": 503})));
        assert!(faults.take("GET", "/b").is_none());
        assert_eq!(
            faults.take("post", "/a/x").and_then(|f| f.status),
            Some(500)
        );
        assert_eq!(
            faults.take("POST", "/a/x").and_then(|f| f.status),
            Some(500)
        );
        assert_eq!(
            faults.take("POST", "/a/x").and_then(|f| f.status),
            Some(503)
        );
        assert_eq!(faults.take("GET", "/a").and_then(|f| f.status), Some(503));
    }

    #[test]
    fn nonsense_specs_are_refused() {
        for bad in [
            json!({"pathPrefix": "/"}),
            json!({"status": 700}),
            json!({"status": 500, "drop": true}),
            json!({"drop": true, "probability": 0}),
            json!({"drop": true, "count": 0}),
            json!({"delayMs": 5, "retryAfter": 1}),
            json!({"drop": true, "method": "NOT A METHOD"}),
        ] {
            assert!(spec(bad.clone()).validate().is_err(), "accepted {bad}");
        }
        assert!(serde_json::from_value::<FaultSpec>(json!({"stauts": 500})).is_err());
    }
}
