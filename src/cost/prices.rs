//! The price table: AWS on-demand list prices, in US dollars, for the resource types keel
//! emits, per region. Dated and sourced; a region, class or type that is not here is
//! *unpriced* (the estimate says so), never zero.
//!
//! Prices are the published on-demand rates (Linux, no reservation, no savings plan, no
//! free tier) transcribed from the pages in [`SOURCES`] as published at [`PRICES_AS_OF`].
//! keel does not fetch them: update the table (and the date) when AWS changes a rate.

/// The month the rates below were read from the [`SOURCES`] pages.
pub const PRICES_AS_OF: &str = "2025-06";

/// Hours in the estimate's month (AWS's own convention: 730 = 8760 / 12).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// Where each group of rates comes from.
pub const SOURCES: &[(&str, &str)] = &[
    (
        "EC2 instances",
        "https://aws.amazon.com/ec2/pricing/on-demand/",
    ),
    ("EBS volumes", "https://aws.amazon.com/ebs/pricing/"),
    (
        "RDS for PostgreSQL",
        "https://aws.amazon.com/rds/postgresql/pricing/",
    ),
    ("RDS for MySQL", "https://aws.amazon.com/rds/mysql/pricing/"),
    (
        "ElastiCache (Redis OSS)",
        "https://aws.amazon.com/elasticache/pricing/",
    ),
    ("EKS control plane", "https://aws.amazon.com/eks/pricing/"),
    ("Fargate (ECS)", "https://aws.amazon.com/fargate/pricing/"),
    (
        "Application and Network Load Balancers",
        "https://aws.amazon.com/elasticloadbalancing/pricing/",
    ),
    (
        "NAT gateways, public IPv4",
        "https://aws.amazon.com/vpc/pricing/",
    ),
    (
        "Interface VPC endpoints",
        "https://aws.amazon.com/privatelink/pricing/",
    ),
    ("KMS keys", "https://aws.amazon.com/kms/pricing/"),
    (
        "Secrets Manager",
        "https://aws.amazon.com/secrets-manager/pricing/",
    ),
    (
        "CloudWatch alarms, dashboards",
        "https://aws.amazon.com/cloudwatch/pricing/",
    ),
    ("WAF", "https://aws.amazon.com/waf/pricing/"),
];

/// The rates of one region.
#[derive(Debug)]
pub struct RegionPrices {
    /// Region code (`us-east-1`).
    pub region: &'static str,
    /// EC2 Linux on-demand, per instance-hour, by instance type.
    pub ec2_hourly: &'static [(&'static str, f64)],
    /// EBS gp3 storage, per GB-month (baseline IOPS and throughput included).
    pub ebs_gp3_gb_month: f64,
    /// RDS for PostgreSQL single-AZ, per instance-hour, by instance class (Multi-AZ with
    /// one standby is twice this).
    pub rds_postgres_hourly: &'static [(&'static str, f64)],
    /// RDS for MySQL single-AZ, per instance-hour, by instance class (Multi-AZ with one
    /// standby is twice this).
    pub rds_mysql_hourly: &'static [(&'static str, f64)],
    /// RDS gp3 storage, single-AZ, per GB-month (Multi-AZ is twice this).
    pub rds_gp3_gb_month: f64,
    /// ElastiCache (Redis OSS) on-demand, per node-hour, by node type.
    pub elasticache_hourly: &'static [(&'static str, f64)],
    /// EKS cluster, standard Kubernetes version support, per cluster-hour.
    pub eks_cluster_hourly: f64,
    /// EKS cluster whose Kubernetes version is in extended support, per cluster-hour
    /// (replaces [`RegionPrices::eks_cluster_hourly`], not added to it).
    pub eks_cluster_extended_hourly: f64,
    /// Fargate Linux/x86_64, per vCPU-hour and per GB-hour.
    pub fargate_x86: (f64, f64),
    /// Fargate Linux/ARM64, per vCPU-hour and per GB-hour.
    pub fargate_arm: (f64, f64),
    /// Application Load Balancer, per hour (LCUs are usage).
    pub alb_hourly: f64,
    /// Network Load Balancer, per hour (NLCUs are usage).
    pub nlb_hourly: f64,
    /// NAT gateway, per hour (data processed is usage).
    pub nat_gateway_hourly: f64,
    /// A public IPv4 address (an Elastic IP, attached or not), per hour.
    pub public_ipv4_hourly: f64,
    /// Interface VPC endpoint, per endpoint and AZ (subnet), per hour.
    pub interface_endpoint_az_hourly: f64,
    /// KMS customer managed key, per month.
    pub kms_key_month: f64,
    /// Secrets Manager secret, per month.
    pub secret_month: f64,
    /// CloudWatch standard-resolution metric alarm, per month.
    pub metric_alarm_month: f64,
    /// CloudWatch composite alarm, per month.
    pub composite_alarm_month: f64,
    /// CloudWatch dashboard, per month.
    pub dashboard_month: f64,
    /// WAF web ACL, per month.
    pub waf_web_acl_month: f64,
    /// WAF rule in a web ACL, per month.
    pub waf_rule_month: f64,
}

