//! whatsthecraic: six services behind Traefik on the platform cluster (issue 9).

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{of_type, output};
use serde_json::{Value, json};

const SERVICES: [(&str, u16); 6] = [
    ("aggregator", 4000),
    ("auth-service", 3001),
    ("events-service", 4003),
    ("dj-service", 4002),
    ("venue-service", 4001),
    ("ml-service", 4004),
];

fn k8s(o: &keel::ops::synth::Output, file: &str) -> Value {
    let body = o
        .files
        .get(Path::new("k8s").join(file).as_path())
        .unwrap_or_else(|| panic!("no k8s/{file} in {} {}", o.env, o.stack));
    serde_saphyr::from_str(body).expect("YAML")
}

/// Every Kubernetes object of the output, parsed.
fn objects(o: &keel::ops::synth::Output) -> Vec<Value> {
    o.files
        .iter()
        .filter(|(p, _)| p.starts_with("k8s") && !p.ends_with("kustomization.yaml"))
        .map(|(_, body)| serde_saphyr::from_str(body).expect("YAML"))
        .collect()
}

fn kinds(o: &keel::ops::synth::Output, kind: &str) -> Vec<Value> {
    objects(o)
        .into_iter()
        .filter(|v| v["kind"] == kind)
        .collect()
}

#[test]
fn six_services_with_the_seeds_ports_sizes_probes_and_strategy() {
    let seed_sizes = [
        ("aggregator", ("100m", "96Mi", "300m", "256Mi")),
        ("auth-service", ("50m", "64Mi", "200m", "192Mi")),
        ("events-service", ("100m", "128Mi", "300m", "384Mi")),
        ("dj-service", ("50m", "64Mi", "200m", "192Mi")),
        ("venue-service", ("50m", "64Mi", "200m", "192Mi")),
        ("ml-service", ("100m", "128Mi", "500m", "512Mi")),
    ];
    for env in ["dev", "staging", "prod"] {
        let o = output(env, "whatsthecraic");
        // prod's aggregator rolls out as an Argo canary; everything else is a Deployment.
        let canary = |name: &str| env == "prod" && name == "aggregator";
        assert_eq!(
            kinds(&o, "Deployment").len(),
            if env == "prod" { 5 } else { 6 },
            "{env}"
        );
        for ((name, port), (sized, (rc, rm, lc, lm))) in SERVICES.iter().zip(seed_sizes) {
            assert_eq!(*name, sized);
            if canary(name) {
                let r = k8s(&o, &format!("40-rollout-{name}.yaml"));
                let c = &r["spec"]["strategy"]["canary"];
                assert_eq!(
                    (&c["maxSurge"], &c["maxUnavailable"]),
                    (&json!(1), &json!(0))
                );
                assert!(
                    c.get("trafficRouting").is_none(),
                    "weighted by pods behind Traefik"
                );
                continue;
            }
            let d = k8s(&o, &format!("40-deployment-{name}.yaml"));
            assert_eq!(d["metadata"]["namespace"], "whatsthecraic");
            assert_eq!(
                d["spec"]["strategy"],
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}),
                "{env} {name}"
            );
            let c = &d["spec"]["template"]["spec"]["containers"][0];
            assert_eq!(
                c["name"], *name,
                "the seed's CI sets the image by container name"
            );
            assert_eq!(c["ports"][0]["containerPort"], *port);
            for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
                assert_eq!(c[probe]["httpGet"]["path"], "/health", "{name} {probe}");
            }
            assert_eq!(
                c["resources"],
                json!({"requests": {"cpu": rc, "memory": rm}, "limits": {"cpu": lc, "memory": lm}}),
                "{name}"
            );
            assert_eq!(
                c["envFrom"][0]["configMapRef"]["name"],
                format!("{name}-config")
            );
            let svc = k8s(&o, &format!("50-service-{name}.yaml"));
            assert_eq!(
                svc["spec"]["ports"][0]["port"], *port,
                "in-cluster URLs keep the seed's ports"
            );
            let image = c["image"].as_str().unwrap();
            let repo = format!(".dkr.ecr.us-east-1.amazonaws.com/whatsthecraic/{name}");
            assert!(image.contains(&repo), "{image}");
            if env == "dev" {
                assert!(
                    image.ends_with(":9e4b7c1d2a3f5e6b8c0d1e2f3a4b5c6d7e8f9a0b"),
                    "dev pins the commit SHA: {image}"
                );
            } else {
                assert!(image.contains("@sha256:"), "{env} pins digests: {image}");
            }
        }
    }
}

