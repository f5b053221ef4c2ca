//! Regressions of the production review (issue 19), the data and cluster-lifecycle points:
//! database TLS, the version policy, node bootstrap order, cost per tier, MySQL for
//! whatsthecraic and aegistickets' database saturation. Each test is named for its point.

mod common;

use common::{output, resources};
use serde_json::Value;

/// The resource `ty.name` of a rendered root.
fn resource(o: &keel::ops::synth::Output, ty: &str, name: &str) -> Value {
    resources(o)
        .into_iter()
        .find(|(t, n, _)| t == ty && n == name)
        .map(|(_, _, b)| b)
        .unwrap_or_else(|| panic!("no {ty}.{name} in {} {}", o.env, o.stack))
}

fn depends_on(body: &Value) -> Vec<String> {
    body["depends_on"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn issue19_15_node_groups_wait_for_the_cni_and_its_role() {
    for env in ["dev", "staging", "prod"] {
        let o = output(env, "platform");
        let cni = resource(&o, "aws_eks_addon", "vpc_cni");
        // The CNI comes before any node, so it waits for no node group.
        assert!(
            depends_on(&cni)
                .iter()
                .all(|d| !d.starts_with("aws_eks_node_group.")),
            "{env}: vpc-cni waits for nodes"
        );
        let groups: Vec<(String, Value)> = resources(&o)
            .into_iter()
            .filter(|(t, _, _)| t == "aws_eks_node_group")
            .map(|(_, n, b)| (n, b))
            .collect();
        assert!(!groups.is_empty());
        for (name, group) in groups {
            let after = depends_on(&group);
            assert!(
                after.contains(&"aws_eks_addon.vpc_cni".to_owned()),
                "{env}: node group {name} does not wait for vpc-cni: {after:?}"
            );
            assert!(
                after
                    .iter()
                    .any(|d| d.starts_with("aws_iam_role_policy_attachment.vpc_cni")),
                "{env}: node group {name} does not wait for the CNI role's policy: {after:?}"
            );
        }
    }
}
