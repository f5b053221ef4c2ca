//! Service level objectives: one typed value per objective (objective, window, indicator)
//! in the environment file, and the burn-rate alert policy both platforms render from it.
//!
//! - [`prometheus`]: recording rules for the error ratio over every window and the
//!   multi-window, multi-burn-rate alerts, as a `PrometheusRule` (Kubernetes stacks).
//! - [`cloudwatch`]: the same alerts as CloudWatch metric-math alarms over the load
//!   balancer's counts, each pair joined by a composite alarm (ECS stacks).
//!
//! The policy is the one of Google's SRE workbook ("Alerting on SLOs", multiwindow,
//! multi-burn-rate alerts): page when 2% of a 30-day budget burns in an hour (14.4x over
//! 1h, confirmed over 5m) or 5% in six hours (6x over 6h and 30m); open a ticket when 10%
//! burns in a day (3x over 1d and 2h) or in three days (1x over 3d and 6h). A burn rate of
//! `f` means the error ratio is `f × (1 − objective)`: at that rate the budget of the whole
//! window lasts `window / f`.

pub mod cloudwatch;
pub mod prometheus;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::env::check::Problems;

/// One service level objective of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Name, e.g. `availability`: the `slo` label of every rule, alert and alarm it makes;
    /// unique within the service.
    #[schemars(regex(pattern = r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$"))]
    pub name: String,
    /// Share of good events promised, in percent, e.g. `99.9` (an error budget of 0.1% of
    /// the requests in the window). Above 93.06 so that the fastest alert (14.4 times the
    /// budget) can fire, and below 100 (no budget at all).
    pub objective_percent: f64,
    /// Length of the rolling window the objective holds over, in days, e.g. `30`. At least
    /// 7: the slowest alert watches 3 days.
    #[schemars(range(min = 7, max = 90))]
    pub window_days: u32,
    /// What makes a request good.
    pub indicator: Indicator,
}

/// What makes a request good.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Indicator {
    /// Answered without an error: good = all requests − those with an error status.
    Availability {
        /// Which responses are errors. Default: `server` (5xx).
        #[serde(default)]
        errors: ErrorClass,
    },
    /// Answered within a latency threshold. `objective_percent` is then the percentile:
    /// `95` with `threshold_seconds: 0.5` reads "p95 <= 500 ms" (95% of the requests
    /// within 0.5 s).
    Latency {
        /// The threshold in seconds; it must be the upper bound of one of the service's
        /// latency histogram buckets, or the share of requests within it cannot be counted.
        threshold_seconds: f64,
    },
}

/// Which HTTP responses count against an availability objective.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Server errors (5xx): what the service owes.
    #[default]
    Server,
    /// Client and server errors (4xx and 5xx): what a load test counts as failed requests.
    ClientAndServer,
}

impl ErrorClass {
    /// The status classes counted, e.g. `["5"]`.
    pub fn classes(self) -> &'static [u8] {
        match self {
            ErrorClass::Server => &[5],
            ErrorClass::ClientAndServer => &[4, 5],
        }
    }
}

/// A window an error ratio is computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Window {
    /// 5 minutes.
    M5,
    /// 30 minutes.
    M30,
    /// 1 hour.
    H1,
    /// 2 hours.
    H2,
    /// 6 hours.
    H6,
    /// 1 day.
    D1,
    /// 3 days.
    D3,
}

/// Every window the policy reads, shortest first: one recording rule (or alarm) each.
pub const WINDOWS: [Window; 7] = [
    Window::M5,
    Window::M30,
    Window::H1,
    Window::H2,
    Window::H6,
    Window::D1,
    Window::D3,
];

impl Window {
    /// Length in seconds.
    pub fn seconds(self) -> u32 {
        match self {
            Window::M5 => 300,
            Window::M30 => 1_800,
            Window::H1 => 3_600,
            Window::H2 => 7_200,
            Window::H6 => 21_600,
            Window::D1 => 86_400,
            Window::D3 => 259_200,
        }
    }

