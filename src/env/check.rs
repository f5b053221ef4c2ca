//! Semantic checks that a JSON Schema cannot express: CIDR arithmetic, ordering of bounds,
//! per-region limits, and the stricter policy of the prod tier.

use super::file::{Database, EnvFile, Image, NatGateways, PlainHttp, Tier};
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

    tier_of_name(spec, out);
    if is_prod(spec.tier) {
        for (key, on) in [
            ("encrypt", spec.state.encrypt),
            ("use_lockfile", spec.state.use_lockfile),
        ] {
            if !on {
                out.push((
                    format!("/state/{key}"),
                    "expected true in a prod-tier environment (state holds secrets and must not be written by two applies at once), found false".into(),
                ));
            }
        }
    }
    principals(spec, out);
    super::names::tags(&spec.tags, RESERVED_TAGS, "/tags", out);
    if let Some(kube) = &spec.kubernetes {
        let ptr = "/kubernetes/service_monitor_labels";
        super::names::labels(&kube.service_monitor_labels, ptr, out);
        match super::kubernetes_support::today() {
            Ok(today) => {
                let support =
                    super::kubernetes_support::problem(&kube.version, kube.support, today);
                if let Some(m) = support {
                    out.push(("/kubernetes/version".into(), m));
                }
            }
            Err(m) => out.push(("/kubernetes/version".into(), m)),
        }
    }

    crate::stacks::check_settings(spec, out);
}

/// An environment named after a tier (`prod`, or `prod-…`) has that tier: otherwise
/// `tier: staging` in `prod.yaml` would turn every prod rule off.
fn tier_of_name(spec: &EnvFile, out: &mut Problems) {
    let named = [Tier::Dev, Tier::Staging, Tier::Prod]
        .into_iter()
        .find(|t| {
            let word = tier_word(*t);
            spec.name == word || spec.name.starts_with(&format!("{word}-"))
        });
    if let Some(t) = named
        && t != spec.tier
    {
        out.push((
            "/tier".into(),
            format!(
                "expected {} for the environment named {} (the name says which policy applies), found {}",
                tier_word(t),
                spec.name,
                tier_word(spec.tier)
            ),
        ));
    }
}

fn tier_word(t: Tier) -> &'static str {
    match t {
        Tier::Dev => "dev",
        Tier::Staging => "staging",
        Tier::Prod => "prod",
    }
}

