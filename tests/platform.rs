//! The platform stack, cross-stack exports and workload identity (issue 7).

use crate::common;

use common::{of_type, output, resources};
use keel::ops::Project;
use keel::ops::synth::{Selection, build};
use serde_json::{Value, json};

fn data_of_type(o: &keel::ops::synth::Output, ty: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (path, body) in &o.files {
        if !path.starts_with("terraform") {
            continue;
        }
        let v: Value = serde_json::from_str(body).expect("JSON");
        if let Some(named) = v["data"][ty].as_object() {
            for (name, body) in named {
                out.push((name.clone(), body.clone()));
            }
        }
    }
    out
}

#[test]
fn prod_cluster_is_private_encrypted_logged_and_admin_free_for_its_creator() {
    let o = output("prod", "platform");
    let cluster = &of_type(&o, "aws_eks_cluster")[0];
    assert_eq!(cluster["name"], "eks-prod");
    // Prod runs 1.33; EKS goes one minor per update, so 1.34 in extended support first.
    assert_eq!(cluster["version"], "1.34");
    assert_eq!(
        cluster["upgrade_policy"],
        json!([{"support_type": "EXTENDED"}])
    );
    assert_eq!(
        cluster["access_config"][0],
        json!({"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": false})
    );
    assert_eq!(
        cluster["encryption_config"][0]["resources"],
        json!(["secrets"])
    );
    assert_eq!(
        cluster["enabled_cluster_log_types"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );
    let vpc = &cluster["vpc_config"][0];
    assert_eq!(
        (
            vpc["endpoint_private_access"].as_bool(),
            vpc["endpoint_public_access"].as_bool()
        ),
        (Some(true), Some(false))
    );
    let logs: Vec<Value> = of_type(&o, "aws_cloudwatch_log_group");
    assert!(logs.iter().any(|l| l["name"] == "/aws/eks/eks-prod/cluster"
        && l["kms_key_id"] == "${aws_kms_key.main.arn}"
        && l["retention_in_days"] == 365));
    let dev = output("dev", "platform");
    assert_eq!(
        of_type(&dev, "aws_eks_cluster")[0]["vpc_config"][0]["public_access_cidrs"],
        json!(["203.0.113.0/24"])
    );
    let policies: Vec<Value> = of_type(&o, "aws_eks_access_policy_association");
    let mut principals: Vec<&str> = policies
        .iter()
        .map(|p| p["principal_arn"].as_str().unwrap())
        .collect();
    principals.sort_unstable();
    assert_eq!(
        principals,
        [
            // The admin of the environment file, and the deploy workflow's apply role.
            "arn:aws:iam::111122223333:role/keel-apply-prod",
            "arn:aws:iam::111122223333:role/platform-admins",
        ],
    );
}

#[test]
fn nodes_use_imdsv2_encrypted_gp3_and_only_worker_and_ecr_policies() {
    let o = output("prod", "platform");
    let template = &of_type(&o, "aws_launch_template")[0];
    assert_eq!(
        template["metadata_options"][0],
        json!({"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1})
    );
    let ebs = &template["block_device_mappings"][0]["ebs"][0];
    assert_eq!(
        (ebs["volume_type"].as_str(), ebs["encrypted"].as_str()),
        (Some("gp3"), Some("true"))
    );
    let group = &of_type(&o, "aws_eks_node_group")[0];
    assert_eq!(
        group["scaling_config"][0],
        json!({"min_size": 3, "desired_size": 3, "max_size": 9})
    );
    // The nodes follow the control plane's version: without it a node group stays at the
    // version it was created with, and cluster upgrades leave its kubelets behind.
    assert_eq!(group["version"], "${aws_eks_cluster.main.version}");
    let node_policies: Vec<String> = resources(&o)
        .into_iter()
        .filter(|(t, n, _)| t == "aws_iam_role_policy_attachment" && n.starts_with("node_"))
        .map(|(_, _, b)| b["policy_arn"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        node_policies,
        [
            "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
            "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy"
        ],
        "the CNI policy is on the vpc-cni role, not the nodes"
    );
    let addons: Vec<(String, Value)> = of_type(&o, "aws_eks_addon")
        .into_iter()
        .map(|a| (a["addon_name"].as_str().unwrap().to_owned(), a))
        .collect();
    // The five core add-ons, and the layer's cert-manager, metrics-server and log shipping.
    assert_eq!(addons.len(), 8);
    for (name, addon) in &addons {
        assert!(
            addon["addon_version"]
                .as_str()
                .unwrap()
                .contains("eksbuild"),
            "{name}"
        );
        let has_role = addon.get("service_account_role_arn").is_some();
        assert_eq!(
            has_role,
            [
                "vpc-cni",
                "aws-ebs-csi-driver",
                "amazon-cloudwatch-observability"
            ]
            .contains(&name.as_str()),
            "{name}"
        );
    }
}

#[test]
fn subnets_are_tagged_for_load_balancer_discovery() {
    let o = output("prod", "platform");
    for subnet in of_type(&o, "aws_subnet") {
        let tags = &subnet["tags"];
        if tags["Tier"] == "data" {
            // Data subnets hold databases only: no load balancer may be placed there.
            assert!(
                tags.get("kubernetes.io/role/internal-elb").is_none(),
                "{tags}"
            );
            continue;
        }
        assert_eq!(tags["kubernetes.io/cluster/eks-prod"], "shared");
        let role = if tags["Tier"] == "public" {
            "kubernetes.io/role/elb"
        } else {
            "kubernetes.io/role/internal-elb"
        };
        assert_eq!(tags[role], "1", "{tags}");
    }
}

#[test]
fn exports_are_plain_ssm_parameters_under_the_environment_and_stack() {
    let o = output("prod", "platform");
    let names: Vec<String> = of_type(&o, "aws_ssm_parameter")
        .into_iter()
        .map(|p| {
            assert_ne!(p["type"], "SecureString");
            p["name"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(names.len(), 10);
    assert!(
        names.iter().all(|n| n.starts_with("/keel/prod/platform/")),
        "{names:?}"
    );
    let subnets = of_type(&o, "aws_ssm_parameter")
        .into_iter()
        .find(|p| p["name"] == "/keel/prod/platform/private_subnet_ids")
        .unwrap();
    assert_eq!(subnets["type"], "StringList");
}

#[test]
fn analytics_api_imports_its_network_and_pastes_no_id() {
    let o = output("prod", "analytics-api");
    let imported: Vec<String> = data_of_type(&o, "aws_ssm_parameter")
        .into_iter()
        .map(|(_, b)| b["name"].as_str().unwrap().to_owned())
        .collect();
    for name in [
        "vpc_id",
        "data_subnet_ids",
        "node_security_group_id",
        "oidc_provider_arn",
        "cluster_name",
    ] {
        assert!(
            imported.contains(&format!("/keel/prod/platform/{name}")),
            "{name}: {imported:?}"
        );
    }
    for (path, body) in &o.files {
        for literal in ["\"vpc-0", "\"subnet-0", "\"sg-0"] {
            assert!(
                !body.contains(literal),
                "{} holds a pasted id",
                path.display()
            );
        }
    }
    let subnets = &of_type(&o, "aws_db_subnet_group")[0]["subnet_ids"];
    assert_eq!(
        subnets,
        "${split(\",\", data.aws_ssm_parameter.platform_data_subnet_ids.insecure_value)}"
    );
}

#[test]
fn the_deploy_role_trusts_one_repository_environment_and_deploys_one_namespace() {
    let o = output("prod", "analytics-api");
    let trust = data_of_type(&o, "aws_iam_policy_document")
        .into_iter()
        .find(|(n, _)| n == "github_deploy_trust")
        .unwrap()
        .1;
    let conditions = &trust["statement"][0]["condition"];
    assert_eq!(
        conditions,
        &json!([
            {"test": "StringEquals", "variable": "token.actions.githubusercontent.com:aud", "values": ["sts.amazonaws.com"]},
            {"test": "StringEquals", "variable": "token.actions.githubusercontent.com:sub", "values": ["repo:acme/analytics-api:environment:prod"]},
        ])
    );
    assert!(of_type(&o, "aws_eks_access_policy_association").is_empty());
    let entry = &of_type(&o, "aws_eks_access_entry")[0];
    assert_eq!(
        entry["kubernetes_groups"],
        json!(["analytics-api-deployers"])
    );
    let binding = &o.files[std::path::Path::new("k8s/15-rolebinding-ci-deployer.yaml")];
    assert!(binding.contains("namespace: analytics\n"), "{binding}");
}

#[test]
fn controllers_get_their_identity_and_no_cluster_wide_secret_store_exists() {
    let o = output("prod", "platform");
    // Each stack's own SecretStore authenticates as its ServiceAccount
    // (tests/observability.rs); a cluster-wide store would read for any namespace.
    assert!(
        !o.files
            .keys()
            .any(|p| p.to_string_lossy().contains("clustersecretstore")),
        "{:?}",
        o.files.keys()
    );
    // The chart creates the ServiceAccount (Helm runs before k8s/ is applied), annotated
    // with the role keel creates for it.
    let values = &o.files[std::path::Path::new("addons/aws-load-balancer-controller.values.yaml")];
    assert!(values.contains(
        "eks.amazonaws.com/role-arn: arn:aws:iam::111122223333:role/eks-prod-lb-controller"
    ));
    assert!(values.contains("--version 1.14.1") && values.contains("create: true"));
    assert!(!values.contains("vpc-0"), "the VPC is found by tag");
}

/// A temporary copy of the project's environments, edited by `edit(name, text)`.
fn project_with(edit: impl Fn(&str, String) -> Option<String>) -> tempfile::TempDir {
    let dir = common::temp_project();
    let envs = dir.path().join("environments");
    for entry in std::fs::read_dir(common::repo().join("environments")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if let Some(stem) = name.strip_suffix(".yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            match edit(stem, text) {
                Some(text) => std::fs::write(envs.join(&name), text).unwrap(),
                None => std::fs::remove_file(envs.join(&name)).unwrap(),
            }
        }
    }
    dir
}

#[test]
fn a_consumer_without_its_producer_is_an_error_naming_both() {
    let dir = project_with(|stem, text| {
        (stem == "dev").then(|| {
            let start = text.find("  platform:\n").unwrap();
            let end = text.find("  langgraph-platform:\n").unwrap();
            format!("{}{}", &text[..start], &text[end..])
        })
    });
    let err = build(&Project::new(dir.path().to_owned()), &Selection::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("environments/dev.yaml:")
            && err.contains("stack analytics-api imports its cluster's network and identities from stack platform, which this environment does not synthesize"),
        "{err}"
    );
}

#[test]
fn two_environments_of_one_account_cannot_both_create_the_github_provider() {
    // A state backend of its own: environments never share one (issue 22).
    let qa = |text: &str| {
        text.replace("name: staging", "name: qa")
            .replace("key_prefix: keel/staging", "key_prefix: keel/qa")
    };
    let both = project_with(|stem, text| match stem {
        "staging" => Some(text),
        "qa" => None,
        _ => None,
    });
    std::fs::write(
        both.path().join("environments/qa.yaml"),
        qa(&std::fs::read_to_string(common::repo().join("environments/staging.yaml")).unwrap()),
    )
    .unwrap();
    let err = build(&Project::new(both.path().to_owned()), &Selection::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("environments qa and staging share account 444455556666"),
        "{err}"
    );
    let existing =
        qa(&std::fs::read_to_string(common::repo().join("environments/staging.yaml")).unwrap())
            .replace(
                "github_oidc_provider: create",
                "github_oidc_provider: existing",
            );
    std::fs::write(both.path().join("environments/qa.yaml"), existing).unwrap();
    let outputs = build(&Project::new(both.path().to_owned()), &Selection::default()).unwrap();
    let qa_platform = outputs
        .iter()
        .find(|o| o.env == "qa" && o.stack == "platform")
        .unwrap();
    assert!(
        of_type(qa_platform, "aws_iam_openid_connect_provider")
            .iter()
            .all(|p| p["url"] != "https://token.actions.githubusercontent.com")
    );
}

#[test]
fn every_irsa_role_trusts_exactly_the_service_account_that_carries_it() {
    let mut checked = 0;
    for o in common::outputs() {
        let docs = data_of_type(&o, "aws_iam_policy_document");
        for (path, body) in &o.files {
            if !path.starts_with("k8s") {
                continue;
            }
            let doc: Value = serde_saphyr::from_str(body).expect("YAML");
            if doc["kind"] != "ServiceAccount" {
                continue;
            }
            let Some(arn) = doc["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].as_str()
            else {
                continue;
            };
            let (ns, name) = (
                doc["metadata"]["namespace"].as_str().unwrap(),
                doc["metadata"]["name"].as_str().unwrap(),
            );
            let role_name = arn.rsplit('/').next().unwrap();
            let (role_id, _) = resources(&o)
                .into_iter()
                .find(|(t, _, b)| t == "aws_iam_role" && b["name"] == role_name)
                .map(|(_, n, b)| (n, b))
                .unwrap_or_else(|| {
                    panic!("{} {}: no role {role_name} for {ns}/{name}", o.env, o.stack)
                });
            let account =
                common::tf_json(&o, "main.tf.json")["provider"]["aws"]["allowed_account_ids"][0]
                    .as_str()
                    .unwrap()
                    .to_owned();
            assert_eq!(arn, format!("arn:aws:iam::{account}:role/{role_name}"));
            let trust = &docs
                .iter()
                .find(|(n, _)| *n == format!("{role_id}_trust"))
                .unwrap()
                .1["statement"][0];
            let sub = trust["condition"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["variable"].as_str().unwrap().ends_with(":sub"))
                .unwrap();
            assert_eq!(
                sub["values"],
                json!([format!("system:serviceaccount:{ns}:{name}")]),
                "{} {}: {role_name}",
                o.env,
                o.stack
            );
            // The pods that use the account are the ones the role was made for.
            for (_, b) in o.files.iter().filter(|(p, _)| p.starts_with("k8s")) {
                let d: Value = serde_saphyr::from_str(b).expect("YAML");
                if d["kind"] == "Deployment" {
                    let sa = &d["spec"]["template"]["spec"]["serviceAccountName"];
                    if sa == name {
                        assert_eq!(d["metadata"]["namespace"], ns);
                    }
                }
            }
            checked += 1;
        }
    }
    // Each environment: the metrics service's pods and the secret stores of the four
    // stacks that read secrets (the platform's controllers get their ServiceAccounts from
    // their charts' values: `src/addons/tests.rs` checks those).
    assert_eq!(checked, 3 * (1 + 4));
}

/// Issue 18: the platform's add-on layer comes from every stack of the environment, so
/// synthesizing the platform alone writes exactly what a full synth writes for it.
#[test]
fn the_platform_alone_is_the_platform_of_a_full_synth() {
    let alone = build(
        &Project::new(common::repo()),
        &Selection {
            envs: vec!["prod".into()],
            stack: Some("platform".into()),
        },
    )
    .expect("prod builds");
    assert_eq!(alone.len(), 1);
    let full = output("prod", "platform");
    assert_eq!(alone[0].files, full.files);
    assert_eq!(alone[0].apply_order, full.apply_order);
    assert!(
        full.files
            .keys()
            .any(|p| p.starts_with("addons") && p.ends_with("kube-prometheus-stack.values.yaml"))
    );
}
