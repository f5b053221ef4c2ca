//! Progressive delivery with Argo Rollouts (`argoproj.io/v1alpha1`): a canary `Rollout` in
//! place of the Deployment, an `AnalysisTemplate` that queries Prometheus for the new
//! version's success rate and p99 latency, the canary Service, and the `PodMonitor` that
//! labels every scraped series with the pod's revision.
//!
//! Traffic: behind ingress-nginx, Argo Rollouts clones the service's Ingress into a canary
//! Ingress and sets its weight at each step (exact shares). Behind other controllers the
//! share is the canary's part of the pods (Argo scales the two ReplicaSets by the weight):
//! exact weighted routing on Traefik needs a `TraefikService`, which this module does not
//! render. A failed analysis aborts the rollout: traffic returns to the stable version and
//! the canary scales down. A measurement without data (no requests reached the canary, or
//! the scrape broke) is inconclusive, never a pass: after [`ANALYSIS_INCONCLUSIVE_LIMIT`]
//! of them the rollout pauses, and a person promotes or aborts it. The analysis starts
//! once the first weight is set, so a canary still starting up is not measured.
//!
//! See <https://argoproj.github.io/argo-rollouts/features/canary/> and
//! <https://argoproj.github.io/argo-rollouts/analysis/prometheus/>.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use super::construct::Ctx;
use super::deployment::{METRICS_PORT_NAME, REVISION_HISTORY_LIMIT};
use super::ingress::IngressClass;
use super::{K8sError, Object, Rank};

/// Label Argo Rollouts puts on every pod: the hash of its revision's template.
pub const REVISION_LABEL: &str = "rollouts-pod-template-hash";
/// The same label as Prometheus stores it on scraped series (dashes become underscores).
pub const REVISION_SERIES_LABEL: &str = "rollouts_pod_template_hash";
/// Analysis argument holding the canary's revision hash, for [`CanaryAnalysis`] queries
/// (`{{args.canary-hash}}`).
pub const CANARY_HASH_ARG: &str = "canary-hash";
/// How often each analysis metric is measured.
pub const ANALYSIS_INTERVAL: &str = "1m";
/// Failed measurements tolerated per metric before the analysis fails (the next one
/// aborts the rollout).
pub const ANALYSIS_FAILURE_LIMIT: i32 = 1;
/// Measurements without data (no requests to the canary, a broken scrape) tolerated per
/// metric: neither success nor failure, they count as inconclusive, and the next one makes
/// the analysis inconclusive, which pauses the rollout until someone promotes or aborts it.
/// The same minutes as CodeDeploy's ([`crate::rollout::ANALYSIS_NO_DATA_MINUTES`]; one
/// measurement per [`ANALYSIS_INTERVAL`]).
pub const ANALYSIS_INCONCLUSIVE_LIMIT: i32 = crate::rollout::ANALYSIS_NO_DATA_MINUTES as i32;
/// Consecutive failed queries (Prometheus unreachable, a bad query) tolerated per metric
/// before the analysis errs, which aborts the rollout.
pub const ANALYSIS_CONSECUTIVE_ERROR_LIMIT: i32 = 2;
/// The guard both conditions of a metric start with: a measurement without a number
/// matches neither, so Argo counts it inconclusive instead of passing it.
pub const HAS_DATA: &str = "len(result) > 0 && !isNaN(result[0])";

/// One step of a canary: the new version's share of the traffic, then a pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanaryStep {
    /// Percent of the traffic (or of the pods, without traffic routing), 1..=99.
    pub weight: i32,
    /// Minutes the step holds, at least 1.
    pub pause_minutes: u32,
}

/// What the analysis measures and the thresholds the canary must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryAnalysis {
    /// Prometheus' HTTP address, e.g. `http://prometheus-operated.monitoring.svc:9090`.
    pub prometheus_address: String,
    /// PromQL giving the canary's share of requests answered without a 5xx (0..1); may use
    /// `{{args.canary-hash}}`. See [`pod_queries`].
    pub success_query: String,
    /// PromQL giving the canary's 99th-percentile latency in seconds.
    pub latency_query: String,
    /// Least success ratio, above 0 and below 1.
    pub min_success_ratio: f64,
    /// Most p99 latency, seconds.
    pub max_p99_seconds: f64,
}

