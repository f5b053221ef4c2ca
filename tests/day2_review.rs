//! Regressions of the day-2 review of generated/prod: what breaks not at the first apply
//! but later, at an upgrade, a rotation or a second deployment. Each test names its point.

use crate::common;

use common::of_type;
use keel::ops::Project;
use keel::plan::{Kind, Plan};

fn plan(env: &str) -> Plan {
    keel::ops::plan::plan(&Project::new(common::repo()), env)
        .unwrap_or_else(|e| panic!("the plan of {env}: {e}"))
}

/// Point 1: `engine_major_version: 15` -> `16` renders `engine_version = "16"` and a
/// parameter group of the new family, but RDS refuses a new major version unless the
/// request allows it (`InvalidParameterCombination: The AllowMajorVersionUpgrade flag must
/// be present when upgrading to a new major version`): the upgrade keel prepares for (the
/// parameter group's name prefix) would fail at apply.
#[test]
fn day2_1_a_major_engine_upgrade_is_allowed_by_every_database() {
    let mut seen = 0;
    for o in common::outputs() {
        for db in of_type(&o, "aws_db_instance") {
            seen += 1;
            assert_eq!(
                db["allow_major_version_upgrade"], true,
                "{} {}: a change of engine_major_version would fail at apply",
                o.env, o.stack
            );
        }
    }
    assert!(seen >= 4, "every database of every environment: {seen}");
}

/// Point 3: `helm upgrade` never touches a chart's `crds/` directory (Helm installs it
/// once and leaves it; kube-prometheus-stack, Traefik and the AWS Load Balancer Controller
/// keep their CRDs there). A chart bump would run the new controller against the old
/// CRDs. Every install of such a chart applies the pinned chart's CRDs first.
#[test]
fn day2_3_charts_with_a_crds_directory_apply_their_crds_before_each_upgrade() {
    let p = plan("prod");
    let installs: Vec<_> = p.steps.iter().filter(|s| s.kind == Kind::Install).collect();
    for name in [
        "kube-prometheus-stack",
        "traefik",
        "aws-load-balancer-controller",
    ] {
        let step = installs
            .iter()
            .find(|s| s.id == format!("addon/{name}"))
            .unwrap_or_else(|| panic!("prod installs {name}"));
        let crds = step
            .run
            .iter()
            .position(|c| c.join(" ").contains("helm show crds"))
            .unwrap_or_else(|| panic!("{name}: no CRD apply in {:#?}", step.run));
        let upgrade = step
            .run
            .iter()
            .position(|c| c.starts_with(&["helm".to_owned(), "upgrade".to_owned()]))
            .expect("the helm upgrade");
        assert!(crds < upgrade, "{name}: CRDs after the upgrade");
        let line = step.run[crds].join(" ");
        assert!(
            line.contains("--server-side") && line.contains("--force-conflicts"),
            "{name}: {line}"
        );
    }
    // Charts that template their CRDs (upgraded by Helm itself) get no extra command.
    for name in ["external-secrets", "argo-rollouts"] {
        let step = installs
            .iter()
            .find(|s| s.id == format!("addon/{name}"))
            .unwrap_or_else(|| panic!("prod installs {name}"));
        assert!(
            !step.run.iter().any(|c| c.join(" ").contains("show crds")),
            "{name}"
        );
    }
}

/// Point 4: a generated secret (a login's password, a Redis AUTH token) is generated once
/// and then rotated in place by an operator (`put-secret-value`); its version resource
/// ignores `secret_string` and keeps reading the version it created. What Terraform
/// composes from it (`DATABASE_URL`, `REDIS_URL`, the cache's `auth_token`) must follow
/// the secret's current value: from the frozen version, the login step set the new
/// password on the database while every consumer kept connecting with the old one.
#[test]
fn day2_4_what_is_composed_from_a_generated_secret_follows_its_rotation() {
    let mut composed = 0;
    for o in common::outputs() {
        let frozen: Vec<String> = common::resources(&o)
            .into_iter()
            .filter(|(t, _, b)| {
                t == "aws_secretsmanager_secret_version"
                    && b["lifecycle"]["ignore_changes"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|v| v == "secret_string"))
            })
            .map(|(_, n, _)| n)
            .collect();
        for (t, n, body) in common::resources(&o) {
            let text = body.to_string();
            for f in &frozen {
                let current = format!("data.aws_secretsmanager_secret_version.{f}.secret_string");
                let frozen_value = format!("aws_secretsmanager_secret_version.{f}.secret_string");
                assert!(
                    !text.replace(&current, "").contains(&frozen_value),
                    "{} {}: {t}.{n} reads the value {f} had at the first apply",
                    o.env,
                    o.stack
                );
                if text.contains(&current) {
                    composed += 1;
                }
            }
        }
    }
    assert!(composed > 0, "the composed secrets read the current value");
}

