//! A database on RDS, PostgreSQL or MySQL, the same way for both: private, TLS only,
//! encrypted with the stack's key, master password managed and rotated by RDS in Secrets
//! Manager (for administrators only, never in a file), backups, Performance Insights,
//! enhanced monitoring, log exports to encrypted log groups, storage autoscaling to twice
//! the allocation, deletion protection and a final snapshot in prod. What differs per
//! engine is in [`EngineVersion`]: version, parameter group family and parameters, log
//! exports, port.
//!
//! The engine is pinned to a major version and RDS applies minor upgrades in the
//! maintenance window: a pinned minor (`16.6`, `8.0.40`) would make the next plan try to
//! downgrade the instance AWS upgraded.
//!
//! A major upgrade is a change of the environment file's `engine_major_version`: the
//! instance allows it (`allow_major_version_upgrade`, without which RDS refuses the new
//! version), the parameter group of the new family is created before the old one goes, and
//! `keel diff` blocks the change for review. With `apply_immediately = false` the upgrade
//! itself waits for the maintenance window, so Terraform's destroy of the old parameter
//! group fails until then (the group is still in use); the next apply after the window
//! removes it.

use super::Scope;
use super::iam::{Role, Trust};
use super::kms::KmsKey;
use super::log_group::{encrypted_log_group_named, rds_log_group_prefix};
use crate::env::file::{Database, DbEngine, EngineMajorVersion, MysqlMajor};
use crate::refs::{Expr, Ref};
use crate::tf::Suppression;
use crate::tf::aws::resource::db_parameter_group::Parameter;
use crate::tf::aws::resource::{DbInstance, DbParameterGroup, DbSubnetGroup};
use crate::tf::bind::{Lifecycle, Val};

/// Options for [`RdsInstance`] besides the environment's [`Database`] settings.
#[derive(Debug, Clone)]
pub struct RdsInstanceProps {
    /// Environment settings (engine and version, class, storage, Multi-AZ, protection,
    /// backups).
    pub settings: Database,
    /// Initial database name.
    pub db_name: String,
    /// Master user name. Its password is generated, kept and rotated by RDS in Secrets
    /// Manager; applications get logins of their own ([`super::db_login::DatabaseLogin`]).
    pub username: String,
    /// Private subnets (two AZs at least): a list, or a list expression (an import).
    pub subnet_ids: Val<Vec<String>>,
    /// The database's security group.
    pub security_group_id: Expr,
    /// Days to keep the exported logs (see [`EngineVersion::log_exports`]).
    pub log_retention_days: u32,
}

/// An RDS instance (PostgreSQL or MySQL).
#[derive(Debug, Clone)]
pub struct RdsInstance {
    db: Ref,
    db_name: String,
    identifier: String,
    max_connections: u32,
    version: EngineVersion,
}

/// An engine with its major version, as an environment file pairs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineVersion {
    /// PostgreSQL of this major version (`15`).
    Postgres(u32),
    /// MySQL of this release series.
    Mysql(MysqlMajor),
}

impl EngineVersion {
    /// The pair of `db`, or the error for a version of the other engine.
    pub fn of(db: &Database) -> Result<EngineVersion, String> {
        match (db.engine, db.engine_major_version) {
            (DbEngine::Postgres, EngineMajorVersion::Postgres(v)) => Ok(Self::Postgres(v.0)),
            (DbEngine::Mysql, EngineMajorVersion::Mysql(v)) => Ok(Self::Mysql(v)),
            (DbEngine::Postgres, EngineMajorVersion::Mysql(_)) => Err(
                "expected a PostgreSQL major version, a whole number from 13 to 17 (e.g. 15), for engine postgres, found a MySQL release series: set engine: mysql, or a PostgreSQL version".into(),
            ),
            (DbEngine::Mysql, EngineMajorVersion::Postgres(_)) => Err(
                "expected a MySQL release series, \"8.0\" or \"8.4\" (quoted), for engine mysql, found a PostgreSQL major version".into(),
            ),
        }
    }

