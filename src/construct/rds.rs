//! PostgreSQL on RDS: private, encrypted with the stack's key, master password managed and
//! rotated by RDS in Secrets Manager (for administrators only, never in a file), backups,
//! Performance Insights, enhanced monitoring, log exports to encrypted log groups, storage
//! autoscaling to twice the allocation, deletion protection and a final snapshot in prod.
//!
//! The engine is pinned to a major version and RDS applies minor upgrades in the
//! maintenance window: a pinned minor (`16.6`) would make the next plan try to downgrade
//! the instance AWS upgraded.

use serde_json::json;

use super::Scope;
use super::iam::{Role, Trust};
use super::kms::KmsKey;
use super::log_group::{encrypted_log_group_named, rds_log_group_prefix};
use crate::env::file::Database;
use crate::refs::{Expr, Ref};
use crate::tf::Suppression;

/// Options for [`RdsPostgres`] besides the environment's [`Database`] settings.
#[derive(Debug, Clone)]
pub struct RdsPostgresProps {
    /// Environment settings (version, class, storage, Multi-AZ, protection, backups).
    pub settings: Database,
    /// Initial database name.
    pub db_name: String,
    /// Master user name. Its password is generated, kept and rotated by RDS in Secrets
    /// Manager; applications get logins of their own ([`super::db_login::DatabaseLogin`]).
    pub username: String,
    /// Private subnets (two AZs at least): a list, or a list expression (an import).
    pub subnet_ids: serde_json::Value,
    /// The database's security group.
    pub security_group_id: Expr,
    /// Days to keep the exported PostgreSQL and upgrade logs.
    pub log_retention_days: u32,
}

/// A PostgreSQL instance.
#[derive(Debug, Clone)]
pub struct RdsPostgres {
    db: Ref,
    db_name: String,
    identifier: String,
    max_connections: u32,
}

/// Log types the instance exports to CloudWatch Logs.
const LOG_EXPORTS: [&str; 2] = ["postgresql", "upgrade"];

/// Memory in GiB of the instance classes keel sizes `max_connections` for (Amazon RDS
/// instance types, https://aws.amazon.com/rds/instance-types/).
const CLASS_MEMORY_GIB: &[(&str, u32)] = &[
    ("db.t3.micro", 1),
    ("db.t3.small", 2),
    ("db.t3.medium", 4),
    ("db.t3.large", 8),
    ("db.t4g.micro", 1),
    ("db.t4g.small", 2),
    ("db.t4g.medium", 4),
    ("db.t4g.large", 8),
    ("db.t4g.xlarge", 16),
    ("db.m6g.large", 8),
    ("db.m6g.xlarge", 16),
    ("db.m7g.large", 8),
    ("db.m7g.xlarge", 16),
    ("db.r6g.large", 16),
    ("db.r6g.xlarge", 32),
    ("db.r7g.large", 16),
    ("db.r7g.xlarge", 32),
];

/// `max_connections` of `instance_class`, set explicitly in the parameter group so that it
/// is known at synth (the saturation SLI divides by it): RDS PostgreSQL's default formula,
/// `LEAST(DBInstanceClassMemory / 9531392, 5000)`, over the class's memory. RDS's own value
/// is a little lower (DBInstanceClassMemory excludes what the OS reserves). `None` for a
/// class keel does not know the memory of.
pub fn max_connections(instance_class: &str) -> Option<u32> {
    let gib = CLASS_MEMORY_GIB
        .iter()
        .find(|(class, _)| *class == instance_class)?
        .1;
    let bytes = u64::from(gib) << 30;
    u32::try_from((bytes / 9_531_392).min(5000)).ok()
}