/// A canary rollout of the service.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryProps {
    /// The steps; after the last one all of the traffic moves. Empty: all at once.
    pub steps: Vec<CanaryStep>,
    /// The analysis that runs from the first step to the end and aborts on failure.
    pub analysis: CanaryAnalysis,
}

/// The success-ratio and p99 queries over metrics the pods expose themselves, selected by
/// the canary's revision: `requests` is a counter with a `status_label` holding the HTTP
/// status, `latency` a histogram in seconds (its `_bucket` series). `filter` is more label
/// matchers for both (e.g. `route!~"/health|/ready"`, leaving probes out), or empty.
pub fn pod_queries(
    namespace: &str,
    requests: &str,
    status_label: &str,
    latency: &str,
    filter: &str,
) -> (String, String) {
    let mut sel = format!(
        "namespace=\"{namespace}\", {REVISION_SERIES_LABEL}=\"{{{{args.{CANARY_HASH_ARG}}}}}\""
    );
    if !filter.is_empty() {
        sel = format!("{sel}, {filter}");
    }
    let success = format!(
        "sum(rate({requests}{{{sel}, {status_label}!~\"5..\"}}[2m]))\n/\nsum(rate({requests}{{{sel}}}[2m]))"
    );
    let latency =
        format!("histogram_quantile(0.99, sum by (le) (rate({latency}_bucket{{{sel}}}[2m])))");
    (success, latency)
}

/// The success-ratio and p99 queries over Traefik's metrics for one Kubernetes Service, for
/// workloads that expose none. They measure the whole service (stable and canary pods
/// together): without exact routing a canary holds its share of the pods, and a failing one
/// moves the service's figures by that share. The Traefik service of an Ingress backend is
/// `<namespace>-<service>-<port name>@kubernetes`; it is matched under both labels it can
/// carry (`service` when Prometheus keeps Traefik's labels, `exported_service` when the
/// scrape target's own `service` label wins).
pub fn traefik_queries(namespace: &str, service: &str, port_name: &str) -> (String, String) {
    let name = format!("{namespace}-{service}-{port_name}@kubernetes");
    let either = |metric: &str, extra: &str| {
        format!(
            "rate({metric}{{service=\"{name}\"{extra}}}[2m]) or rate({metric}{{exported_service=\"{name}\"{extra}}}[2m])"
        )
    };
    let requests = "traefik_service_requests_total";
    let success = format!(
        "sum({})\n/\nsum({})",
        either(requests, ", code!~\"5..\""),
        either(requests, "")
    );
    let latency = format!(
        "histogram_quantile(0.99, sum by (le) ({}))",
        either("traefik_service_request_duration_seconds_bucket", "")
    );
    (success, latency)
}

/// `Rollout` (argoproj.io/v1alpha1).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// Always `argoproj.io/v1alpha1`.
    pub api_version: &'static str,
    /// Always `Rollout`.
    pub kind: &'static str,
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// The desired state.
    pub spec: RolloutSpec,
}

/// `Rollout.spec`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Desired pods; absent when an HPA owns the count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Old ReplicaSets kept.
    pub revision_history_limit: i32,
    /// The pods of this rollout.
    pub selector: LabelSelector,
    /// The pod template, as a Deployment's.
    pub template: PodTemplateSpec,
    /// How a new revision takes over.
    pub strategy: RolloutStrategy,
}

/// `Rollout.spec.strategy`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolloutStrategy {
    /// The canary strategy.
    pub canary: CanaryStrategy,
}

/// `Rollout.spec.strategy.canary`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStrategy {
    /// Service Argo points at the canary pods (with traffic routing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_service: Option<String>,
    /// Service Argo points at the stable pods (with traffic routing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_service: Option<String>,
    /// Extra pods during an update.
    pub max_surge: IntOrString,
    /// Pods that may be unavailable during an update.
    pub max_unavailable: IntOrString,
    /// `setWeight` and `pause` steps.
    pub steps: Vec<RolloutStep>,
    /// Background analysis over the whole rollout.
    pub analysis: RolloutAnalysis,
    /// Ingress that splits the traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_routing: Option<TrafficRouting>,
}

