//! cert-manager ClusterIssuers: one ACME (Let's Encrypt) issuer for each name the
//! Ingresses carry in `cert-manager.io/cluster-issuer`, solving HTTP-01 through an ingress
//! class in use or DNS-01 through Route 53.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use crate::env::file::AcmeChallenge;
use crate::k8s::{self, K8sError, Object, Rank};

/// Let's Encrypt's production directory.
const LETSENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (untrusted certificates, generous rate limits).
const LETSENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterIssuer {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    spec: IssuerSpec,
}

#[derive(Serialize)]
struct IssuerSpec {
    acme: Acme,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Acme {
    email: String,
    server: &'static str,
    private_key_secret_ref: SecretRef,
    solvers: Vec<Solver>,
}

#[derive(Serialize)]
struct SecretRef {
    name: String,
}

/// One ACME solver; a `selector` limits it to some names (the most specific match wins,
/// a solver without one takes every other name).
#[derive(Serialize)]
struct Solver {
    #[serde(skip_serializing_if = "Option::is_none")]
    selector: Option<Selector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http01: Option<Http01>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns01: Option<Dns01>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Selector {
    dns_names: Vec<String>,
}

#[derive(Serialize)]
struct Http01 {
    ingress: Http01Ingress,
}

#[derive(Serialize)]
struct Dns01 {
    route53: Route53,
}

impl Solver {
    fn http01(class: &str, dns_names: Option<Vec<String>>) -> Solver {
        Solver {
            selector: dns_names.map(|dns_names| Selector { dns_names }),
            http01: Some(Http01 {
                ingress: Http01Ingress {
                    ingress_class_name: class.to_owned(),
                },
            }),
            dns01: None,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Http01Ingress {
    ingress_class_name: String,
}

#[derive(Serialize)]
struct Route53 {
    region: String,
}

/// How the issuers prove control of a name.
#[derive(Debug, Clone)]
pub struct Challenge<'a> {
    /// HTTP-01 or DNS-01 (the environment's `kubernetes.acme_challenge`).
    pub kind: AcmeChallenge,
    /// The environment's ingress class, preferred for HTTP-01 when an issuer's Ingresses
    /// use it.
    pub preferred_class: &'a str,
    /// The region of the Route 53 client (DNS-01).
    pub region: &'a str,
}

/// The ACME directory of an issuer name: `letsencrypt-staging` (or any name with
/// `staging`) is Let's Encrypt's staging directory, another `letsencrypt*` its production
/// one; any other name is refused.
fn server(name: &str) -> Result<&'static str, String> {
    match name {
        n if n.starts_with("letsencrypt") && n.contains("staging") => Ok(LETSENCRYPT_STAGING),
        n if n.starts_with("letsencrypt") => Ok(LETSENCRYPT),
        n => Err(format!(
            "an Ingress names ClusterIssuer {n:?}: keel makes Let's Encrypt issuers only; expected a name starting with `letsencrypt` (e.g. letsencrypt-prod, letsencrypt-staging) in kubernetes.cluster_issuer"
        )),
    }
}

/// One ClusterIssuer per issuer name in `used` (name -> classes of the Ingresses naming
/// it), registered with `email`. Under HTTP-01, the names in `solver_classes` (issuer ->
/// class -> names) get a solver of their own through that class: cert-manager before 1.20
/// ignores the Ingress annotation that asks for it, and would send the challenge through
/// the issuer's class, whose load balancer those names do not point at.
pub fn cluster_issuers(
    used: &BTreeMap<String, BTreeSet<String>>,
    solver_classes: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    email: &str,
    challenge: &Challenge<'_>,
    labels: &BTreeMap<String, String>,
) -> Result<Vec<Object>, String> {
    let k8s_err = |e: K8sError| e.to_string();
    let mut out = Vec::new();
    for (name, classes) in used {
        let solvers = match challenge.kind {
            AcmeChallenge::Dns01 => vec![Solver {
                selector: None,
                http01: None,
                dns01: Some(Dns01 {
                    route53: Route53 {
                        region: challenge.region.to_owned(),
                    },
                }),
            }],
            AcmeChallenge::Http01 => {
                // An ALB terminates TLS with ACM certificates: it cannot serve the solver.
                let class = if classes.contains(challenge.preferred_class)
                    && challenge.preferred_class != "alb"
                {
                    Some(challenge.preferred_class)
                } else {
                    classes.iter().map(String::as_str).find(|c| *c != "alb")
                };
                let class = class.ok_or_else(|| {
                    format!(
                        "ClusterIssuer {name:?} is named only by Ingresses of class alb, which cannot answer HTTP-01; use kubernetes.acme_challenge: dns01 or an nginx/traefik Ingress"
                    )
                })?;
                let mut solvers = vec![Solver::http01(class, None)];
                for (other, names) in solver_classes.get(name).into_iter().flatten() {
                    if other != class && !names.is_empty() {
                        solvers.push(Solver::http01(other, Some(names.iter().cloned().collect())));
                    }
                }
                solvers
            }
        };
        let issuer = ClusterIssuer {
            api_version: "cert-manager.io/v1",
            kind: "ClusterIssuer",
            metadata: k8s::meta("ClusterIssuer", name, None, labels, BTreeMap::new(), &[])
                .map_err(k8s_err)?,
            spec: IssuerSpec {
                acme: Acme {
                    email: email.to_owned(),
                    server: server(name)?,
                    private_key_secret_ref: SecretRef {
                        name: format!("{name}-account-key"),
                    },
                    solvers,
                },
            },
        };
        out.push(Object::new(Rank::Config, &issuer).map_err(k8s_err)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(name: &str, classes: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
        BTreeMap::from([(
            name.to_owned(),
            classes.iter().map(|c| (*c).to_owned()).collect(),
        )])
    }

    #[test]
    fn http01_goes_through_a_class_in_use_and_staging_names_pick_the_staging_directory() {
        let challenge = Challenge {
            kind: AcmeChallenge::Http01,
            preferred_class: "nginx",
            region: "us-east-1",
        };
        let labels = BTreeMap::new();
        let none = BTreeMap::new();
        let issuers = cluster_issuers(
            &used("letsencrypt-staging", &["traefik"]),
            &none,
            "ops@example.com",
            &challenge,
            &labels,
        )
        .unwrap();
        let acme = &issuers[0].content["spec"]["acme"];
        assert_eq!(acme["server"], LETSENCRYPT_STAGING);
        assert_eq!(
            acme["solvers"][0]["http01"]["ingress"]["ingressClassName"],
            "traefik"
        );
        let dns = Challenge {
            kind: AcmeChallenge::Dns01,
            ..challenge.clone()
        };
        let issuers = cluster_issuers(
            &used("letsencrypt-prod", &["alb"]),
            &none,
            "o@e.com",
            &dns,
            &labels,
        )
        .unwrap();
        let acme = &issuers[0].content["spec"]["acme"];
        assert_eq!(acme["server"], LETSENCRYPT);
        assert_eq!(
            acme["solvers"][0]["dns01"]["route53"]["region"],
            "us-east-1"
        );
        let err = cluster_issuers(
            &used("letsencrypt-prod", &["alb"]),
            &none,
            "o@e.com",
            &challenge,
            &labels,
        )
        .unwrap_err();
        assert!(err.contains("dns01"), "{err}");
        assert!(
            cluster_issuers(
                &used("corp-ca", &["nginx"]),
                &none,
                "o@e.com",
                &challenge,
                &labels
            )
            .is_err()
        );
    }
}
