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
use super::traefik::{self, RateLimit};
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

/// Traefik options (Kubernetes Ingress provider). Besides the HTTPS Ingress, the construct
/// renders an Ingress `<name>-http` on the plain-HTTP entry point whose router only
/// redirects to HTTPS (a [`super::traefik`] Middleware), and the rate-limit Middleware of
/// the HTTPS router. cert-manager's HTTP-01 solver routes (exact paths, so longer rules of
/// higher priority) still answer on port 80.
///
/// See <https://doc.traefik.io/traefik/routing/providers/kubernetes-ingress/>.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraefikIngress {
    /// cert-manager ClusterIssuer that issues the TLS certificate.
    pub cluster_issuer: String,
    /// The HTTPS entry point. Default: `websecure`.
    pub entrypoint: String,
    /// The plain-HTTP entry point, whose router redirects to HTTPS. Default: `web`.
    pub http_entrypoint: String,
    /// Per-client request rate limit of the HTTPS router. Default: none.
    pub rate_limit: Option<RateLimit>,
    /// The ingress class cert-manager's HTTP-01 solver should use for these hosts
    /// (`acme.cert-manager.io/http01-ingress-ingressclassname`, read by cert-manager 1.20
    /// and newer; for older ones the add-on layer gives the issuer a solver of this class
    /// for these hosts, [`crate::addons::uses::SOLVER_CLASS_ANNOTATION`]), when the issuer
    /// solves through another controller than this Traefik. Default: none (the issuer's
    /// own solver class).
    pub acme_solver_class: Option<String>,
}

impl TraefikIngress {
    /// Traefik with cert-manager TLS from `cluster_issuer` on the chart's entry points
    /// (`websecure`, `web`), no rate limit and the issuer's own solver class.
    pub fn new(cluster_issuer: &str) -> Self {
        Self {
            cluster_issuer: cluster_issuer.to_owned(),
            entrypoint: "websecure".to_owned(),
            http_entrypoint: "web".to_owned(),
            rate_limit: None,
            acme_solver_class: None,
        }
    }
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
    /// Attributes of the load balancer (`load-balancer-attributes`; every ingress of a
    /// group must give the same). Default: the controller's (no access logs, deletable).
    pub attributes: AlbAttributes,
}

/// Load balancer attributes the controller sets on the ALB it creates.
///
/// See <https://docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#load-balancer-attributes>.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlbAttributes {
    /// Access logs to this bucket (name) under this key prefix; the bucket's policy must let
    /// the region's log delivery write there. Default: none.
    pub access_logs: Option<(String, String)>,
    /// Refuse deletion of the load balancer (also when the Ingress is deleted). Default: `false`.
    pub deletion_protection: bool,
    /// The regional WAF web ACL to attach, by name (`wafv2-acl-name`, controller v2.14+):
    /// its ARN holds an id known only after Terraform creates it. Default: none.
    pub web_acl_name: Option<String>,
}