#[test]
fn only_aggregator_and_events_autoscale_within_the_environments_bounds() {
    for (env, bounds) in [("dev", (1, 2)), ("staging", (1, 2)), ("prod", (2, 4))] {
        let o = output(env, "whatsthecraic");
        let hpas = kinds(&o, "HorizontalPodAutoscaler");
        let targets: BTreeSet<&str> = hpas
            .iter()
            .map(|h| h["spec"]["scaleTargetRef"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(targets, BTreeSet::from(["aggregator", "events-service"]));
        for h in &hpas {
            assert_eq!(
                (
                    h["spec"]["minReplicas"].as_i64(),
                    h["spec"]["maxReplicas"].as_i64()
                ),
                (Some(bounds.0), Some(bounds.1)),
                "{env}"
            );
        }
        for d in kinds(&o, "Deployment") {
            let name = d["metadata"]["name"].as_str().unwrap();
            assert_eq!(
                d["spec"].get("replicas").is_none(),
                targets.contains(name),
                "the HPA alone owns the count of {name}"
            );
        }
    }
}

#[test]
fn traefik_routes_the_four_hosts_with_tls_redirect_and_rate_limit() {
    let o = output("prod", "whatsthecraic");
    let ingresses = kinds(&o, "Ingress");
    assert_eq!(
        ingresses.len(),
        4,
        "HTTPS and HTTP-redirect Ingress per public service"
    );
    let mut routed = Vec::new();
    for i in &ingresses {
        assert_eq!(i["spec"]["ingressClassName"], "traefik");
        for rule in i["spec"]["rules"].as_array().unwrap() {
            let backend = &rule["http"]["paths"][0]["backend"]["service"];
            routed.push((
                rule["host"].as_str().unwrap().to_owned(),
                backend["name"].as_str().unwrap().to_owned(),
            ));
        }
    }
    routed.sort();
    routed.dedup();
    let expected: Vec<(String, String)> = [
        ("api.craic.example.com", "aggregator"),
        ("auth.craic.example.com", "auth-service"),
        ("craic.example.com", "aggregator"),
        ("www.craic.example.com", "aggregator"),
    ]
    .iter()
    .map(|(h, s)| ((*h).to_owned(), (*s).to_owned()))
    .collect();
    assert_eq!(routed, expected);
    let https = k8s(&o, "70-ingress-aggregator.yaml");
    let a = &https["metadata"]["annotations"];
    assert_eq!(a["cert-manager.io/cluster-issuer"], "letsencrypt-prod");
    assert_eq!(
        a["traefik.ingress.kubernetes.io/router.entrypoints"],
        "websecure"
    );
    assert_eq!(a["traefik.ingress.kubernetes.io/router.tls"], "true");
    // prod's issuer solves HTTP-01 through nginx, the environment's class; these hosts
    // point at Traefik.
    assert_eq!(
        a["acme.cert-manager.io/http01-ingress-ingressclassname"],
        "traefik"
    );
    assert_eq!(
        https["spec"]["tls"],
        json!([{"hosts": ["api.craic.example.com", "craic.example.com", "www.craic.example.com"], "secretName": "aggregator-tls"}])
    );
    let http = k8s(&o, "70-ingress-aggregator-http.yaml");
    assert_eq!(
        http["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.entrypoints"],
        "web"
    );
    assert!(http["spec"].get("tls").is_none());
    assert!(
        http["metadata"]["annotations"]
            .get("cert-manager.io/cluster-issuer")
            .is_none(),
        "one certificate per host set"
    );
    // Every middleware a router names exists in the namespace, with the expected spec.
    let middlewares = kinds(&o, "Middleware");
    assert_eq!(middlewares.len(), 4);
    for i in &ingresses {
        let refs = i["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.middlewares"]
            .as_str()
            .expect("every router has a middleware");
        for r in refs.split(',') {
            let name = r
                .strip_prefix("whatsthecraic-")
                .and_then(|r| r.strip_suffix("@kubernetescrd"))
                .unwrap_or_else(|| panic!("{r}"));
            assert!(
                middlewares.iter().any(|m| m["metadata"]["name"] == name
                    && m["metadata"]["namespace"] == "whatsthecraic"),
                "{r}"
            );
        }
    }
    assert_eq!(
        k8s(&o, "70-middleware-aggregator-https-redirect.yaml")["spec"],
        json!({"redirectScheme": {"scheme": "https", "permanent": true}})
    );
    assert_eq!(
        k8s(&o, "70-middleware-auth-service-rate-limit.yaml")["spec"],
        json!({"rateLimit": {"average": 50, "burst": 200, "period": "1s"}})
    );
}

#[test]
fn network_policies_admit_only_each_services_callers() {
    let o = output("prod", "whatsthecraic");
    let deny = k8s(&o, "80-networkpolicy-default-deny.yaml");
    assert_eq!(deny["spec"]["podSelector"], json!({}));
    let traefik =
        json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "traefik"}}});
    let aggregator = json!({"podSelector": {"matchLabels": {"app.kubernetes.io/instance": "aggregator-prod", "app.kubernetes.io/name": "aggregator"}}});
    let data_subnets = ["10.130.112.0/24", "10.130.113.0/24", "10.130.114.0/24"];
    for (name, port) in SERVICES {
        let np = k8s(&o, &format!("80-networkpolicy-{name}.yaml"));
        let from = &np["spec"]["ingress"][0]["from"];
        let expected = match name {
            "aggregator" => json!([traefik]),
            "auth-service" => json!([traefik, aggregator]),
            _ => json!([aggregator]),
        };
        assert_eq!(from, &expected, "{name}");
        assert_eq!(np["spec"]["ingress"].as_array().unwrap().len(), 1, "{name}");
        let egress = np["spec"]["egress"].as_array().unwrap();
        assert_eq!(egress[0]["ports"][0]["port"], 53, "{name}: DNS first");
        let database: Vec<&Value> = egress
            .iter()
            .filter(|e| e["ports"][0]["port"] == 3306)
            .collect();
        let cidrs: Vec<&str> = database
            .iter()
            .map(|e| e["to"][0]["ipBlock"]["cidr"].as_str().unwrap())
            .collect();
        if name == "aggregator" {
            assert!(cidrs.is_empty(), "the aggregator has no database access");
            let callees: Vec<(String, i64)> = egress[1..]
                .iter()
                .map(|e| {
                    (
                        e["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                            .as_str()
                            .unwrap()
                            .to_owned(),
                        e["ports"][0]["port"].as_i64().unwrap(),
                    )
                })
                .collect();
            let expected: Vec<(String, i64)> = SERVICES[1..]
                .iter()
                .map(|(n, p)| ((*n).to_owned(), i64::from(*p)))
                .collect();
            assert_eq!(callees, expected);
        } else {
            assert_eq!(
                cidrs, data_subnets,
                "{name} reaches the database only there"
            );
        }
        let internet = egress
            .iter()
            .any(|e| e["to"][0]["ipBlock"]["cidr"] == "0.0.0.0/0");
        assert_eq!(
            internet,
            name == "events-service",
            "{name}: third-party APIs"
        );
        let _ = port;
    }
    // Traefik reaches cert-manager's HTTP-01 solvers.
    let solver = k8s(&o, "80-networkpolicy-acme-http01-solver.yaml");
    assert_eq!(solver["spec"]["ingress"][0]["from"], json!([traefik]));
}