/// Point 6: under the CODE_DEPLOY deployment controller, ECS's UpdateService refuses a new
/// network configuration or platform version ("Unable to update network parameters on
/// services with a CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new
/// deployment"), so an innocent edit (the tasks' security group replaced, a subnet added)
/// failed the apply. Terraform leaves them to CodeDeploy, and every deployment's AppSpec
/// carries the configured ones.
#[test]
fn day2_6_a_blue_green_service_takes_network_changes_through_its_deployment() {
    let o = common::output("prod", "langgraph-platform");
    let service = &of_type(&o, "aws_ecs_service")[0];
    assert_eq!(service["deployment_controller"][0]["type"], "CODE_DEPLOY");
    let ignored = service["lifecycle"]["ignore_changes"]
        .as_array()
        .expect("ignore_changes");
    for attr in ["network_configuration", "platform_version"] {
        assert!(ignored.iter().any(|v| v == attr), "{attr}: {ignored:?}");
    }
    let appspec = &o.files[std::path::Path::new("deploy/appspec.yaml")];
    let script = &o.files[std::path::Path::new("deploy/create-deployment.sh")];
    let outputs = common::tf_json(&o, "outputs.tf.json");
    assert!(appspec.contains("PlatformVersion: \"LATEST\""), "{appspec}");
    assert!(
        appspec.contains("AssignPublicIp: \"DISABLED\""),
        "{appspec}"
    );
    for (key, output) in [
        ("Subnets", "task_subnet_ids"),
        ("SecurityGroups", "task_security_group_ids"),
    ] {
        let placeholder = format!("<{output}>");
        assert!(
            appspec.contains(&format!("{key}: {placeholder}")),
            "{key}: {appspec}"
        );
        assert!(script.contains(&placeholder), "{output}: {script}");
        assert!(script.contains(&format!("$(out {output})")), "{output}");
        let value = outputs["output"][output]["value"]
            .as_str()
            .unwrap_or_default();
        assert!(value.starts_with("${jsonencode(["), "{output}: {value}");
    }
    // The configured values, not the service's (which keeps the old ones until then).
    assert!(
        outputs["output"]["task_security_group_ids"]["value"]
            .as_str()
            .is_some_and(|v| v.contains("aws_security_group.tasks.id")),
        "{outputs:#}"
    );
}

/// Point 7: whatsthecraic is served by Traefik on a cluster whose issuer solves HTTP-01
/// through nginx; its Ingresses asked for Traefik with
/// `acme.cert-manager.io/http01-ingress-ingressclassname`, which only cert-manager 1.20
/// reads, while every environment pins the cert-manager add-on at 1.17: the solver
/// Ingress went to nginx, whose load balancer the names do not point at, so no
/// certificate was issued or renewed. The issuer itself now holds a solver for those
/// names through their class (an ACME solver `selector`, in cert-manager since 0.8).
#[test]
fn day2_7_names_served_by_another_class_are_solved_through_it_by_the_issuer() {
    let platform = common::output("prod", "platform");
    let issuer: serde_json::Value = serde_saphyr::from_str(
        &platform.files[std::path::Path::new("k8s/20-clusterissuer-letsencrypt-prod.yaml")],
    )
    .expect("YAML");
    let solvers = issuer["spec"]["acme"]["solvers"]
        .as_array()
        .expect("solvers");
    let fallback = solvers
        .iter()
        .find(|s| s.get("selector").is_none())
        .expect("a solver for every other name");
    assert_eq!(fallback["http01"]["ingress"]["ingressClassName"], "nginx");
    let traefik = solvers
        .iter()
        .find(|s| s["http01"]["ingress"]["ingressClassName"] == "traefik")
        .unwrap_or_else(|| panic!("no traefik solver: {solvers:#?}"));
    let names: Vec<&str> = traefik["selector"]["dnsNames"]
        .as_array()
        .expect("dnsNames")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let craic = common::output("prod", "whatsthecraic");
    for (path, body) in &craic.files {
        let name = path.to_string_lossy();
        if !(name.starts_with("k8s/70-ingress") && body.contains("http01-ingress-ingressclassname"))
        {
            continue;
        }
        let ingress: serde_json::Value = serde_saphyr::from_str(body).expect("YAML");
        for tls in ingress["spec"]["tls"].as_array().into_iter().flatten() {
            for host in tls["hosts"].as_array().into_iter().flatten() {
                let host = host.as_str().expect("host");
                assert!(names.contains(&host), "{name}: {host} not in {names:?}");
            }
        }
    }
    assert!(!names.is_empty());
}
