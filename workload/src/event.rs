//! Trace events and the validation of an ingest batch, with field-level errors.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Largest accepted request body, in bytes; larger bodies get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest accepted batch, in events.
pub const MAX_BATCH_EVENTS: usize = 1000;
/// Longest accepted trace id, service or model name, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Largest accepted `attributes` object, serialized, in bytes.
pub const MAX_ATTRIBUTES_BYTES: usize = 8 * 1024;

/// Outcome of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The call succeeded.
    Ok,
    /// The call failed; counts towards the error rate.
    Error,
}

impl Status {
    /// The stored spelling: `ok` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
        }
    }
}

/// One LLM/application call, as ingested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// Unique id; a second event with the same id is a duplicate and is not counted.
    pub trace_id: String,
    /// When the call happened (RFC 3339).
    pub timestamp: DateTime<Utc>,
    /// Calling service.
    pub service: String,
    /// Model name.
    pub model: String,
    /// Call latency in milliseconds.
    pub latency_ms: f64,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// Cost in US dollars.
    pub cost_usd: f64,
    /// Outcome.
    pub status: Status,
    /// Free-form attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
}

/// One rejected field, e.g. `events[3].latency_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON path of the field.
    pub field: String,
    /// What is wrong, and what is expected.
    pub message: String,
}

/// Why a batch was rejected (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The body is not JSON.
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    /// One or more fields are invalid.
    #[error("{} invalid field(s)", .0.len())]
    Invalid(Vec<FieldError>),
}

const FIELDS: &[&str] = &[
    "trace_id",
    "timestamp",
    "service",
    "model",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "status",
    "attributes",
];

/// Parses `{"events": [...]}` and validates every event, collecting every field error
/// (at most 100 are reported).
pub fn parse_batch(body: &[u8]) -> Result<Vec<TraceEvent>, BatchError> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| BatchError::InvalidJson(e.to_string()))?;
    let mut errors = Vec::new();
    let mut err = |field: String, message: &str| {
        errors.push(FieldError {
            field,
            message: message.to_owned(),
        });
    };
    let Value::Object(root) = root else {
        err("$".into(), "expected an object {\"events\": [...]}");
        return Err(BatchError::Invalid(errors));
    };
    for key in root.keys().filter(|k| *k != "events") {
        err(key.clone(), "unknown field; expected only `events`");
    }
    let items = match root.get("events") {
        Some(Value::Array(items)) if items.is_empty() => {
            err("events".into(), "expected at least one event");
            return Err(BatchError::Invalid(errors));
        }
        Some(Value::Array(items)) if items.len() > MAX_BATCH_EVENTS => {
            err(
                "events".into(),
                &format!(
                    "expected at most {MAX_BATCH_EVENTS} events, found {}",
                    items.len()
                ),
            );
            return Err(BatchError::Invalid(errors));
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            err("events".into(), "expected an array of events");
            return Err(BatchError::Invalid(errors));
        }
        None => {
            err("events".into(), "missing; expected an array of events");
            return Err(BatchError::Invalid(errors));
        }
    };
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if let Some(e) = validate_event(i, item, &mut err) {
            events.push(e);
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        errors.truncate(100);
        Err(BatchError::Invalid(errors))
    }
}

