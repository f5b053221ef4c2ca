//! The Ingress (networking/v1) for the ingress class the environment names: nginx or
//! traefik with cert-manager TLS, or the AWS Load Balancer Controller with an ACM certificate.
//! Uses `spec.ingressClassName`, never the deprecated class annotation.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};

use super::construct::Ctx;
use super::deployment::HTTP_PORT_NAME;
use super::{K8sError, Object, Rank};

/// NGINX Ingress Controller options.
///
/// See <https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/>.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxIngress {
    /// cert-manager ClusterIssuer that issues the TLS certificate, e.g. `letsencrypt-prod`.
    pub cluster_issuer: String,
    /// Requests per second per client IP (`limit-rps`). Default: `Some(100)`; `None` disables it.
    pub limit_rps: Option<u32>,
}

/// Traefik options (Kubernetes Ingress provider).
///
/// See <https://doc.traefik.io/traefik/routing/providers/kubernetes-ingress/>.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraefikIngress {
    /// cert-manager ClusterIssuer that issues the TLS certificate.
    pub cluster_issuer: String,
    /// The HTTPS entry point. Default: `websecure`.
    pub entrypoint: String,
}

/// AWS Load Balancer Controller options.
///
/// See <https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/ingress/annotations/>.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlbIngress {
    /// ACM certificate ARN for the HTTPS listener (HTTP redirects to it); `None` serves
    /// plain HTTP (only where the environment gives no certificate).
    pub certificate_arn: Option<String>,
    /// Whether the load balancer is reachable from the internet. Default: `InternetFacing`.
    pub scheme: AlbScheme,
    /// Ingresses of one group share one load balancer (`group.name`), ordered by
    /// `group.order` (lower first: put specific paths such as `/api` before `/`).
    pub group: Option<(String, u16)>,
}

/// `alb.ingress.kubernetes.io/scheme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlbScheme {
    /// `internet-facing`.
    InternetFacing,
    /// `internal`.
    Internal,
}

/// The ingress controller serving the application, with its own options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngressClass {
    /// ingress-nginx; class name `nginx`.
    Nginx(NginxIngress),
    /// Traefik; class name `traefik`.
    Traefik(TraefikIngress),
    /// AWS Load Balancer Controller; class name `alb`.
    Alb(AlbIngress),
}

impl IngressClass {
    /// The usual IngressClass name: `nginx`, `traefik` or `alb`.
    pub fn default_class_name(&self) -> &'static str {
        match self {
            Self::Nginx(_) => "nginx",
            Self::Traefik(_) => "traefik",
            Self::Alb(_) => "alb",
        }
    }
}

/// Public HTTP(S) entry to the application's `http` port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressProps {
    /// Controller and its options.
    pub class: IngressClass,
    /// Host name, e.g. `api.example.com`.
    pub host: String,
    /// Path prefix routed to the app. Default: `/`.
    pub path: String,
    /// `spec.ingressClassName`. Default: [`IngressClass::default_class_name`].
    pub class_name: Option<String>,
}

impl IngressProps {
    /// An ingress for `host` on `/` through `class`.
    pub fn new(class: IngressClass, host: &str) -> Self {
        Self {
            class,
            host: host.to_owned(),
            path: "/".to_owned(),
            class_name: None,
        }
    }
}

/// Name of the TLS Secret cert-manager fills for application `name`: `<name>-tls`.
pub fn tls_secret_name(name: &str) -> String {
    format!("{name}-tls")
}

fn issuer(issuer: &str) -> Result<(), K8sError> {
    super::labels::validate_dns_subdomain("ingress cluster_issuer", issuer)
}