#[test]
fn ci_deployer_rolls_workloads_and_reads_pods_in_its_namespace_only() {
    let o = output("prod", "whatsthecraic");
    assert!(kinds(&o, "ClusterRole").is_empty() && kinds(&o, "ClusterRoleBinding").is_empty());
    let role = k8s(&o, "15-role-ci-deployer.yaml");
    assert_eq!(role["metadata"]["namespace"], "whatsthecraic");
    // Derived from the stack's objects (tests/issue19_rollout.rs checks every stack): apply
    // them, roll and undo the workloads (their ReplicaSets), read pods and logs.
    let apply = json!(["get", "list", "watch", "create", "update", "patch"]);
    let rules = role["rules"].as_array().unwrap();
    for (group, resource, verbs) in [
        ("apps", "deployments", apply.clone()),
        ("argoproj.io", "rollouts", apply.clone()),
        ("apps", "replicasets", json!(["get", "list", "watch"])),
        ("", "pods/log", json!(["get"])),
        ("argoproj.io", "rollouts/status", json!(["get", "patch"])),
    ] {
        assert!(
            rules.iter().any(|r| r["apiGroups"] == json!([group])
                && r["resources"]
                    .as_array()
                    .unwrap()
                    .contains(&json!(resource))
                && r["verbs"] == verbs),
            "{group}/{resource} {verbs}: {rules:#?}"
        );
    }
    for r in rules {
        let verbs = r["verbs"].as_array().unwrap();
        assert!(!verbs.contains(&json!("delete")) && !verbs.contains(&json!("*")));
        assert!(
            !r["resources"]
                .as_array()
                .unwrap()
                .contains(&json!("secrets"))
        );
    }
    let binding = k8s(&o, "15-rolebinding-ci-deployer.yaml");
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ci-deployer"})
    );
    // The EKS access entry maps the deploy role to that group and grants nothing else.
    let entries = of_type(&o, "aws_eks_access_entry");
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0]["kubernetes_groups"],
        json!([binding["subjects"][0]["name"]])
    );
    assert_eq!(
        entries[0]["principal_arn"],
        "${aws_iam_role.github_deploy.arn}"
    );
    assert!(of_type(&o, "aws_eks_access_policy_association").is_empty());
}

