//! The check of an HTTP service a workload calls (e.g. Langfuse): one GET of its health
//! path with a short time limit. No answer is "unreachable from here" with the URL; an
//! address that resolves only inside a Kubernetes cluster is skipped with the command that
//! checks it there.

use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;

use super::Verdict;

/// How long the GET may take, connection included (below the check's own limit, so this
/// message is the one reported).
const GET_TIMEOUT: Duration = Duration::from_secs(5);

/// The URL to GET for service `what` at base URL `url`: the health path of the services
/// keel knows (Langfuse: `/api/public/health`, which answers 200 when healthy and 503
/// otherwise), else the base URL itself.
pub fn health_url(what: &str, url: &str) -> String {
    let base = url.trim_end_matches('/');
    if what.eq_ignore_ascii_case("langfuse") {
        format!("{base}/api/public/health")
    } else {
        url.to_owned()
    }
}

/// Whether `host` is a Kubernetes service name that only cluster DNS resolves.
fn in_cluster(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    host.ends_with(".svc") || host.ends_with(".cluster.local")
}

/// GETs the service's health URL; 2xx is ok, another status is missing (up but unhealthy),
/// no answer is unreachable.
pub async fn service(what: &str, url: &str) -> Verdict {
    let health = health_url(what, url);
    let uri: hyper::Uri = match health.parse() {
        Ok(uri) => uri,
        Err(e) => {
            return Verdict::Missing(format!(
                "{health:?} is not a URL ({e}); fix the stack's setting"
            ));
        }
    };
    let host = uri.host().unwrap_or_default();
    if in_cluster(host) {
        return Verdict::Skipped(format!(
            "{host} resolves only inside the cluster; check it there: kubectl run preflight-{} --rm -i --restart=Never --image=curlimages/curl -- curl -fsS {health}",
            what.to_ascii_lowercase()
        ));
    }
    let answer = match uri.scheme_str() {
        Some("https") => match hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
        {
            Ok(builder) => get(builder.https_only().enable_http1().build(), uri).await,
            Err(e) => Err(format!("no TLS root certificates on this machine: {e}")),
        },
        Some("http") => get(HttpConnector::new(), uri).await,
        _ => {
            return Verdict::Missing(format!(
                "{health} is neither http:// nor https://; fix the stack's setting"
            ));
        }
    };
    match answer {
        Ok(status) if status.is_success() => Verdict::Ok(format!("GET {health}: {status}")),
        Ok(status) => Verdict::Missing(format!(
            "GET {health} answered {status}: {what} runs but is not healthy; check its logs and its database"
        )),
        Err(why) => Verdict::Unreachable(format!(
            "unreachable from here: GET {health}: {why}; is {what} running, and does this machine reach its network?"
        )),
    }
}

/// The status of a GET of `uri` through `connector`, within [`GET_TIMEOUT`].
async fn get<C>(connector: C, uri: hyper::Uri) -> Result<hyper::StatusCode, String>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector);
    let request = hyper::Request::get(uri)
        .header(hyper::header::USER_AGENT, "keel-preflight")
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(GET_TIMEOUT, client.request(request)).await {
        Ok(Ok(response)) => Ok(response.status()),
        Ok(Err(e)) => Err(super::causes(&e)),
        Err(_) => Err(format!("no answer within {} s", GET_TIMEOUT.as_secs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn langfuse_is_checked_at_its_health_path() {
        assert_eq!(
            health_url("Langfuse", "https://langfuse.example.com/"),
            "https://langfuse.example.com/api/public/health"
        );
        assert_eq!(
            health_url("Other", "https://other.example.com/ping"),
            "https://other.example.com/ping"
        );
    }

    #[test]
    fn cluster_service_names_are_in_cluster() {
        assert!(in_cluster("langfuse-web.langfuse.svc.cluster.local"));
        assert!(in_cluster("langfuse-web.langfuse.svc"));
        assert!(!in_cluster("langfuse.example.com"));
        assert!(!in_cluster("127.0.0.1"));
    }
}
