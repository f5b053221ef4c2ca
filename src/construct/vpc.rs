//! A VPC across N availability zones: public and private subnets carved from the VPC CIDR,
//! an internet gateway, NAT gateways (one per AZ or one shared), route tables, an S3
//! gateway endpoint, flow logs, and a default security group that allows nothing.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;

use super::Scope;
use super::iam::{Role, Statement, Trust};
use super::kms::KmsKey;
use super::log_group::encrypted_log_group;
use crate::env::file::NatGateways;
use crate::refs::{Expr, Ref};
use crate::tf::aws::resource::{
    DefaultSecurityGroup, Eip, FlowLog, InternetGateway, NatGateway, Route, RouteTable,
    RouteTableAssociation, RouteTableRef, Subnet, SubnetRef, Vpc as VpcResource, VpcEndpoint,
};

/// Options for [`Vpc`].
#[derive(Debug, Clone)]
pub struct VpcProps {
    /// VPC CIDR, /16 to /24.
    pub cidr: Ipv4Net,
    /// Availability zone names, one public and one private subnet each.
    pub availability_zones: Vec<String>,
    /// NAT layout.
    pub nat_gateways: NatGateways,
    /// Days to keep flow logs.
    pub flow_log_retention_days: u32,
    /// Extra tags of the public subnets (e.g. `kubernetes.io/role/elb = 1` for load-balancer
    /// discovery). Default: none.
    pub public_subnet_tags: BTreeMap<String, String>,
    /// Extra tags of the private subnets (e.g. `kubernetes.io/role/internal-elb = 1`).
    pub private_subnet_tags: BTreeMap<String, String>,
    /// Also carve one small data subnet per AZ ([`split_data_subnets`]) with a route table
    /// of its own that reaches nothing outside the VPC: databases and caches live there,
    /// apart from the nodes and pods, so NetworkPolicies can name exactly their addresses.
    pub data_subnets: bool,
}

/// The subnets of one AZ.
#[derive(Debug, Clone)]
pub struct SubnetPair {
    /// AZ name.
    pub az: String,
    /// Public subnet (load balancers, NAT gateways).
    pub public: Ref,
    /// Private subnet (tasks, databases).
    pub private: Ref,
}

/// A VPC and its subnets.
#[derive(Debug, Clone)]
pub struct Vpc {
    vpc: Ref,
    subnets: Vec<SubnetPair>,
    data: Vec<Ref>,
}

/// The data subnets of `cidr` for `count` AZs: the eighth block of [`split_subnets`]'s size
/// (unused by public and private subnets for up to six AZs), split four prefix bits further
/// (/24s in a /16). `None` when the VPC is smaller than /20 or `count` is over 6.
pub fn split_data_subnets(cidr: Ipv4Net, count: usize) -> Option<Vec<Ipv4Net>> {
    let block_prefix = cidr.prefix_len() + 4;
    if block_prefix + 4 > 28 || count > 6 {
        return None;
    }
    let block = cidr.subnets(block_prefix).ok()?.nth(7)?;
    Some(block.subnets(block_prefix + 4).ok()?.take(count).collect())
}

/// Splits `cidr` into `count` public and `count` private subnets, four prefix bits
/// smaller: public subnets take the first blocks, private ones start halfway.
pub fn split_subnets(cidr: Ipv4Net, count: usize) -> Option<(Vec<Ipv4Net>, Vec<Ipv4Net>)> {
    let prefix = cidr.prefix_len() + 4;
    if prefix > 28 || count > 8 {
        return None;
    }
    let blocks: Vec<Ipv4Net> = cidr.subnets(prefix).ok()?.collect();
    let public = blocks[..count].to_vec();
    let private = blocks[8..8 + count].to_vec();
    Some((public, private))
}

/// A subnet's `Name` and `Tier` tags plus the extra ones.
fn subnet_tags(
    name: String,
    tier: &str,
    extra: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut tags: BTreeMap<String, String> = extra.clone();
    tags.insert("Name".to_owned(), name);
    tags.insert("Tier".to_owned(), tier.to_owned());
    tags
}

/// `{"Name": name}`.
fn name_tag(name: String) -> BTreeMap<String, String> {
    BTreeMap::from([("Name".to_owned(), name)])
}

/// A subnet of `vpc` in `az` (no public addresses on launch).
fn subnet(vpc: &Expr, cidr: Ipv4Net, az: &str, tags: BTreeMap<String, String>) -> Subnet {
    Subnet::new(vpc)
        .cidr_block(cidr.to_string())
        .availability_zone(az)
        .map_public_ip_on_launch(false)
        .tags(tags)
}

