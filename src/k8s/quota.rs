//! A namespace's quota from the worst case of what runs in it: every service at its most
//! pods (the HPA's maximum, or its replicas) during its rollout, the one-off pods that share
//! the namespace (cert-manager's HTTP-01 solvers, the database login Job). A pod counts, per
//! resource, the larger of its biggest init container and its app container, as the quota
//! admission does.
//!
//! During a rollout a service runs more pods than its count:
//! - a RollingUpdate, or an Argo canary that weighs by pods (no traffic routing), runs at
//!   most the count plus `maxSurge` (rounded up, as Kubernetes and Argo round it);
//! - an Argo canary with traffic routing (ingress-nginx) keeps the stable set whole while
//!   the canary grows to all of the traffic: twice the count.
//!
//! A quota below that refuses the new pods exactly when a release meets peak load, and the
//! rollout stalls. See <https://kubernetes.io/docs/concepts/policy/resource-quotas/> and
//! <https://argoproj.github.io/argo-rollouts/features/canary/#dynamic-stable-scale-with-traffic-routing>.

use std::ops::Add;

use super::construct::ServiceProps;
use super::deployment::{PodCount, Resources};
use super::namespace::NamespacePolicy;
use super::{K8sError, rollout};

/// Requests and limits of a set of pods: CPU in millicores, memory in MiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodSizes {
    /// Sum of CPU requests (m).
    pub requests_cpu_m: u64,
    /// Sum of memory requests (MiB).
    pub requests_memory_mi: u64,
    /// Sum of CPU limits (m).
    pub limits_cpu_m: u64,
    /// Sum of memory limits (MiB).
    pub limits_memory_mi: u64,
}

impl PodSizes {
    /// One container's requests and limits; `field` names the setting in errors.
    pub fn of(field: &str, r: &Resources) -> Result<PodSizes, K8sError> {
        Ok(PodSizes {
            requests_cpu_m: cpu_millis(&format!("{field}.requests_cpu"), &r.requests_cpu)?,
            requests_memory_mi: memory_mib(
                &format!("{field}.requests_memory"),
                &r.requests_memory,
            )?,
            limits_cpu_m: cpu_millis(&format!("{field}.limits_cpu"), &r.limits_cpu)?,
            limits_memory_mi: memory_mib(&format!("{field}.limits_memory"), &r.limits_memory)?,
        })
    }

    /// The larger of the two in each dimension.
    pub fn max(self, o: PodSizes) -> PodSizes {
        PodSizes {
            requests_cpu_m: self.requests_cpu_m.max(o.requests_cpu_m),
            requests_memory_mi: self.requests_memory_mi.max(o.requests_memory_mi),
            limits_cpu_m: self.limits_cpu_m.max(o.limits_cpu_m),
            limits_memory_mi: self.limits_memory_mi.max(o.limits_memory_mi),
        }
    }
}

/// What cert-manager gives one HTTP-01 solver pod (its default resources).
pub const ACME_SOLVER: PodSizes = PodSizes {
    requests_cpu_m: 10,
    requests_memory_mi: 64,
    limits_cpu_m: 100,
    limits_memory_mi: 64,
};

/// Room for one one-off pod of the namespace, such as the database login Job's
/// (50m/64Mi requested, 200m/128Mi limit).
pub const ONE_OFF_POD: PodSizes = PodSizes {
    requests_cpu_m: 200,
    requests_memory_mi: 128,
    limits_cpu_m: 200,
    limits_memory_mi: 128,
};

/// Pods that may run at once and what they request and may use in total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Peak {
    /// Pods.
    pub pods: u64,
    /// Their sizes, summed.
    pub sizes: PodSizes,
}