impl AlbAttributes {
    /// `key=value` pairs in a stable order, or `None` when nothing differs from the
    /// controller's defaults. Invalid header fields are always dropped (as on keel's own ALBs).
    fn annotation(&self) -> Option<String> {
        if self.access_logs.is_none() && !self.deletion_protection {
            return None;
        }
        let mut pairs = Vec::new();
        if let Some((bucket, prefix)) = &self.access_logs {
            pairs.push("access_logs.s3.enabled=true".to_owned());
            pairs.push(format!("access_logs.s3.bucket={bucket}"));
            pairs.push(format!("access_logs.s3.prefix={prefix}"));
        }
        pairs.push(format!(
            "deletion_protection.enabled={}",
            self.deletion_protection
        ));
        pairs.push("routing.http.drop_invalid_header_fields.enabled=true".to_owned());
        Some(pairs.join(","))
    }
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
    /// Further host names routed the same way, on the same certificate (nginx and
    /// traefik), e.g. the apex and `www.` of a site. Default: none.
    pub aliases: Vec<String>,
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
            aliases: Vec::new(),
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

/// The Ingress, and for Traefik the plain-HTTP redirect Ingress and the Middlewares.
pub(super) fn build(ctx: &Ctx<'_>) -> Result<Vec<Object>, K8sError> {
    let Some(props) = &ctx.props.ingress else {
        return Ok(Vec::new());
    };
    let hosts: Vec<String> = std::iter::once(&props.host)
        .chain(&props.aliases)
        .cloned()
        .collect();
    for host in &hosts {
        super::labels::validate_dns_subdomain(
            "ingress host",
            host.strip_prefix("*.").unwrap_or(host),
        )?;
    }
    if hosts.len() > 1 && matches!(props.class, IngressClass::Alb(_)) {
        return Err(K8sError::InvalidProps {
            field: "ingress.aliases".to_owned(),
            found: format!("{} with the alb class", props.aliases.join(", ")),
            expected: "no aliases: the ACM certificate of an ALB covers the host it names"
                .to_owned(),
        });
    }
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
    let namespace = ctx.props.namespace.as_str();
    let mut objects = Vec::new();
    let mut a = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        a.insert(k.to_owned(), v);
    };
    let cert_manager_tls = || {
        Some(vec![IngressTLS {
            hosts: Some(hosts.clone()),
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
            for (field, entrypoint) in [
                ("entrypoint", &t.entrypoint),
                ("http_entrypoint", &t.http_entrypoint),
            ] {
                super::labels::validate_dns_label(&format!("ingress traefik {field}"), entrypoint)?;
            }
            set("cert-manager.io/cluster-issuer", t.cluster_issuer.clone());
            if let Some(class) = &t.acme_solver_class {
                super::labels::validate_dns_subdomain("ingress traefik acme_solver_class", class)?;
                set(crate::addons::uses::SOLVER_CLASS_ANNOTATION, class.clone());
            }
            set(
                "traefik.ingress.kubernetes.io/router.entrypoints",
                t.entrypoint.clone(),
            );
            set("traefik.ingress.kubernetes.io/router.tls", "true".into());
            let labels = &ctx.labels;
            let suppressions = &ctx.props.suppressions;
            if let Some(limit) = t.rate_limit {
                let m = traefik::rate_limit(ctx.name(), namespace, labels, suppressions, limit)?;
                set(
                    ROUTER_MIDDLEWARES,
                    traefik::middleware_reference(namespace, &m.name),
                );
                objects.push(m);
            }
            let redirect = traefik::https_redirect(ctx.name(), namespace, labels, suppressions)?;
            let http = BTreeMap::from([
                (
                    "traefik.ingress.kubernetes.io/router.entrypoints".to_owned(),
                    t.http_entrypoint.clone(),
                ),
                (
                    ROUTER_MIDDLEWARES.to_owned(),
                    traefik::middleware_reference(namespace, &redirect.name),
                ),
            ]);
            objects.push(redirect);
            objects.push(ingress_object(
                ctx,
                &format!("{}-http", ctx.name()),
                http,
                &class_name,
                &hosts,
                &props.path,
                None,
            )?);
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
            if let Some(attributes) = alb.attributes.annotation() {
                set(
                    "alb.ingress.kubernetes.io/load-balancer-attributes",
                    attributes,
                );
            }
            if let Some(name) = &alb.attributes.web_acl_name {
                set("alb.ingress.kubernetes.io/wafv2-acl-name", name.clone());
            }
            set("alb.ingress.kubernetes.io/backend-protocol", "HTTP".into());
            set(
                "alb.ingress.kubernetes.io/healthcheck-path",
                ctx.props.probes.readiness_path.clone(),
            );
            None
        }
    };
    objects.push(ingress_object(
        ctx,
        ctx.name(),
        a,
        &class_name,
        &hosts,
        &props.path,
        tls,
    )?);
    Ok(objects)
}

/// The annotation listing a Traefik router's middlewares.
pub const ROUTER_MIDDLEWARES: &str = "traefik.ingress.kubernetes.io/router.middlewares";

/// One Ingress routing `path` of every host to the app's `http` Service port.
fn ingress_object(
    ctx: &Ctx<'_>,
    name: &str,
    annotations: BTreeMap<String, String>,
    class_name: &str,
    hosts: &[String],
    path: &str,
    tls: Option<Vec<IngressTLS>>,
) -> Result<Object, K8sError> {
    let rule = |host: &String| IngressRule {
        host: Some(host.clone()),
        http: Some(HTTPIngressRuleValue {
            paths: vec![HTTPIngressPath {
                path: Some(path.to_owned()),
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
    };
    let ingress = Ingress {
        metadata: ctx.meta("Ingress", name, annotations)?,
        spec: Some(IngressSpec {
            ingress_class_name: Some(class_name.to_owned()),
            tls,
            rules: Some(hosts.iter().map(rule).collect()),
            ..Default::default()
        }),
        ..Default::default()
    };
    Object::new(Rank::Ingress, &ingress)
}
