//! Issue 18 (parts 2-4): the deploy path reaches the private cluster through an in-VPC
//! runner, database logins are plan steps run where the database is reachable, and no
//! object targets a namespace nothing creates.

use crate::common;

use std::collections::BTreeSet;

use common::{of_type, output, outputs, repo};
use keel::plan::{Action, Capability, External, Reach, Wait};
use serde_json::{Value, json};

const ENVS: [&str; 3] = ["dev", "staging", "prod"];

/// Every stack of `env`, built (not rendered): its steps, add-ons and external needs.
fn stacks(env: &str) -> Vec<keel::stack::Stack> {
    common::pin_today();
    let path = repo().join("environments").join(format!("{env}.yaml"));
    let env = keel::env::load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    keel::stacks::ALL
        .iter()
        .filter_map(|def| (def.build)(&env).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn yaml(body: &str) -> Value {
    serde_saphyr::from_str(body).expect("YAML")
}

/// Every Kubernetes object a stack renders (`k8s/` and `jobs/*/`), as (file, value).
fn objects(o: &keel::ops::synth::Output) -> Vec<(String, Value)> {
    o.files
        .iter()
        .filter(|(p, _)| {
            (p.starts_with("k8s") || p.starts_with("jobs"))
                && !p.ends_with(keel::k8s::KUSTOMIZATION)
        })
        .map(|(p, body)| (p.display().to_string(), yaml(body)))
        .collect()
}

#[test]
fn every_namespace_an_object_uses_is_created_by_an_object_or_an_add_on() {
    // Namespaces Kubernetes itself has.
    let builtin = ["default", "kube-system", "kube-public", "kube-node-lease"];
    let all = outputs();
    for env in ENVS {
        let mut created: BTreeSet<String> = builtin.iter().map(|s| (*s).to_owned()).collect();
        for stack in stacks(env) {
            created.extend(stack.addons.iter().map(|a| a.namespace.clone()));
        }
        let mut used = Vec::new();
        for o in all.iter().filter(|o| o.env == env) {
            for (file, object) in objects(o) {
                if object["kind"] == "Namespace" {
                    created.insert(object["metadata"]["name"].as_str().unwrap().to_owned());
                }
                if let Some(ns) = object["metadata"]["namespace"].as_str() {
                    used.push((format!("{}/{file}", o.stack), ns.to_owned()));
                }
            }
        }
        let dangling: Vec<_> = used
            .iter()
            .filter(|(_, ns)| !created.contains(ns))
            .collect();
        assert!(dangling.is_empty(), "{env}: {dangling:?}");
    }
}

#[test]
fn metrics_service_has_its_own_namespace_and_declares_langfuse() {
    let o = output("prod", "metrics-service");
    for (file, object) in objects(&o) {
        assert_ne!(object["metadata"]["namespace"], "langfuse", "{file}");
    }
    let ms = stacks("prod")
        .into_iter()
        .find(|s| s.name == "metrics-service")
        .unwrap();
    assert!(ms.external.contains(&External::Service {
        what: "Langfuse".into(),
        url: "https://langfuse.example.com".into(),
    }));
    assert!(ms.external.iter().any(
        |e| matches!(e, External::SecretValue { name, .. } if name.ends_with("langfuse-secret-key"))
    ));
}

#[test]
fn every_stack_declares_what_it_needs_from_outside_keel() {
    for env in ENVS {
        let all = stacks(env);
        let of = |name: &str| &all.iter().find(|s| s.name == name).unwrap().external;
        let platform = of("platform");
        assert!(platform.contains(&External::ApplyRole {
            name: format!("keel-apply-{env}")
        }));
        assert!(
            platform
                .iter()
                .any(|e| matches!(e, External::StateBucket { .. }))
        );
        assert!(platform.contains(&External::Connection {
            name: format!("eks-{env}-github")
        }));
        for stack in ["analytics-api", "aegistickets", "whatsthecraic"] {
            assert!(
                of(stack)
                    .iter()
                    .any(|e| matches!(e, External::HostedZone { .. })),
                "{env} {stack}"
            );
        }
        // Third-party secrets a person fills, with how.
        for stack in ["langgraph-platform", "whatsthecraic", "metrics-service"] {
            assert!(
                of(stack).iter().any(
                    |e| matches!(e, External::SecretValue { how, .. } if how.contains("put-secret-value"))
                ),
                "{env} {stack}"
            );
        }
    }
    let prod = stacks("prod");
    let tickets = prod.iter().find(|s| s.name == "aegistickets").unwrap();
    assert!(
        tickets
            .external
            .iter()
            .any(|e| matches!(e, External::Certificate { arn } if arn.starts_with("arn:aws:acm:")))
    );
}

#[test]
fn the_deploy_runner_is_least_privileged_and_admits_nothing() {
    for env in ENVS {
        let o = output(env, "platform");
        let runner = common::tf_json(&o, "runner.tf.json");
        let project = &runner["resource"]["aws_codebuild_project"]["deploy_runner"];
        assert_eq!(
            project["name"],
            keel::stacks::platform::deploy_runner_project(env)
        );
        assert_eq!(project["environment"][0]["privileged_mode"], false);
        assert_eq!(project["source"][0]["auth"][0]["type"], "CODECONNECTIONS");
        let vpc = &project["vpc_config"][0];
        assert_eq!(
            vpc["security_group_ids"],
            json!(["${aws_security_group.deploy_runner.id}"])
        );
        // Private subnets only (the runner reaches the internet through the NAT).
        for subnet in vpc["subnets"].as_array().unwrap() {
            assert!(
                subnet.as_str().unwrap().contains("aws_subnet.private"),
                "{subnet}"
            );
        }
        let webhook = &runner["resource"]["aws_codebuild_webhook"]["deploy_runner"];
        assert_eq!(
            webhook["filter_group"],
            json!([{"filter": [{"type": "EVENT", "pattern": "WORKFLOW_JOB_QUEUED"}]}])
        );

        // The runner's security group has no ingress rule; the cluster's admits it on 443.
        let ingress = of_type(&o, "aws_vpc_security_group_ingress_rule");
        assert!(
            !ingress
                .iter()
                .any(|r| r["security_group_id"] == "${aws_security_group.deploy_runner.id}"),
            "{env}: the runner must admit nothing"
        );
        let to_cluster: Vec<&Value> = ingress
            .iter()
            .filter(|r| {
                r["referenced_security_group_id"] == "${aws_security_group.deploy_runner.id}"
            })
            .collect();
        assert_eq!(to_cluster.len(), 1);
        assert_eq!(
            (
                to_cluster[0]["from_port"].as_i64(),
                to_cluster[0]["to_port"].as_i64()
            ),
            (Some(443), Some(443))
        );
        assert!(
            to_cluster[0]["security_group_id"]
                .as_str()
                .unwrap()
                .contains("cluster_security_group_id")
        );

        // The apply role (made outside keel) gets its kubectl access from the platform.
        let access = common::tf_json(&o, "access.tf.json");
        assert_eq!(
            access["resource"]["aws_eks_access_entry"]["apply_role"]["principal_arn"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next(),
            Some(format!("keel-apply-{env}").as_str())
        );

        // Its role: no `*` action, no deploy rights, logs only to its own group.
        let iam = common::tf_json(&o, "iam.tf.json");
        let statements = iam["data"]["aws_iam_policy_document"]["deploy_runner"]["statement"]
            .as_array()
            .unwrap()
            .clone();
        let actions: Vec<&str> = statements
            .iter()
            .flat_map(|s| s["actions"].as_array().unwrap())
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(actions.iter().all(|a| !a.contains('*')), "{actions:?}");
        for a in &actions {
            assert!(
                ["logs:", "ec2:", "codeconnections:"]
                    .iter()
                    .any(|p| a.starts_with(p)),
                "{a}"
            );
        }
        let logs = statements
            .iter()
            .find(|s| s["sid"] == "WriteOwnLogs")
            .unwrap();
        assert_eq!(
            logs["resources"],
            json!(["${aws_cloudwatch_log_group.deploy_runner.arn}:*"])
        );
        let attach = statements
            .iter()
            .find(|s| s["sid"] == "AttachInterfacesInRunnerSubnetsOnly")
            .unwrap();
        assert!(
            attach["condition"]
                .to_string()
                .contains("ec2:AuthorizedService")
        );
    }
}

#[test]
fn cluster_logins_are_restricted_jobs_declared_as_steps() {
    for env in ENVS {
        for stack in stacks(env) {
            let Some(step) = stack.steps.iter().find(|s| s.name == "database-login") else {
                continue;
            };
            let login = step.provides.iter().find_map(|c| match c {
                Capability::DatabaseLogin(s, l) => Some((s.clone(), l.clone())),
                _ => None,
            });
            assert_eq!(login.as_ref().map(|l| l.0.as_str()), Some(stack.name));
            if stack.name == "langgraph-platform" {
                assert_eq!(step.reach, Reach::AwsApi);
                assert_eq!(
                    step.action,
                    Action::Script {
                        path: "deploy/run-database-login.sh".into(),
                        args: vec![]
                    }
                );
                assert!(stack.deploy.contains_key("run-database-login.sh"));
                continue;
            }
            assert_eq!(step.reach, Reach::Vpc, "{env} {}", stack.name);
            assert_eq!(
                step.action,
                Action::KubectlApply {
                    dir: "jobs/database-login".into()
                }
            );
            let objects = &stack.jobs["database-login"];
            let job = objects.iter().find(|o| o.kind == "Job").unwrap();
            assert_eq!(
                step.waits,
                vec![Wait::JobComplete(
                    job.namespace.clone().unwrap(),
                    job.name.clone()
                )]
            );
            let pod = &job.content["spec"]["template"]["spec"];
            assert_eq!(pod["automountServiceAccountToken"], false);
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
            let c = &pod["containers"][0]["securityContext"];
            assert_eq!(c["readOnlyRootFilesystem"], true);
            assert_eq!(c["capabilities"]["drop"], json!(["ALL"]));
            // The folder creates its namespace itself: it is applied before `k8s/`.
            assert!(
                objects
                    .iter()
                    .any(|o| o.kind == "Namespace" && Some(&o.name) == job.namespace.as_ref())
            );
            // No stack keeps the hand-run script.
            assert!(!stack.deploy.contains_key("database-login.sh"));
        }
        let with_login: BTreeSet<&str> = stacks(env)
            .iter()
            .filter(|s| s.steps.iter().any(|st| st.name == "database-login"))
            .map(|s| s.name)
            .collect();
        assert_eq!(
            with_login,
            BTreeSet::from([
                "aegistickets",
                "analytics-api",
                "langgraph-platform",
                "whatsthecraic"
            ]),
            "{env}"
        );
    }
}

#[test]
fn the_login_job_may_reach_only_dns_the_rds_ca_and_postgres_in_the_data_subnets() {
    common::pin_today();
    let o = output("prod", "analytics-api");
    let policy = yaml(
        &o.files[std::path::Path::new("jobs/database-login/80-networkpolicy-database-login.yaml")],
    );
    assert_eq!(policy["spec"]["ingress"], json!([]));
    let egress = policy["spec"]["egress"].as_array().unwrap();
    let data: BTreeSet<String> = keel::stacks::platform::data_subnet_cidrs(
        &keel::env::load_file(&repo().join("environments/prod.yaml")).unwrap(),
    )
    .unwrap()
    .into_iter()
    .collect();
    // HTTPS for the RDS CA bundle, fetched before the login connects with verify-full.
    assert_eq!(
        egress[1]["ports"],
        json!([{"port": 443, "protocol": "TCP"}])
    );
    let mut seen = BTreeSet::new();
    for rule in &egress[2..] {
        assert_eq!(rule["ports"], json!([{"port": 5432, "protocol": "TCP"}]));
        seen.insert(
            rule["to"][0]["ipBlock"]["cidr"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(seen, data);
    assert_eq!(egress[0]["ports"][0]["port"], 53);
}

#[test]
fn the_ecs_login_task_runs_in_the_tasks_security_group() {
    let o = output("prod", "langgraph-platform");
    let task = &of_type(&o, "aws_ecs_task_definition")
        .into_iter()
        .find(|t| t["family"] == "lgp-prod-database-login")
        .expect("the login task definition");
    assert_eq!(task["network_mode"], "awsvpc");
    assert!(
        task.get("task_role_arn").is_none(),
        "the login task needs no task role"
    );
    assert_eq!(
        task["execution_role_arn"],
        "${aws_iam_role.database_login_execution.arn}"
    );
    // The script runs it with the service's network configuration: the service's
    // subnets and its security group, the tasks' one, which the database admits.
    let script = &o.files[std::path::Path::new("deploy/run-database-login.sh")];
    assert!(script.contains("--services lgp-prod-app"));
    assert!(script.contains("--network-configuration \"$network\""));
    assert!(script.contains("--task-definition lgp-prod-database-login"));
    let service = &of_type(&o, "aws_ecs_service")[0];
    assert_eq!(service["name"], "lgp-prod-app");
    assert_eq!(
        service["network_configuration"][0]["security_groups"],
        json!(["${aws_security_group.tasks.id}"])
    );
    let db_in: Vec<Value> = of_type(&o, "aws_vpc_security_group_ingress_rule")
        .into_iter()
        .filter(|r| r["security_group_id"] == "${aws_security_group.database.id}")
        .collect();
    assert_eq!(db_in.len(), 1);
    assert_eq!(
        db_in[0]["referenced_security_group_id"],
        "${aws_security_group.tasks.id}"
    );
    // Its execution role reads the master secret and the login's password, nothing else.
    let iam = common::tf_json(&o, "iam.tf.json");
    let read = &iam["data"]["aws_iam_policy_document"]["database_login_execution"]["statement"][0];
    assert_eq!(read["actions"], json!(["secretsmanager:GetSecretValue"]));
    assert_eq!(read["resources"].as_array().unwrap().len(), 2);
}
