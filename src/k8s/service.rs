//! The ClusterIP Service in front of the Deployment: named `http` and `metrics` ports.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::construct::Ctx;
use super::deployment::{HTTP_PORT_NAME, METRICS_PORT_NAME};
use super::{K8sError, Object, Rank};

/// The Service, and with a traffic-routed canary its twin `<name>-canary` (Argo Rollouts
/// points each at one revision's pods during a rollout).
pub(super) fn build(ctx: &Ctx<'_>) -> Result<Vec<Object>, K8sError> {
    let ports = ctx.props.ports;
    if ports.service_http == 0 || Some(ports.service_http) == ports.metrics {
        return Err(K8sError::InvalidProps {
            field: "ports.service_http".to_owned(),
            found: ports.service_http.to_string(),
            expected: "a non-zero port different from the metrics port".to_owned(),
        });
    }
    let port = |name: &str, number: u16| ServicePort {
        name: Some(name.to_owned()),
        port: i32::from(number),
        target_port: Some(IntOrString::String(name.to_owned())),
        protocol: Some("TCP".to_owned()),
        ..Default::default()
    };
    let service = |name: &str| -> Result<Object, K8sError> {
        let service = Service {
            metadata: ctx.meta("Service", name, BTreeMap::new())?,
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".to_owned()),
                selector: Some(ctx.selector.clone()),
                ports: Some(
                    std::iter::once(port(HTTP_PORT_NAME, ports.service_http))
                        .chain(ports.metrics.map(|m| port(METRICS_PORT_NAME, m)))
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        Object::new(Rank::Service, &service)
    };
    let mut out = vec![service(ctx.name())?];
    if ctx.props.canary.is_some() && super::rollout::routes_traffic(ctx) {
        out.push(service(&super::rollout::canary_name(ctx.name()))?);
    }
    Ok(out)
}