#[test]
fn secrets_are_references_to_this_stacks_secrets_manager_secrets() {
    for env in ["dev", "prod"] {
        let o = output(env, "whatsthecraic");
        assert!(
            kinds(&o, "Secret").is_empty(),
            "no secret value is rendered"
        );
        let created: BTreeSet<String> = of_type(&o, "aws_secretsmanager_secret")
            .iter()
            .map(|s| {
                assert_eq!(s["kms_key_id"], "${aws_kms_key.main.arn}");
                s["name"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(created.len(), 9);
        let mut read = BTreeSet::new();
        for es in kinds(&o, "ExternalSecret") {
            assert_eq!(
                es["spec"]["secretStoreRef"],
                json!({"kind": "SecretStore", "name": "whatsthecraic"})
            );
            for d in es["spec"]["data"].as_array().unwrap() {
                let key = d["remoteRef"]["key"].as_str().unwrap();
                assert!(created.contains(key), "{key} is created by the stack");
                assert!(key.starts_with(&format!("keel/{env}/whatsthecraic/")));
                read.insert(key.to_owned());
            }
        }
        assert_eq!(read, created, "every secret is read by some service");
        // Least privilege: the aggregator gets only the JWT key; Spotify only events.
        let keys = |name: &str| -> Vec<String> {
            k8s(&o, &format!("30-externalsecret-{name}.yaml"))["spec"]["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["secretKey"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(keys("aggregator"), ["JWT_SECRET"]);
        assert!(keys("events-service").contains(&"SPOTIFY_CLIENT_SECRET".to_owned()));
        assert!(!keys("auth-service").contains(&"SPOTIFY_CLIENT_SECRET".to_owned()));
        // The JWT key and the database login's password are generated once, then left to
        // rotation; DB_HOST follows the instance's address.
        let versions = of_type(&o, "aws_secretsmanager_secret_version");
        assert_eq!(versions.len(), 3);
        for v in &versions {
            if v["secret_string"] == "${aws_db_instance.main.address}" {
                assert!(v["lifecycle"].is_null());
            } else {
                assert_eq!(v["lifecycle"]["ignore_changes"], json!(["secret_string"]));
            }
        }
    }
}

#[test]
fn the_namespace_is_restricted_and_its_quota_fits_a_full_scale_rollout() {
    let o = output("prod", "whatsthecraic");
    let ns = k8s(&o, "00-namespace-whatsthecraic.yaml");
    for mode in ["enforce", "audit", "warn"] {
        assert_eq!(
            ns["metadata"]["labels"][format!("pod-security.kubernetes.io/{mode}")],
            "restricted"
        );
    }
    let quota = k8s(&o, "05-resourcequota-whatsthecraic.yaml");
    // prod: aggregator and events up to 4 pods, the others 2; each plus one surge pod,
    // plus four HTTP-01 solver pods and the database login Job.
    let pods: u32 = 5 + 3 + 5 + 3 + 3 + 3 + 4 + 1;
    assert_eq!(quota["spec"]["hard"]["pods"], pods.to_string());
    let limits_cpu_m = 5 * 300 + 3 * 200 + 5 * 300 + 3 * 200 + 3 * 200 + 3 * 500 + 4 * 100 + 200;
    assert_eq!(
        quota["spec"]["hard"]["limits.cpu"],
        format!("{limits_cpu_m}m")
    );
    assert!(
        o.files
            .contains_key(Path::new("k8s/05-limitrange-whatsthecraic.yaml"))
    );
}

#[test]
fn the_secrets_script_checks_the_filled_secrets_and_leaves_restarts_to_the_plan() {
    let o = output("prod", "whatsthecraic");
    let script = &o.files[Path::new("deploy/secrets.sh")];
    // Re-syncing and restarting is the plan's restart step, shared by every stack.
    assert!(!script.contains("kubectl"), "{script}");
    assert!(script.contains("restart/whatsthecraic"));
    // `check` looks at the secrets an operator fills, not the generated JWT key.
    assert!(script.contains("keel/prod/whatsthecraic/spotify-client-secret"));
    assert!(!script.contains("keel/prod/whatsthecraic/jwt-secret"));
    let status = std::process::Command::new("sh")
        .arg("-n")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(script.as_bytes())?;
            child.wait()
        })
        .expect("sh runs");
    assert!(status.success(), "the script parses");
}
