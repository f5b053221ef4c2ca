//! Monthly cost estimate of a stack's Terraform: each resource priced from the dated table
//! in [`prices`] (on-demand list prices, 730 hours a month), free, usage-based (not
//! estimated), or unpriced with the reason. A type or class the table does not know is
//! *unpriced*, never zero.
//!
//! The same estimate feeds the stack page (`render::readme`) and `keel diff` (the change per
//! stack), so the page and the PR comment agree. **Invariant:** pure; no I/O.

pub mod prices;

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;
use serde_json::Value;

use prices::{HOURS_PER_MONTH, RegionPrices};

/// How one resource is counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "pricing")]
pub enum Pricing {
    /// A monthly amount from the table.
    Monthly {
        /// US dollars per month.
        usd: f64,
        /// What was multiplied (`2 tasks × (1 vCPU, 2 GB) Fargate x86 × 730 h`).
        basis: String,
    },
    /// AWS charges nothing for the resource itself.
    Free,
    /// Charged only by use (requests, GB stored or processed), which the model cannot know.
    Usage {
        /// What is charged.
        what: &'static str,
    },
    /// Not in the table, or a value the estimate cannot read (an expression).
    Unpriced {
        /// Why.
        why: String,
    },
}

/// One resource of the estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// Terraform address.
    pub address: String,
    /// How it is counted.
    #[serde(flatten)]
    pub pricing: Pricing,
}

/// The estimate of one stack.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// Region of the stack's provider.
    pub region: String,
    /// Every resource, by address.
    pub lines: Vec<Line>,
}

/// A resource of a stack: type, name, body as in the Terraform JSON.
pub type Resource<'a> = (&'a str, &'a str, &'a Value);

