//! `world_open_ingress`
//!
//! *What it does:* flags a security group ingress rule open to `0.0.0.0/0` or `::/0` on any
//! port other than 80 and 443.
//!
//! *Why is this bad:* only a public load balancer's HTTP(S) listeners belong on the
//! internet; anything else (SSH, a database, an app port) is an attack surface.
//!
//! *Use instead:* allow the peer's security group, or a specific CIDR.

use super::super::{Finding, Rule};
use crate::tf::Config;

/// The rule.
pub const RULE: Rule = Rule {
    name: "world_open_ingress",
    summary: "no ingress from the whole internet except to ports 80 and 443",
    check,
};

fn check(config: &Config, out: &mut Vec<Finding>) {
    for (r, body) in config.blocks() {
        if r.ty() != "aws_vpc_security_group_ingress_rule" {
            continue;
        }
        let world = ["cidr_ipv4", "cidr_ipv6"]
            .iter()
            .any(|k| matches!(body[*k].as_str(), Some("0.0.0.0/0" | "::/0")));
        let from = body["from_port"].as_u64();
        let to = body["to_port"].as_u64();
        let web = from == to && matches!(from, Some(80 | 443));
        if world && !web {
            out.push(Finding {
                rule: RULE.name,
                address: r.address(),
                message: format!(
                    "open to the internet on ports {}..{}; allow a security group or a specific CIDR",
                    from.map_or("all".into(), |p| p.to_string()),
                    to.map_or("all".into(), |p| p.to_string())
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::policy::check;
    use crate::tf::tests::config;

    #[test]
    fn only_web_ports_may_face_the_internet() {
        let mut c = config();
        let rule = |port: u16| json!({"cidr_ipv4": "0.0.0.0/0", "from_port": port, "to_port": port, "ip_protocol": "tcp"});
        c.resource(
            "s",
            "aws_vpc_security_group_ingress_rule",
            "https",
            rule(443),
        );
        c.resource("s", "aws_vpc_security_group_ingress_rule", "ssh", rule(22));
        c.resource(
            "s",
            "aws_vpc_security_group_ingress_rule",
            "vpc_only",
            json!({"cidr_ipv4": "10.0.0.0/16", "from_port": 22, "to_port": 22}),
        );
        let findings = check(&c);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(
            findings[0].address,
            "aws_vpc_security_group_ingress_rule.ssh"
        );
    }
}
