//! metrics-service and aegistickets on the platform cluster (issue 8).

use crate::common;

use common::{of_type, output};
use serde_json::{Value, json};

fn k8s(o: &keel::ops::synth::Output, file: &str) -> Value {
    let body = o
        .files
        .get(std::path::Path::new("k8s").join(file).as_path())
        .unwrap_or_else(|| panic!("no k8s/{file} in {} {}", o.env, o.stack));
    serde_saphyr::from_str(body).expect("YAML")
}

#[test]
fn metrics_service_matches_the_seed() {
    let o = output("prod", "metrics-service");
    let d = k8s(&o, "40-deployment-metrics-service.yaml");
    assert_eq!(d["metadata"]["namespace"], "metrics-service");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 3001, "name": "http", "protocol": "TCP"}])
    );
    assert_eq!(c["startupProbe"]["httpGet"]["path"], "/health");
    assert_eq!(c["startupProbe"]["failureThreshold"], 30);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(
        c["resources"],
        json!({"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "256Mi"}})
    );
    let env: Vec<&str> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(env, ["LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"]);
    assert!(c["env"][0]["valueFrom"]["secretKeyRef"].is_object());
    let es = k8s(&o, "30-externalsecret-metrics-service.yaml");
    assert_eq!(
        es["spec"]["secretStoreRef"],
        json!({"kind": "SecretStore", "name": "metrics-service"})
    );
    let cm = k8s(&o, "20-configmap-metrics-service-config.yaml");
    assert_eq!(
        cm["data"]["GROUND_TRUTH_BUCKET"],
        "acme-llm-evals-ground-truth-prod"
    );
    assert_eq!(cm["data"]["PORT"], "3001");
    // Its own namespace (issue 18: nothing created `langfuse`), restricted and deny-all.
    let ns = k8s(&o, "00-namespace-metrics-service.yaml");
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    k8s(&o, "80-networkpolicy-default-deny.yaml");
    let np = k8s(&o, "80-networkpolicy-metrics-service.yaml");
    assert_eq!(np["spec"]["ingress"], json!([]));
    // DNS and HTTPS (AWS APIs and the external Langfuse) only.
    assert_eq!(np["spec"]["egress"].as_array().map(Vec::len), Some(2));
    assert_eq!(cm["data"]["LANGFUSE_URL"], "https://langfuse.example.com");
    k8s(&o, "65-poddisruptionbudget-metrics-service.yaml");
}

#[test]
fn the_pods_role_reads_the_bucket_and_writes_its_logs_only() {
    let o = output("prod", "metrics-service");
    let iam = common::tf_json(&o, "iam.tf.json");
    let statements = &iam["data"]["aws_iam_policy_document"]["metrics_service_pods"]["statement"];
    assert_eq!(
        statements,
        &json!([
            {"actions": ["s3:GetObject"], "effect": "Allow", "resources": ["arn:aws:s3:::acme-llm-evals-ground-truth-prod/*"], "sid": "ReadGroundTruth"},
            {"actions": ["s3:ListBucket"], "effect": "Allow", "resources": ["arn:aws:s3:::acme-llm-evals-ground-truth-prod"], "sid": "ListGroundTruth"},
            {"actions": ["logs:CreateLogStream", "logs:PutLogEvents"], "effect": "Allow", "resources": ["${aws_cloudwatch_log_group.service.arn}:*"], "sid": "WriteOwnLogs"},
        ])
    );
}

#[test]
fn repositories_scan_expire_and_are_immutable_outside_dev() {
    for (env, mutability) in [
        ("dev", "MUTABLE"),
        ("staging", "IMMUTABLE"),
        ("prod", "IMMUTABLE"),
    ] {
        for stack in ["metrics-service", "aegistickets"] {
            let o = output(env, stack);
            for repo in of_type(&o, "aws_ecr_repository") {
                assert_eq!(repo["image_tag_mutability"], mutability, "{env} {stack}");
                assert_eq!(
                    repo["image_scanning_configuration"][0]["scan_on_push"],
                    true
                );
                assert_eq!(
                    repo["encryption_configuration"][0]["encryption_type"],
                    "AES256"
                );
            }
            assert_eq!(
                of_type(&o, "aws_ecr_lifecycle_policy").len(),
                of_type(&o, "aws_ecr_repository").len()
            );
        }
    }
}

#[test]
fn deploy_roles_reach_their_namespace_through_a_group_only() {
    for (stack, namespace) in [
        ("metrics-service", "metrics-service"),
        ("aegistickets", "tickets-prod"),
    ] {
        let o = output("prod", stack);
        assert!(of_type(&o, "aws_eks_access_policy_association").is_empty());
        let entry = &of_type(&o, "aws_eks_access_entry")[0];
        let group = format!("{stack}-deployers");
        assert_eq!(entry["kubernetes_groups"], json!([group]));
        let binding = k8s(&o, "15-rolebinding-ci-deployer.yaml");
        assert_eq!(binding["metadata"]["namespace"], namespace);
        assert_eq!(binding["subjects"][0]["name"], group);
    }
}

#[test]
fn aegistickets_shares_one_alb_with_https_and_admits_the_vpc() {
    let o = output("prod", "aegistickets");
    let backend = k8s(&o, "70-ingress-backend.yaml");
    let frontend = k8s(&o, "70-ingress-frontend.yaml");
    for (ingress, path, order) in [(&backend, "/api", "10"), (&frontend, "/", "20")] {
        let a = &ingress["metadata"]["annotations"];
        assert_eq!(a["alb.ingress.kubernetes.io/group.name"], "tickets-prod");
        assert_eq!(a["alb.ingress.kubernetes.io/group.order"], order);
        assert_eq!(a["alb.ingress.kubernetes.io/scheme"], "internet-facing");
        assert_eq!(a["alb.ingress.kubernetes.io/target-type"], "ip");
        assert_eq!(a["alb.ingress.kubernetes.io/ssl-redirect"], "443");
        assert!(a["alb.ingress.kubernetes.io/certificate-arn"].is_string());
        assert_eq!(
            ingress["spec"]["rules"][0]["http"]["paths"][0]["path"],
            path
        );
    }
    assert_eq!(
        backend["metadata"]["annotations"]["alb.ingress.kubernetes.io/healthcheck-path"],
        "/readiness",
        "the seed backend's readiness route"
    );
    let dev = output("dev", "aegistickets");
    let a = &k8s(&dev, "70-ingress-backend.yaml")["metadata"]["annotations"];
    assert_eq!(
        a["alb.ingress.kubernetes.io/listen-ports"],
        "[{\"HTTP\": 80}]"
    );
    assert!(a.get("alb.ingress.kubernetes.io/ssl-redirect").is_none());
    let np = k8s(&o, "80-networkpolicy-backend.yaml");
    assert_eq!(
        np["spec"]["ingress"][0]["from"][0]["ipBlock"]["cidr"],
        "10.130.0.0/16"
    );
    let egress_ports: Vec<u64> = np["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .map(|e| e["ports"][0]["port"].as_u64().unwrap())
        .collect();
    assert_eq!(
        egress_ports,
        [5432, 5432, 5432, 443],
        "PostgreSQL in the data subnets, and HTTPS for the RDS CA bundle (issue 19, point 9)"
    );
    // The trust store is a CDN without fixed addresses: public HTTPS, never the VPC's.
    assert_eq!(
        np["spec"]["egress"][4]["to"][0]["ipBlock"],
        json!({"cidr": "0.0.0.0/0", "except": ["10.130.0.0/16"]})
    );
    let ns = k8s(&o, "00-namespace-tickets-prod.yaml");
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    assert_eq!(
        k8s(&dev, "40-deployment-frontend.yaml")["spec"]["replicas"],
        1,
        "one frontend in dev as the seed"
    );
}

#[test]
fn aegistickets_database_and_credentials() {
    let o = output("prod", "aegistickets");
    let db = &of_type(&o, "aws_db_instance")[0];
    assert_eq!(
        (
            db["engine_version"].as_str(),
            db["multi_az"].as_bool(),
            db["deletion_protection"].as_bool()
        ),
        (Some("15"), Some(true), Some(true))
    );
    assert_eq!(db["manage_master_user_password"], true);
    let dev = output("dev", "aegistickets");
    let dev_db = &of_type(&dev, "aws_db_instance")[0];
    assert_eq!(
        (
            dev_db["instance_class"].as_str(),
            dev_db["multi_az"].as_bool()
        ),
        (Some("db.t4g.micro"), Some(false))
    );
    let es = k8s(&o, "30-externalsecret-backend.yaml");
    assert_eq!(
        es["spec"]["secretStoreRef"],
        json!({"kind": "SecretStore", "name": "aegistickets"})
    );
    assert_eq!(
        es["spec"]["data"][0]["remoteRef"]["key"],
        "keel/prod/aegistickets/database-url"
    );
    let secrets: Vec<String> = of_type(&o, "aws_secretsmanager_secret")
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        secrets
            .iter()
            .all(|s| s.starts_with("keel/prod/aegistickets/")),
        "{secrets:?}"
    );
    let sm = k8s(&o, "90-servicemonitor-backend.yaml");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "http");
}
