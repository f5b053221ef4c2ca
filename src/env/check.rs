//! Semantic checks that a JSON Schema cannot express: CIDR arithmetic, ordering of bounds,
//! per-region limits, and the stricter policy of the prod tier.

use super::file::{Database, EnvFile, Image, NatGateways, Tier};
use super::load::{is_prod, parse_cidr, region_az_count};

/// Problems as (JSON pointer, message).
pub(crate) type Problems = Vec<(String, String)>;

/// CloudWatch Logs retention values the API accepts.
const LOG_RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// Runs every check of `spec`, whose file stem is `stem`.
pub(crate) fn check(spec: &EnvFile, stem: &str, out: &mut Problems) {
    if spec.name != stem {
        out.push((
            "/name".into(),
            format!("expected {stem:?} (the file name), found {:?}", spec.name),
        ));
    }
    let azs = region_az_count(&spec.region);
    if spec.network.az_count > azs {
        out.push((
            "/network/az_count".into(),
            format!(
                "expected 2..={azs} for {}, found {}",
                spec.region, spec.network.az_count
            ),
        ));
    }
    match parse_cidr(&spec.network.vpc_cidr) {
        Ok(net) if !(16..=24).contains(&net.prefix_len()) => out.push((
            "/network/vpc_cidr".into(),
            format!(
                "expected a prefix length of /16 to /24, found /{}",
                net.prefix_len()
            ),
        )),
        Ok(_) => {}
        Err(m) => out.push(("/network/vpc_cidr".into(), m)),
    }
    retention(
        spec.network.flow_log_retention_days,
        "/network/flow_log_retention_days",
        out,
    );
    if is_prod(spec.tier) && spec.network.nat_gateways != NatGateways::PerAz {
        out.push((
            "/network/nat_gateways".into(),
            "expected per_az in a prod-tier environment (one NAT gateway is a single point of failure), found single".into(),
        ));
    }
    if let Some(region) = &spec.state.region
        && region.is_empty()
    {
        out.push((
            "/state/region".into(),
            "expected a region name, found an empty string".into(),
        ));
    }

    platform(spec, out);

    if let Some(lg) = &spec.stacks.langgraph_platform {
        let p = "/stacks/langgraph-platform";
        image(&lg.image, spec.tier, &format!("{p}/image"), out);
        certificate(
            lg.certificate_arn.as_deref(),
            spec,
            &format!("{p}/certificate_arn"),
            out,
        );
        fargate_size(lg.task.cpu, lg.task.memory_mib, &format!("{p}/task"), out);
        retention(
            lg.log_retention_days,
            &format!("{p}/log_retention_days"),
            out,
        );
        let s = &lg.scaling;
        if !(s.min <= s.desired && s.desired <= s.max) {
            out.push((
                format!("{p}/scaling"),
                format!(
                    "expected min <= desired <= max, found {} <= {} <= {}",
                    s.min, s.desired, s.max
                ),
            ));
        }
        min_copies(s.min, "task", spec.tier, &format!("{p}/scaling/min"), out);
        percent(s.cpu_percent, &format!("{p}/scaling/cpu_percent"), out);
        percent(
            s.memory_percent,
            &format!("{p}/scaling/memory_percent"),
            out,
        );
        if s.requests_per_target == 0 {
            out.push((
                format!("{p}/scaling/requests_per_target"),
                "expected at least 1".into(),
            ));
        }
        let d = &lg.deployment;
        if d.termination_wait_minutes > 2880 {
            out.push((
                format!("{p}/deployment/termination_wait_minutes"),
                format!(
                    "expected 0..=2880 minutes, found {}",
                    d.termination_wait_minutes
                ),
            ));
        }
        if is_prod(spec.tier) && d.strategy == super::file::DeploymentStrategy::AllAtOnce {
            out.push((
                format!("{p}/deployment/strategy"),
                "expected a canary or linear strategy in a prod-tier environment, found all_at_once".into(),
            ));
        }
        database(&lg.database, spec.tier, &format!("{p}/database"), out);
        let a = &lg.alarms;
        percent(a.cpu_percent, &format!("{p}/alarms/cpu_percent"), out);
        percent(a.memory_percent, &format!("{p}/alarms/memory_percent"), out);
        if !(a.latency_seconds > 0.0 && a.latency_seconds <= 60.0) {
            out.push((
                format!("{p}/alarms/latency_seconds"),
                format!(
                    "expected more than 0 and at most 60 seconds, found {}",
                    a.latency_seconds
                ),
            ));
        }
    }

    if let Some(api) = &spec.stacks.analytics_api {
        let p = "/stacks/analytics-api";
        if spec.kubernetes.is_none() {
            out.push((
                p.into(),
                "expected a top-level `kubernetes` section: this stack deploys to a cluster".into(),
            ));
        }
        if spec.stacks.platform.is_none() {
            out.push((
                p.into(),
                "stack analytics-api imports its cluster's network and identities from stack platform, which this environment does not synthesize: add stacks.platform".into(),
            ));
        }
        image(&api.image, spec.tier, &format!("{p}/image"), out);
        let a = &api.autoscaling;
        if !(a.min <= api.replicas && api.replicas <= a.max) {
            out.push((
                format!("{p}/replicas"),
                format!(
                    "expected autoscaling.min <= replicas <= autoscaling.max, found {} <= {} <= {}",
                    a.min, api.replicas, a.max
                ),
            ));
        }
        min_copies(
            a.min,
            "replica",
            spec.tier,
            &format!("{p}/autoscaling/min"),
            out,
        );
        percent(a.cpu_percent, &format!("{p}/autoscaling/cpu_percent"), out);
        percent(
            a.memory_percent,
            &format!("{p}/autoscaling/memory_percent"),
            out,
        );
        if api.rate_limit_rps == 0 {
            out.push((format!("{p}/rate_limit_rps"), "expected at least 1".into()));
        }
        certificate(
            api.certificate_arn.as_deref(),
            spec,
            &format!("{p}/certificate_arn"),
            out,
        );
        if let Some(k) = &spec.kubernetes
            && k.ingress_class == super::file::IngressClassName::Alb
            && api.certificate_arn.is_none()
        {
            out.push((
                format!("{p}/certificate_arn"),
                "expected an ACM certificate ARN: the alb ingress class terminates TLS with ACM"
                    .into(),
            ));
        }
        database(&api.database, spec.tier, &format!("{p}/database"), out);
        if is_prod(spec.tier) && api.cache.nodes < 2 {
            out.push((
                format!("{p}/cache/nodes"),
                format!("expected at least 2 nodes (Multi-AZ failover) in a prod-tier environment, found {}", api.cache.nodes),
            ));
        }
    }
}