impl Add for Peak {
    type Output = Peak;
    fn add(self, o: Peak) -> Peak {
        Peak {
            pods: self.pods + o.pods,
            sizes: PodSizes {
                requests_cpu_m: self.sizes.requests_cpu_m + o.sizes.requests_cpu_m,
                requests_memory_mi: self.sizes.requests_memory_mi + o.sizes.requests_memory_mi,
                limits_cpu_m: self.sizes.limits_cpu_m + o.sizes.limits_cpu_m,
                limits_memory_mi: self.sizes.limits_memory_mi + o.sizes.limits_memory_mi,
            },
        }
    }
}

impl Peak {
    /// `pods` pods of `each`.
    pub fn of(pods: u64, each: PodSizes) -> Peak {
        Peak {
            pods,
            sizes: PodSizes {
                requests_cpu_m: each.requests_cpu_m * pods,
                requests_memory_mi: each.requests_memory_mi * pods,
                limits_cpu_m: each.limits_cpu_m * pods,
                limits_memory_mi: each.limits_memory_mi * pods,
            },
        }
    }

    /// The most pods of the service at once, during a rollout at its highest count (see the
    /// module documentation), with its container's requests and limits.
    pub fn service(props: &ServiceProps) -> Result<Peak, K8sError> {
        let most = props
            .autoscaling
            .map_or(props.replicas, |a| a.max_replicas.max(props.replicas));
        let most = u64::try_from(most.max(0)).unwrap_or(0);
        let routed = props.canary.is_some() && rollout::routes_traffic_of(props);
        let pods = if routed {
            2 * most
        } else {
            most + surge(props.rollout.max_surge, most)
        };
        // A pod requests, per resource, the larger of its biggest init container and its
        // app container (init containers run one at a time, before the app).
        let mut each = PodSizes::of("resources", &props.resources)?;
        for init in &props.init_containers {
            each = each.max(PodSizes::of(
                &format!("init_containers.{}.resources", init.name),
                &init.resources,
            )?);
        }
        Ok(Peak::of(pods, each))
    }

    /// The peak of a namespace: its `services` at their peaks, one cert-manager HTTP-01
    /// solver per host of their cert-manager Ingresses when the namespace admits solvers
    /// (`network.acme_http01_from`), and `one_off_pods` of [`ONE_OFF_POD`] (Jobs applied
    /// into the namespace).
    pub fn namespace(services: &[&ServiceProps], one_off_pods: u64) -> Result<Peak, K8sError> {
        let mut total = Peak::of(one_off_pods, ONE_OFF_POD);
        for s in services {
            total = total + Peak::service(s)?;
        }
        if services
            .iter()
            .any(|s| s.network.acme_http01_from.is_some())
        {
            let hosts: usize = services
                .iter()
                .filter_map(|s| s.ingress.as_ref())
                .filter(|i| !matches!(i.class, super::IngressClass::Alb(_)))
                .map(|i| 1 + i.aliases.len())
                .sum();
            total = total + Peak::of(hosts as u64, ACME_SOLVER);
        }
        Ok(total)
    }
}

/// Extra pods of a surge over `count` (a percentage rounds up).
fn surge(surge: PodCount, count: u64) -> u64 {
    match surge {
        PodCount::Count(n) => u64::try_from(n.max(0)).unwrap_or(0),
        PodCount::Percent(p) => (count * u64::from(p)).div_ceil(100),
    }
}

impl NamespacePolicy {
    /// The default limits with the quota at exactly the peak of `services` and
    /// `one_off_pods` ([`Peak::namespace`]).
    pub fn for_services(
        services: &[&ServiceProps],
        one_off_pods: u64,
    ) -> Result<NamespacePolicy, K8sError> {
        Ok(Self::for_peak(Peak::namespace(services, one_off_pods)?))
    }

    /// The default limits with the quota at exactly `peak`.
    pub fn for_peak(peak: Peak) -> NamespacePolicy {
        NamespacePolicy {
            quota_requests_cpu: format!("{}m", peak.sizes.requests_cpu_m),
            quota_requests_memory: format!("{}Mi", peak.sizes.requests_memory_mi),
            quota_limits_cpu: format!("{}m", peak.sizes.limits_cpu_m),
            quota_limits_memory: format!("{}Mi", peak.sizes.limits_memory_mi),
            quota_pods: u32::try_from(peak.pods).unwrap_or(u32::MAX),
            ..NamespacePolicy::default()
        }
    }

