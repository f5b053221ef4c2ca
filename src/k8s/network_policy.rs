//! NetworkPolicies: deny by default; let the ingress controller reach the `http` port and
//! the monitoring namespace the `metrics` port; let the pods reach DNS and the listed
//! CIDR/port peers (database, cache) only.
//!
//! See <https://kubernetes.io/docs/concepts/services-networking/network-policies/>.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::construct::Ctx;
use super::deployment::{HTTP_PORT_NAME, METRICS_PORT_NAME};
use super::{K8sError, Object, Rank};

/// The label every namespace carries with its own name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Name of the namespace-wide deny-all policy: `default-deny`.
pub const DEFAULT_DENY: &str = "default-deny";

/// Where allowed traffic comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrafficSource {
    /// Any pod in this namespace, e.g. `ingress-nginx` or `monitoring`.
    Namespace(String),
    /// An IPv4 CIDR, e.g. the VPC's for an ALB with target type `ip`.
    Cidr(String),
    /// Pods of the policy's own namespace with these labels, e.g. another service's
    /// selector labels.
    Pods(BTreeMap<String, String>),
}

/// Transport protocol of an egress peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        }
    }
}

/// One allowed destination outside the cluster's DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressPeer {
    /// IPv4 CIDR of the destination, e.g. the database subnets.
    pub cidr: String,
    /// Destination port.
    pub port: u16,
    /// Protocol. Default: TCP.
    pub protocol: Protocol,
}

impl EgressPeer {
    /// PostgreSQL (TCP 5432) in `cidr`.
    pub fn postgres(cidr: &str) -> Self {
        Self {
            cidr: cidr.to_owned(),
            port: 5432,
            protocol: Protocol::Tcp,
        }
    }

    /// Redis (TCP 6379) in `cidr`.
    pub fn redis(cidr: &str) -> Self {
        Self {
            cidr: cidr.to_owned(),
            port: 6379,
            protocol: Protocol::Tcp,
        }
    }

    /// HTTPS (TCP 443) in `cidr`, e.g. AWS endpoints.
    pub fn https(cidr: &str) -> Self {
        Self {
            cidr: cidr.to_owned(),
            port: 443,
            protocol: Protocol::Tcp,
        }
    }
}

/// HTTPS (TCP 443) to public addresses: `0.0.0.0/0` less `except`, for a destination
/// without fixed addresses such as a CDN. A NetworkPolicy selects pods, not containers, so
/// the app's container gets this reach too: `except` holds the VPC's CIDR, so that the rule
/// opens no pod, node, API server endpoint or other private service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicHttps {
    /// CIDRs the rule leaves out, e.g. the VPC's.
    pub except: Vec<String>,
}

/// Allowed traffic of the application's pods; everything else is denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPolicyProps {
    /// Who may reach the `http` port. Default: namespace `ingress-nginx`.
    pub http_from: Vec<TrafficSource>,
    /// Who may reach the `metrics` port. Default: namespace `monitoring`.
    pub metrics_from: Vec<TrafficSource>,
    /// Namespace of the cluster DNS (UDP and TCP 53 to its `k8s-app: kube-dns` pods). Default: `kube-system`.
    pub dns_namespace: String,
    /// Other allowed destinations. Default: none.
    pub egress: Vec<EgressPeer>,
    /// Pods of other namespaces the app calls, as (namespace, TCP port), e.g. a Langfuse
    /// web service. Default: none.
    pub egress_namespaces: Vec<(String, u16)>,
    /// Pods of the app's own namespace it calls, as (their labels, TCP container port):
    /// another service's selector labels and the port its pods listen on (Services
    /// translate to it before policies apply). Default: none.
    pub egress_pods: Vec<(BTreeMap<String, String>, u16)>,
    /// HTTPS to public addresses (see [`PublicHttps`]). Default: none.
    pub public_https: Option<PublicHttps>,
    /// Who may reach cert-manager's HTTP-01 solver pods in the namespace (TCP 8089, the
    /// ingress controller): without it the default-deny policy fails every HTTP-01
    /// challenge, and the certificate is never issued. Default: none (no HTTP-01 issuer).
    pub acme_http01_from: Option<TrafficSource>,
}

/// Label cert-manager puts on its HTTP-01 solver pods.
pub const ACME_HTTP01_SOLVER_LABEL: &str = "acme.cert-manager.io/http01-solver";
/// Port the HTTP-01 solver listens on.
pub const ACME_HTTP01_SOLVER_PORT: i32 = 8089;
/// Name of the policy that admits the ingress controller to the solver.
pub const ACME_HTTP01_POLICY: &str = "acme-http01-solver";