/// us-east-1 (N. Virginia), the region of every environment file.
// db.m6g.xlarge costs $0.318 an hour, which clippy takes for 1/pi.
#[allow(clippy::approx_constant)]
pub const US_EAST_1: RegionPrices = RegionPrices {
    region: "us-east-1",
    ec2_hourly: &[
        ("c6g.large", 0.068),
        ("c6g.xlarge", 0.136),
        ("c6i.large", 0.085),
        ("c6i.xlarge", 0.17),
        ("c6i.2xlarge", 0.34),
        ("c7g.large", 0.0725),
        ("c7g.xlarge", 0.145),
        ("m5.large", 0.096),
        ("m5.xlarge", 0.192),
        ("m5.2xlarge", 0.384),
        ("m6a.large", 0.0864),
        ("m6a.xlarge", 0.1728),
        ("m6g.large", 0.077),
        ("m6g.xlarge", 0.154),
        ("m6i.large", 0.096),
        ("m6i.xlarge", 0.192),
        ("m6i.2xlarge", 0.384),
        ("m6i.4xlarge", 0.768),
        ("m7g.large", 0.0816),
        ("m7g.xlarge", 0.1632),
        ("m7i.large", 0.1008),
        ("m7i.xlarge", 0.2016),
        ("r6g.large", 0.1008),
        ("r6g.xlarge", 0.2016),
        ("r6i.large", 0.126),
        ("r6i.xlarge", 0.252),
        ("t3.micro", 0.0104),
        ("t3.small", 0.0208),
        ("t3.medium", 0.0416),
        ("t3.large", 0.0832),
        ("t3.xlarge", 0.1664),
        ("t3.2xlarge", 0.3328),
        ("t3a.medium", 0.0376),
        ("t3a.large", 0.0752),
        ("t3a.xlarge", 0.1504),
        ("t4g.medium", 0.0336),
        ("t4g.large", 0.0672),
        ("t4g.xlarge", 0.1344),
    ],
    ebs_gp3_gb_month: 0.08,
    rds_postgres_hourly: &[
        ("db.m6g.large", 0.159),
        ("db.m6g.xlarge", 0.318),
        ("db.m6g.2xlarge", 0.636),
        ("db.m6i.large", 0.178),
        ("db.m6i.xlarge", 0.356),
        ("db.r6g.large", 0.225),
        ("db.r6g.xlarge", 0.45),
        ("db.r6g.2xlarge", 0.9),
        ("db.r6i.large", 0.25),
        ("db.r6i.xlarge", 0.5),
        ("db.t3.micro", 0.018),
        ("db.t3.small", 0.036),
        ("db.t3.medium", 0.072),
        ("db.t3.large", 0.145),
        ("db.t4g.micro", 0.016),
        ("db.t4g.small", 0.032),
        ("db.t4g.medium", 0.065),
        ("db.t4g.large", 0.129),
        ("db.t4g.xlarge", 0.258),
        ("db.t4g.2xlarge", 0.516),
    ],
    rds_mysql_hourly: &[
        ("db.m6g.large", 0.152),
        ("db.m6g.xlarge", 0.304),
        ("db.r6g.large", 0.215),
        ("db.r6g.xlarge", 0.43),
        ("db.t3.medium", 0.068),
        ("db.t3.large", 0.136),
        ("db.t4g.medium", 0.065),
        ("db.t4g.large", 0.129),
        ("db.t4g.xlarge", 0.258),
    ],
    rds_gp3_gb_month: 0.115,
    elasticache_hourly: &[
        ("cache.m6g.large", 0.149),
        ("cache.m7g.large", 0.158),
        ("cache.r6g.large", 0.206),
        ("cache.r7g.large", 0.219),
        ("cache.r7g.xlarge", 0.437),
        ("cache.t3.micro", 0.017),
        ("cache.t3.small", 0.034),
        ("cache.t3.medium", 0.068),
        ("cache.t4g.micro", 0.016),
        ("cache.t4g.small", 0.032),
        ("cache.t4g.medium", 0.065),
    ],
    eks_cluster_hourly: 0.10,
    eks_cluster_extended_hourly: 0.60,
    fargate_x86: (0.04048, 0.004445),
    fargate_arm: (0.03238, 0.00356),
    alb_hourly: 0.0225,
    nlb_hourly: 0.0225,
    nat_gateway_hourly: 0.045,
    public_ipv4_hourly: 0.005,
    interface_endpoint_az_hourly: 0.01,
    kms_key_month: 1.0,
    secret_month: 0.40,
    metric_alarm_month: 0.10,
    composite_alarm_month: 0.50,
    dashboard_month: 3.0,
    waf_web_acl_month: 5.0,
    waf_rule_month: 1.0,
};

