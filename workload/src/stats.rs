//! Aggregates over a time window: the `GET /v1/stats` query, its result, and the
//! in-memory computation (PostgreSQL computes the same figures in SQL).

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{FieldError, Status, TraceEvent};

/// Longest accepted window.
pub const MAX_WINDOW: Duration = Duration::days(90);
/// Shortest accepted window.
pub const MIN_WINDOW: Duration = Duration::seconds(30);
/// Most groups in one answer: the largest by count (then name) are kept and
/// [`Stats::groups_truncated`] says some were left out.
pub const MAX_GROUPS: usize = 1000;
/// Longest cache key of a stats query (`stats:v1:`, a canonical window of at most
/// [`MAX_WINDOW_CHARS`], `:` and the grouping).
pub const MAX_CACHE_KEY_BYTES: usize = 32;
/// Longest accepted `window` text: up to 7 digits and a unit (90 days is `7776000s`).
pub const MAX_WINDOW_CHARS: usize = 8;
/// Window used when the query names none.
pub const DEFAULT_WINDOW: &str = "1h";

/// How to split the aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// One group per model.
    Model,
    /// One group per service.
    Service,
}

impl GroupBy {
    /// The query spelling (and column name).
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Model => "model",
            GroupBy::Service => "service",
        }
    }
}

/// A validated stats query.
///
/// Windows are whole minutes, so PostgreSQL answers from per-minute rollups with counts
/// exact for the window it states: from the start of the minute holding `now - window` to
/// the end of the minute holding `now` (the current minute counts in full, up to the
/// minute's end). A window is thus up to one minute longer than asked; the answer's `from`
/// and `to` say which it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    /// The window's canonical spelling, e.g. `1h` for `60m` (part of the cache key).
    pub window: String,
    /// Window start, inclusive (a minute boundary).
    pub from: DateTime<Utc>,
    /// Window end, exclusive (a minute boundary).
    pub to: DateTime<Utc>,
    /// Optional split.
    pub group_by: Option<GroupBy>,
}

impl StatsQuery {
    /// Validates query parameters `window` (`30s`, `15m`, `1h`, `7d`; default `1h`, from 30
    /// seconds to 90 days) and `group_by` (`model` or `service`), each at most once, for a
    /// window ending at `now`, widened to whole minutes.
    pub fn parse(params: &[(String, String)], now: DateTime<Utc>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut seen = HashSet::new();
        for (key, _) in params {
            if !["window", "group_by"].contains(&key.as_str()) {
                if seen.insert(key.as_str()) {
                    errors.push(FieldError {
                        field: key.chars().take(64).collect(),
                        message: "unknown parameter; expected window or group_by".into(),
                    });
                }
            } else if !seen.insert(key.as_str()) {
                errors.push(FieldError {
                    field: key.clone(),
                    message: "given more than once; expected at most one value".into(),
                });
            }
        }
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let span = parse_window(get("window").unwrap_or(DEFAULT_WINDOW));
        if span.is_none() {
            errors.push(FieldError {
                field: "window".into(),
                message: "expected a duration such as 30s, 15m, 1h or 7d (digits without a sign \
                          or leading zero, then s, m, h or d), from 30s to 90d"
                    .into(),
            });
        }
        let group_by = match get("group_by") {
            None | Some("") => None,
            Some("model") => Some(GroupBy::Model),
            Some("service") => Some(GroupBy::Service),
            Some(_) => {
                errors.push(FieldError {
                    field: "group_by".into(),
                    message: "expected model or service".into(),
                });
                None
            }
        };
        match span {
            Some(span) if errors.is_empty() => Ok(StatsQuery {
                window: canonical_window(span),
                from: start_of_minute(now - span),
                to: start_of_minute(now) + Duration::minutes(1),
                group_by,
            }),
            _ => Err(errors),
        }
    }

    /// The cache key for this query (the window is relative, so the key omits `now`): one
    /// per duration and grouping, at most [`MAX_CACHE_KEY_BYTES`] long.
    pub fn cache_key(&self) -> String {
        format!(
            "stats:v1:{}:{}",
            self.window,
            self.group_by.map_or("all", GroupBy::as_str)
        )
    }
}

/// The start of the minute holding `t` (minutes since the Unix epoch, so independent of
/// time zones, as the SQL rollups' `trace_minute`).
pub fn start_of_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    // A minute boundary within chrono's range whenever `t` is.
    DateTime::from_timestamp(t.timestamp().div_euclid(60) * 60, 0).unwrap_or(t)
}

/// A window as digits (no sign, no leading zero, at most [`MAX_WINDOW_CHARS`] in all) and a
/// unit `s`, `m`, `h` or `d`, from [`MIN_WINDOW`] to [`MAX_WINDOW`].
fn parse_window(s: &str) -> Option<Duration> {
    let (digits, unit) = s.split_at_checked(s.len().checked_sub(1)?)?;
    let well_formed = s.len() <= MAX_WINDOW_CHARS
        && !digits.starts_with('0')
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit());
    if !well_formed {
        return None;
    }
    // At most 7 digits, so the number and the durations below cannot overflow.
    let n: i64 = digits.parse().ok()?;
    let d = match unit {
        "s" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => return None,
    };
    (MIN_WINDOW..=MAX_WINDOW).contains(&d).then_some(d)
}