/// One canary step: exactly one of its fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStep {
    /// The canary's share, percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_weight: Option<i32>,
    /// A timed pause.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause: Option<Pause>,
}

/// `steps[].pause`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pause {
    /// How long, e.g. `15m`.
    pub duration: String,
}

/// `canary.analysis`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysis {
    /// Index of the step the analysis starts at (after the first `setWeight`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starting_step: Option<i32>,
    /// Templates run together.
    pub templates: Vec<TemplateRef>,
    /// Arguments passed to them.
    pub args: Vec<AnalysisArg>,
}

/// `analysis.templates[]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRef {
    /// An AnalysisTemplate of the namespace.
    pub template_name: String,
}

/// An analysis argument: declared in a template, given a value by the Rollout.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisArg {
    /// Argument name.
    pub name: String,
    /// Where the Rollout takes its value from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ArgValueFrom>,
}

/// `args[].valueFrom`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgValueFrom {
    /// `Latest` (the canary's hash) or `Stable`.
    pub pod_template_hash_value: String,
}

/// `canary.trafficRouting`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficRouting {
    /// ingress-nginx: Argo manages a canary copy of the stable Ingress.
    pub nginx: NginxRouting,
}

/// `trafficRouting.nginx`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NginxRouting {
    /// The service's Ingress, routing to the stable Service.
    pub stable_ingress: String,
}

/// `AnalysisTemplate` (argoproj.io/v1alpha1).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplate {
    /// Always `argoproj.io/v1alpha1`.
    pub api_version: &'static str,
    /// Always `AnalysisTemplate`.
    pub kind: &'static str,
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// Arguments and metrics.
    pub spec: AnalysisTemplateSpec,
}

/// `AnalysisTemplate.spec`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalysisTemplateSpec {
    /// Declared arguments.
    pub args: Vec<AnalysisArg>,
    /// Measured metrics.
    pub metrics: Vec<AnalysisMetric>,
}

/// `AnalysisTemplate.spec.metrics[]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisMetric {
    /// Metric name.
    pub name: String,
    /// Time between measurements.
    pub interval: String,
    /// Failed measurements tolerated.
    pub failure_limit: i32,
    /// Inconclusive measurements tolerated.
    pub inconclusive_limit: i32,
    /// Consecutive query errors tolerated.
    pub consecutive_error_limit: i32,
    /// Expression over `result` that a good measurement satisfies.
    pub success_condition: String,
    /// Expression over `result` that a bad measurement satisfies; a measurement matching
    /// neither is inconclusive.
    pub failure_condition: String,
    /// Where the measurement comes from.
    pub provider: MetricProvider,
}

/// `metrics[].provider`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricProvider {
    /// A Prometheus query.
    pub prometheus: PrometheusQuery,
}

/// `provider.prometheus`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrometheusQuery {
    /// Prometheus' HTTP address.
    pub address: String,
    /// PromQL returning one sample.
    pub query: String,
}

/// `PodMonitor` (monitoring.coreos.com/v1).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMonitor {
    /// Always `monitoring.coreos.com/v1`.
    pub api_version: &'static str,
    /// Always `PodMonitor`.
    pub kind: &'static str,
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// Which pods to scrape and how.
    pub spec: PodMonitorSpec,
}

/// `PodMonitor.spec`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMonitorSpec {
    /// Pods whose labels match.
    pub selector: LabelSelector,
    /// Namespaces searched for them.
    pub namespace_selector: super::NamespaceSelector,
    /// Pod label whose value becomes the `job` label.
    pub job_label: String,
    /// Pod labels copied onto every scraped series.
    pub pod_target_labels: Vec<String>,
    /// Scrape endpoints (container ports).
    pub pod_metrics_endpoints: Vec<super::Endpoint>,
}

/// Name of the canary Service (and of the analysis template): `<name>-canary`.
pub fn canary_name(name: &str) -> String {
    format!("{name}-canary")
}

/// Whether the service's ingress routes the canary's share exactly (ingress-nginx).
pub(super) fn routes_traffic(ctx: &Ctx<'_>) -> bool {
    routes_traffic_of(ctx.props)
}