/// Every region the table prices.
pub const REGIONS: &[&RegionPrices] = &[&US_EAST_1];

/// The rates of `region`, if the table has them.
pub fn region(region: &str) -> Option<&'static RegionPrices> {
    REGIONS.iter().copied().find(|r| r.region == region)
}

/// The rate of `key` in a `(key, rate)` list.
pub fn lookup(table: &[(&str, f64)], key: &str) -> Option<f64> {
    table.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted_unique(table: &[(&str, f64)]) -> bool {
        let mut keys: Vec<&str> = table.iter().map(|(k, _)| *k).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.len() == table.len()
    }

    #[test]
    fn every_rate_is_positive_and_every_key_appears_once() {
        for r in REGIONS {
            for table in [
                r.ec2_hourly,
                r.rds_postgres_hourly,
                r.rds_mysql_hourly,
                r.elasticache_hourly,
            ] {
                assert!(sorted_unique(table), "{}: a key appears twice", r.region);
                for (k, v) in table {
                    assert!(*v > 0.0 && v.is_finite(), "{}: {k} = {v}", r.region);
                }
            }
        }
    }

    #[test]
    fn sizes_of_a_family_scale_with_their_resources() {
        // Within a family, one size up doubles vCPUs and memory; the list prices follow
        // (within a cent per hour, AWS rounds burstable classes).
        for table in [
            US_EAST_1.ec2_hourly,
            US_EAST_1.rds_postgres_hourly,
            US_EAST_1.rds_mysql_hourly,
            US_EAST_1.elasticache_hourly,
        ] {
            for (class, rate) in table {
                let Some((family, size)) = class.rsplit_once('.') else {
                    panic!("{class} has no size");
                };
                let next = match size {
                    "micro" => "small",
                    "small" => "medium",
                    "medium" => "large",
                    "large" => "xlarge",
                    "xlarge" => "2xlarge",
                    "2xlarge" => "4xlarge",
                    _ => continue,
                };
                if let Some(bigger) = lookup(table, &format!("{family}.{next}")) {
                    assert!(
                        (bigger - 2.0 * rate).abs() < 0.01,
                        "{class} {rate} vs {family}.{next} {bigger}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_table_holds_every_class_the_environment_files_use() {
        // The classes environments/*.yaml choose today (a test in tests/cost.rs checks the
        // generated stacks have no unpriced instance).
        for class in ["m6i.large", "m6i.xlarge", "t3.large"] {
            assert!(lookup(US_EAST_1.ec2_hourly, class).is_some(), "{class}");
        }
        for class in [
            "db.t4g.micro",
            "db.t4g.small",
            "db.t4g.medium",
            "db.t4g.large",
            "db.r6g.large",
        ] {
            assert!(
                lookup(US_EAST_1.rds_postgres_hourly, class).is_some(),
                "{class}"
            );
        }
        for class in ["db.t4g.medium", "db.t4g.large", "db.r6g.large"] {
            assert!(
                lookup(US_EAST_1.rds_mysql_hourly, class).is_some(),
                "{class}"
            );
        }
        for node in ["cache.t4g.micro", "cache.t4g.small", "cache.r7g.large"] {
            assert!(
                lookup(US_EAST_1.elasticache_hourly, node).is_some(),
                "{node}"
            );
        }
    }

    #[test]
    fn known_rates_of_us_east_1() {
        // Spot checks against the source pages, so an edit that shifts a row is caught.
        assert_eq!(lookup(US_EAST_1.ec2_hourly, "m6i.large"), Some(0.096));
        assert_eq!(
            lookup(US_EAST_1.rds_postgres_hourly, "db.r6g.large"),
            Some(0.225)
        );
        assert_eq!(
            lookup(US_EAST_1.rds_mysql_hourly, "db.r6g.large"),
            Some(0.215)
        );
        assert_eq!(US_EAST_1.nat_gateway_hourly, 0.045);
        assert_eq!(US_EAST_1.eks_cluster_hourly, 0.10);
        assert_eq!(US_EAST_1.eks_cluster_extended_hourly, 0.60);
        assert_eq!(US_EAST_1.fargate_x86, (0.04048, 0.004445));
        assert!(region("us-east-1").is_some());
        assert!(region("eu-west-1").is_none());
    }
}
