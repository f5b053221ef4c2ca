//! Security groups with one rule per resource (`aws_vpc_security_group_*_rule`), each with
//! a description; nothing is allowed unless a rule says so.

use std::collections::BTreeMap;

use super::{Scope, local_name};
use crate::refs::Expr;
use crate::tf::Suppression;
use crate::tf::aws::resource::{
    SecurityGroup as Group, SecurityGroupRef, VpcSecurityGroupEgressRule,
    VpcSecurityGroupIngressRule,
};
use crate::tf::bind::Val;

/// The body of a TCP rule of binding `$ty` (ingress and egress rules have the same
/// members): `port` from or to `peer`, with its description.
macro_rules! rule {
    ($ty:ident, $group:expr, $peer:expr, $port:expr, $description:expr) => {{
        let body = $ty::new("tcp", $group.sg.id())
            .description($description)
            .from_port($port)
            .to_port($port);
        match $peer {
            Peer::Group(e) => body.referenced_security_group_id(e),
            Peer::GroupId(id) => body.referenced_security_group_id(id),
            Peer::Cidr(c) => body.cidr_ipv4(c),
            Peer::PrefixList(e) => body.prefix_list_id(e),
        }
    }};
}

/// A security group.
#[derive(Debug, Clone)]
pub struct SecurityGroup {
    sg: SecurityGroupRef,
    id: String,
    file: String,
}

/// Where traffic comes from or goes to.
#[derive(Debug, Clone)]
pub enum Peer {
    /// Another security group of this stack.
    Group(Expr),
    /// A security group that exists outside this stack, by id (e.g. an EKS cluster's).
    GroupId(String),
    /// An IPv4 CIDR.
    Cidr(String),
    /// A managed prefix list (e.g. the S3 gateway endpoint's).
    PrefixList(Expr),
}

impl SecurityGroup {
    /// Creates `aws_security_group.<id>` with no rules.
    pub fn new(
        scope: &mut Scope<'_>,
        file: &str,
        id: &str,
        description: &str,
        vpc_id: impl Into<Val<String>>,
    ) -> Self {
        let name = scope.name(&id.replace('_', "-"));
        let sg = scope.tf.add(
            file,
            id,
            Group::new()
                .name(&name)
                .description(description)
                .vpc_id(vpc_id)
                .tags(BTreeMap::from([("Name", name.clone())])),
        );
        SecurityGroup {
            sg,
            id: id.to_owned(),
            file: file.to_owned(),
        }
    }

    /// The group's id.
    pub fn id(&self) -> Expr {
        self.sg.id().into()
    }

    /// Allows TCP `port` in from `peer`; `rule` names the rule (`https_from_internet`).
    pub fn allow_in(
        &self,
        scope: &mut Scope<'_>,
        rule: &str,
        peer: &Peer,
        port: u16,
        description: &str,
    ) {
        self.allow_in_because(scope, rule, peer, port, description, &[]);
    }

    /// Like [`SecurityGroup::allow_in`] for a rule a scanner flags, with the reason it is
    /// intended.
    pub fn allow_in_because(
        &self,
        scope: &mut Scope<'_>,
        rule: &str,
        peer: &Peer,
        port: u16,
        description: &str,
        suppressions: &[Suppression],
    ) {
        let name = self.rule_name(rule);
        let body = rule!(VpcSecurityGroupIngressRule, self, peer, port, description);
        scope.tf.add_with(&self.file, &name, body, suppressions);
    }

    /// Allows TCP `port` out to `peer`.
    pub fn allow_out(
        &self,
        scope: &mut Scope<'_>,
        rule: &str,
        peer: &Peer,
        port: u16,
        description: &str,
    ) {
        let name = self.rule_name(rule);
        let body = rule!(VpcSecurityGroupEgressRule, self, peer, port, description);
        scope.tf.add(&self.file, &name, body);
    }

    /// The Terraform name of rule `rule`: `<group id>_<rule>`.
    fn rule_name(&self, rule: &str) -> String {
        format!("{}_{}", self.id, local_name(rule))
    }
}