/// [`routes_traffic`] of the props.
pub(super) fn routes_traffic_of(props: &super::ServiceProps) -> bool {
    matches!(
        props.ingress.as_ref().map(|i| &i.class),
        Some(IngressClass::Nginx(_))
    )
}

fn check(canary: &CanaryProps) -> Result<(), K8sError> {
    let bad = |field: &str, found: String, expected: &str| {
        Err(K8sError::InvalidProps {
            field: field.to_owned(),
            found,
            expected: expected.to_owned(),
        })
    };
    let mut last = 0;
    for (i, s) in canary.steps.iter().enumerate() {
        if !(1..=99).contains(&s.weight) || s.weight <= last || s.pause_minutes == 0 {
            return bad(
                &format!("canary.steps[{i}]"),
                format!("weight {} pause {} min", s.weight, s.pause_minutes),
                "rising weights 1..=99, each held at least a minute",
            );
        }
        last = s.weight;
    }
    let a = &canary.analysis;
    let ratio_ok = a.min_success_ratio > 0.0 && a.min_success_ratio < 1.0;
    if !ratio_ok || a.max_p99_seconds.is_nan() || a.max_p99_seconds <= 0.0 {
        return bad(
            "canary.analysis",
            format!(
                "min_success_ratio {} max_p99_seconds {}",
                a.min_success_ratio, a.max_p99_seconds
            ),
            "a ratio in (0, 1) and a positive latency",
        );
    }
    if !a.prometheus_address.starts_with("http") {
        return bad(
            "canary.analysis.prometheus_address",
            format!("`{}`", a.prometheus_address),
            "an http(s) URL",
        );
    }
    Ok(())
}

/// The Rollout wrapping `template`, and its AnalysisTemplate.
pub(super) fn build(
    ctx: &Ctx<'_>,
    canary: &CanaryProps,
    selector: LabelSelector,
    mut template: PodTemplateSpec,
) -> Result<Vec<Object>, K8sError> {
    check(canary)?;
    let p = ctx.props;
    let name = ctx.name();
    // Spread each revision on its own: Argo labels pods with its hash, not Kubernetes'.
    if let Some(spread) = template
        .spec
        .as_mut()
        .and_then(|s| s.topology_spread_constraints.as_mut())
    {
        for c in spread {
            c.match_label_keys = Some(vec![REVISION_LABEL.to_owned()]);
        }
    }
    let steps: Vec<RolloutStep> = canary
        .steps
        .iter()
        .flat_map(|s| {
            [
                RolloutStep {
                    set_weight: Some(s.weight),
                    pause: None,
                },
                RolloutStep {
                    set_weight: None,
                    pause: Some(Pause {
                        duration: format!("{}m", s.pause_minutes),
                    }),
                },
            ]
        })
        .collect();
    let template_name = canary_name(name);
    let routed = routes_traffic(ctx);
    let rollout = Rollout {
        api_version: "argoproj.io/v1alpha1",
        kind: "Rollout",
        metadata: ctx.meta("Rollout", name, BTreeMap::new())?,
        spec: RolloutSpec {
            // With an HPA, the HPA owns the count: a value here would reset it on every apply.
            replicas: p.autoscaling.is_none().then_some(p.replicas),
            revision_history_limit: REVISION_HISTORY_LIMIT,
            selector,
            template,
            strategy: RolloutStrategy {
                canary: CanaryStrategy {
                    canary_service: routed.then(|| canary_name(name)),
                    stable_service: routed.then(|| name.to_owned()),
                    max_surge: p.rollout.max_surge.to_int_or_string(),
                    max_unavailable: p.rollout.max_unavailable.to_int_or_string(),
                    steps,
                    analysis: RolloutAnalysis {
                        // Step 1 is the first pause: the canary is up and takes its share.
                        starting_step: (!canary.steps.is_empty()).then_some(1),
                        templates: vec![TemplateRef {
                            template_name: template_name.clone(),
                        }],
                        args: vec![AnalysisArg {
                            name: CANARY_HASH_ARG.to_owned(),
                            value_from: Some(ArgValueFrom {
                                pod_template_hash_value: "Latest".to_owned(),
                            }),
                        }],
                    },
                    traffic_routing: routed.then(|| TrafficRouting {
                        nginx: NginxRouting {
                            stable_ingress: name.to_owned(),
                        },
                    }),
                },
            },
        },
    };
    let a = &canary.analysis;
    // No data (an empty or NaN result) is neither: inconclusive, limited on its own.
    let metric = |metric: &str, query: &str, good: String, bad: String| AnalysisMetric {
        name: metric.to_owned(),
        interval: ANALYSIS_INTERVAL.to_owned(),
        failure_limit: ANALYSIS_FAILURE_LIMIT,
        inconclusive_limit: ANALYSIS_INCONCLUSIVE_LIMIT,
        consecutive_error_limit: ANALYSIS_CONSECUTIVE_ERROR_LIMIT,
        success_condition: format!("{HAS_DATA} && {good}"),
        failure_condition: format!("{HAS_DATA} && {bad}"),
        provider: MetricProvider {
            prometheus: PrometheusQuery {
                address: a.prometheus_address.clone(),
                query: query.to_owned(),
            },
        },
    };
    let analysis = AnalysisTemplate {
        api_version: "argoproj.io/v1alpha1",
        kind: "AnalysisTemplate",
        metadata: ctx.meta("AnalysisTemplate", &template_name, BTreeMap::new())?,
        spec: AnalysisTemplateSpec {
            args: vec![AnalysisArg {
                name: CANARY_HASH_ARG.to_owned(),
                value_from: None,
            }],
            metrics: vec![
                metric(
                    "success-rate",
                    &a.success_query,
                    format!("result[0] >= {}", a.min_success_ratio),
                    format!("result[0] < {}", a.min_success_ratio),
                ),
                metric(
                    "p99-latency",
                    &a.latency_query,
                    format!("result[0] <= {}", a.max_p99_seconds),
                    format!("result[0] > {}", a.max_p99_seconds),
                ),
            ],
        },
    };
    Ok(vec![
        Object::new(Rank::Workload, &rollout)?,
        Object::new(Rank::Workload, &analysis)?,
    ])
}