    /// The engine.
    pub fn engine(self) -> DbEngine {
        match self {
            Self::Postgres(_) => DbEngine::Postgres,
            Self::Mysql(_) => DbEngine::Mysql,
        }
    }

    /// The instance's `engine_version`: the major version only (`15`, `8.0`).
    pub fn rds_version(self) -> String {
        match self {
            Self::Postgres(v) => v.to_string(),
            Self::Mysql(v) => v.as_str().to_owned(),
        }
    }

    /// Parameter group family: `postgres16`, `mysql8.0`.
    pub fn parameter_family(self) -> String {
        format!("{}{}", self.engine().rds_name(), self.rds_version())
    }

    /// Log types the instance exports to CloudWatch Logs. PostgreSQL: its log (slow
    /// statements, connections) and major-upgrade logs. MySQL: the error log and the
    /// slow-query log; not the general log, which records every statement with its values
    /// (personal data, volume) and costs server time.
    pub fn log_exports(self) -> &'static [&'static str] {
        match self {
            Self::Postgres(_) => &["postgresql", "upgrade"],
            Self::Mysql(_) => &["error", "slowquery"],
        }
    }

    /// The parameter group's parameters, with `max_connections` explicit: TLS required,
    /// statements over one second logged.
    fn parameters(self, max_connections: u32) -> Vec<Parameter> {
        let reboot = |p: Parameter| p.apply_method("pending-reboot");
        match self {
            Self::Postgres(_) => vec![
                Parameter::new("rds.force_ssl", "1"),
                reboot(Parameter::new(
                    "max_connections",
                    max_connections.to_string(),
                )),
                Parameter::new("log_min_duration_statement", "1000"),
                Parameter::new("log_connections", "1"),
                Parameter::new("log_disconnections", "1"),
                reboot(Parameter::new(
                    "shared_preload_libraries",
                    "pg_stat_statements",
                )),
            ],
            // `require_secure_transport` is MySQL's `ON`: RDS takes booleans as 0/1 (a
            // parameter set to `ON` reads back as `1`, a diff on every plan).
            // MySQL has no connection log short of the general log (see `log_exports`);
            // `log_output` must be FILE for the slow-query log to reach CloudWatch (RDS's
            // default is TABLE). Performance Insights manages `performance_schema` while it
            // is left at its default.
            Self::Mysql(_) => vec![
                Parameter::new("require_secure_transport", "1"),
                Parameter::new("max_connections", max_connections.to_string()),
                Parameter::new("slow_query_log", "1"),
                Parameter::new("long_query_time", "1"),
                Parameter::new("log_output", "FILE"),
            ],
        }
    }
}

/// Whether RDS offers Performance Insights for `engine` on `instance_class`: not for
/// MySQL on the micro and small burstable classes (Amazon RDS User Guide, "Amazon RDS DB
/// engine, Region, and instance class support for Performance Insights").
pub fn performance_insights_supported(engine: DbEngine, instance_class: &str) -> bool {
    engine == DbEngine::Postgres
        || !(instance_class.starts_with("db.t")
            && (instance_class.ends_with(".micro") || instance_class.ends_with(".small")))
}

/// The error for a class without Performance Insights for `engine`.
pub fn no_performance_insights(engine: DbEngine, instance_class: &str) -> String {
    format!(
        "instance class {instance_class}: RDS has no Performance Insights for {} on micro and small burstable classes, and keel enables it on every database: choose db.t4g.medium or larger",
        engine.display_name()
    )
}

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