impl Estimate {
    /// Prices `resources` (every `resource` block of one root) in `region`.
    pub fn of(region: &str, resources: &[Resource<'_>]) -> Estimate {
        let index: BTreeMap<(&str, &str), &Value> =
            resources.iter().map(|(t, n, b)| ((*t, *n), *b)).collect();
        let table = prices::region(region);
        let mut lines: Vec<Line> = resources
            .iter()
            .map(|(rtype, name, body)| Line {
                address: format!("{rtype}.{name}"),
                pricing: price(table, region, rtype, body, &index),
            })
            .collect();
        lines.sort_by(|a, b| a.address.cmp(&b.address));
        Estimate {
            region: region.to_owned(),
            lines,
        }
    }

    /// The estimate of a stack's Terraform model.
    pub fn of_config(tf: &crate::tf::Config) -> Estimate {
        let resources: Vec<Resource<'_>> = tf
            .blocks()
            .filter(|(r, _)| r.kind() == crate::refs::BlockKind::Resource)
            .map(|(r, body)| (r.ty(), r.name(), body))
            .collect();
        Estimate::of(tf.region(), &resources)
    }

    /// The estimate of a stack's parsed files (see [`crate::diff::parse`]); `None` when they
    /// hold no Terraform resource.
    pub fn of_parsed(parsed: &crate::diff::Parsed) -> Option<Estimate> {
        let mut region = String::new();
        let mut resources = Vec::new();
        for (address, object) in &parsed.objects {
            if object.kind != crate::diff::Kind::Terraform {
                continue;
            }
            if address == "provider.aws" {
                region = object.body["region"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
            } else if let Some(name) = address
                .strip_prefix(object.rtype.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .filter(|_| object.rtype.starts_with("aws_"))
            {
                resources.push((object.rtype.as_str(), name, &object.body));
            }
        }
        (!resources.is_empty()).then(|| Estimate::of(&region, &resources))
    }

    /// Sum of the priced lines, US dollars per month.
    pub fn monthly_usd(&self) -> f64 {
        self.lines
            .iter()
            .map(|l| match l.pricing {
                Pricing::Monthly { usd, .. } => usd,
                _ => 0.0,
            })
            .sum()
    }

    /// Lines that are unpriced.
    pub fn unpriced(&self) -> Vec<&Line> {
        self.lines
            .iter()
            .filter(|l| matches!(l.pricing, Pricing::Unpriced { .. }))
            .collect()
    }

    /// Lines charged by use only.
    pub fn usage(&self) -> Vec<&Line> {
        self.lines
            .iter()
            .filter(|l| matches!(l.pricing, Pricing::Usage { .. }))
            .collect()
    }

    /// One line: `$1,234.56/month (us-east-1; 3 usage-based, 1 unpriced)`.
    pub fn summary(&self) -> String {
        let mut extra = vec![self.region.clone()];
        let (usage, unpriced) = (self.usage().len(), self.unpriced().len());
        if usage > 0 {
            extra.push(format!("{usage} usage-based not estimated"));
        }
        if unpriced > 0 {
            extra.push(format!("{unpriced} unpriced"));
        }
        format!("{}/month ({})", usd(self.monthly_usd()), extra.join("; "))
    }

    /// The stack page's section (Markdown).
    pub fn markdown(&self) -> String {
        let mut out = String::from("## Monthly cost estimate\n\n");
        let _ = writeln!(
            out,
            "**{} per month** in {}: on-demand list prices of {} ({} h a month, no free tier, reservations or savings plans), from the table in `src/cost/prices.rs`. `keel diff` shows how a change moves it.\n",
            usd(self.monthly_usd()),
            self.region,
            prices::PRICES_AS_OF,
            HOURS_PER_MONTH
        );
        // Lines of one type and basis (alarms, secrets, addresses) share a row.
        let mut rows: BTreeMap<(&str, &str), (Vec<&str>, f64)> = BTreeMap::new();
        for l in &self.lines {
            if let Pricing::Monthly { usd, basis } = &l.pricing {
                let rtype = l.address.split('.').next().unwrap_or_default();
                let row = rows.entry((rtype, basis.as_str())).or_default();
                row.0.push(&l.address);
                row.1 += usd;
            }
        }
        if !rows.is_empty() {
            out.push_str("| resource | basis | per month |\n|---|---|---:|\n");
            for ((rtype, basis), (addresses, amount)) in rows {
                let what = match addresses.as_slice() {
                    [one] => format!("`{one}`"),
                    many => format!("{} × `{rtype}`", many.len()),
                };
                let _ = writeln!(out, "| {what} | {basis} | {} |", usd(amount));
            }
            out.push('\n');
        }
        let usage = self.usage();
        if !usage.is_empty() {
            let mut by_what: BTreeMap<&str, usize> = BTreeMap::new();
            for l in usage {
                if let Pricing::Usage { what } = l.pricing {
                    *by_what.entry(what).or_default() += 1;
                }
            }
            out.push_str("Charged by use, not estimated: ");
            let parts: Vec<String> = by_what
                .iter()
                .map(|(what, n)| format!("{what} ({n})"))
                .collect();
            let _ = writeln!(out, "{}.\n", parts.join("; "));
        }
        let unpriced = self.unpriced();
        if !unpriced.is_empty() {
            out.push_str("**Unpriced** (not in the price table; not counted above):\n\n");
            for l in unpriced {
                if let Pricing::Unpriced { why } = &l.pricing {
                    let _ = writeln!(out, "- `{}`: {why}", l.address);
                }
            }
            out.push('\n');
        }
        let free = self
            .lines
            .iter()
            .filter(|l| l.pricing == Pricing::Free)
            .count();
        let _ = writeln!(
            out,
            "{free} resources carry no charge of their own (IAM, security groups, subnets, routes, parameters, ...).\n"
        );
        out
    }
}

/// The estimate of a stack before and after a change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// US dollars per month before (0 when the stack is new).
    pub before_usd: f64,
    /// US dollars per month after (0 when the stack is removed).
    pub after_usd: f64,
    /// Unpriced resources before and after.
    pub unpriced: (usize, usize),
    /// The lines whose monthly amount changed: address, before, after.
    pub lines: Vec<(String, Option<f64>, Option<f64>)>,
}

impl Change {
    /// Compares two estimates of a stack; `None` when neither side has one.
    pub fn between(before: Option<&Estimate>, after: Option<&Estimate>) -> Option<Change> {
        if before.is_none() && after.is_none() {
            return None;
        }
        let amounts = |e: Option<&Estimate>| -> BTreeMap<String, f64> {
            e.map(|e| {
                e.lines
                    .iter()
                    .filter_map(|l| match l.pricing {
                        Pricing::Monthly { usd, .. } => Some((l.address.clone(), usd)),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
        };
        let (b, a) = (amounts(before), amounts(after));
        let mut addresses: Vec<&String> = b.keys().chain(a.keys()).collect();
        addresses.sort();
        addresses.dedup();
        let lines = addresses
            .into_iter()
            .filter(|k| cents(b.get(*k).copied()) != cents(a.get(*k).copied()))
            .map(|k| (k.clone(), b.get(k).copied(), a.get(k).copied()))
            .collect();
        Some(Change {
            before_usd: before.map_or(0.0, Estimate::monthly_usd),
            after_usd: after.map_or(0.0, Estimate::monthly_usd),
            unpriced: (
                before.map_or(0, |e| e.unpriced().len()),
                after.map_or(0, |e| e.unpriced().len()),
            ),
            lines,
        })
    }

    /// Whether the estimate moves (by a cent or more) or the unpriced count changes.
    pub fn is_change(&self) -> bool {
        cents(Some(self.before_usd)) != cents(Some(self.after_usd))
            || self.unpriced.0 != self.unpriced.1
    }

    /// `$120.00 -> $240.00/month (+$120.00)`, plus the unpriced counts when they differ.
    pub fn summary(&self) -> String {
        let delta = self.after_usd - self.before_usd;
        let sign = if delta < 0.0 { "-" } else { "+" };
        let mut s = format!(
            "{} -> {}/month ({sign}{})",
            usd(self.before_usd),
            usd(self.after_usd),
            usd(delta.abs())
        );
        if self.unpriced.0 != self.unpriced.1 {
            let _ = write!(
                s,
                "; unpriced resources {} -> {}",
                self.unpriced.0, self.unpriced.1
            );
        }
        s
    }
}

fn cents(v: Option<f64>) -> Option<i64> {
    // Amounts are well below 2^53 cents, so the cast is exact after rounding.
    v.map(|v| (v * 100.0).round() as i64)
}

/// `$1,234.56`.
pub fn usd(amount: f64) -> String {
    let cents = (amount * 100.0).round() as i64;
    let (whole, frac) = (cents / 100, cents % 100);
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("${grouped}.{frac:02}")
}

/// Types AWS does not charge for by themselves.
const FREE: &[&str] = &[
    "aws_appautoscaling_policy",
    "aws_appautoscaling_target",
    "aws_cloudwatch_log_resource_policy",
    "aws_codebuild_webhook",
    "aws_codeconnections_connection",
    "aws_codedeploy_app",
    "aws_codedeploy_deployment_config",
    "aws_codedeploy_deployment_group",
    "aws_db_parameter_group",
    "aws_db_subnet_group",
    "aws_default_security_group",
    "aws_ecr_lifecycle_policy",
    "aws_ecs_cluster",
    "aws_ecs_task_definition",
    "aws_eks_access_entry",
    "aws_eks_access_policy_association",
    "aws_eks_addon",
    "aws_elasticache_parameter_group",
    "aws_elasticache_subnet_group",
    "aws_iam_openid_connect_provider",
    "aws_iam_policy",
    "aws_iam_role",
    "aws_iam_role_policy",
    "aws_iam_role_policy_attachment",
    "aws_internet_gateway",
    "aws_kms_alias",
    "aws_launch_template",
    "aws_lb_listener",
    "aws_lb_listener_rule",
    "aws_lb_target_group",
    "aws_route",
    "aws_route_table",
    "aws_route_table_association",
    "aws_s3_bucket_lifecycle_configuration",
    "aws_s3_bucket_logging",
    "aws_s3_bucket_ownership_controls",
    "aws_s3_bucket_policy",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_versioning",
    "aws_secretsmanager_secret_version",
    "aws_security_group",
    "aws_sns_topic_subscription",
    "aws_ssm_parameter",
    "aws_subnet",
    "aws_vpc",
    "aws_vpc_security_group_egress_rule",
    "aws_vpc_security_group_ingress_rule",
    "aws_wafv2_web_acl_association",
];

/// Types charged only by use, and what is charged.
const USAGE: &[(&str, &str)] = &[
    (
        "aws_cloudwatch_log_group",
        "CloudWatch Logs ingestion and storage per GB",
    ),
    ("aws_codebuild_project", "CodeBuild build minutes"),
    ("aws_ecr_repository", "ECR storage per GB"),
    ("aws_flow_log", "flow log delivery per GB"),
    ("aws_s3_bucket", "S3 storage and requests"),
    ("aws_sns_topic", "SNS publishes and deliveries"),
    (
        "aws_wafv2_web_acl_logging_configuration",
        "WAF log delivery per GB (vended logs)",
    ),
];

fn price(
    table: Option<&RegionPrices>,
    region: &str,
    rtype: &str,
    body: &Value,
    index: &BTreeMap<(&str, &str), &Value>,
) -> Pricing {
    if FREE.contains(&rtype) {
        return Pricing::Free;
    }
    if let Some((_, what)) = USAGE.iter().find(|(t, _)| *t == rtype) {
        return Pricing::Usage { what };
    }
    if rtype == "aws_vpc_endpoint" && body["vpc_endpoint_type"].as_str() == Some("Gateway") {
        return Pricing::Free;
    }
    let Some(p) = table else {
        return Pricing::Unpriced {
            why: format!(
                "the price table has no rates for region {region:?} (it has {})",
                prices::REGIONS
                    .iter()
                    .map(|r| r.region)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
    };
    match priced(p, rtype, body, index) {
        Ok(Some((usd, basis))) => Pricing::Monthly { usd, basis },
        Ok(None) => Pricing::Unpriced {
            why: format!("{rtype} is not in the price table"),
        },
        Err(why) => Pricing::Unpriced { why },
    }
}

/// Hourly rate × 730, with the basis text.
fn hourly(rate: f64, what: String) -> (f64, String) {
    (
        rate * HOURS_PER_MONTH,
        format!("{what} × ${rate}/h × {HOURS_PER_MONTH} h"),
    )
}

/// An EKS control plane: at the extended-support rate when the cluster opted in to it
/// (`upgrade_policy.support_type = EXTENDED`), else at the standard rate. AWS bills the
/// extended rate only while the version is past standard support; the estimate does not
/// depend on the date, so an opted-in cluster counts at that rate (an environment opts in
/// for a version that needs it, see [`crate::env::kubernetes_support`]).
fn eks_cluster(p: &RegionPrices, body: &Value) -> (f64, String) {
    if body
        .pointer("/upgrade_policy/0/support_type")
        .and_then(Value::as_str)
        == Some("EXTENDED")
    {
        hourly(
            p.eks_cluster_extended_hourly,
            "1 EKS control plane in extended support".into(),
        )
    } else {
        hourly(p.eks_cluster_hourly, "1 EKS control plane".into())
    }
}

/// `Ok(None)`: type not in the table; `Err`: in the table, but a value is unknown.
fn priced(
    p: &RegionPrices,
    rtype: &str,
    body: &Value,
    index: &BTreeMap<(&str, &str), &Value>,
) -> Result<Option<(f64, String)>, String> {
    Ok(Some(match rtype {
        "aws_nat_gateway" => {
            if body["connectivity_type"].as_str() == Some("private") {
                hourly(p.nat_gateway_hourly, "1 private NAT gateway".into())
            } else {
                let (usd, basis) = hourly(p.nat_gateway_hourly, "1 NAT gateway".into());
                (usd, format!("{basis} (+ data processed, by use)"))
            }
        }
        "aws_eip" => hourly(p.public_ipv4_hourly, "1 public IPv4 address".into()),
        "aws_lb" => {
            let (rate, kind) = match body["load_balancer_type"].as_str().unwrap_or("application") {
                "application" => (p.alb_hourly, "ALB"),
                "network" => (p.nlb_hourly, "NLB"),
                other => return Err(format!("load balancer type {other:?} is not in the table")),
            };
            let (usd, basis) = hourly(rate, format!("1 {kind}"));
            (usd, format!("{basis} (+ capacity units, by use)"))
        }
        "aws_eks_cluster" => eks_cluster(p, body),
        "aws_eks_node_group" => node_group(p, body, index)?,
        "aws_ecs_service" => fargate_service(p, body, index)?,
        "aws_db_instance" => rds(p, body)?,
        "aws_elasticache_replication_group" => elasticache(p, body)?,
        "aws_kms_key" => (p.kms_key_month, format!("1 KMS key × ${}", p.kms_key_month)),
        "aws_secretsmanager_secret" => (
            p.secret_month,
            format!("1 secret × ${} (+ API calls, by use)", p.secret_month),
        ),
        "aws_cloudwatch_metric_alarm" => (
            p.metric_alarm_month,
            format!("1 standard alarm × ${}", p.metric_alarm_month),
        ),
        "aws_cloudwatch_composite_alarm" => (
            p.composite_alarm_month,
            format!("1 composite alarm × ${}", p.composite_alarm_month),
        ),
        "aws_cloudwatch_dashboard" => (
            p.dashboard_month,
            format!("1 dashboard × ${}", p.dashboard_month),
        ),
        "aws_vpc_endpoint" => {
            let azs = body["subnet_ids"].as_array().map_or(0, Vec::len);
            if azs == 0 {
                return Err("interface endpoint with no literal subnet_ids list".into());
            }
            hourly(
                p.interface_endpoint_az_hourly * azs as f64,
                format!("1 interface endpoint in {azs} AZ(s)"),
            )
        }
        "aws_wafv2_web_acl" => {
            let rules = body["rule"].as_array().map_or(0, Vec::len);
            (
                p.waf_web_acl_month + p.waf_rule_month * rules as f64,
                format!(
                    "1 web ACL × ${} + {rules} rule(s) × ${} (+ requests, by use)",
                    p.waf_web_acl_month, p.waf_rule_month
                ),
            )
        }
        _ => return Ok(None),
    }))
}

/// A number, literal or in a string (`"1024"`); an expression is an error naming `key`.
fn number(body: &Value, key: &str) -> Result<f64, String> {
    match &body[key] {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("{key} is not a number")),
        Value::String(s) => s
            .parse()
            .map_err(|_| format!("{key} is an expression, not a literal")),
        Value::Null => Err(format!("{key} is not set")),
        _ => Err(format!("{key} is not a number")),
    }
}

/// The body of the resource a `${TYPE.NAME.attr}` reference names (in the model's or in
/// the rendered form).
fn referenced<'a>(value: &Value, index: &BTreeMap<(&str, &str), &'a Value>) -> Option<&'a Value> {
    // The model holds references in `refs`' in-memory form; the files in `${...}`.
    let text = value.as_str()?;
    let model = crate::refs::references(text);
    let inner = match model.as_slice() {
        [one] => one.as_str(),
        _ => text.strip_prefix("${")?.strip_suffix('}')?,
    };
    let mut parts = inner.split('.');
    let (ty, name) = (parts.next()?, parts.next()?);
    index.get(&(ty, name)).copied()
}

fn node_group(
    p: &RegionPrices,
    body: &Value,
    index: &BTreeMap<(&str, &str), &Value>,
) -> Result<(f64, String), String> {
    let nodes = number(&body["scaling_config"][0], "desired_size")
        .map_err(|e| format!("scaling_config.{e}"))?;
    let types = body["instance_types"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let first = match types.first().and_then(Value::as_str) {
        Some(t) => t,
        None if body["instance_types"].is_null() => "t3.medium",
        None => return Err("instance_types is not a literal list".into()),
    };
    let rate = prices::lookup(p.ec2_hourly, first)
        .ok_or_else(|| format!("instance type {first} is not in the price table"))?;
    let spot = body["capacity_type"].as_str() == Some("SPOT");
    let mut usd = nodes * rate * HOURS_PER_MONTH;
    let mut basis = format!(
        "{nodes} × {first}{} × ${rate}/h × {HOURS_PER_MONTH} h",
        if spot {
            " (spot, at most on-demand)"
        } else {
            ""
        }
    );
    // Root volumes from the launch template, one per node.
    if let Some(lt) = referenced(&body["launch_template"][0]["id"], index)
        && let Some(ebs) = lt["block_device_mappings"][0]["ebs"].get(0)
        && let Ok(gb) = number(ebs, "volume_size")
    {
        if ebs["volume_type"].as_str().unwrap_or("gp3") != "gp3" {
            return Err("node volume type other than gp3 is not in the price table".into());
        }
        usd += nodes * gb * p.ebs_gp3_gb_month;
        let _ = write!(
            basis,
            " + {nodes} × {gb} GB gp3 × ${}/GB",
            p.ebs_gp3_gb_month
        );
    }
    Ok((usd, basis))
}

fn fargate_service(
    p: &RegionPrices,
    body: &Value,
    index: &BTreeMap<(&str, &str), &Value>,
) -> Result<(f64, String), String> {
    let launch = body["launch_type"].as_str().unwrap_or("FARGATE");
    if launch != "FARGATE" {
        return Err(format!(
            "launch type {launch}: the instances are priced where they are defined"
        ));
    }
    let tasks = number(body, "desired_count")?;
    let task = referenced(&body["task_definition"], index)
        .ok_or("task_definition does not reference a task definition of the stack")?;
    let vcpu = number(task, "cpu")? / 1024.0;
    let gb = number(task, "memory")? / 1024.0;
    let arm = task["runtime_platform"][0]["cpu_architecture"].as_str() == Some("ARM64");
    let (per_vcpu, per_gb) = if arm { p.fargate_arm } else { p.fargate_x86 };
    let rate = vcpu * per_vcpu + gb * per_gb;
    Ok((
        tasks * rate * HOURS_PER_MONTH,
        format!(
            "{tasks} task(s) × ({vcpu} vCPU × ${per_vcpu} + {gb} GB × ${per_gb})/h Fargate {} × {HOURS_PER_MONTH} h",
            if arm { "ARM" } else { "x86" }
        ),
    ))
}

fn rds(p: &RegionPrices, body: &Value) -> Result<(f64, String), String> {
    let engine = body["engine"].as_str().unwrap_or_default();
    let table = match engine {
        "postgres" => p.rds_postgres_hourly,
        "mysql" => p.rds_mysql_hourly,
        _ => return Err(format!("engine {engine:?} is not in the price table")),
    };
    let class = body["instance_class"]
        .as_str()
        .ok_or("instance_class is not set")?;
    let rate = prices::lookup(table, class)
        .ok_or_else(|| format!("instance class {class} ({engine}) is not in the price table"))?;
    let copies = if body["multi_az"].as_bool() == Some(true) {
        2.0
    } else {
        1.0
    };
    let storage_type = body["storage_type"].as_str().unwrap_or("gp2");
    if storage_type != "gp3" {
        return Err(format!(
            "storage type {storage_type} is not in the price table"
        ));
    }
    let gb = number(body, "allocated_storage")?;
    let az = if copies > 1.0 {
        "Multi-AZ"
    } else {
        "single-AZ"
    };
    Ok((
        copies * (rate * HOURS_PER_MONTH + gb * p.rds_gp3_gb_month),
        format!(
            "{class} {az}: {copies} × (${rate}/h × {HOURS_PER_MONTH} h + {gb} GB gp3 × ${}/GB)",
            p.rds_gp3_gb_month
        ),
    ))
}

fn elasticache(p: &RegionPrices, body: &Value) -> Result<(f64, String), String> {
    let node = body["node_type"].as_str().ok_or("node_type is not set")?;
    let rate = prices::lookup(p.elasticache_hourly, node)
        .ok_or_else(|| format!("node type {node} is not in the price table"))?;
    let nodes = if body.get("num_cache_clusters").is_some() {
        number(body, "num_cache_clusters")?
    } else if body.get("num_node_groups").is_some() {
        number(body, "num_node_groups")?
            * (1.0 + number(body, "replicas_per_node_group").unwrap_or(0.0))
    } else {
        1.0
    };
    Ok((
        nodes * rate * HOURS_PER_MONTH,
        format!("{nodes} × {node} × ${rate}/h × {HOURS_PER_MONTH} h"),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn one(rtype: &str, body: Value) -> Pricing {
        let e = Estimate::of("us-east-1", &[(rtype, "x", &body)]);
        e.lines[0].pricing.clone()
    }

    fn monthly(p: &Pricing) -> f64 {
        match p {
            Pricing::Monthly { usd, .. } => *usd,
            other => panic!("not priced: {other:?}"),
        }
    }

    #[test]
    fn an_unknown_type_is_unpriced_never_zero() {
        let p = one("aws_mq_broker", json!({}));
        assert_eq!(
            p,
            Pricing::Unpriced {
                why: "aws_mq_broker is not in the price table".into()
            }
        );
        let e = Estimate::of("us-east-1", &[("aws_mq_broker", "b", &json!({}))]);
        assert_eq!(e.unpriced().len(), 1);
        assert!(e.summary().contains("1 unpriced"), "{}", e.summary());
    }

    #[test]
    fn an_unknown_class_or_region_is_unpriced() {
        let db = json!({"engine": "postgres", "instance_class": "db.x2iedn.large",
                        "storage_type": "gp3", "allocated_storage": 20});
        assert!(
            matches!(one("aws_db_instance", db.clone()), Pricing::Unpriced { why } if why.contains("db.x2iedn.large"))
        );
        let e = Estimate::of("eu-west-1", &[("aws_nat_gateway", "a", &json!({}))]);
        assert!(
            matches!(&e.lines[0].pricing, Pricing::Unpriced { why } if why.contains("eu-west-1"))
        );
        // A free type stays free in any region.
        let e = Estimate::of("eu-west-1", &[("aws_subnet", "a", &json!({}))]);
        assert_eq!(e.lines[0].pricing, Pricing::Free);
    }

    #[test]
    fn rds_is_instance_hours_plus_storage_doubled_for_multi_az() {
        let single = json!({"engine": "postgres", "instance_class": "db.r6g.large",
                            "storage_type": "gp3", "allocated_storage": 100, "multi_az": false});
        let usd = monthly(&one("aws_db_instance", single.clone()));
        assert!(
            (usd - (0.225 * 730.0 + 100.0 * 0.115)).abs() < 1e-9,
            "{usd}"
        );
        let mut multi = single;
        multi["multi_az"] = json!(true);
        assert!((monthly(&one("aws_db_instance", multi)) - 2.0 * usd).abs() < 1e-9);
    }

    #[test]
    fn mysql_has_its_own_rates_and_an_unknown_engine_is_unpriced() {
        let db = json!({"engine": "mysql", "instance_class": "db.r6g.large",
                        "storage_type": "gp3", "allocated_storage": 100, "multi_az": false});
        let usd = monthly(&one("aws_db_instance", db.clone()));
        assert!(
            (usd - (0.215 * 730.0 + 100.0 * 0.115)).abs() < 1e-9,
            "{usd}"
        );
        let mut other = db;
        other["engine"] = json!("oracle-ee");
        assert!(
            matches!(one("aws_db_instance", other), Pricing::Unpriced { why } if why.contains("oracle-ee"))
        );
    }

    #[test]
    fn fargate_follows_the_task_definition_and_desired_count() {
        let task = json!({"cpu": "1024", "memory": "2048"});
        let service = json!({"desired_count": 2, "launch_type": "FARGATE",
                             "task_definition": "${aws_ecs_task_definition.app.arn}"});
        let e = Estimate::of(
            "us-east-1",
            &[
                ("aws_ecs_service", "app", &service),
                ("aws_ecs_task_definition", "app", &task),
            ],
        );
        let expected = 2.0 * (0.04048 + 2.0 * 0.004445) * 730.0;
        assert!(
            (e.monthly_usd() - expected).abs() < 1e-9,
            "{}",
            e.monthly_usd()
        );
        // An expression for the count is unpriced, with the key named.
        let service = json!({"desired_count": "${var.n}",
                             "task_definition": "${aws_ecs_task_definition.app.arn}"});
        let e = Estimate::of(
            "us-east-1",
            &[
                ("aws_ecs_service", "app", &service),
                ("aws_ecs_task_definition", "app", &task),
            ],
        );
        assert!(
            matches!(&e.lines[0].pricing, Pricing::Unpriced { why } if why.contains("desired_count"))
        );
    }

    #[test]
    fn node_groups_count_nodes_and_their_root_volumes() {
        let lt = json!({"block_device_mappings": [{"ebs": [{"volume_size": 100, "volume_type": "gp3"}]}]});
        let ng = json!({"instance_types": ["m6i.xlarge"], "capacity_type": "ON_DEMAND",
                        "scaling_config": [{"desired_size": 3}],
                        "launch_template": [{"id": "${aws_launch_template.general.id}"}]});
        let e = Estimate::of(
            "us-east-1",
            &[
                ("aws_eks_node_group", "general", &ng),
                ("aws_launch_template", "general", &lt),
            ],
        );
        let expected = 3.0 * 0.192 * 730.0 + 3.0 * 100.0 * 0.08;
        assert!((e.monthly_usd() - expected).abs() < 1e-9);
    }

    #[test]
    fn an_eks_cluster_in_extended_support_costs_six_times_the_standard_rate() {
        let cluster = |support: &str| {
            let body = json!({"upgrade_policy": [{"support_type": support}]});
            Estimate::of("us-east-1", &[("aws_eks_cluster", "main", &body)]).monthly_usd()
        };
        assert!((cluster("STANDARD") - 0.10 * 730.0).abs() < 1e-9);
        assert!((cluster("EXTENDED") - 0.60 * 730.0).abs() < 1e-9);
    }

    #[test]
    fn change_lists_the_lines_that_moved() {
        let a = Estimate::of("us-east-1", &[("aws_eks_cluster", "c", &json!({}))]);
        let b = Estimate::of(
            "us-east-1",
            &[
                ("aws_eks_cluster", "c", &json!({})),
                ("aws_kms_key", "k", &json!({})),
            ],
        );
        let c = Change::between(Some(&a), Some(&b)).unwrap_or_else(|| unreachable!());
        assert!(c.is_change());
        assert_eq!(c.lines, vec![("aws_kms_key.k".to_owned(), None, Some(1.0))]);
        assert_eq!(c.summary(), "$73.00 -> $74.00/month (+$1.00)");
        assert!(!Change::between(Some(&a), Some(&a)).is_some_and(|c| c.is_change()));
        assert_eq!(Change::between(None, None), None);
    }

    #[test]
    fn dollars_are_grouped_and_rounded_to_cents() {
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(usd(1234.565), "$1,234.57");
        assert_eq!(usd(1_000_000.0), "$1,000,000.00");
        assert_eq!(usd(73.0), "$73.00");
    }
}