/// The error for an instance class [`max_connections`] does not know.
pub fn unknown_class(instance_class: &str) -> String {
    format!(
        "instance class {instance_class}: keel sets max_connections from the class's memory and knows only {}",
        CLASS_MEMORY_GIB
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Parameter group family of an engine major version: `16` → `postgres16`.
pub fn parameter_family(major_version: u32) -> String {
    format!("postgres{major_version}")
}

impl RdsPostgres {
    /// Creates the subnet group, parameter group, monitoring role and instance. Fails on
    /// an instance class whose `max_connections` keel cannot size.
    pub fn new(
        scope: &mut Scope<'_>,
        key: &KmsKey,
        props: &RdsPostgresProps,
    ) -> Result<RdsPostgres, String> {
        let f = "database";
        let s = &props.settings;
        let max_connections =
            max_connections(&s.instance_class).ok_or_else(|| unknown_class(&s.instance_class))?;
        let subnets = scope.tf.resource(
            f,
            "aws_db_subnet_group",
            "main",
            json!({"name": scope.name("db"), "subnet_ids": props.subnet_ids}),
        );
        let params = scope.tf.resource(
            f,
            "aws_db_parameter_group",
            "main",
            json!({
                // A prefix, not a name: a new family (major upgrade) replaces the group
                // before destroying the old one, and two groups cannot share a name.
                "name_prefix": scope.name(&format!("{}-", parameter_family(s.engine_major_version))),
                "family": parameter_family(s.engine_major_version),
                "description": "keel: TLS only, slow-query and connection logging, max_connections known at synth",
                "parameter": [
                    {"name": "rds.force_ssl", "value": "1"},
                    {"name": "max_connections", "value": max_connections.to_string(), "apply_method": "pending-reboot"},
                    {"name": "log_min_duration_statement", "value": "1000"},
                    {"name": "log_connections", "value": "1"},
                    {"name": "log_disconnections", "value": "1"},
                    {"name": "shared_preload_libraries", "value": "pg_stat_statements", "apply_method": "pending-reboot"},
                ],
                "lifecycle": {"create_before_destroy": true},
            }),
        );
        let monitoring = Role::new(
            scope,
            "rds_monitoring",
            "rds-monitoring",
            Trust::Service("monitoring.rds.amazonaws.com"),
            &["service-role/AmazonRDSEnhancedMonitoringRole"],
            vec![],
        );
        let identifier = scope.name("db");
        let log_groups: Vec<String> = LOG_EXPORTS
            .iter()
            .map(|log| {
                encrypted_log_group_named(
                    scope,
                    key,
                    f,
                    &format!("db_{log}"),
                    &format!("{}/{log}", rds_log_group_prefix(&identifier)),
                    props.log_retention_days,
                )
                .address()
            })
            .collect();
        // The instance starts exporting logs and monitoring as soon as it exists: its log
        // groups and the monitoring role's permissions must be there first.
        let depends_on: Vec<String> = log_groups
            .into_iter()
            .chain(monitoring.policy_addresses().iter().cloned())
            .collect();
        let mut body = json!({
            "identifier": identifier,
            "engine": "postgres",
            "engine_version": s.engine_major_version.to_string(),
            "instance_class": s.instance_class,
            "allocated_storage": s.allocated_storage_gib,
            "max_allocated_storage": s.allocated_storage_gib * 2,
            "storage_type": "gp3",
            "storage_encrypted": true,
            "kms_key_id": key.arn(),
            "db_name": props.db_name,
            "username": props.username,
            "iam_database_authentication_enabled": true,
            "multi_az": s.multi_az,
            "db_subnet_group_name": subnets.attr("name"),
            "vpc_security_group_ids": [props.security_group_id],
            "parameter_group_name": params.attr("name"),
            "publicly_accessible": false,
            "backup_retention_period": s.backup_retention_days,
            "backup_window": "03:00-04:00",
            "maintenance_window": "sun:04:30-sun:05:30",
            "copy_tags_to_snapshot": true,
            "auto_minor_version_upgrade": true,
            "deletion_protection": s.deletion_protection,
            "skip_final_snapshot": !s.deletion_protection,
            "performance_insights_enabled": true,
            "performance_insights_kms_key_id": key.arn(),
            "performance_insights_retention_period": 7,
            "monitoring_interval": 60,
            "monitoring_role_arn": monitoring.arn(),
            "enabled_cloudwatch_logs_exports": LOG_EXPORTS,
            "apply_immediately": false,
            "manage_master_user_password": true,
            "master_user_secret_kms_key_id": key.arn(),
            "depends_on": depends_on,
        });
        if s.deletion_protection {
            body["final_snapshot_identifier"] = json!(format!("{identifier}-final"));
        }
        let mut suppressions = Vec::new();
        if !s.multi_az {
            suppressions.push(Suppression {
                check: "CKV_AWS_157",
                reason: "multi_az is false in this non-prod environment file; keel requires it in prod",
            });
        }
        if !s.deletion_protection {
            suppressions.push(Suppression {
                check: "CKV_AWS_293",
                reason: "deletion_protection is false in this non-prod environment file; keel requires it in prod",
            });
        }
        let db = scope
            .tf
            .resource_with(f, "aws_db_instance", "main", body, &suppressions);
        Ok(RdsPostgres {
            db,
            db_name: props.db_name.clone(),
            identifier,
            max_connections,
        })
    }

    /// `max_connections` of the instance (set in its parameter group).
    pub fn max_connections(&self) -> u32 {
        self.max_connections
    }

    /// The database name applications connect to.
    pub fn db_name(&self) -> &str {
        &self.db_name
    }

    /// Host name of the writer endpoint.
    pub fn address(&self) -> Expr {
        self.db.attr("address")
    }

    /// `host:port` endpoint.
    pub fn endpoint(&self) -> Expr {
        self.db.attr("endpoint")
    }

    /// Port.
    pub fn port(&self) -> Expr {
        self.db.attr("port")
    }

    /// ARN of the Secrets Manager secret RDS keeps (and rotates) the master credentials in:
    /// for administrators, never for applications.
    pub fn secret_arn(&self) -> Expr {
        self.db.attr("master_user_secret[0].secret_arn")
    }

    /// The instance's ARN, known before it exists (its identifier is deterministic).
    pub fn instance_arn(&self, scope: &Scope<'_>) -> String {
        format!(
            "arn:{}:rds:{}:{}:db:{}",
            scope.partition(),
            scope.tf.region(),
            scope.tf.account_id(),
            self.identifier
        )
    }

    /// The instance identifier.
    pub fn identifier(&self) -> Expr {
        self.db.attr("identifier")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_connections_follows_the_class_memory() {
        assert_eq!(max_connections("db.t4g.micro"), Some(112));
        assert_eq!(max_connections("db.t4g.medium"), Some(450));
        assert_eq!(max_connections("db.r6g.large"), Some(1802));
        assert_eq!(max_connections("db.x2g.16xlarge"), None);
        assert!(unknown_class("db.x2g.16xlarge").contains("db.t4g.micro"));
    }

    #[test]
    fn family_from_version() {
        assert_eq!(parameter_family(16), "postgres16");
        assert_eq!(parameter_family(15), "postgres15");
    }
}