/// Associates `subnet` with `table` as `aws_route_table_association.<name>`.
fn associate(
    scope: &mut Scope<'_>,
    file: &str,
    name: &str,
    subnet: &SubnetRef,
    table: &RouteTableRef,
) {
    scope.tf.add(
        file,
        name,
        RouteTableAssociation::new(table.id()).subnet_id(subnet.id()),
    );
}

impl Vpc {
    /// Builds the network. Fails when the CIDR is too small for the AZ count.
    pub fn new(scope: &mut Scope<'_>, key: &KmsKey, props: &VpcProps) -> Result<Vpc, String> {
        let (public, private) = split_subnets(props.cidr, props.availability_zones.len())
            .ok_or_else(|| format!("{} is too small to split into subnets", props.cidr))?;
        let f = "network";
        let vpc = scope.tf.add(
            f,
            "main",
            VpcResource::new()
                .cidr_block(props.cidr.to_string())
                .enable_dns_hostnames(true)
                .enable_dns_support(true)
                .tags(name_tag(scope.name("vpc"))),
        );
        let vpc_id: Expr = vpc.id().into();
        scope.tf.add(
            f,
            "main",
            DefaultSecurityGroup::new()
                .vpc_id(&vpc_id)
                .tags(name_tag(scope.name("default-deny-all"))),
        );
        let igw = scope.tf.add(
            f,
            "main",
            InternetGateway::new()
                .vpc_id(&vpc_id)
                .tags(name_tag(scope.name("igw"))),
        );
        let public_rt = scope.tf.add(
            f,
            "public",
            RouteTable::new(&vpc_id).tags(name_tag(scope.name("public"))),
        );
        scope.tf.add(
            f,
            "public_internet",
            Route::new(public_rt.id())
                .destination_cidr_block("0.0.0.0/0")
                .gateway_id(igw.id()),
        );
        let mut subnets = Vec::new();
        let mut nats: Vec<Expr> = Vec::new();
        let mut private_rts = Vec::new();
        for (i, az) in props.availability_zones.iter().enumerate() {
            let letter = az.chars().last().unwrap_or('x');
            let pub_sn = scope.tf.add(
                f,
                &format!("public_{letter}"),
                subnet(
                    &vpc_id,
                    public[i],
                    az,
                    subnet_tags(
                        scope.name(&format!("public-{letter}")),
                        "public",
                        &props.public_subnet_tags,
                    ),
                ),
            );
            let priv_sn = scope.tf.add(
                f,
                &format!("private_{letter}"),
                subnet(
                    &vpc_id,
                    private[i],
                    az,
                    subnet_tags(
                        scope.name(&format!("private-{letter}")),
                        "private",
                        &props.private_subnet_tags,
                    ),
                ),
            );
            associate(scope, f, &format!("public_{letter}"), &pub_sn, &public_rt);
            if i == 0 || props.nat_gateways == NatGateways::PerAz {
                let nat_name = scope.name(&format!("nat-{letter}"));
                let eip = scope.tf.add(
                    f,
                    &format!("nat_{letter}"),
                    Eip::new().domain("vpc").tags(name_tag(nat_name.clone())),
                );
                let nat = scope.tf.add(
                    f,
                    &format!("{letter}"),
                    NatGateway::new(pub_sn.id())
                        .allocation_id(eip.id())
                        .tags(name_tag(nat_name))
                        .depends_on([igw.tf_ref().address()]),
                );
                nats.push(nat.id().into());
            }
            let rt = scope.tf.add(
                f,
                &format!("private_{letter}"),
                RouteTable::new(&vpc_id).tags(name_tag(scope.name(&format!("private-{letter}")))),
            );
            // `nats` holds at least the first AZ's gateway from iteration 0 on.
            let nat = nats
                .last()
                .cloned()
                .unwrap_or_else(|| Ref::resource("aws_nat_gateway", "a").id());
            scope.tf.add(
                f,
                &format!("private_{letter}_nat"),
                Route::new(rt.id())
                    .destination_cidr_block("0.0.0.0/0")
                    .nat_gateway_id(nat),
            );
            associate(scope, f, &format!("private_{letter}"), &priv_sn, &rt);
            private_rts.push(rt.id());
            subnets.push(SubnetPair {
                az: az.clone(),
                public: pub_sn.into_ref(),
                private: priv_sn.into_ref(),
            });
        }
        let mut data = Vec::new();
        if props.data_subnets {
            let cidrs = split_data_subnets(props.cidr, props.availability_zones.len()).ok_or_else(
                || {
                    format!(
                        "VPC {} is too small for data subnets in {} AZs (expected /20 or larger)",
                        props.cidr,
                        props.availability_zones.len()
                    )
                },
            )?;
            // Local routes only: the data stores need nothing outside the VPC.
            let rt = scope.tf.add(
                f,
                "data",
                RouteTable::new(&vpc_id).tags(name_tag(scope.name("data"))),
            );
            for (az, cidr) in props.availability_zones.iter().zip(cidrs) {
                let letter = az.chars().last().unwrap_or('x');
                let tags = subnet_tags(
                    scope.name(&format!("data-{letter}")),
                    "data",
                    &BTreeMap::new(),
                );
                let sn = scope.tf.add(
                    f,
                    &format!("data_{letter}"),
                    subnet(&vpc_id, cidr, az, tags),
                );
                associate(scope, f, &format!("data_{letter}"), &sn, &rt);
                data.push(sn.into_ref());
            }
        }
        let region = scope.tf.region().to_owned();
        scope.tf.add(
            f,
            "s3",
            VpcEndpoint::new(&vpc_id)
                .service_name(format!("com.amazonaws.{region}.s3"))
                .vpc_endpoint_type("Gateway")
                .route_table_ids(private_rts)
                .tags(name_tag(scope.name("s3"))),
        );
        let log_group = encrypted_log_group(
            scope,
            key,
            f,
            "flow_logs",
            "vpc-flow-logs",
            props.flow_log_retention_days,
        );
        let role = Role::new(
            scope,
            "flow_logs",
            "flow-logs",
            Trust::Service("vpc-flow-logs.amazonaws.com"),
            &[],
            vec![Statement::allow(
                "WriteFlowLogs",
                &[
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                vec![format!("{}:*", log_group.arn())],
            )],
        );
        scope.tf.add(
            f,
            "main",
            FlowLog::new()
                .vpc_id(&vpc_id)
                .traffic_type("ALL")
                .log_destination_type("cloud-watch-logs")
                .log_destination(log_group.arn())
                .iam_role_arn(role.arn())
                .max_aggregation_interval(60),
        );
        let vpc = vpc.into_ref();
        Ok(Vpc { vpc, subnets, data })
    }

    /// The VPC id.
    pub fn id(&self) -> Expr {
        self.vpc.id()
    }

    /// Public subnet ids, one per AZ.
    pub fn public_subnet_ids(&self) -> Vec<Expr> {
        self.subnets.iter().map(|s| s.public.id()).collect()
    }

    /// Private subnet ids, one per AZ.
    pub fn private_subnet_ids(&self) -> Vec<Expr> {
        self.subnets.iter().map(|s| s.private.id()).collect()
    }

    /// Data subnet ids, one per AZ (empty unless [`VpcProps::data_subnets`]).
    pub fn data_subnet_ids(&self) -> Vec<Expr> {
        self.data.iter().map(Ref::id).collect()
    }

    /// The VPC's CIDR block.
    pub fn cidr_block(&self) -> Expr {
        self.vpc.attr("cidr_block")
    }

    /// The VPC's `Name` tag (controllers find the VPC by it).
    pub fn name(scope: &Scope<'_>) -> String {
        scope.name("vpc")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_azs_of_a_slash_16() {
        let (public, private) = split_subnets("10.30.0.0/16".parse().unwrap(), 3).unwrap();
        let s = |v: &[Ipv4Net]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            s(&public),
            ["10.30.0.0/20", "10.30.16.0/20", "10.30.32.0/20"]
        );
        assert_eq!(
            s(&private),
            ["10.30.128.0/20", "10.30.144.0/20", "10.30.160.0/20"]
        );
    }

    #[test]
    fn subnets_never_overlap_and_stay_inside() {
        for prefix in 16..=24u8 {
            let cidr: Ipv4Net = format!("10.0.0.0/{prefix}").parse().unwrap();
            let (public, private) = split_subnets(cidr, 6).unwrap();
            let all: Vec<_> = public.iter().chain(&private).collect();
            for (i, a) in all.iter().enumerate() {
                assert!(cidr.contains(*a));
                for b in &all[i + 1..] {
                    assert!(
                        !a.contains(&b.network()) && !b.contains(&a.network()),
                        "{a} {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn data_subnets_stay_apart_from_the_others() {
        let cidr: Ipv4Net = "10.130.0.0/16".parse().unwrap();
        let data = split_data_subnets(cidr, 3).unwrap();
        assert_eq!(
            data.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["10.130.112.0/24", "10.130.113.0/24", "10.130.114.0/24"]
        );
        let (public, private) = split_subnets(cidr, 6).unwrap();
        for d in &data {
            assert!(
                public
                    .iter()
                    .chain(&private)
                    .all(|o| !o.contains(d) && !d.contains(o))
            );
        }
        assert!(split_data_subnets("10.0.0.0/22".parse().unwrap(), 2).is_none());
    }

    #[test]
    fn too_small_or_too_many_is_refused() {
        assert!(split_subnets("10.0.0.0/25".parse().unwrap(), 2).is_none());
        assert!(split_subnets("10.0.0.0/16".parse().unwrap(), 9).is_none());
    }
}
