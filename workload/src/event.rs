//! Trace events and the validation of an ingest batch, with field-level errors.

use chrono::{DateTime, Timelike as _, Utc};
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
/// Earliest accepted event time: 2000-01-01T00:00:00Z, as seconds since the Unix epoch.
pub const MIN_TIMESTAMP_SECS: i64 = 946_684_800;
/// How far in the future (beyond the server's clock) an event time may be, for clock skew.
pub const MAX_FUTURE_SKEW: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// Largest magnitude a JSON number in `attributes` may have unless it is a 64-bit integer:
/// beyond 2^53 a number read as a double no longer holds every integer exactly.
pub const MAX_EXACT_FLOAT: f64 = 9_007_199_254_740_992.0;

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
    pub attributes: Option<Attributes>,
}

/// An event's `attributes` object, held as its compact JSON text: parsed, an object of 8 KiB
/// of small numbers costs about 16 times that (a 32-byte value per number), and the stores
/// only keep and pass on the text (PostgreSQL parses it as `jsonb`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes(Box<str>);

impl Attributes {
    /// The compact JSON text of the object.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The object, parsed again.
    pub fn to_map(&self) -> Map<String, Value> {
        // The text was written by serde_json from an object, so it parses as one.
        serde_json::from_str(&self.0).unwrap_or_default()
    }
}

impl From<Map<String, Value>> for Attributes {
    fn from(map: Map<String, Value>) -> Self {
        Attributes(Value::Object(map).to_string().into_boxed_str())
    }
}

impl Serialize for Attributes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_map().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Map::deserialize(d).map(Attributes::from)
    }
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
    /// More than [`MAX_BATCH_EVENTS`] events (413).
    #[error("expected at most {MAX_BATCH_EVENTS} events per request, found {0}; split the batch")]
    TooMany(usize),
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

/// Parses `{"events": [...]}` and validates every event against the current time,
/// collecting every field error (at most 100 are reported).
pub fn parse_batch(body: &[u8]) -> Result<Vec<TraceEvent>, BatchError> {
    parse_batch_at(body, Utc::now())
}

