//! One rollout setting for both platforms: how a new version takes traffic (all at once, a
//! canary, linear steps, or several canary steps), and the analysis that rolls it back.
//!
//! The environment file gives a [`Rollout`]; [`Strategy::schedule`] turns it into the traffic
//! schedule (weight, then wait) that both renderers follow: ECS through a CodeDeploy
//! deployment config ([`Strategy::codedeploy`]), Kubernetes through an Argo Rollouts canary
//! (`setWeight`/`pause` steps). A schedule CodeDeploy cannot express is an error naming the
//! key, never an approximation.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::env::check::Problems;
use crate::env::file::Tier;
use crate::env::load::is_prod;

/// Most minutes one wait may last (CodeDeploy's limit for a canary or linear interval, and
/// the two days a deployment may stay open).
pub const MAX_WAIT_MINUTES: u32 = 2880;

/// Minutes without data a deployment's analysis tolerates, on both platforms: the next
/// one stops it (Argo Rollouts: that many inconclusive measurements, one a minute, then
/// the rollout pauses; CodeDeploy: the no-traffic alarm goes to ALARM after one more
/// minute without requests, which stops and rolls back the deployment). Two minutes
/// cover the first scrapes of a canary that has just taken traffic.
pub const ANALYSIS_NO_DATA_MINUTES: u32 = 2;

/// How a new version takes traffic, and what rolls it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// The traffic schedule.
    pub strategy: Strategy,
    /// Health thresholds that abort the rollout and return traffic to the old version.
    /// Required for progressive delivery on Kubernetes (Argo Rollouts has no other signal);
    /// on ECS the deployment group's alarms roll back, and these add two more.
    #[serde(default)]
    pub analysis: Option<Analysis>,
}

/// The traffic schedule of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Strategy {
    /// Everything at once (not in a prod-tier environment).
    AllAtOnce,
    /// `percent` of the traffic first, the rest after `wait_minutes`.
    Canary {
        /// Share of the traffic the new version takes first, 1..=99.
        percent: u32,
        /// Minutes before the rest moves, 1..=2880.
        wait_minutes: u32,
    },
    /// `percent` more of the traffic every `every_minutes` until all of it.
    Linear {
        /// Share added at each step, 1..=99.
        percent: u32,
        /// Minutes between steps, 1..=2880.
        every_minutes: u32,
    },
    /// Several canary steps, each a share of the traffic held for some minutes; all of it
    /// moves after the last (Kubernetes only: CodeDeploy shifts once or linearly).
    Steps(Vec<Step>),
}

/// One step of [`Strategy::Steps`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Share of the traffic on the new version during this step, 1..=99, rising.
    pub percent: u32,
    /// Minutes the step holds before the next one, 1..=2880.
    pub wait_minutes: u32,
}

/// Health thresholds a rollout must hold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Analysis {
    /// Least share of the new version's requests answered without a 5xx, percent
    /// (e.g. `99.5`), above 0 and below 100.
    pub success_rate_percent: f64,
    /// Most 99th-percentile latency of the new version's requests, milliseconds.
    pub p99_latency_ms: u32,
}

/// One entry of a schedule: the new version's share of the traffic, held for some minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shift {
    /// Percent of the traffic on the new version.
    pub percent: u32,
    /// Minutes before the next shift (0 for the last, which is always 100 %).
    pub wait_minutes: u32,
}

/// What CodeDeploy runs for a schedule (an ECS deployment config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeDeployShift {
    /// `CodeDeployDefault.ECSAllAtOnce`.
    AllAtOnce,
    /// `TimeBasedCanary`: percentage, then interval minutes.
    Canary {
        /// First share.
        percent: u32,
        /// Minutes before the rest.
        interval: u32,
    },
    /// `TimeBasedLinear`: percentage every interval minutes.
    Linear {
        /// Share per step.
        percent: u32,
        /// Minutes between steps.
        interval: u32,
    },
}

impl CodeDeployShift {
    /// The schedule CodeDeploy follows for this config.
    pub fn schedule(self) -> Vec<Shift> {
        match self {
            Self::AllAtOnce => Strategy::AllAtOnce.schedule(),
            Self::Canary { percent, interval } => Strategy::Canary {
                percent,
                wait_minutes: interval,
            }
            .schedule(),
            Self::Linear { percent, interval } => Strategy::Linear {
                percent,
                every_minutes: interval,
            }
            .schedule(),
        }
    }
}

const ALL: Shift = Shift {
    percent: 100,
    wait_minutes: 0,
};

impl Strategy {
    /// The traffic schedule: each shift's weight and wait, ending with all of the traffic.
    /// Call [`Rollout::check`] first: a zero linear step gives just the final shift.
    pub fn schedule(&self) -> Vec<Shift> {
        let mut out = Vec::new();
        match *self {
            Self::AllAtOnce => {}
            Self::Canary {
                percent,
                wait_minutes,
            } => out.push(Shift {
                percent,
                wait_minutes,
            }),
            Self::Linear {
                percent,
                every_minutes,
            } => {
                if percent > 0 {
                    out.extend((1..).map(|k| k * percent).take_while(|p| *p < 100).map(
                        |percent| Shift {
                            percent,
                            wait_minutes: every_minutes,
                        },
                    ));
                }
            }
            Self::Steps(ref steps) => out.extend(steps.iter().map(|s| Shift {
                percent: s.percent,
                wait_minutes: s.wait_minutes,
            })),
        }
        out.push(ALL);
        out
    }