impl Default for NetworkPolicyProps {
    fn default() -> Self {
        Self {
            http_from: vec![TrafficSource::Namespace("ingress-nginx".to_owned())],
            metrics_from: vec![TrafficSource::Namespace("monitoring".to_owned())],
            dns_namespace: "kube-system".to_owned(),
            egress: Vec::new(),
            egress_namespaces: Vec::new(),
            egress_pods: Vec::new(),
            public_https: None,
            acme_http01_from: None,
        }
    }
}

/// Checks an IPv4 CIDR such as `10.0.0.0/16`.
pub fn validate_cidr(field: &str, cidr: &str) -> Result<(), K8sError> {
    let ok = cidr.split_once('/').is_some_and(|(ip, bits)| {
        ip.parse::<std::net::Ipv4Addr>().is_ok() && bits.parse::<u8>().is_ok_and(|b| b <= 32)
    });
    if ok {
        Ok(())
    } else {
        Err(K8sError::InvalidProps {
            field: field.to_owned(),
            found: format!("`{cidr}`"),
            expected: "an IPv4 CIDR such as `10.0.0.0/16`".to_owned(),
        })
    }
}

fn namespace_selector(ns: &str) -> Result<LabelSelector, K8sError> {
    super::labels::validate_dns_label("network policy namespace", ns)?;
    Ok(LabelSelector {
        match_labels: Some(BTreeMap::from([(
            NAMESPACE_NAME_LABEL.to_owned(),
            ns.to_owned(),
        )])),
        ..Default::default()
    })
}

fn peer(field: &str, source: &TrafficSource) -> Result<NetworkPolicyPeer, K8sError> {
    Ok(match source {
        TrafficSource::Namespace(ns) => NetworkPolicyPeer {
            namespace_selector: Some(namespace_selector(ns)?),
            ..Default::default()
        },
        TrafficSource::Cidr(cidr) => {
            validate_cidr(field, cidr)?;
            NetworkPolicyPeer {
                ip_block: Some(IPBlock {
                    cidr: cidr.clone(),
                    except: None,
                }),
                ..Default::default()
            }
        }
        TrafficSource::Pods(labels) => NetworkPolicyPeer {
            pod_selector: Some(pod_selector(labels)?),
            ..Default::default()
        },
    })
}

fn pod_selector(labels: &BTreeMap<String, String>) -> Result<LabelSelector, K8sError> {
    if labels.is_empty() {
        return Err(K8sError::InvalidProps {
            field: "network policy pod selector".to_owned(),
            found: "no labels (every pod of the namespace)".to_owned(),
            expected: "the labels of the pods allowed, e.g. a service's selector".to_owned(),
        });
    }
    super::labels::validate_labels(labels)?;
    Ok(LabelSelector {
        match_labels: Some(labels.clone()),
        ..Default::default()
    })
}

fn port(protocol: Protocol, port: IntOrString) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(port),
        protocol: Some(protocol.as_str().to_owned()),
        end_port: None,
    }
}

fn ingress_rule(
    field: &str,
    from: &[TrafficSource],
    port_name: &str,
) -> Result<Option<NetworkPolicyIngressRule>, K8sError> {
    if from.is_empty() {
        return Ok(None);
    }
    Ok(Some(NetworkPolicyIngressRule {
        from: Some(
            from.iter()
                .map(|s| peer(field, s))
                .collect::<Result<_, _>>()?,
        ),
        ports: Some(vec![port(
            Protocol::Tcp,
            IntOrString::String(port_name.to_owned()),
        )]),
    }))
}

/// DNS: UDP and TCP 53 to the `k8s-app: kube-dns` pods of `dns_namespace`.
pub(super) fn dns_egress(dns_namespace: &str) -> Result<NetworkPolicyEgressRule, K8sError> {
    let dns_pods = LabelSelector {
        match_labels: Some(BTreeMap::from([(
            "k8s-app".to_owned(),
            "kube-dns".to_owned(),
        )])),
        ..Default::default()
    };
    Ok(NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(namespace_selector(dns_namespace)?),
            pod_selector: Some(dns_pods),
            ..Default::default()
        }]),
        ports: Some(vec![
            port(Protocol::Udp, IntOrString::Int(53)),
            port(Protocol::Tcp, IntOrString::Int(53)),
        ]),
    })
}