fn validate_event(
    i: usize,
    item: &Value,
    err: &mut impl FnMut(String, &str),
) -> Option<TraceEvent> {
    let path = |f: &str| format!("events[{i}].{f}");
    let Value::Object(obj) = item else {
        err(format!("events[{i}]"), "expected an object");
        return None;
    };
    for key in obj.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        err(path(key), "unknown field");
    }
    let mut ok = true;
    let mut name = |f: &str, err: &mut dyn FnMut(String, &str)| -> String {
        match obj.get(f) {
            Some(Value::String(s)) if s.trim().is_empty() => {
                err(path(f), "expected a non-empty string");
            }
            Some(Value::String(s)) if s.chars().count() > MAX_NAME_CHARS => {
                err(
                    path(f),
                    &format!("expected at most {MAX_NAME_CHARS} characters"),
                );
            }
            Some(Value::String(s))
                if f == "trace_id" && !s.chars().all(|c| c.is_ascii_graphic()) =>
            {
                err(path(f), "expected printable ASCII without spaces");
            }
            Some(Value::String(s)) => return s.clone(),
            Some(_) => err(path(f), "expected a string"),
            None => err(path(f), "missing"),
        }
        ok = false;
        String::new()
    };
    let trace_id = name("trace_id", err);
    let service = name("service", err);
    let model = name("model", err);
    let timestamp = match obj.get("timestamp") {
        Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                err(
                    path("timestamp"),
                    "expected an RFC 3339 time such as 2025-11-05T10:30:00Z",
                );
                None
            }
        },
        Some(_) => {
            err(path("timestamp"), "expected an RFC 3339 time string");
            None
        }
        None => {
            err(path("timestamp"), "missing");
            None
        }
    };
    let mut number = |f: &str, max: f64| match obj.get(f) {
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() && (0.0..=max).contains(&v) => Some(v),
            _ => {
                err(path(f), &format!("expected a number 0..={max}"));
                None
            }
        },
        Some(_) => {
            err(path(f), "expected a number");
            None
        }
        None => {
            err(path(f), "missing");
            None
        }
    };
    let latency_ms = number("latency_ms", 86_400_000.0);
    let cost_usd = number("cost_usd", 1_000_000.0);
    let mut tokens = |f: &str| match obj.get(f) {
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) if (0..=i64::from(i32::MAX)).contains(&v) => Some(v),
            _ => {
                err(
                    path(f),
                    &format!("expected a whole number 0..={}", i32::MAX),
                );
                None
            }
        },
        Some(_) => {
            err(path(f), "expected a whole number");
            None
        }
        None => {
            err(path(f), "missing");
            None
        }
    };
    let prompt_tokens = tokens("prompt_tokens");
    let completion_tokens = tokens("completion_tokens");
    let status = match obj.get("status").and_then(Value::as_str) {
        Some("ok") => Some(Status::Ok),
        Some("error") => Some(Status::Error),
        _ => {
            err(path("status"), "expected \"ok\" or \"error\"");
            None
        }
    };
    let attributes = match obj.get("attributes") {
        None | Some(Value::Null) => Some(None),
        Some(Value::Object(m)) => {
            if Value::Object(m.clone()).to_string().len() > MAX_ATTRIBUTES_BYTES {
                err(
                    path("attributes"),
                    &format!("expected at most {MAX_ATTRIBUTES_BYTES} bytes of JSON"),
                );
                None
            } else {
                Some(Some(m.clone()))
            }
        }
        Some(_) => {
            err(path("attributes"), "expected an object");
            None
        }
    };
    Some(TraceEvent {
        trace_id,
        timestamp: timestamp?,
        service,
        model,
        latency_ms: latency_ms?,
        prompt_tokens: prompt_tokens?,
        completion_tokens: completion_tokens?,
        cost_usd: cost_usd?,
        status: status?,
        attributes: attributes?,
    })
    .filter(|_| ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({
            "trace_id": "t-1", "timestamp": "2025-11-05T10:30:00Z", "service": "chat",
            "model": "gpt-4o", "latency_ms": 120.5, "prompt_tokens": 10, "completion_tokens": 20,
            "cost_usd": 0.002, "status": "ok", "attributes": {"region": "eu"}
        })
    }

    #[test]
    fn a_valid_batch_parses() {
        let body = json!({"events": [event()]}).to_string();
        let events = parse_batch(body.as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].status, Status::Ok);
        assert_eq!(
            events[0].timestamp.to_rfc3339(),
            "2025-11-05T10:30:00+00:00"
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut bad = event();
        bad["latency_ms"] = json!(-1);
        bad["status"] = json!("fine");
        bad["timestamp"] = json!("yesterday");
        bad["trace_id"] = json!("has space");
        bad["extra"] = json!(1);
        let body = json!({"events": [event(), bad]}).to_string();
        let Err(BatchError::Invalid(errors)) = parse_batch(body.as_bytes()) else {
            panic!()
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "events[1].extra",
                "events[1].trace_id",
                "events[1].timestamp",
                "events[1].latency_ms",
                "events[1].status"
            ]
        );
    }

    #[test]
    fn envelope_errors() {
        assert!(matches!(parse_batch(b"{"), Err(BatchError::InvalidJson(_))));
        assert!(matches!(parse_batch(b"[]"), Err(BatchError::Invalid(_))));
        assert!(matches!(
            parse_batch(br#"{"events": []}"#),
            Err(BatchError::Invalid(_))
        ));
        let many = json!({"events": vec![event(); MAX_BATCH_EVENTS + 1]}).to_string();
        assert!(matches!(
            parse_batch(many.as_bytes()),
            Err(BatchError::Invalid(_))
        ));
    }
}