    /// The PromQL duration (`5m`, `1h`, `3d`), also used in names and text.
    pub fn label(self) -> &'static str {
        match self {
            Window::M5 => "5m",
            Window::M30 => "30m",
            Window::H1 => "1h",
            Window::H2 => "2h",
            Window::H6 => "6h",
            Window::D1 => "1d",
            Window::D3 => "3d",
        }
    }
}

/// How urgently an alert needs a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Wake someone up: the budget goes within days.
    Page,
    /// Look during working hours.
    Ticket,
}

impl Severity {
    /// The `severity` label value.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

/// One alert of the policy: the error ratio is above `factor × budget` over both windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnAlert {
    /// Severity.
    pub severity: Severity,
    /// Burn rate: multiples of the budget's even spend.
    pub factor: f64,
    /// The window that measures the burn.
    pub long: Window,
    /// The window that confirms it still burns (one twelfth of the long one), so the alert
    /// resets soon after the errors stop.
    pub short: Window,
}

/// The SRE workbook's multiwindow, multi-burn-rate policy, most urgent first.
pub const POLICY: [BurnAlert; 4] = [
    BurnAlert {
        severity: Severity::Page,
        factor: 14.4,
        long: Window::H1,
        short: Window::M5,
    },
    BurnAlert {
        severity: Severity::Page,
        factor: 6.0,
        long: Window::H6,
        short: Window::M30,
    },
    BurnAlert {
        severity: Severity::Ticket,
        factor: 3.0,
        long: Window::D1,
        short: Window::H2,
    },
    BurnAlert {
        severity: Severity::Ticket,
        factor: 1.0,
        long: Window::D3,
        short: Window::H6,
    },
];

impl Slo {
    /// The objective as a ratio, e.g. `0.999`.
    pub fn objective(&self) -> f64 {
        self.objective_percent / 100.0
    }

    /// The error budget as a ratio of the requests, e.g. `0.001` for 99.9%.
    pub fn error_budget(&self) -> f64 {
        round((100.0 - self.objective_percent) / 100.0)
    }

    /// The error ratio above which `alert` fires: `factor × (1 − objective)`.
    pub fn threshold(&self, alert: &BurnAlert) -> f64 {
        round(alert.factor * self.error_budget())
    }

    /// Percent of the whole window's budget that `alert`'s burn spends over its long
    /// window, e.g. `2` for 14.4x over 1h of 30 days.
    pub fn budget_spent_percent(&self, alert: &BurnAlert) -> f64 {
        round(
            alert.factor * f64::from(alert.long.seconds())
                / (f64::from(self.window_days) * 86_400.0)
                * 100.0,
        )
    }

    /// One line for people: how much budget burns and how soon it is gone, e.g.
    /// `14.4x burn: 2% of the 30-day error budget in 1h (all of it in 2.1 days)`.
    pub fn burn_summary(&self, alert: &BurnAlert) -> String {
        let hours = f64::from(self.window_days) * 24.0 / alert.factor;
        let gone = if hours < 48.0 {
            format!("{} hours", num_places(hours, 1))
        } else {
            format!("{} days", num_places(hours / 24.0, 1))
        };
        format!(
            "{}x burn: {}% of the {}-day error budget in {} (all of it in {gone})",
            num(alert.factor),
            num_places(self.budget_spent_percent(alert), 2),
            self.window_days,
            alert.long.label(),
        )
    }

    /// What the objective promises, e.g. `99.9% of requests without a server error over 30 days`.
    pub fn promise(&self) -> String {
        let what = match &self.indicator {
            Indicator::Availability {
                errors: ErrorClass::Server,
            } => "without a server error (5xx)".to_owned(),
            Indicator::Availability {
                errors: ErrorClass::ClientAndServer,
            } => "without an error (4xx or 5xx)".to_owned(),
            Indicator::Latency { threshold_seconds } => {
                format!("within {} s", num(*threshold_seconds))
            }
        };
        format!(
            "{}% of requests {what} over {} days",
            num(self.objective_percent),
            self.window_days
        )
    }
}