/// `max_connections` of `instance_class` for `engine`, set explicitly in the parameter
/// group so that it is known at synth (the saturation SLI divides by it): RDS's default
/// formula over the class's memory, PostgreSQL `LEAST(DBInstanceClassMemory / 9531392,
/// 5000)`, MySQL `DBInstanceClassMemory / 12582880`. RDS's own value is a little lower
/// (DBInstanceClassMemory excludes what the OS reserves). `None` for a class keel does not
/// know the memory of.
pub fn max_connections(engine: DbEngine, instance_class: &str) -> Option<u32> {
    let gib = CLASS_MEMORY_GIB
        .iter()
        .find(|(class, _)| *class == instance_class)?
        .1;
    let bytes = u64::from(gib) << 30;
    let n = match engine {
        DbEngine::Postgres => (bytes / 9_531_392).min(5000),
        DbEngine::Mysql => bytes / 12_582_880,
    };
    u32::try_from(n).ok()
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

impl RdsInstance {
    /// Creates the subnet group, parameter group, monitoring role and instance. Fails on
    /// a version of the other engine, an instance class whose `max_connections` keel cannot
    /// size or without Performance Insights.
    pub fn new(
        scope: &mut Scope<'_>,
        key: &KmsKey,
        props: &RdsInstanceProps,
    ) -> Result<RdsInstance, String> {
        let f = "database";
        let s = &props.settings;
        let version = EngineVersion::of(s)?;
        let engine = version.engine();
        let max_connections = max_connections(engine, &s.instance_class)
            .ok_or_else(|| unknown_class(&s.instance_class))?;
        if !performance_insights_supported(engine, &s.instance_class) {
            return Err(no_performance_insights(engine, &s.instance_class));
        }
        let subnets = scope.tf.add(
            f,
            "main",
            DbSubnetGroup::new(props.subnet_ids.clone()).name(scope.name("db")),
        );
        let params = scope.tf.add(
            f,
            "main",
            DbParameterGroup::new(version.parameter_family())
                // A prefix, not a name: a new family (major upgrade) replaces the group
                // before destroying the old one, and two groups cannot share a name.
                .name_prefix(scope.name(&format!(
                    "{}-",
                    version.parameter_family().replace('.', "-")
                )))
                .description(match engine {
                    DbEngine::Postgres => "keel: TLS only, slow-query and connection logging, max_connections known at synth",
                    DbEngine::Mysql => "keel: TLS only, slow-query logging, max_connections known at synth",
                })
                .parameter(version.parameters(max_connections))
                .lifecycle(Lifecycle::new().create_before_destroy(true)),
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
        let log_groups: Vec<String> = version
            .log_exports()
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
        let mut instance = DbInstance::new(&s.instance_class)
            .identifier(&identifier)
            .engine(engine.rds_name())
            .engine_version(version.rds_version())
            .allocated_storage(s.allocated_storage_gib)
            .max_allocated_storage(s.allocated_storage_gib * 2)
            .storage_type("gp3")
            .storage_encrypted(true)
            .kms_key_id(key.arn())
            .db_name(&props.db_name)
            .username(&props.username)
            .iam_database_authentication_enabled(true)
            .multi_az(s.multi_az)
            .db_subnet_group_name(subnets.name())
            .vpc_security_group_ids([&props.security_group_id])
            .parameter_group_name(params.name())
            .publicly_accessible(false)
            .backup_retention_period(s.backup_retention_days)
            .backup_window("03:00-04:00")
            .maintenance_window("sun:04:30-sun:05:30")
            .copy_tags_to_snapshot(true)
            .auto_minor_version_upgrade(true)
            // RDS refuses a new major version unless the request allows it; the change
            // itself comes only from `engine_major_version`, which `keel diff` blocks.
            .allow_major_version_upgrade(true)
            .deletion_protection(s.deletion_protection)
            .skip_final_snapshot(!s.deletion_protection)
            .performance_insights_enabled(true)
            .performance_insights_kms_key_id(key.arn())
            .performance_insights_retention_period(7)
            .monitoring_interval(60)
            .monitoring_role_arn(monitoring.arn())
            .enabled_cloudwatch_logs_exports(version.log_exports().to_vec())
            .apply_immediately(false)
            .manage_master_user_password(true)
            .master_user_secret_kms_key_id(key.arn())
            .depends_on(depends_on);
        if s.deletion_protection {
            instance = instance.final_snapshot_identifier(format!("{identifier}-final"));
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
            .add_with(f, "main", instance, &suppressions)
            .into_ref();
        Ok(RdsInstance {
            db,
            db_name: props.db_name.clone(),
            identifier,
            max_connections,
            version,
        })
    }

    /// The engine.
    pub fn engine(&self) -> DbEngine {
        self.version.engine()
    }

    /// The engine's port (5432, 3306).
    pub fn port_number(&self) -> u16 {
        self.engine().port()
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
        let pg = DbEngine::Postgres;
        assert_eq!(max_connections(pg, "db.t4g.micro"), Some(112));
        assert_eq!(max_connections(pg, "db.t4g.medium"), Some(450));
        assert_eq!(max_connections(pg, "db.r6g.large"), Some(1802));
        assert_eq!(max_connections(pg, "db.x2g.16xlarge"), None);
        assert_eq!(max_connections(DbEngine::Mysql, "db.t4g.medium"), Some(341));
        assert_eq!(max_connections(DbEngine::Mysql, "db.r6g.large"), Some(1365));
        assert!(unknown_class("db.x2g.16xlarge").contains("db.t4g.micro"));
    }

    #[test]
    fn family_and_version_per_engine() {
        assert_eq!(EngineVersion::Postgres(16).parameter_family(), "postgres16");
        assert_eq!(EngineVersion::Postgres(15).rds_version(), "15");
        assert_eq!(
            EngineVersion::Mysql(MysqlMajor::V8_0).parameter_family(),
            "mysql8.0"
        );
        assert_eq!(
            EngineVersion::Mysql(MysqlMajor::V8_4).parameter_family(),
            "mysql8.4"
        );
        assert_eq!(EngineVersion::Mysql(MysqlMajor::V8_4).rds_version(), "8.4");
        assert_eq!(
            EngineVersion::Mysql(MysqlMajor::V8_0).log_exports(),
            ["error", "slowquery"]
        );
    }

    #[test]
    fn mysql_requires_tls_in_its_parameter_group() {
        let params = EngineVersion::Mysql(MysqlMajor::V8_4).parameters(341);
        assert!(params.contains(&Parameter::new("require_secure_transport", "1")));
    }

    #[test]
    fn a_version_of_the_other_engine_is_refused() {
        use crate::env::file::PostgresMajor;
        let mut db = Database {
            engine: DbEngine::Mysql,
            engine_major_version: EngineMajorVersion::Postgres(PostgresMajor(15)),
            instance_class: "db.t4g.medium".into(),
            allocated_storage_gib: 20,
            multi_az: false,
            deletion_protection: false,
            backup_retention_days: 1,
        };
        let e = EngineVersion::of(&db).unwrap_err();
        assert!(e.contains("\"8.0\" or \"8.4\""), "{e}");
        db.engine = DbEngine::Postgres;
        assert_eq!(EngineVersion::of(&db), Ok(EngineVersion::Postgres(15)));
        db.engine_major_version = EngineMajorVersion::Mysql(MysqlMajor::V8_0);
        let e = EngineVersion::of(&db).unwrap_err();
        assert!(e.contains("13 to 17"), "{e}");
    }

    #[test]
    fn performance_insights_by_engine_and_class() {
        assert!(performance_insights_supported(
            DbEngine::Postgres,
            "db.t4g.micro"
        ));
        assert!(!performance_insights_supported(
            DbEngine::Mysql,
            "db.t4g.micro"
        ));
        assert!(!performance_insights_supported(
            DbEngine::Mysql,
            "db.t3.small"
        ));
        assert!(performance_insights_supported(
            DbEngine::Mysql,
            "db.t4g.medium"
        ));
        assert!(performance_insights_supported(
            DbEngine::Mysql,
            "db.r6g.large"
        ));
    }
}
