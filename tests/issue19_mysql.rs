//! Issue 19, point 18: whatsthecraic's database. The seed runs MySQL and nothing provisioned
//! it; the RDS construct now takes the engine, and whatsthecraic gets a MySQL instance with
//! the same logins, TLS, backups and protection as the PostgreSQL ones.

use crate::common;

use std::path::Path;

use common::{of_type, output, resources};
use keel::env::load_str;
use keel::ops::synth::Output;
use serde_json::Value;

const ENVS: [&str; 3] = ["dev", "staging", "prod"];
const STACK: &str = "whatsthecraic";

fn the_db(o: &Output) -> Value {
    let dbs = of_type(o, "aws_db_instance");
    assert_eq!(dbs.len(), 1, "{} {}: one database", o.env, o.stack);
    dbs[0].clone()
}

fn parameters(o: &Output) -> Vec<(String, String)> {
    let groups = of_type(o, "aws_db_parameter_group");
    assert_eq!(groups.len(), 1);
    groups[0]["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn issue_19_whatsthecraic_has_a_mysql_instance_with_tls_enforced_in_every_environment() {
    for env in ENVS {
        let o = output(env, STACK);
        let db = the_db(&o);
        assert_eq!(db["engine"], "mysql", "{env}");
        assert_eq!(db["engine_version"], "8.4", "{env}");
        assert_eq!(db["storage_encrypted"], true, "{env}");
        assert_eq!(db["publicly_accessible"], false, "{env}");
        assert_eq!(db["manage_master_user_password"], true, "{env}");
        assert_eq!(db["performance_insights_enabled"], true, "{env}");
        assert_eq!(
            db["enabled_cloudwatch_logs_exports"],
            serde_json::json!(["error", "slowquery"]),
            "{env}"
        );
        assert!(
            db["backup_retention_period"].as_u64().unwrap() >= 1,
            "{env}"
        );
        if env == "prod" {
            assert_eq!(db["multi_az"], true);
            assert_eq!(db["deletion_protection"], true);
            assert!(db["backup_retention_period"].as_u64().unwrap() >= 7);
        }
        // The operator-set DB_PASSWORD secret is kept (moved), not deleted and recreated
        // under a name Secrets Manager still reserves.
        let moved = o
            .files
            .get(Path::new("terraform/moved.tf.json"))
            .expect("moved.tf.json");
        assert!(
            moved.contains("\"from\": \"aws_secretsmanager_secret.db_password\""),
            "{env}: {moved}"
        );
        let group = &of_type(&o, "aws_db_parameter_group")[0];
        assert_eq!(group["family"], "mysql8.4", "{env}");
        let params = parameters(&o);
        assert!(
            params.contains(&("require_secure_transport".into(), "1".into())),
            "{env}: {params:?}"
        );
        assert!(
            params
                .iter()
                .any(|(k, v)| k == "max_connections" && v.parse::<u32>().is_ok()),
            "{env}"
        );
        // Reachable on 3306 from the cluster's nodes only.
        let rules: Vec<Value> = resources(&o)
            .into_iter()
            .filter(|(t, _, _)| t == "aws_vpc_security_group_ingress_rule")
            .map(|(_, _, b)| b)
            .collect();
        assert_eq!(rules.len(), 1, "{env}: {rules:?}");
        assert_eq!(rules[0]["from_port"], 3306);
        assert_eq!(rules[0]["to_port"], 3306);
        assert!(rules[0]["cidr_ipv4"].is_null(), "{env}");
    }
}

#[test]
fn issue_19_the_services_read_db_secrets_keel_writes_and_a_login_job_creates_their_user() {
    for env in ENVS {
        let o = output(env, STACK);
        // DB_HOST is written by Terraform, DB_PASSWORD generated; DB_USER, no secret, is
        // configuration.
        let versions = of_type(&o, "aws_secretsmanager_secret_version");
        let values: Vec<&str> = versions
            .iter()
            .filter_map(|v| v["secret_string"].as_str())
            .collect();
        assert!(
            values.contains(&"${aws_db_instance.main.address}"),
            "{env}: {values:?}"
        );
        let config = o
            .files
            .get(Path::new("k8s/20-configmap-auth-service-config.yaml"))
            .expect("auth-service's ConfigMap");
        assert!(
            config.contains("  DB_USER: whatsthecraic_app\n"),
            "{env}: {config}"
        );
        let generated = of_type(&o, "aws_secretsmanager_secret")
            .into_iter()
            .filter(|s| {
                s["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("/whatsthecraic/db-password"))
            })
            .count();
        assert_eq!(generated, 1, "{env}");
        // No operator is asked for a database value any more.
        let script = o
            .files
            .get(Path::new("deploy/secrets.sh"))
            .expect("secrets.sh");
        let check_line = script
            .lines()
            .find(|l| l.trim_start().starts_with("for id in"))
            .unwrap();
        assert!(!check_line.contains("db-"), "{env}: {check_line}");
        // The login Job: mysql with full verification, to 3306.
        let job = o
            .files
            .iter()
            .find(|(p, _)| {
                p.starts_with("jobs/database-login")
                    && p.file_name()
                        .and_then(|f| f.to_str())
                        .is_some_and(|f| f.contains("-job-"))
            })
            .map(|(_, b)| b.as_str())
            .unwrap_or_else(|| {
                panic!(
                    "{env}: no login Job among {:?}",
                    o.files.keys().collect::<Vec<_>>()
                )
            });
        assert!(job.contains("--ssl-mode=VERIFY_IDENTITY"), "{env}");
        assert!(job.contains("docker.io/library/mysql:8.4@sha256:"), "{env}");
        assert!(
            o.files
                .iter()
                .any(|(p, b)| p.starts_with("jobs/database-login") && b.contains("port: 3306")),
            "{env}"
        );
    }
}

const PROD: &str = include_str!("../environments/prod.yaml");
const MYSQL_VERSION: &str = "      engine: mysql\n      engine_major_version: \"8.4\"\n";

fn errors(to: &str) -> Vec<String> {
    assert!(PROD.contains(MYSQL_VERSION));
    let text = PROD.replacen(MYSQL_VERSION, to, 1);
    match load_str(Path::new("environments/prod.yaml"), "prod", &text) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn issue_19_bad_engine_and_version_combinations_are_named() {
    let line = PROD
        .lines()
        .position(|l| l == "      engine_major_version: \"8.4\"")
        .unwrap()
        + 1;
    let at = |col: usize, path: &str| format!("environments/prod.yaml:{line}:{col}: {path}");
    let version = "stacks.whatsthecraic.database.engine_major_version";
    // A PostgreSQL version for MySQL.
    let e = errors("      engine: mysql\n      engine_major_version: 15\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with(&at(29, version)), "{e:?}");
    assert!(e[0].contains("\"8.0\" or \"8.4\""), "{e:?}");
    // A MySQL series for PostgreSQL (and whatsthecraic needs MySQL).
    let e = errors("      engine: postgres\n      engine_major_version: \"8.4\"\n");
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e.iter().any(|m| m.contains("13 to 17")), "{e:?}");
    assert!(
        e.iter()
            .any(|m| m.contains("stacks.whatsthecraic.database.engine:")
                && m.contains("expected mysql")),
        "{e:?}"
    );
    // A series RDS does not offer, and an unquoted one (YAML reads 8.4 as a number):
    // each form the schema allows is named.
    for (bad, found) in [
        ("\"8.1\"", "expected one of 8.0, 8.4, found another string"),
        (
            "8.4",
            "expected one of 8.0, 8.4 (strings: quote the value), found a number",
        ),
    ] {
        let e = errors(&format!(
            "      engine: mysql\n      engine_major_version: {bad}\n"
        ));
        assert_eq!(e.len(), 1, "{bad}: {e:?}");
        assert!(e[0].starts_with(&at(29, version)), "{bad}: {e:?}");
        assert!(e[0].contains("expected an integer"), "{bad}: {e:?}");
        assert!(e[0].contains(found), "{bad}: {e:?}");
    }
    // An engine RDS has, keel does not.
    let e = errors("      engine: mariadb\n      engine_major_version: \"8.4\"\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("stacks.whatsthecraic.database.engine") && e[0].contains("postgres, mysql"),
        "{e:?}"
    );
}

#[test]
fn issue_19_mysql_on_a_class_without_performance_insights_is_refused() {
    let text = PROD.replacen(
        "      engine_major_version: \"8.4\"\n      instance_class: db.t4g.medium\n",
        "      engine_major_version: \"8.4\"\n      instance_class: db.t4g.micro\n",
        1,
    );
    assert_ne!(text, PROD);
    let e: Vec<String> = match load_str(Path::new("environments/prod.yaml"), "prod", &text) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    };
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("stacks.whatsthecraic.database.instance_class")
            && e[0].contains("Performance Insights"),
        "{e:?}"
    );
}
