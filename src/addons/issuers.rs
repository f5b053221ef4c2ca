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

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum Solver {
    Http01 { ingress: Http01Ingress },
    Dns01 { route53: Route53 },
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
/// it), registered with `email`.
pub fn cluster_issuers(
    used: &BTreeMap<String, BTreeSet<String>>,
    email: &str,
    challenge: &Challenge<'_>,
    labels: &BTreeMap<String, String>,
) -> Result<Vec<Object>, String> {
    let k8s_err = |e: K8sError| e.to_string();
    let mut out = Vec::new();
    for (name, classes) in used {
        let solver = match challenge.kind {
            AcmeChallenge::Dns01 => Solver::Dns01 {
                route53: Route53 {
                    region: challenge.region.to_owned(),
                },
            },
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
                Solver::Http01 {
                    ingress: Http01Ingress {
                        ingress_class_name: class.to_owned(),
                    },
                }
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
                    solvers: vec![solver],
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
        let issuers = cluster_issuers(
            &used("letsencrypt-staging", &["traefik"]),
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
            "o@e.com",
            &challenge,
            &labels,
        )
        .unwrap_err();
        assert!(err.contains("dns01"), "{err}");
        assert!(
            cluster_issuers(&used("corp-ca", &["nginx"]), "o@e.com", &challenge, &labels).is_err()
        );
    }
}