/// The PodMonitor that replaces the ServiceMonitor of a canary service: the stable Service
/// selects only stable pods during a rollout, so scraping goes by pod, and every series
/// carries the pod's revision ([`REVISION_SERIES_LABEL`]) for the analysis. The job label
/// is the app name, as a ServiceMonitor's would be.
pub(super) fn pod_monitor(ctx: &Ctx<'_>) -> Result<Option<Object>, K8sError> {
    let Some(m) = &ctx.props.monitoring else {
        return Ok(None);
    };
    if ctx.props.ports.metrics.is_none() {
        return Ok(None);
    }
    if m.scrape_timeout_seconds == 0 || m.scrape_timeout_seconds > m.interval_seconds {
        return Err(K8sError::InvalidProps {
            field: "monitoring.scrape_timeout_seconds".to_owned(),
            found: m.scrape_timeout_seconds.to_string(),
            expected: format!("1..={} (the interval)", m.interval_seconds),
        });
    }
    let mut meta = ctx.meta("PodMonitor", ctx.name(), BTreeMap::new())?;
    if !m.labels.is_empty()
        && let Some(labels) = meta.labels.as_mut()
    {
        labels.extend(m.labels.clone());
    }
    let monitor = PodMonitor {
        api_version: "monitoring.coreos.com/v1",
        kind: "PodMonitor",
        metadata: meta,
        spec: PodMonitorSpec {
            selector: LabelSelector {
                match_labels: Some(ctx.selector.clone()),
                ..Default::default()
            },
            namespace_selector: super::NamespaceSelector {
                match_names: vec![ctx.props.namespace.clone()],
            },
            job_label: super::labels::NAME.to_owned(),
            pod_target_labels: vec![REVISION_LABEL.to_owned()],
            pod_metrics_endpoints: vec![super::Endpoint {
                port: METRICS_PORT_NAME.to_owned(),
                path: m.path.clone(),
                scheme: "http".to_owned(),
                interval: format!("{}s", m.interval_seconds),
                scrape_timeout: format!("{}s", m.scrape_timeout_seconds),
            }],
        },
    };
    Ok(Some(Object::new(Rank::Monitoring, &monitor)?))
}