/// The one spelling of a window: in the largest unit that divides it (`60m` is `1h`).
fn canonical_window(d: Duration) -> String {
    let secs = d.num_seconds();
    [(86_400, 'd'), (3600, 'h'), (60, 'm'), (1, 's')]
        .into_iter()
        .find(|(unit, _)| secs % unit == 0)
        .map_or_else(
            || format!("{secs}s"),
            |(unit, c)| format!("{}{c}", secs / unit),
        )
}

/// Latency percentiles in milliseconds (continuous, as PostgreSQL's `percentile_cont`);
/// `null` when the group is empty.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

/// Aggregates of one group (or of the whole window, when `key` is `null`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GroupStats {
    /// Model or service name; `null` for the whole window.
    pub key: Option<String>,
    /// Events.
    pub count: u64,
    /// Events with status `error`.
    pub errors: u64,
    /// `errors / count`, 0 when empty.
    pub error_rate: f64,
    /// Latency percentiles.
    pub latency_ms: Percentiles,
    /// Sum of prompt tokens.
    pub prompt_tokens: i64,
    /// Sum of completion tokens.
    pub completion_tokens: i64,
    /// `prompt_tokens + completion_tokens`.
    pub total_tokens: i64,
    /// Sum of cost in US dollars.
    pub cost_usd: f64,
}

/// The `GET /v1/stats` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Window start, inclusive.
    pub from: DateTime<Utc>,
    /// Window end, exclusive.
    pub to: DateTime<Utc>,
    /// The split, if any.
    pub group_by: Option<GroupBy>,
    /// The whole window.
    pub total: GroupStats,
    /// One entry per group, by descending count then name, at most [`MAX_GROUPS`]; empty
    /// without `group_by`.
    pub groups: Vec<GroupStats>,
    /// Whether groups beyond [`MAX_GROUPS`] were left out (`total` still counts them).
    #[serde(default)]
    pub groups_truncated: bool,
}

/// `percentile_cont(p)` over sorted values: linear interpolation between closest ranks.
pub fn percentile_cont(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = p * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64))
}

#[derive(Default)]
struct Acc {
    latencies: Vec<f64>,
    errors: u64,
    prompt: i64,
    completion: i64,
    cost: f64,
}

impl Acc {
    fn add(&mut self, e: &TraceEvent) {
        self.latencies.push(e.latency_ms);
        self.errors += u64::from(e.status == Status::Error);
        self.prompt += e.prompt_tokens;
        self.completion += e.completion_tokens;
        self.cost += e.cost_usd;
    }

    fn finish(mut self, key: Option<String>) -> GroupStats {
        self.latencies.sort_unstable_by(f64::total_cmp);
        let count = self.latencies.len() as u64;
        GroupStats {
            key,
            count,
            errors: self.errors,
            error_rate: if count == 0 {
                0.0
            } else {
                self.errors as f64 / count as f64
            },
            latency_ms: Percentiles {
                p50: percentile_cont(&self.latencies, 0.5),
                p95: percentile_cont(&self.latencies, 0.95),
                p99: percentile_cont(&self.latencies, 0.99),
            },
            prompt_tokens: self.prompt,
            completion_tokens: self.completion,
            total_tokens: self.prompt + self.completion,
            cost_usd: self.cost,
        }
    }
}

/// Computes the stats of `query` over `events`.
pub fn compute<'a>(query: &StatsQuery, events: impl IntoIterator<Item = &'a TraceEvent>) -> Stats {
    let mut total = Acc::default();
    let mut groups: BTreeMap<&str, Acc> = BTreeMap::new();
    for e in events
        .into_iter()
        .filter(|e| e.timestamp >= query.from && e.timestamp < query.to)
    {
        total.add(e);
        if let Some(g) = query.group_by {
            let key = match g {
                GroupBy::Model => e.model.as_str(),
                GroupBy::Service => e.service.as_str(),
            };
            groups.entry(key).or_default().add(e);
        }
    }
    let groups = groups
        .into_iter()
        .map(|(k, acc)| acc.finish(Some(k.to_owned())))
        .collect();
    finish(query, total.finish(None), groups, false)
}