pub(super) fn build(ctx: &Ctx<'_>) -> Result<Option<Object>, K8sError> {
    let Some(props) = &ctx.props.ingress else {
        return Ok(None);
    };
    super::labels::validate_dns_subdomain(
        "ingress host",
        props.host.strip_prefix("*.").unwrap_or(&props.host),
    )?;
    if !props.path.starts_with('/') {
        return Err(K8sError::InvalidProps {
            field: "ingress.path".to_owned(),
            found: format!("`{}`", props.path),
            expected: "an absolute path such as `/`".to_owned(),
        });
    }
    let class_name = props
        .class_name
        .clone()
        .unwrap_or_else(|| props.class.default_class_name().to_owned());
    super::labels::validate_dns_subdomain("ingress class_name", &class_name)?;
    let mut a = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        a.insert(k.to_owned(), v);
    };
    let cert_manager_tls = || {
        Some(vec![IngressTLS {
            hosts: Some(vec![props.host.clone()]),
            secret_name: Some(tls_secret_name(ctx.name())),
        }])
    };
    let tls = match &props.class {
        IngressClass::Nginx(n) => {
            issuer(&n.cluster_issuer)?;
            set("cert-manager.io/cluster-issuer", n.cluster_issuer.clone());
            set("nginx.ingress.kubernetes.io/ssl-redirect", "true".into());
            set(
                "nginx.ingress.kubernetes.io/force-ssl-redirect",
                "true".into(),
            );
            if let Some(rps) = n.limit_rps {
                if rps == 0 {
                    return Err(K8sError::InvalidProps {
                        field: "ingress nginx limit_rps".to_owned(),
                        found: "0".to_owned(),
                        expected: "at least 1 request per second, or None for no limit".to_owned(),
                    });
                }
                set("nginx.ingress.kubernetes.io/limit-rps", rps.to_string());
            }
            cert_manager_tls()
        }
        IngressClass::Traefik(t) => {
            issuer(&t.cluster_issuer)?;
            set("cert-manager.io/cluster-issuer", t.cluster_issuer.clone());
            set(
                "traefik.ingress.kubernetes.io/router.entrypoints",
                t.entrypoint.clone(),
            );
            set("traefik.ingress.kubernetes.io/router.tls", "true".into());
            cert_manager_tls()
        }
        IngressClass::Alb(alb) => {
            let scheme = match alb.scheme {
                AlbScheme::InternetFacing => "internet-facing",
                AlbScheme::Internal => "internal",
            };
            set("alb.ingress.kubernetes.io/scheme", scheme.into());
            set("alb.ingress.kubernetes.io/target-type", "ip".into());
            if let Some(arn) = &alb.certificate_arn {
                if !(arn.starts_with("arn:aws") && arn.contains(":acm:")) {
                    return Err(K8sError::InvalidProps {
                        field: "ingress alb certificate_arn".to_owned(),
                        found: format!("`{arn}`"),
                        expected: "an ACM certificate ARN like `arn:aws:acm:eu-west-1:111111111111:certificate/<id>`".to_owned(),
                    });
                }
                set("alb.ingress.kubernetes.io/certificate-arn", arn.clone());
                set(
                    "alb.ingress.kubernetes.io/listen-ports",
                    r#"[{"HTTP": 80}, {"HTTPS": 443}]"#.into(),
                );
                set("alb.ingress.kubernetes.io/ssl-redirect", "443".into());
                set(
                    "alb.ingress.kubernetes.io/ssl-policy",
                    "ELBSecurityPolicy-TLS13-1-2-2021-06".into(),
                );
            } else {
                set(
                    "alb.ingress.kubernetes.io/listen-ports",
                    r#"[{"HTTP": 80}]"#.into(),
                );
            }
            if let Some((name, order)) = &alb.group {
                super::labels::validate_dns_label("ingress alb group", name)?;
                set("alb.ingress.kubernetes.io/group.name", name.clone());
                set("alb.ingress.kubernetes.io/group.order", order.to_string());
            }
            set("alb.ingress.kubernetes.io/backend-protocol", "HTTP".into());
            set(
                "alb.ingress.kubernetes.io/healthcheck-path",
                ctx.props.probes.readiness_path.clone(),
            );
            None
        }
    };
    let ingress = Ingress {
        metadata: ctx.meta("Ingress", ctx.name(), a)?,
        spec: Some(IngressSpec {
            ingress_class_name: Some(class_name),
            tls,
            rules: Some(vec![IngressRule {
                host: Some(props.host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some(props.path.clone()),
                        path_type: "Prefix".to_owned(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: ctx.name().to_owned(),
                                port: Some(ServiceBackendPort {
                                    name: Some(HTTP_PORT_NAME.to_owned()),
                                    number: None,
                                }),
                            }),
                            ..Default::default()
                        },
                    }],
                }),
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(Some(Object::new(Rank::Ingress, &ingress)?))
}