/// [`parse_batch`] with the server's clock at `now` (timestamps may be at most
/// [`MAX_FUTURE_SKEW`] after it).
pub fn parse_batch_at(body: &[u8], now: DateTime<Utc>) -> Result<Vec<TraceEvent>, BatchError> {
    let root = serde_json::from_slice::<StrictValue>(body)
        .map_err(|e| BatchError::InvalidJson(e.to_string()))?
        .0;
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
            return Err(BatchError::TooMany(items.len()));
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
        if let Some(e) = validate_event(i, item, now, &mut err) {
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
    now: DateTime<Utc>,
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
            // PostgreSQL text cannot hold NUL; refusing it here keeps both stores alike.
            Some(Value::String(s)) if s.contains('\0') => {
                err(
                    path(f),
                    "expected a string without NUL (\\u0000) characters",
                );
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
            Ok(t)
                if t.timestamp() < MIN_TIMESTAMP_SECS
                    || t.with_timezone(&Utc) > now + MAX_FUTURE_SKEW =>
            {
                err(
                    path("timestamp"),
                    &format!(
                        "expected a time from 2000-01-01T00:00:00Z to {} hours after the server's clock",
                        MAX_FUTURE_SKEW.num_hours()
                    ),
                );
                None
            }
            // chrono reads `:60` as a leap second on any minute; the stores would file it in
            // different minutes (in memory the minute it names, PostgreSQL the next one).
            Ok(t) if t.nanosecond() >= 1_000_000_000 => {
                err(
                    path("timestamp"),
                    "expected seconds 00 to 59; leap seconds (:60) are not accepted",
                );
                None
            }
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
        Some(v @ Value::Object(_)) => {
            let text = v.to_string();
            if text.len() > MAX_ATTRIBUTES_BYTES {
                err(
                    path("attributes"),
                    &format!("expected at most {MAX_ATTRIBUTES_BYTES} bytes of JSON"),
                );
                None
            } else if let Some(problem) = unstorable(v) {
                err(path("attributes"), problem);
                None
            } else {
                Some(Some(Attributes(text.into_boxed_str())))
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

/// A JSON value read like [`Value`], except that an object naming a key twice is an error
/// (serde_json keeps the last one silently, so a client and the service could read one
/// body two ways).
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(n.into())
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(n.into())
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(n.into())
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(v) = map.next_value()?;
            if out.contains_key(&key) {
                let shown: String = key.chars().take(64).collect();
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate key `{shown}` in an object"
                )));
            }
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// What in `v` some store could not hold exactly, if anything: NUL in a key or string
/// (PostgreSQL's jsonb refuses it), or a number that is not a 64-bit integer and is too large
/// for a double to hold exactly (it would be stored rounded).
fn unstorable(v: &Value) -> Option<&'static str> {
    match v {
        Value::String(s) if s.contains('\0') => {
            Some("expected strings without NUL (\\u0000) characters")
        }
        Value::Number(n)
            if !(n.is_i64() || n.is_u64())
                && n.as_f64().is_none_or(|f| f.abs() > MAX_EXACT_FLOAT) =>
        {
            Some(
                "expected numbers that are 64-bit integers or within ±2^53; send larger ones as strings",
            )
        }
        Value::Array(items) => items.iter().find_map(unstorable),
        Value::Object(m) => m.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                Some("expected keys without NUL (\\u0000) characters")
            } else {
                unstorable(v)
            }
        }),
        _ => None,
    }
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
        assert_eq!(
            parse_batch(many.as_bytes()),
            Err(BatchError::TooMany(MAX_BATCH_EVENTS + 1))
        );
    }

    fn fields_of(body: &Value) -> Vec<String> {
        match parse_batch(body.to_string().as_bytes()) {
            Err(BatchError::Invalid(errors)) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn nul_characters_are_refused_where_postgres_cannot_hold_them() {
        let mut bad = event();
        bad["service"] = json!("chat\u{0}");
        bad["model"] = json!("\u{0}gpt");
        bad["attributes"] = json!({"a": {"b": ["ok", "x\u{0}y"]}});
        let mut key = event();
        key["attributes"] = json!({"k\u{0}": 1});
        assert_eq!(
            fields_of(&json!({"events": [bad, key]})),
            [
                "events[0].service",
                "events[0].model",
                "events[0].attributes",
                "events[1].attributes"
            ]
        );
    }

    #[test]
    fn attribute_numbers_are_kept_exactly_or_refused() {
        let body = r#"{"events": [EV]}"#;
        let with = |attrs: &str| {
            let mut e = event();
            e["attributes"] = json!({});
            body.replace(
                "EV",
                &e.to_string()
                    .replace("\"attributes\":{}", &format!("\"attributes\":{attrs}")),
            )
        };
        let ok = parse_batch(
            with(r#"{"i": 18446744073709551615, "n": -9223372036854775808, "f": 0.25}"#).as_bytes(),
        )
        .expect("64-bit integers and small floats are exact");
        let attrs = ok[0].attributes.as_ref().expect("attributes");
        assert_eq!(
            attrs.as_str(),
            r#"{"f":0.25,"i":18446744073709551615,"n":-9223372036854775808}"#
        );
        for big in [
            "123456789012345678901234567890",
            "[1, 1e300]",
            "-18446744073709551617",
        ] {
            let b = with(&format!(r#"{{"v": {big}}}"#));
            assert!(
                matches!(parse_batch(b.as_bytes()), Err(BatchError::Invalid(ref e)) if e[0].field == "events[0].attributes"),
                "{big}"
            );
        }
    }

    /// Issue 24, bug 4: a leap second (`:60`) is refused: the two stores would file it in
    /// different minutes.
    #[test]
    fn issue_24_leap_seconds_are_refused() {
        for ts in [
            "2016-12-31T23:59:60Z",
            "2025-11-05T10:30:60.5Z",
            "2025-11-05T12:30:60+02:00",
        ] {
            let mut e = event();
            e["timestamp"] = json!(ts);
            let body = json!({ "events": [e] }).to_string();
            assert!(
                matches!(parse_batch(body.as_bytes()), Err(BatchError::Invalid(ref e)) if e[0].field == "events[0].timestamp"),
                "{ts}"
            );
        }
    }

    /// Issue 24: a key given twice in one object is refused (not "the last one wins"), at
    /// any depth.
    #[test]
    fn issue_24_duplicate_keys_are_refused() {
        let e = event().to_string();
        for body in [
            format!(r#"{{"events": [{e}], "events": []}}"#),
            format!(
                r#"{{"events": [{}]}}"#,
                e.replacen('{', r#"{"latency_ms": 5, "#, 1)
            ),
            format!(
                r#"{{"events": [{}]}}"#,
                e.replace(r#"{"region":"eu"}"#, r#"{"region":"eu","b":{"c":1,"c":2}}"#)
            ),
        ] {
            match parse_batch(body.as_bytes()) {
                Err(BatchError::InvalidJson(m)) => assert!(m.contains("duplicate key"), "{m}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn timestamps_must_be_in_a_sane_range() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |ts: &str| {
            let mut e = event();
            e["timestamp"] = json!(ts);
            parse_batch_at(json!({"events": [e]}).to_string().as_bytes(), now)
        };
        assert!(at("2000-01-01T00:00:00Z").is_ok());
        assert!(at("2026-01-01T23:59:59Z").is_ok());
        for bad in [
            "1999-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "2026-01-02T00:00:01Z",
            "9999-12-31T23:59:59Z",
        ] {
            assert!(
                matches!(at(bad), Err(BatchError::Invalid(ref e)) if e[0].field == "events[0].timestamp"),
                "{bad}"
            );
        }
    }
}
