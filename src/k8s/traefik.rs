//! Traefik `Middleware` custom resources (`traefik.io/v1alpha1`) for a service behind
//! Traefik's Kubernetes Ingress provider: an HTTP→HTTPS redirect (on the plain-HTTP entry
//! point's router) and a per-client rate limit (on the HTTPS router), referenced from the
//! Ingresses' `traefik.ingress.kubernetes.io/router.middlewares` annotation as
//! `<namespace>-<name>@kubernetescrd`.
//!
//! See <https://doc.traefik.io/traefik/reference/routing-configuration/kubernetes/crd/http/middleware/>.
//!
//! The rate limit counts requests per client address as Traefik sees it (its default source
//! criterion): Traefik's load balancer must preserve client addresses (an NLB with
//! `externalTrafficPolicy: Local`, or the PROXY protocol), or every client shares one bucket.
//! Trusting `X-Forwarded-For` instead would let any client pick its own bucket.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use super::{K8sError, Object, Rank, Suppression};

/// The Traefik provider that serves `Middleware` objects, as annotations name it.
pub const CRD_PROVIDER: &str = "kubernetescrd";

/// `Middleware` (traefik.io/v1alpha1).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Middleware {
    /// Always `traefik.io/v1alpha1`.
    pub api_version: &'static str,
    /// Always `Middleware`.
    pub kind: &'static str,
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// Exactly one middleware.
    pub spec: MiddlewareSpec,
}

/// `Middleware.spec`: one of Traefik's HTTP middlewares (only those keel renders).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MiddlewareSpec {
    /// Redirects to another scheme.
    RedirectScheme(RedirectScheme),
    /// Limits the request rate per client.
    RateLimit(RateLimitSpec),
}

/// `spec.redirectScheme`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedirectScheme {
    /// Target scheme: `https`.
    pub scheme: String,
    /// `308 Permanent Redirect` (method and body kept) instead of `307`.
    pub permanent: bool,
}

/// `spec.rateLimit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateLimitSpec {
    /// Requests per `period` and client, on average.
    pub average: u32,
    /// Requests a client may send at once above the average.
    pub burst: u32,
    /// The period of `average`, e.g. `1s`.
    pub period: String,
}

/// A per-client request rate limit at the ingress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second and client, on average (at least 1).
    pub average_rps: u32,
    /// Requests a client may send at once above the average (at least `average_rps`).
    pub burst: u32,
}

impl RateLimit {
    /// `average_rps` per second with a burst of five times that, as ingress-nginx's
    /// `limit-rps` allows by default (`limit-burst-multiplier` 5).
    pub fn like_nginx(average_rps: u32) -> Self {
        Self {
            average_rps,
            burst: average_rps.saturating_mul(5),
        }
    }

    fn validate(self) -> Result<(), K8sError> {
        if self.average_rps == 0 || self.burst < self.average_rps {
            return Err(K8sError::InvalidProps {
                field: "ingress traefik rate_limit".to_owned(),
                found: format!("average_rps {} and burst {}", self.average_rps, self.burst),
                expected: "average_rps >= 1 and burst >= average_rps".to_owned(),
            });
        }
        Ok(())
    }
}

/// Name of the redirect middleware of application `name`: `<name>-https-redirect`.
pub fn redirect_middleware_name(name: &str) -> String {
    format!("{name}-https-redirect")
}

/// Name of the rate-limit middleware of application `name`: `<name>-rate-limit`.
pub fn rate_limit_middleware_name(name: &str) -> String {
    format!("{name}-rate-limit")
}

/// How a router annotation names Middleware `name` of `namespace`:
/// `<namespace>-<name>@kubernetescrd`.
pub fn middleware_reference(namespace: &str, name: &str) -> String {
    format!("{namespace}-{name}@{CRD_PROVIDER}")
}

fn middleware(
    name: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    suppressions: &[Suppression],
    spec: MiddlewareSpec,
) -> Result<Object, K8sError> {
    let object = Middleware {
        api_version: "traefik.io/v1alpha1",
        kind: "Middleware",
        metadata: super::meta(
            "Middleware",
            name,
            Some(namespace),
            labels,
            BTreeMap::new(),
            suppressions,
        )?,
        spec,
    };
    Object::new(Rank::Ingress, &object)
}

/// The Middleware that redirects plain HTTP to HTTPS (308, so no method or body is lost).
pub(super) fn https_redirect(
    app: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    suppressions: &[Suppression],
) -> Result<Object, K8sError> {
    middleware(
        &redirect_middleware_name(app),
        namespace,
        labels,
        suppressions,
        MiddlewareSpec::RedirectScheme(RedirectScheme {
            scheme: "https".to_owned(),
            permanent: true,
        }),
    )
}

/// The Middleware that limits each client to `limit`.
pub(super) fn rate_limit(
    app: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    suppressions: &[Suppression],
    limit: RateLimit,
) -> Result<Object, K8sError> {
    limit.validate()?;
    middleware(
        &rate_limit_middleware_name(app),
        namespace,
        labels,
        suppressions,
        MiddlewareSpec::RateLimit(RateLimitSpec {
            average: limit.average_rps,
            burst: limit.burst,
            period: "1s".to_owned(),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn middlewares_render_as_traefik_expects() {
        let labels = BTreeMap::new();
        let redirect = https_redirect("web", "shop", &labels, &[]).unwrap();
        assert_eq!(redirect.name, "web-https-redirect");
        assert_eq!(redirect.content["apiVersion"], "traefik.io/v1alpha1");
        assert_eq!(
            redirect.content["spec"],
            serde_json::json!({"redirectScheme": {"scheme": "https", "permanent": true}})
        );
        let limit = rate_limit("web", "shop", &labels, &[], RateLimit::like_nginx(20)).unwrap();
        assert_eq!(
            limit.content["spec"],
            serde_json::json!({"rateLimit": {"average": 20, "burst": 100, "period": "1s"}})
        );
        assert_eq!(
            middleware_reference("shop", "web-rate-limit"),
            "shop-web-rate-limit@kubernetescrd"
        );
        for bad in [
            RateLimit {
                average_rps: 0,
                burst: 1,
            },
            RateLimit {
                average_rps: 10,
                burst: 5,
            },
        ] {
            assert!(rate_limit("web", "shop", &labels, &[], bad).is_err());
        }
    }
}