    /// Fails when the quota is below `peak` in any of its dimensions, naming it.
    pub(super) fn check_holds(&self, peak: Peak, what: &str) -> Result<(), K8sError> {
        let dims = [
            (
                "quota_requests_cpu",
                cpu_millis(
                    "namespace_policy.quota_requests_cpu",
                    &self.quota_requests_cpu,
                )?,
                peak.sizes.requests_cpu_m,
                "m",
            ),
            (
                "quota_requests_memory",
                memory_mib(
                    "namespace_policy.quota_requests_memory",
                    &self.quota_requests_memory,
                )?,
                peak.sizes.requests_memory_mi,
                "Mi",
            ),
            (
                "quota_limits_cpu",
                cpu_millis("namespace_policy.quota_limits_cpu", &self.quota_limits_cpu)?,
                peak.sizes.limits_cpu_m,
                "m",
            ),
            (
                "quota_limits_memory",
                memory_mib(
                    "namespace_policy.quota_limits_memory",
                    &self.quota_limits_memory,
                )?,
                peak.sizes.limits_memory_mi,
                "Mi",
            ),
            ("quota_pods", u64::from(self.quota_pods), peak.pods, ""),
        ];
        for (field, hard, need, unit) in dims {
            if hard < need {
                return Err(K8sError::InvalidProps {
                    field: format!("namespace_policy.{field}"),
                    found: format!("{hard}{unit}, below the {need}{unit} {what} needs at its peak"),
                    expected: "a quota derived from the peak (`NamespacePolicy::for_peak`): HPA maximum, plus surge, or twice it during a canary with traffic routing".to_owned(),
                });
            }
        }
        Ok(())
    }
}

fn invalid(field: &str, value: &str, expected: &str) -> K8sError {
    K8sError::InvalidProps {
        field: field.to_owned(),
        found: format!("`{value}`"),
        expected: expected.to_owned(),
    }
}

