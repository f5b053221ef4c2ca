//! Security groups with one rule per resource (`aws_vpc_security_group_*_rule`), each with
//! a description; nothing is allowed unless a rule says so.

use serde_json::{Value, json};

use super::{Scope, local_name};
use crate::refs::{Expr, Ref};
use crate::tf::Suppression;

/// A security group.
#[derive(Debug, Clone)]
pub struct SecurityGroup {
    sg: Ref,
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
        vpc_id: impl Into<Value>,
    ) -> Self {
        let name = scope.name(&id.replace('_', "-"));
        let sg = scope.tf.resource(
            file,
            "aws_security_group",
            id,
            json!({
                "name": name,
                "description": description,
                "vpc_id": vpc_id.into(),
                "tags": {"Name": name},
            }),
        );
        SecurityGroup {
            sg,
            id: id.to_owned(),
            file: file.to_owned(),
        }
    }

    /// The group's id.
    pub fn id(&self) -> Expr {
        self.sg.id()
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
        self.rule(
            scope,
            "aws_vpc_security_group_ingress_rule",
            rule,
            peer,
            port,
            description,
            suppressions,
        );
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
        self.rule(
            scope,
            "aws_vpc_security_group_egress_rule",
            rule,
            peer,
            port,
            description,
            &[],
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn rule(
        &self,
        scope: &mut Scope<'_>,
        ty: &str,
        rule: &str,
        peer: &Peer,
        port: u16,
        description: &str,
        suppressions: &[Suppression],
    ) {
        let mut body = json!({
            "security_group_id": self.sg.id(),
            "description": description,
            "ip_protocol": "tcp",
            "from_port": port,
            "to_port": port,
        });
        let (key, value): (&str, Value) = match peer {
            Peer::Group(e) => ("referenced_security_group_id", e.into()),
            Peer::GroupId(id) => ("referenced_security_group_id", Value::String(id.clone())),
            Peer::Cidr(c) => ("cidr_ipv4", Value::String(c.clone())),
            Peer::PrefixList(e) => ("prefix_list_id", e.into()),
        };
        body[key] = value;
        let name = format!("{}_{}", self.id, local_name(rule));
        scope
            .tf
            .resource_with(&self.file, ty, &name, body, suppressions);
    }
}
