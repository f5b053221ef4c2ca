//! PostgreSQL on RDS: private, encrypted with the stack's key, password managed by Secrets
//! Manager (never in a file), backups, Performance Insights, enhanced monitoring, storage
//! autoscaling to twice the allocation, deletion protection and a final snapshot in prod.

use serde_json::json;

use super::Scope;
use super::iam::{Role, Trust};
use super::kms::KmsKey;
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
    /// Master user name (its password lives only in Secrets Manager).
    pub username: String,
    /// Private subnets (two AZs at least).
    pub subnet_ids: Vec<serde_json::Value>,
    /// The database's security group.
    pub security_group_id: Expr,
    /// Where the master password comes from.
    pub password: MasterPassword,
}

/// Where the master password of an instance comes from. Neither puts a value in a file.
#[derive(Debug, Clone)]
pub enum MasterPassword {
    /// RDS generates it, keeps it in Secrets Manager and rotates it (the default).
    ManagedBySecretsManager,
    /// A value generated in Secrets Manager by keel ([`crate::construct::secrets::GeneratedSecret`]),
    /// for stacks that must compose a connection string from it. It lives in the
    /// (encrypted) Terraform state.
    Generated(Expr),
}

/// A PostgreSQL instance.
#[derive(Debug, Clone)]
pub struct RdsPostgres {
    db: Ref,
}

/// Parameter group family of an engine version: `16.6` → `postgres16`.
pub fn parameter_family(engine_version: &str) -> String {
    let major = engine_version.split('.').next().unwrap_or(engine_version);
    format!("postgres{major}")
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
                "name": scope.name(&format!("{}-params", parameter_family(&s.engine_version))),
                "family": parameter_family(&s.engine_version),
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
        let mut body = json!({
            "identifier": identifier,
            "engine": "postgres",
            "engine_version": s.engine_version,
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
            "enabled_cloudwatch_logs_exports": ["postgresql", "upgrade"],
            "apply_immediately": false,
        });
        match &props.password {
            MasterPassword::ManagedBySecretsManager => {
                body["manage_master_user_password"] = json!(true);
                body["master_user_secret_kms_key_id"] = key.arn().into();
            }
            MasterPassword::Generated(value) => {
                body["password"] = value.into();
            }
        }
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
        RdsPostgres { db }
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

    /// ARN of the Secrets Manager secret RDS keeps the master credentials in (only with
    /// [`MasterPassword::ManagedBySecretsManager`]).
    pub fn secret_arn(&self) -> Expr {
        self.db.attr("master_user_secret[0].secret_arn")
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
        assert_eq!(parameter_family("16.6"), "postgres16");
        assert_eq!(parameter_family("15.10"), "postgres15");
    }
}