/// Rounds away floating-point noise (`0.0010000000000000009` → `0.001`).
fn round(x: f64) -> f64 {
    (x * 1e10).round() / 1e10
}

/// `x` without trailing zeros: `0.001`, `14.4`, `2`.
pub fn num(x: f64) -> String {
    num_places(x, 10)
}

/// `x` with at most `places` decimals, without trailing zeros.
pub fn num_places(x: f64, places: usize) -> String {
    let s = format!("{x:.places$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// Whether, and how, a platform measures latency objectives.
#[derive(Debug, Clone, Copy)]
pub enum LatencySupport<'a> {
    /// The service's latency histogram has these bucket upper bounds (seconds).
    Buckets(&'a [f64]),
    /// The platform cannot count requests within a threshold; the reason, for the error.
    Unsupported(&'static str),
}

/// The smallest objective whose fastest alert can still fire: `14.4 × budget < 100%`.
pub const MIN_OBJECTIVE_PERCENT: f64 = 100.0 - 100.0 / 14.4;

/// Semantic checks of `slos` (at JSON pointer `ptr`): objectives, unique names, latency
/// thresholds on a histogram bucket (or refused where latency cannot be measured).
pub(crate) fn check(slos: &[Slo], latency: LatencySupport<'_>, ptr: &str, out: &mut Problems) {
    for (i, slo) in slos.iter().enumerate() {
        let at = format!("{ptr}/{i}");
        if slos[..i].iter().any(|s| s.name == slo.name) {
            out.push((
                format!("{at}/name"),
                format!(
                    "expected a name unique among the service's SLOs, found {:?} twice",
                    slo.name
                ),
            ));
        }
        let o = slo.objective_percent;
        if !(o.is_finite() && o > MIN_OBJECTIVE_PERCENT && o < 100.0) {
            out.push((
                format!("{at}/objective_percent"),
                format!(
                    "expected a percentage above {} and below 100 (14.4 times the error budget must stay below 100% for the page alert to be able to fire; 100 leaves no budget), found {}",
                    num_places(MIN_OBJECTIVE_PERCENT, 2),
                    num(o)
                ),
            ));
        } else if (o * 1000.0).fract().abs() > 1e-6 && (o * 1000.0).fract().abs() < 1.0 - 1e-6 {
            out.push((
                format!("{at}/objective_percent"),
                format!("expected at most 3 decimals (e.g. 99.995), found {o}"),
            ));
        }
        if let Indicator::Latency { threshold_seconds } = slo.indicator {
            let ptr = format!("{at}/indicator/latency/threshold_seconds");
            match latency {
                LatencySupport::Unsupported(why) => out.push((ptr, why.to_owned())),
                LatencySupport::Buckets(_)
                    if !threshold_seconds.is_finite() || threshold_seconds <= 0.0 =>
                {
                    out.push((
                        ptr,
                        format!("expected more than 0 seconds, found {threshold_seconds}"),
                    ))
                }
                LatencySupport::Buckets(buckets) => {
                    if !buckets.iter().any(|b| (b - threshold_seconds).abs() < 1e-9) {
                        let list: Vec<String> = buckets.iter().map(|b| num(*b)).collect();
                        out.push((
                            ptr,
                            format!(
                                "expected the upper bound of one of the service's latency histogram buckets ({} s), found {}: requests within any other threshold cannot be counted",
                                list.join(", "),
                                num(threshold_seconds)
                            ),
                        ));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo(objective_percent: f64, window_days: u32) -> Slo {
        Slo {
            name: "availability".into(),
            objective_percent,
            window_days,
            indicator: Indicator::Availability {
                errors: ErrorClass::Server,
            },
        }
    }

    #[test]
    fn thresholds_are_factor_times_budget() {
        let s = slo(99.9, 30);
        let got: Vec<f64> = POLICY.iter().map(|a| s.threshold(a)).collect();
        assert_eq!(got, [0.0144, 0.006, 0.003, 0.001]);
        let s = slo(99.0, 30);
        let got: Vec<f64> = POLICY.iter().map(|a| s.threshold(a)).collect();
        assert_eq!(got, [0.144, 0.06, 0.03, 0.01]);
        let s = slo(95.0, 30);
        assert_eq!(s.threshold(&POLICY[0]), 0.72);
        assert_eq!(s.error_budget(), 0.05);
    }

    #[test]
    fn budget_spent_matches_the_workbook() {
        let s = slo(99.9, 30);
        let got: Vec<f64> = POLICY.iter().map(|a| s.budget_spent_percent(a)).collect();
        assert_eq!(got, [2.0, 5.0, 10.0, 10.0]);
        assert_eq!(
            s.burn_summary(&POLICY[0]),
            "14.4x burn: 2% of the 30-day error budget in 1h (all of it in 2.1 days)"
        );
        assert_eq!(
            s.burn_summary(&POLICY[3]),
            "1x burn: 10% of the 30-day error budget in 3d (all of it in 30 days)"
        );
        // A shorter window: the same burn spends a larger share.
        let week = slo(99.9, 7);
        assert_eq!(week.budget_spent_percent(&POLICY[0]), 8.5714285714);
        assert!(week.burn_summary(&POLICY[0]).contains("8.57% of the 7-day"));
        assert!(
            week.burn_summary(&POLICY[0])
                .ends_with("(all of it in 11.7 hours)")
        );
    }

    #[test]
    fn short_windows_are_a_twelfth_of_the_long_ones() {
        for a in POLICY {
            assert_eq!(a.long.seconds(), 12 * a.short.seconds(), "{a:?}");
        }
    }

    #[test]
    fn numbers_print_without_noise() {
        assert_eq!(num(1.0 - 0.999), "0.001");
        assert_eq!(num(14.4), "14.4");
        assert_eq!(num(2.0), "2");
        assert_eq!(num(0.75), "0.75");
    }

    #[test]
    fn checks_refuse_bad_objectives_names_and_thresholds() {
        let latency = |t: f64| Slo {
            name: "latency".into(),
            objective_percent: 95.0,
            window_days: 30,
            indicator: Indicator::Latency {
                threshold_seconds: t,
            },
        };
        let run = |slos: &[Slo], l: LatencySupport<'_>| {
            let mut out = Problems::new();
            check(slos, l, "/s", &mut out);
            out
        };
        let buckets = LatencySupport::Buckets(&[0.25, 0.5, 1.0]);
        assert!(run(&[slo(99.9, 30), latency(0.5)], buckets).is_empty());
        for bad in [100.0, 0.0, 90.0, -1.0, f64::NAN, 99.12345] {
            let out = run(&[slo(bad, 30)], buckets);
            assert_eq!(out.len(), 1, "{bad}: {out:?}");
            assert_eq!(out[0].0, "/s/0/objective_percent");
        }
        let out = run(&[slo(99.9, 30), slo(99.0, 30)], buckets);
        assert_eq!(out[0].0, "/s/1/name");
        let out = run(&[latency(0.8)], buckets);
        assert_eq!(out[0].0, "/s/0/indicator/latency/threshold_seconds");
        assert!(out[0].1.contains("0.25, 0.5, 1 s"), "{}", out[0].1);
        let out = run(&[latency(0.5)], LatencySupport::Unsupported("not here"));
        assert_eq!(out[0].1, "not here");
        assert_eq!(run(&[latency(0.0)], buckets).len(), 1);
    }
}