/// Every IAM principal ARN anywhere in the file (`arn:…:iam::<account>:…` or `sts`) belongs
/// to the environment's account or to one of its `trusted_accounts`.
fn principals(spec: &EnvFile, out: &mut Problems) {
    fn walk(v: &serde_json::Value, pointer: &mut String, spec: &EnvFile, out: &mut Problems) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                    walk(x, pointer, spec, out);
                    pointer.truncate(len);
                }
            }
            serde_json::Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    let len = pointer.len();
                    pointer.push_str(&format!("/{i}"));
                    walk(x, pointer, spec, out);
                    pointer.truncate(len);
                }
            }
            serde_json::Value::String(s) => {
                let parts: Vec<&str> = s.splitn(6, ':').collect();
                if let ["arn", _, "iam" | "sts", _, account, _] = parts.as_slice()
                    && account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit())
                    && *account != spec.account_id
                    && !spec.trusted_accounts.iter().any(|t| t == account)
                {
                    out.push((
                        pointer.clone(),
                        format!(
                            "expected a principal of account {} (account_id) or of an account listed in `trusted_accounts`, found account {account}",
                            spec.account_id
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    // The file's own shape serializes back to the keys it was read from.
    if let Ok(value) = serde_json::to_value(spec) {
        walk(&value, &mut String::new(), spec, out);
    }
}

/// Environments (by index into `backends`: name, bucket, key prefix) whose Terraform state
/// would be the same S3 objects, each pair once.
pub(crate) fn shared_backends(backends: &[(String, String, String)]) -> Vec<(usize, usize)> {
    let key = |(_, bucket, prefix): &(String, String, String)| {
        (bucket.clone(), prefix.trim_end_matches('/').to_owned())
    };
    let mut out = Vec::new();
    for (i, a) in backends.iter().enumerate() {
        for (j, b) in backends.iter().enumerate().skip(i + 1) {
            if key(a) == key(b) {
                out.push((i, j));
            }
        }
    }
    out
}

/// Tags keel sets on every resource itself ([`super::Env::default_tags`]).
const RESERVED_TAGS: &[&str] = &["Environment", "Stack", "ManagedBy"];

/// Whether two networks share any address.
pub(crate) fn overlaps(a: &ipnet::Ipv4Net, b: &ipnet::Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The fewest running copies: at least one, and two in prod (a lost AZ or a deployment must
/// not take the service down).
pub(crate) fn min_copies(min: u32, unit: &str, tier: Tier, ptr: &str, out: &mut Problems) {
    if min < 1 {
        out.push((ptr.into(), format!("expected at least 1 {unit}, found 0")));
    } else if is_prod(tier) && min < 2 {
        out.push((
            ptr.into(),
            format!("expected at least 2 {unit}s in a prod-tier environment, found {min}"),
        ));
    }
}

pub(crate) fn percent(v: u32, ptr: &str, out: &mut Problems) {
    if !(1..=100).contains(&v) {
        out.push((
            ptr.into(),
            format!("expected a percentage 1..=100, found {v}"),
        ));
    }
}

pub(crate) fn retention(days: u32, ptr: &str, out: &mut Problems) {
    if !LOG_RETENTION_DAYS.contains(&days) {
        out.push((
            ptr.into(),
            format!("expected one of the CloudWatch retention periods {LOG_RETENTION_DAYS:?}, found {days}"),
        ));
    }
}

/// Checks an image pin: exactly one of tag and digest (a digest in prod), and the one rule
/// of where images may come from: `own`, the ECR repository the stack creates (by name), or
/// a registry the environment file allow-lists in `image_registries`.
pub(crate) fn image(img: &Image, spec: &EnvFile, own: &str, ptr: &str, out: &mut Problems) {
    let expected = spec.ecr_repository_url(own);
    if img.repository != expected && !spec.allows_registry_of(&img.repository) {
        let allowed = if spec.image_registries.is_empty() {
            "none listed".to_owned()
        } else {
            spec.image_registries.join(", ")
        };
        out.push((
            format!("{ptr}/repository"),
            format!(
                "expected the repository this stack creates, {expected}, or one under a registry of `image_registries` ({allowed}), found {}",
                img.repository
            ),
        ));
    }
    match (&img.tag, &img.digest) {
        (Some(_), Some(_)) | (None, None) => out.push((
            ptr.into(),
            "expected exactly one of `tag` and `digest`".into(),
        )),
        (Some(tag), None) if is_prod(spec.tier) => out.push((
            format!("{ptr}/tag"),
            format!("expected a `digest` in a prod-tier environment (tags are mutable), found tag {tag:?}"),
        )),
        _ => {}
    }
}

/// The listener choice of a stack with a load balancer at `ptr` (its settings): a
/// certificate, or a stated `plain_http` (never both), and a certificate in prod.
pub(crate) fn plain_http(
    certificate_arn: Option<&str>,
    plain_http: Option<PlainHttp>,
    spec: &EnvFile,
    ptr: &str,
    out: &mut Problems,
) {
    match (certificate_arn, plain_http) {
        (Some(_), Some(_)) => out.push((
            format!("{ptr}/plain_http"),
            "expected no plain_http beside certificate_arn: the load balancer serves HTTPS".into(),
        )),
        (None, _) if is_prod(spec.tier) => out.push((
            ptr.into(),
            "expected certificate_arn (an ACM certificate) in a prod-tier environment: the load balancer serves HTTPS only".into(),
        )),
        (None, None) => out.push((
            ptr.into(),
            "expected certificate_arn, or plain_http (internal or internet_facing) saying who may reach the load balancer over plain HTTP".into(),
        )),
        _ => {}
    }
}

pub(crate) fn certificate(arn: Option<&str>, spec: &EnvFile, ptr: &str, out: &mut Problems) {
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

pub(crate) fn fargate_size(cpu: u32, memory: u32, ptr: &str, out: &mut Problems) {
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

pub(crate) fn database(db: &Database, tier: Tier, ptr: &str, out: &mut Problems) {
    use crate::construct::rds;
    if let Err(e) = rds::EngineVersion::of(db) {
        out.push((format!("{ptr}/engine_major_version"), e));
    }
    if rds::max_connections(db.engine, &db.instance_class).is_none() {
        out.push((
            format!("{ptr}/instance_class"),
            rds::unknown_class(&db.instance_class),
        ));
    } else if !rds::performance_insights_supported(db.engine, &db.instance_class) {
        out.push((
            format!("{ptr}/instance_class"),
            rds::no_performance_insights(db.engine, &db.instance_class),
        ));
    }
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