/// Assembles a [`Stats`] answer, ordering groups by descending count then name (byte order)
/// and keeping the first [`MAX_GROUPS`]; `more` says the caller already left some out.
pub fn finish(
    query: &StatsQuery,
    total: GroupStats,
    mut groups: Vec<GroupStats>,
    more: bool,
) -> Stats {
    groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    let groups_truncated = more || groups.len() > MAX_GROUPS;
    groups.truncate(MAX_GROUPS);
    Stats {
        from: query.from,
        to: query.to,
        group_by: query.group_by,
        total,
        groups,
        groups_truncated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_cont_interpolates_like_postgres() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile_cont(&v, 0.5), Some(2.5));
        assert_eq!(percentile_cont(&v, 0.0), Some(1.0));
        assert_eq!(percentile_cont(&v, 1.0), Some(4.0));
        assert!((percentile_cont(&v, 0.95).unwrap() - 3.85).abs() < 1e-9);
        assert_eq!(percentile_cont(&[], 0.5), None);
    }

    #[test]
    fn windows_are_whole_minutes_holding_the_asked_span() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T10:17:42.5Z")
            .unwrap()
            .to_utc();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        for (window, from) in [
            ("30s", "2026-12-02T10:17:00Z"),
            ("45s", "2026-12-02T10:16:00Z"),
            ("1h", "2026-12-02T09:17:00Z"),
        ] {
            let q = StatsQuery::parse(&[("window".into(), window.into())], now).unwrap();
            assert_eq!(
                (q.from, q.to),
                (at(from), at("2026-12-02T10:18:00Z")),
                "{window}"
            );
        }
        let exact = at("2026-12-02T10:18:00Z");
        let q = StatsQuery::parse(&[("window".into(), "1m".into())], exact).unwrap();
        assert_eq!(
            (q.from, q.to),
            (at("2026-12-02T10:17:00Z"), at("2026-12-02T10:19:00Z"))
        );
        assert_eq!(
            start_of_minute(at("1999-12-31T23:59:59.999Z")),
            at("1999-12-31T23:59:00Z")
        );
    }

    #[test]
    fn windows_parse() {
        assert_eq!(parse_window("15m"), Some(Duration::minutes(15)));
        assert_eq!(parse_window("90d"), Some(Duration::days(90)));
        assert_eq!(parse_window("30s"), Some(Duration::seconds(30)));
        for bad in ["", "h", "0h", "91d", "1w", "-1h", "1.5h", "29s", "1s"] {
            assert_eq!(parse_window(bad), None, "{bad}");
        }
    }

    /// Issue 24, bug 3: the cache key is the window's one canonical spelling, so other
    /// spellings of a duration cannot grow the cache or bypass it, and its length is bounded.
    #[test]
    fn issue_24_each_window_has_one_spelling_and_a_bounded_key() {
        let now = Utc::now();
        let key = |w: &str, g: Option<&str>| {
            let mut params = vec![("window".to_owned(), w.to_owned())];
            if let Some(g) = g {
                params.push(("group_by".to_owned(), g.to_owned()));
            }
            StatsQuery::parse(&params, now).map(|q| q.cache_key())
        };
        for bad in [
            "01h",
            "+1h",
            "0001h",
            &format!("{}1h", "0".repeat(500)),
            " 1h",
            "1h ",
            "1H",
        ] {
            assert!(key(bad, None).is_err(), "{bad:?} is refused");
        }
        for (a, b) in [
            ("60m", "1h"),
            ("24h", "1d"),
            ("1440m", "1d"),
            ("120s", "2m"),
        ] {
            assert_eq!(key(a, None).unwrap(), key(b, None).unwrap(), "{a} = {b}");
        }
        assert_ne!(key("61m", None).unwrap(), key("1h", None).unwrap());
        assert_eq!(key("90d", Some("service")).unwrap(), "stats:v1:90d:service");
        let longest = ["7776000s", "129599m", "2159h"]
            .iter()
            .map(|w| key(w, Some("service")).unwrap().len())
            .max();
        assert!(longest <= Some(MAX_CACHE_KEY_BYTES), "{longest:?}");
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let params: Vec<(String, String)> =
            [("window", "forever"), ("group_by", "region"), ("x", "1")]
                .map(|(k, v)| (k.into(), v.into()))
                .into();
        let errors = StatsQuery::parse(&params, Utc::now()).unwrap_err();
        let mut fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["group_by", "window", "x"]);
    }

    #[test]
    fn a_repeated_parameter_is_refused() {
        let params: Vec<(String, String)> = [("window", "1h"), ("window", "90d")]
            .map(|(k, v)| (k.into(), v.into()))
            .into();
        let errors = StatsQuery::parse(&params, Utc::now()).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "window");
    }

    #[test]
    fn groups_are_capped_keeping_the_largest() {
        let q = StatsQuery::parse(&[("group_by".into(), "model".into())], Utc::now()).unwrap();
        let events: Vec<TraceEvent> = (0..MAX_GROUPS + 5)
            .map(|i| TraceEvent {
                trace_id: format!("t{i}"),
                timestamp: Utc::now() - Duration::minutes(1),
                service: "s".into(),
                model: if i < 3 {
                    "big".into()
                } else {
                    format!("m{i:05}")
                },
                latency_ms: 1.0,
                prompt_tokens: 1,
                completion_tokens: 1,
                cost_usd: 0.0,
                status: Status::Ok,
                attributes: None,
            })
            .collect();
        let s = compute(&q, &events);
        assert_eq!(s.groups.len(), MAX_GROUPS);
        assert!(s.groups_truncated);
        assert_eq!(s.groups[0].key.as_deref(), Some("big"));
        assert_eq!(s.groups[0].count, 3);
        assert_eq!(s.total.count, (MAX_GROUPS + 5) as u64);
    }
}