/// One egress rule to `e` (its CIDR, its port); `field` names the setting in errors.
pub(super) fn peer_egress(
    field: &str,
    e: &EgressPeer,
) -> Result<NetworkPolicyEgressRule, K8sError> {
    validate_cidr(field, &e.cidr)?;
    if e.port == 0 {
        return Err(K8sError::InvalidProps {
            field: field.to_owned(),
            found: format!("port 0 for {}", e.cidr),
            expected: "a port 1..=65535".to_owned(),
        });
    }
    Ok(NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: e.cidr.clone(),
                except: None,
            }),
            ..Default::default()
        }]),
        ports: Some(vec![port(e.protocol, IntOrString::Int(i32::from(e.port)))]),
    })
}

pub(super) fn policy_types() -> Option<Vec<String>> {
    Some(vec!["Ingress".to_owned(), "Egress".to_owned()])
}

/// The app's policy, plus the namespace-wide deny-all when the construct owns the namespace.
pub(super) fn build(ctx: &Ctx<'_>) -> Result<Vec<Object>, K8sError> {
    let n = &ctx.props.network;
    let mut objects = Vec::new();
    if ctx.props.namespace_policy.is_some() {
        let deny = NetworkPolicy {
            metadata: ctx.meta("NetworkPolicy", DEFAULT_DENY, BTreeMap::new())?,
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: policy_types(),
                ..Default::default()
            }),
        };
        objects.push(Object::new(Rank::NetworkPolicy, &deny)?);
    }
    let ingress: Vec<NetworkPolicyIngressRule> = [
        ingress_rule("network.http_from", &n.http_from, HTTP_PORT_NAME)?,
        ingress_rule(
            "network.metrics_from",
            &n.metrics_from,
            if ctx.props.ports.metrics.is_some() {
                METRICS_PORT_NAME
            } else {
                HTTP_PORT_NAME
            },
        )?,
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut egress = vec![dns_egress(&n.dns_namespace)?];
    for (ns, port_number) in &n.egress_namespaces {
        egress.push(NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                namespace_selector: Some(namespace_selector(ns)?),
                ..Default::default()
            }]),
            ports: Some(vec![port(
                Protocol::Tcp,
                IntOrString::Int(i32::from(*port_number)),
            )]),
        });
    }
    for (labels, port_number) in &n.egress_pods {
        egress.push(NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                pod_selector: Some(pod_selector(labels)?),
                ..Default::default()
            }]),
            ports: Some(vec![port(
                Protocol::Tcp,
                IntOrString::Int(i32::from(*port_number)),
            )]),
        });
    }
    for e in &n.egress {
        egress.push(peer_egress("network.egress", e)?);
    }
    if let Some(public) = &n.public_https {
        for cidr in &public.except {
            validate_cidr("network.public_https.except", cidr)?;
        }
        egress.push(NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                ip_block: Some(IPBlock {
                    cidr: "0.0.0.0/0".to_owned(),
                    except: (!public.except.is_empty()).then(|| public.except.clone()),
                }),
                ..Default::default()
            }]),
            ports: Some(vec![port(Protocol::Tcp, IntOrString::Int(443))]),
        });
    }
    let policy = NetworkPolicy {
        metadata: ctx.meta("NetworkPolicy", ctx.name(), BTreeMap::new())?,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(ctx.selector.clone()),
                ..Default::default()
            }),
            policy_types: policy_types(),
            ingress: Some(ingress),
            egress: Some(egress),
        }),
    };
    objects.push(Object::new(Rank::NetworkPolicy, &policy)?);
    if let Some(source) = &n.acme_http01_from {
        let solver = NetworkPolicy {
            metadata: ctx.meta("NetworkPolicy", ACME_HTTP01_POLICY, BTreeMap::new())?,
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([(
                        ACME_HTTP01_SOLVER_LABEL.to_owned(),
                        "true".to_owned(),
                    )])),
                    ..Default::default()
                }),
                policy_types: Some(vec!["Ingress".to_owned()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(vec![peer("network.acme_http01_from", source)?]),
                    ports: Some(vec![port(
                        Protocol::Tcp,
                        IntOrString::Int(ACME_HTTP01_SOLVER_PORT),
                    )]),
                }]),
                egress: None,
            }),
        };
        objects.push(Object::new(Rank::NetworkPolicy, &solver)?);
    }
    Ok(objects)
}
