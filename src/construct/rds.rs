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
}

/// Log types the instance exports to CloudWatch Logs.
const LOG_EXPORTS: [&str; 2] = ["postgresql", "upgrade"];

/// Parameter group family of an engine major version: `16` → `postgres16`.
pub fn parameter_family(major_version: u32) -> String {
    format!("postgres{major_version}")
}

impl RdsPostgres {
    /// Creates the subnet group, parameter group, monitoring role and instance.
    pub fn new(scope: &mut Scope<'_>, key: &KmsKey, props: &RdsPostgresProps) -> RdsPostgres {
        let f = "database";
        let s = &props.settings;
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
                "description": "keel: TLS only, slow-query and connection logging",
                "parameter": [
                    {"name": "rds.force_ssl", "value": "1"},
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
        RdsPostgres {
            db,
            db_name: props.db_name.clone(),
            identifier,
        }
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
    fn family_from_version() {
        assert_eq!(parameter_family(16), "postgres16");
        assert_eq!(parameter_family(15), "postgres15");
    }
}