/// A decimal number with at most three fractional digits, times 1000.
fn thousandths(field: &str, n: &str, expected: &str) -> Result<u64, K8sError> {
    let (whole, frac) = n.split_once('.').unwrap_or((n, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || frac.len() > 3 || (!frac.is_empty() && !digits(frac)) {
        return Err(invalid(field, n, expected));
    }
    let whole: u64 = whole.parse().map_err(|_| invalid(field, n, expected))?;
    let frac: u64 = format!("{frac:0<3}")
        .parse()
        .map_err(|_| invalid(field, n, expected))?;
    Ok(whole * 1000 + frac)
}

/// A CPU quantity in millicores: `500m`, `1`, `1.5`.
pub fn cpu_millis(field: &str, q: &str) -> Result<u64, K8sError> {
    const EXPECTED: &str = "a CPU quantity such as `500m` or `1.5`";
    match q.strip_suffix('m') {
        Some(m) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()) => {
            m.parse().map_err(|_| invalid(field, q, EXPECTED))
        }
        Some(_) => Err(invalid(field, q, EXPECTED)),
        None => thousandths(field, q, EXPECTED),
    }
}

/// A memory quantity in MiB, rounded up: `512Mi`, `1Gi`, `64Ki`, `1G`, bytes.
pub fn memory_mib(field: &str, q: &str) -> Result<u64, K8sError> {
    const EXPECTED: &str = "a memory quantity such as `512Mi` or `1Gi`";
    const MIB: u64 = 1 << 20;
    let units: [(&str, u64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", MIB),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    let (number, factor) = units
        .iter()
        .find_map(|(suffix, f)| q.strip_suffix(suffix).map(|n| (n, *f)))
        .unwrap_or((q, 1));
    let milli_units = thousandths(field, number, EXPECTED)?;
    let bytes = milli_units
        .checked_mul(factor)
        .ok_or_else(|| invalid(field, q, EXPECTED))?
        .div_ceil(1000);
    Ok(bytes.div_ceil(MIB))
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(cpu_millis("f", "500m").unwrap(), 500);
        assert_eq!(cpu_millis("f", "1").unwrap(), 1000);
        assert_eq!(cpu_millis("f", "1.5").unwrap(), 1500);
        assert!(cpu_millis("f", "m").is_err() && cpu_millis("f", "1.2345").is_err());
        assert_eq!(memory_mib("f", "512Mi").unwrap(), 512);
        assert_eq!(memory_mib("f", "1Gi").unwrap(), 1024);
        assert_eq!(memory_mib("f", "1G").unwrap(), 954);
        assert_eq!(memory_mib("f", "1").unwrap(), 1);
        assert!(memory_mib("f", "lots").is_err());
    }

    fn props(canary: bool, ingress: Option<IngressClass>) -> ServiceProps {
        let app = AppLabels {
            name: "api".into(),
            instance: "api-prod".into(),
            version: "1".into(),
            component: "api".into(),
            part_of: "shop".into(),
        };
        let image = Image::Tag {
            repo: "ghcr.io/acme/api".into(),
            tag: "1.0.0".into(),
        };
        let mut p = ServiceProps::new(app, "shop", image);
        p.replicas = 3;
        p.autoscaling = Some(Autoscaling {
            min_replicas: 3,
            max_replicas: 10,
            ..Autoscaling::default()
        });
        p.ingress = ingress.map(|c| IngressProps::new(c, "api.example.com"));
        p.canary = canary.then(|| CanaryProps {
            steps: vec![CanaryStep {
                weight: 10,
                pause_minutes: 5,
            }],
            analysis: CanaryAnalysis {
                prometheus_address: "http://prometheus:9090".into(),
                success_query: "1".into(),
                latency_query: "0".into(),
                min_success_ratio: 0.99,
                max_p99_seconds: 0.5,
            },
        });
        p
    }

    fn nginx() -> Option<IngressClass> {
        Some(IngressClass::Nginx(NginxIngress {
            cluster_issuer: "letsencrypt".into(),
            limit_rps: None,
        }))
    }

    #[test]
    fn the_peak_is_the_hpa_maximum_with_surge_or_twice_it_under_a_routed_canary() {
        // 10 pods + 25% surge (3): 13 × 500m.
        let rolling = Peak::service(&props(false, nginx())).unwrap();
        assert_eq!((rolling.pods, rolling.sizes.requests_cpu_m), (13, 6500));
        // The stable set stays whole while the canary grows to all of the traffic.
        let routed = Peak::service(&props(true, nginx())).unwrap();
        assert_eq!((routed.pods, routed.sizes.requests_cpu_m), (20, 10_000));
        // Without traffic routing the canary weighs by pods, within the surge.
        let by_pods = Peak::service(&props(true, None)).unwrap();
        assert_eq!(by_pods.pods, 13);
    }

    #[test]
    fn a_quota_below_the_peak_is_refused_and_the_derived_one_passes() {
        let mut p = props(true, nginx());
        // The default quota (8 CPU requested) is what stalled analytics-api's canary.
        p.namespace_policy = Some(NamespacePolicy::default());
        let err = service(&p).unwrap_err().to_string();
        assert!(
            err.starts_with("namespace_policy.quota_requests_cpu: found 8000m, below the 10000m"),
            "{err}"
        );
        let peak = Peak::service(&p).unwrap();
        p.namespace_policy = Some(NamespacePolicy::for_peak(peak));
        let objects = service(&p).unwrap();
        let quota = objects.iter().find(|o| o.kind == "ResourceQuota").unwrap();
        assert_eq!(quota.content["spec"]["hard"]["requests.cpu"], "10000m");
        assert_eq!(quota.content["spec"]["hard"]["pods"], "20");
    }
}