/// The platform stack: its VPC CIDR apart from the environment's other VPC, node groups
/// with sane bounds, endpoint CIDRs that parse.
fn platform(spec: &EnvFile, out: &mut Problems) {
    let Some(pl) = &spec.stacks.platform else {
        return;
    };
    let p = "/stacks/platform";
    if spec.kubernetes.is_none() {
        out.push((
            p.into(),
            "expected a top-level `kubernetes` section: its version is the cluster's".into(),
        ));
    }
    match parse_cidr(&pl.vpc_cidr) {
        Ok(net) if !(16..=24).contains(&net.prefix_len()) => out.push((
            format!("{p}/vpc_cidr"),
            format!(
                "expected a prefix length of /16 to /24, found /{}",
                net.prefix_len()
            ),
        )),
        Ok(net) => {
            if let Ok(other) = parse_cidr(&spec.network.vpc_cidr)
                && overlaps(&net, &other)
            {
                out.push((
                    format!("{p}/vpc_cidr"),
                    format!(
                        "{net} overlaps network.vpc_cidr {other}: the VPCs of one environment must not overlap (they could never be peered or routed)"
                    ),
                ));
            }
        }
        Err(m) => out.push((format!("{p}/vpc_cidr"), m)),
    }
    for (i, c) in pl.public_endpoint_cidrs.iter().enumerate() {
        if let Err(m) = parse_cidr(c) {
            out.push((format!("{p}/public_endpoint_cidrs/{i}"), m));
        }
    }
    if is_prod(spec.tier) && pl.nat_gateways != NatGateways::PerAz {
        out.push((
            format!("{p}/nat_gateways"),
            "expected per_az in a prod-tier environment, found single".into(),
        ));
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, ng) in pl.node_groups.iter().enumerate() {
        let ptr = format!("{p}/node_groups/{i}");
        if !names.insert(ng.name.as_str()) {
            out.push((
                format!("{ptr}/name"),
                format!("node group {:?} is named twice", ng.name),
            ));
        }
        if !(ng.min <= ng.desired && ng.desired <= ng.max) || ng.max == 0 {
            out.push((
                ptr.clone(),
                format!(
                    "expected min <= desired <= max and max >= 1, found {} <= {} <= {}",
                    ng.min, ng.desired, ng.max
                ),
            ));
        }
    }
    let nodes: u32 = pl.node_groups.iter().map(|ng| ng.min).sum();
    min_copies(nodes, "node", spec.tier, &format!("{p}/node_groups"), out);
}