    /// The CodeDeploy config with exactly this schedule, or why there is none.
    pub fn codedeploy(&self) -> Result<CodeDeployShift, String> {
        match *self {
            Self::AllAtOnce => Ok(CodeDeployShift::AllAtOnce),
            Self::Canary {
                percent,
                wait_minutes,
            } => Ok(CodeDeployShift::Canary {
                percent,
                interval: wait_minutes,
            }),
            Self::Linear {
                percent,
                every_minutes,
            } => Ok(CodeDeployShift::Linear {
                percent,
                interval: every_minutes,
            }),
            Self::Steps(ref steps) => {
                let schedule = self.schedule();
                let first = steps.first().copied().unwrap_or(Step {
                    percent: 100,
                    wait_minutes: 0,
                });
                [
                    CodeDeployShift::Canary {
                        percent: first.percent,
                        interval: first.wait_minutes,
                    },
                    CodeDeployShift::Linear {
                        percent: first.percent,
                        interval: first.wait_minutes,
                    },
                ]
                .into_iter()
                .find(|c| c.schedule() == schedule)
                .ok_or_else(|| {
                    format!(
                        "CodeDeploy shifts traffic once (canary) or in equal steps at equal intervals (linear); these {} steps are neither: use canary or linear on an ECS stack",
                        steps.len()
                    )
                })
            }
        }
    }
}

impl Rollout {
    /// Checks bounds and order; `ptr` is the JSON pointer of the value. `kubernetes` says
    /// whether it drives an Argo Rollout (which needs an analysis).
    pub fn check(&self, tier: Tier, kubernetes: bool, ptr: &str, out: &mut Problems) {
        let share = |v: u32, at: String, out: &mut Problems| {
            if !(1..=99).contains(&v) {
                out.push((at, format!("expected a percentage 1..=99, found {v}")));
            }
        };
        let wait = |v: u32, at: String, out: &mut Problems| {
            if !(1..=MAX_WAIT_MINUTES).contains(&v) {
                out.push((
                    at,
                    format!("expected 1..={MAX_WAIT_MINUTES} minutes, found {v}"),
                ));
            }
        };
        let s = format!("{ptr}/strategy");
        match &self.strategy {
            Strategy::AllAtOnce => {
                if is_prod(tier) {
                    out.push((
                        s,
                        "expected canary, linear or steps in a prod-tier environment, found all_at_once"
                            .into(),
                    ));
                }
            }
            Strategy::Canary {
                percent,
                wait_minutes,
            } => {
                share(*percent, format!("{s}/canary/percent"), out);
                wait(*wait_minutes, format!("{s}/canary/wait_minutes"), out);
            }
            Strategy::Linear {
                percent,
                every_minutes,
            } => {
                share(*percent, format!("{s}/linear/percent"), out);
                wait(*every_minutes, format!("{s}/linear/every_minutes"), out);
            }
            Strategy::Steps(steps) => {
                if steps.is_empty() {
                    out.push((format!("{s}/steps"), "expected at least one step".into()));
                }
                let mut last = 0;
                for (i, step) in steps.iter().enumerate() {
                    let at = format!("{s}/steps/{i}");
                    share(step.percent, format!("{at}/percent"), out);
                    wait(step.wait_minutes, format!("{at}/wait_minutes"), out);
                    if step.percent <= last {
                        out.push((
                            format!("{at}/percent"),
                            format!(
                                "expected more than the previous step's {last} (shares rise), found {}",
                                step.percent
                            ),
                        ));
                    }
                    last = step.percent;
                }
                if !kubernetes && let Err(why) = self.strategy.codedeploy() {
                    out.push((format!("{s}/steps"), why));
                }
            }
        }
        match &self.analysis {
            Some(a) => {
                if !(a.success_rate_percent > 0.0 && a.success_rate_percent < 100.0) {
                    out.push((
                        format!("{ptr}/analysis/success_rate_percent"),
                        format!(
                            "expected more than 0 and less than 100, found {}",
                            a.success_rate_percent
                        ),
                    ));
                }
                if !(1..=60_000).contains(&a.p99_latency_ms) {
                    out.push((
                        format!("{ptr}/analysis/p99_latency_ms"),
                        format!("expected 1..=60000 milliseconds, found {}", a.p99_latency_ms),
                    ));
                }
            }
            None if kubernetes && self.strategy != Strategy::AllAtOnce => out.push((
                format!("{ptr}/analysis"),
                "expected success_rate_percent and p99_latency_ms: on Kubernetes the analysis is what rolls a canary back"
                    .into(),
            )),
            None => {}
        }
    }

    /// Total minutes from the first shift to all of the traffic.
    pub fn duration_minutes(&self) -> u32 {
        self.strategy
            .schedule()
            .iter()
            .map(|s| s.wait_minutes)
            .sum()
    }
}

