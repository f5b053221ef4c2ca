//! ElastiCache Redis as a replication group: private, encrypted at rest (stack key) and in
//! transit, AUTH token from Secrets Manager, Multi-AZ automatic failover with two or more
//! nodes, slow-log delivery to CloudWatch.

use super::Scope;
use super::kms::KmsKey;
use super::log_group::encrypted_log_group;
use crate::env::file::Cache;
use crate::refs::Expr;
use crate::tf::Suppression;
use crate::tf::aws::resource::elasticache_parameter_group::Parameter;
use crate::tf::aws::resource::elasticache_replication_group::LogDeliveryConfiguration;
use crate::tf::aws::resource::{
    ElasticacheParameterGroup, ElasticacheReplicationGroup, ElasticacheReplicationGroupRef,
    ElasticacheSubnetGroup,
};
use crate::tf::bind::{Lifecycle, Val};

/// Options for [`RedisCache`].
#[derive(Debug, Clone)]
pub struct RedisCacheProps {
    /// Environment settings (node type, version, node count).
    pub settings: Cache,
    /// Private subnets: a list, or a list expression (an import).
    pub subnet_ids: Val<Vec<String>>,
    /// The cache's security group.
    pub security_group_id: Expr,
    /// The AUTH token (a reference to a generated secret).
    pub auth_token: Expr,
    /// Days to keep the slow log.
    pub log_retention_days: u32,
}

/// A Redis replication group.
#[derive(Debug, Clone)]
pub struct RedisCache {
    group: ElasticacheReplicationGroupRef,
}

/// Port Redis listens on.
pub const REDIS_PORT: u16 = 6379;

/// The Redis versions keel accepts (those ElastiCache offers under standard support), each
/// with its parameter group family.
pub const REDIS_VERSIONS: &[(&str, &str)] = &[
    ("6.0", "redis6.x"),
    ("6.2", "redis6.x"),
    ("7.0", "redis7"),
    ("7.1", "redis7"),
];

/// The parameter group family of Redis `version`, if keel accepts the version.
pub fn redis_family(version: &str) -> Option<&'static str> {
    REDIS_VERSIONS
        .iter()
        .find(|(v, _)| *v == version)
        .map(|(_, family)| *family)
}

/// The accepted Redis versions, for messages: `6.0, 6.2, 7.0, 7.1`.
pub fn redis_versions() -> String {
    REDIS_VERSIONS
        .iter()
        .map(|(v, _)| *v)
        .collect::<Vec<_>>()
        .join(", ")
}

impl RedisCache {
    /// Creates the subnet group, slow-log group and replication group; fails on a Redis
    /// version outside [`REDIS_VERSIONS`].
    pub fn new(
        scope: &mut Scope<'_>,
        key: &KmsKey,
        props: &RedisCacheProps,
    ) -> Result<RedisCache, String> {
        let f = "cache";
        let s = &props.settings;
        let family = redis_family(&s.engine_version).ok_or_else(|| {
            format!(
                "cache engine_version {:?} is not one of {}",
                s.engine_version,
                redis_versions()
            )
        })?;
        let subnets = scope.tf.add(
            f,
            "main",
            ElasticacheSubnetGroup::new(scope.name("cache"), props.subnet_ids.clone()),
        );
        let slow_log = encrypted_log_group(
            scope,
            key,
            f,
            "cache_slow_log",
            "redis-slow-log",
            props.log_retention_days,
        );
        // The seed's cache evicts any key under memory pressure (`allkeys-lru`): it holds
        // only recomputable aggregates. ElastiCache's default, volatile-lru, would refuse
        // writes once memory is full of keys without a TTL.
        let params = scope.tf.add(
            f,
            "main",
            // The family is in the name: an engine major upgrade creates the new group
            // under a new name before the old one is released.
            ElasticacheParameterGroup::new(family, scope.name(&format!("cache-{family}")))
                .description("keel: evict any key under memory pressure (allkeys-lru)")
                .parameter([Parameter::new("maxmemory-policy", "allkeys-lru")])
                .lifecycle(Lifecycle::new().create_before_destroy(true)),
        );
        scope.tf.allow(
            params.tf_ref(),
            "fixed_name_replaced_first",
            "the name carries the parameter family, the only change that replaces the group",
        );
        let failover = s.nodes >= 2;
        let single_node = [Suppression {
            check: "CKV2_AWS_50",
            reason: "the environment file asks for one node (non-prod); failover needs two and keel requires two in prod",
        }];
        let group = scope.tf.add_with(
            f,
            "main",
            ElasticacheReplicationGroup::new(
                format!("{} Redis cache", scope.prefix),
                scope.name("cache"),
            )
            .engine("redis")
            .engine_version(&s.engine_version)
            .node_type(&s.node_type)
            .parameter_group_name(params.name())
            .num_cache_clusters(s.nodes)
            .port(REDIS_PORT)
            .automatic_failover_enabled(failover)
            .multi_az_enabled(failover)
            .subnet_group_name(subnets.name())
            .security_group_ids([&props.security_group_id])
            // Both majors type these two as strings; Terraform converts the bool keel has
            // always written, and writing "true" instead would change the generated files.
            .at_rest_encryption_enabled(Val::converted(true))
            .kms_key_id(key.arn())
            .transit_encryption_enabled(true)
            .auth_token(&props.auth_token)
            .auto_minor_version_upgrade(Val::converted(true))
            .snapshot_retention_limit(if scope.prod { 7 } else { 1 })
            .snapshot_window("02:00-03:00")
            .maintenance_window("sun:05:00-sun:06:00")
            .apply_immediately(false)
            .log_delivery_configuration([LogDeliveryConfiguration::new(
                slow_log.attr("name"),
                "cloudwatch-logs",
                "json",
                "slow-log",
            )]),
            if failover { &[] } else { &single_node },
        );
        Ok(RedisCache { group })
    }

    /// Host name of the primary endpoint.
    pub fn primary_address(&self) -> Expr {
        self.group.primary_endpoint_address().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_follow_the_major_version() {
        assert_eq!(redis_family("7.1"), Some("redis7"));
        assert_eq!(redis_family("6.2"), Some("redis6.x"));
        assert_eq!(redis_family("banana"), None);
        assert_eq!(redis_family("7"), None);
    }
}