/// Whether two networks share any address.
pub(crate) fn overlaps(a: &ipnet::Ipv4Net, b: &ipnet::Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The fewest running copies: at least one, and two in prod (a lost AZ or a deployment must
/// not take the service down).
fn min_copies(min: u32, unit: &str, tier: Tier, ptr: &str, out: &mut Problems) {
    if min < 1 {
        out.push((ptr.into(), format!("expected at least 1 {unit}, found 0")));
    } else if is_prod(tier) && min < 2 {
        out.push((
            ptr.into(),
            format!("expected at least 2 {unit}s in a prod-tier environment, found {min}"),
        ));
    }
}

fn percent(v: u32, ptr: &str, out: &mut Problems) {
    if !(1..=100).contains(&v) {
        out.push((
            ptr.into(),
            format!("expected a percentage 1..=100, found {v}"),
        ));
    }
}

fn retention(days: u32, ptr: &str, out: &mut Problems) {
    if !LOG_RETENTION_DAYS.contains(&days) {
        out.push((
            ptr.into(),
            format!("expected one of the CloudWatch retention periods {LOG_RETENTION_DAYS:?}, found {days}"),
        ));
    }
}

fn image(img: &Image, tier: Tier, ptr: &str, out: &mut Problems) {
    match (&img.tag, &img.digest) {
        (Some(_), Some(_)) | (None, None) => out.push((
            ptr.into(),
            "expected exactly one of `tag` and `digest`".into(),
        )),
        (Some(tag), None) if is_prod(tier) => out.push((
            format!("{ptr}/tag"),
            format!("expected a `digest` in a prod-tier environment (tags are mutable), found tag {tag:?}"),
        )),
        _ => {}
    }
}

fn certificate(arn: Option<&str>, spec: &EnvFile, ptr: &str, out: &mut Problems) {
    let Some(arn) = arn else { return };
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() < 6 {
        out.push((
            ptr.into(),
            format!("expected an ACM certificate ARN, found {arn:?}"),
        ));
        return;
    }
    if parts[3] != spec.region {
        out.push((
            ptr.into(),
            format!(
                "expected a certificate in {} (the ALB's region), found one in {}",
                spec.region, parts[3]
            ),
        ));
    }
    if parts[4] != spec.account_id {
        out.push((
            ptr.into(),
            format!(
                "expected a certificate of account {}, found account {}",
                spec.account_id, parts[4]
            ),
        ));
    }
}

fn fargate_size(cpu: u32, memory: u32, ptr: &str, out: &mut Problems) {
    let allowed: Option<Vec<u32>> = match cpu {
        256 => Some(vec![512, 1024, 2048]),
        512 => Some((1..=4).map(|g| g * 1024).collect()),
        1024 => Some((2..=8).map(|g| g * 1024).collect()),
        2048 => Some((4..=16).map(|g| g * 1024).collect()),
        4096 => Some((8..=30).map(|g| g * 1024).collect()),
        _ => None,
    };
    match allowed {
        None => out.push((
            format!("{ptr}/cpu"),
            format!("expected a Fargate CPU size (256, 512, 1024, 2048, 4096), found {cpu}"),
        )),
        Some(list) if !list.contains(&memory) => out.push((
            format!("{ptr}/memory_mib"),
            format!(
                "expected a memory size Fargate allows with {cpu} CPU units ({}..={} MiB in 1024 MiB steps), found {memory}",
                list[0],
                list[list.len() - 1]
            ),
        )),
        Some(_) => {}
    }
}

fn database(db: &Database, tier: Tier, ptr: &str, out: &mut Problems) {
    if is_prod(tier) {
        if !db.multi_az {
            out.push((
                format!("{ptr}/multi_az"),
                "expected true in a prod-tier environment, found false".into(),
            ));
        }
        if !db.deletion_protection {
            out.push((
                format!("{ptr}/deletion_protection"),
                "expected true in a prod-tier environment, found false".into(),
            ));
        }
        if db.backup_retention_days < 7 {
            out.push((
                format!("{ptr}/backup_retention_days"),
                format!(
                    "expected at least 7 days in a prod-tier environment, found {}",
                    db.backup_retention_days
                ),
            ));
        }
    }
}