/// The Argo Rollouts canary of `rollout`: its schedule as `setWeight`/`pause` steps (the
/// last shift, all of the traffic, is what Argo does after the last step), analysed by
/// `queries` (success ratio, p99 seconds) in the Prometheus at `prometheus_address`.
pub fn argo_canary(
    rollout: &Rollout,
    prometheus_address: String,
    (success_query, latency_query): (String, String),
) -> Result<crate::k8s::CanaryProps, String> {
    let schedule = rollout.strategy.schedule();
    let before_all = schedule.split_last().map_or(&[][..], |(_, rest)| rest);
    let steps = before_all
        .iter()
        .map(|s| {
            Ok(crate::k8s::CanaryStep {
                weight: crate::k8s::count(s.percent)?,
                pause_minutes: s.wait_minutes,
            })
        })
        .collect::<Result<_, String>>()?;
    let a = rollout
        .analysis
        .ok_or("rollout.analysis is required for a canary on Kubernetes")?;
    Ok(crate::k8s::CanaryProps {
        steps,
        analysis: crate::k8s::CanaryAnalysis {
            prometheus_address,
            success_query,
            latency_query,
            min_success_ratio: a.success_rate_percent / 100.0,
            max_p99_seconds: f64::from(a.p99_latency_ms) / 1000.0,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shifts(pairs: &[(u32, u32)]) -> Vec<Shift> {
        pairs
            .iter()
            .map(|&(percent, wait_minutes)| Shift {
                percent,
                wait_minutes,
            })
            .collect()
    }

    #[test]
    fn schedules() {
        assert_eq!(Strategy::AllAtOnce.schedule(), shifts(&[(100, 0)]));
        assert_eq!(
            Strategy::Canary {
                percent: 10,
                wait_minutes: 15
            }
            .schedule(),
            shifts(&[(10, 15), (100, 0)])
        );
        assert_eq!(
            Strategy::Linear {
                percent: 30,
                every_minutes: 5
            }
            .schedule(),
            shifts(&[(30, 5), (60, 5), (90, 5), (100, 0)])
        );
        let linear = Strategy::Linear {
            percent: 10,
            every_minutes: 5,
        };
        assert_eq!(
            linear.schedule().len(),
            10,
            "10 % every 5 minutes: 10 shifts"
        );
        assert_eq!(
            Rollout {
                strategy: linear,
                analysis: None
            }
            .duration_minutes(),
            45
        );
    }

    #[test]
    fn codedeploy_takes_what_it_can_express_exactly() {
        let canary = Strategy::Steps(vec![Step {
            percent: 20,
            wait_minutes: 10,
        }]);
        assert_eq!(
            canary.codedeploy(),
            Ok(CodeDeployShift::Canary {
                percent: 20,
                interval: 10
            })
        );
        let linear = Strategy::Steps(
            [25, 50, 75]
                .map(|percent| Step {
                    percent,
                    wait_minutes: 3,
                })
                .to_vec(),
        );
        assert_eq!(
            linear.codedeploy(),
            Ok(CodeDeployShift::Linear {
                percent: 25,
                interval: 3
            })
        );
        let several = Strategy::Steps(vec![
            Step {
                percent: 10,
                wait_minutes: 5,
            },
            Step {
                percent: 50,
                wait_minutes: 10,
            },
        ]);
        let err = several.codedeploy().unwrap_err();
        assert!(err.contains("these 2 steps are neither"), "{err}");
        for s in [
            Strategy::AllAtOnce,
            Strategy::Canary {
                percent: 10,
                wait_minutes: 15,
            },
            Strategy::Linear {
                percent: 10,
                every_minutes: 5,
            },
        ] {
            let cd = s.codedeploy().unwrap();
            assert_eq!(cd.schedule(), s.schedule(), "{s:?}");
        }
    }

    #[test]
    fn checks_name_the_key() {
        let mut out = Problems::new();
        let r = Rollout {
            strategy: Strategy::Steps(vec![
                Step {
                    percent: 50,
                    wait_minutes: 5,
                },
                Step {
                    percent: 20,
                    wait_minutes: 0,
                },
            ]),
            analysis: None,
        };
        r.check(Tier::Prod, false, "/stacks/x/rollout", &mut out);
        let keys: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "/stacks/x/rollout/strategy/steps/1/wait_minutes",
                "/stacks/x/rollout/strategy/steps/1/percent",
                "/stacks/x/rollout/strategy/steps",
            ]
        );
        let mut out = Problems::new();
        r.check(Tier::Prod, true, "/r", &mut out);
        assert!(
            out.iter()
                .any(|(k, m)| k == "/r/analysis" && m.contains("rolls a canary back"))
        );
        let mut out = Problems::new();
        Rollout {
            strategy: Strategy::AllAtOnce,
            analysis: Some(Analysis {
                success_rate_percent: 100.0,
                p99_latency_ms: 0,
            }),
        }
        .check(Tier::Prod, false, "/r", &mut out);
        let keys: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "/r/strategy",
                "/r/analysis/success_rate_percent",
                "/r/analysis/p99_latency_ms"
            ]
        );
    }
}
