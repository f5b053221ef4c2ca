//! Adopting resources that already exist: the `adopt:` section of an environment file
//! (stack → keel address → real id), its checks, and the Terraform `import` blocks synth
//! writes for it (`terraform/imports.tf.json`).
//!
//! Checked at synth, each error with file, key path and line:column: the stack is one the
//! environment builds, the address is a resource of that stack, the id has the shape the
//! type's import expects ([`FORMATS`]), and one id is adopted by one address only.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::Env;

/// The `adopt:` section: per stack, keel address → id of the existing resource.
pub type Adoptions = BTreeMap<String, BTreeMap<String, String>>;

/// The import id a resource type expects.
#[derive(Debug)]
pub struct Format {
    /// Resource type.
    pub rtype: &'static str,
    /// What the id is, for messages (`a VPC id, vpc- and 8 or 17 hex digits`).
    pub expected: &'static str,
    /// The check.
    pub shape: Shape,
}

/// Shapes of import ids.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// `prefix-` then 8 or 17 lowercase hex digits (EC2 ids).
    Ec2(&'static str),
    /// A name of 1..=max characters from `[A-Za-z0-9]` and `extra`.
    Name(usize, &'static str),
    /// An ARN of a service (`arn:aws:sns:...`).
    Arn(&'static str),
    /// A KMS key id (a UUID).
    Uuid,
}

/// Every type keel can adopt, with its import id (the provider's "Import" sections).
pub const FORMATS: &[Format] = &[
    ec2("aws_vpc", "vpc", "a VPC id, vpc- and 8 or 17 hex digits"),
    ec2(
        "aws_subnet",
        "subnet",
        "a subnet id, subnet- and 8 or 17 hex digits",
    ),
    ec2(
        "aws_security_group",
        "sg",
        "a security group id, sg- and 8 or 17 hex digits",
    ),
    ec2(
        "aws_internet_gateway",
        "igw",
        "an internet gateway id, igw- and 8 or 17 hex digits",
    ),
    ec2(
        "aws_nat_gateway",
        "nat",
        "a NAT gateway id, nat- and 8 or 17 hex digits",
    ),
    ec2(
        "aws_eip",
        "eipalloc",
        "an allocation id, eipalloc- and 8 or 17 hex digits",
    ),
    ec2(
        "aws_route_table",
        "rtb",
        "a route table id, rtb- and 8 or 17 hex digits",
    ),
    ec2(
        "aws_vpc_endpoint",
        "vpce",
        "a VPC endpoint id, vpce- and 8 or 17 hex digits",
    ),
    ec2(
        "aws_vpc_security_group_ingress_rule",
        "sgr",
        "a security group rule id, sgr- and 8 or 17 hex digits",
    ),
    ec2(
        "aws_vpc_security_group_egress_rule",
        "sgr",
        "a security group rule id, sgr- and 8 or 17 hex digits",
    ),
    name(
        "aws_db_instance",
        63,
        "-",
        "a DB instance identifier (letters, digits, -)",
    ),
    name("aws_db_subnet_group", 255, "-_. ", "a DB subnet group name"),
    name(
        "aws_db_parameter_group",
        255,
        "-",
        "a DB parameter group name",
    ),
    name(
        "aws_elasticache_replication_group",
        40,
        "-",
        "a replication group id",
    ),
    name(
        "aws_elasticache_subnet_group",
        255,
        "-",
        "a cache subnet group name",
    ),
    name("aws_s3_bucket", 63, "-.", "a bucket name"),
    name("aws_iam_role", 64, "+=,.@_-", "an IAM role name"),
    name("aws_ecr_repository", 256, "-_./", "a repository name"),
    name("aws_ecs_cluster", 255, "-_", "a cluster name"),
    name("aws_eks_cluster", 100, "-_", "a cluster name"),
    name("aws_cloudwatch_log_group", 512, "-_./#", "a log group name"),
    name("aws_kms_alias", 256, "-_/", "an alias name, alias/..."),
    name("aws_ssm_parameter", 2048, "-_./", "a parameter name"),
    Format {
        rtype: "aws_kms_key",
        expected: "a KMS key id (a UUID)",
        shape: Shape::Uuid,
    },
    arn(
        "aws_secretsmanager_secret",
        "secretsmanager",
        "a secret ARN",
    ),
    arn("aws_sns_topic", "sns", "a topic ARN"),
    arn("aws_lb", "elasticloadbalancing", "a load balancer ARN"),
    arn(
        "aws_lb_target_group",
        "elasticloadbalancing",
        "a target group ARN",
    ),
    arn(
        "aws_iam_openid_connect_provider",
        "iam",
        "an OIDC provider ARN",
    ),
];

const fn ec2(rtype: &'static str, prefix: &'static str, expected: &'static str) -> Format {
    Format {
        rtype,
        expected,
        shape: Shape::Ec2(prefix),
    }
}

const fn name(
    rtype: &'static str,
    max: usize,
    extra: &'static str,
    expected: &'static str,
) -> Format {
    Format {
        rtype,
        expected,
        shape: Shape::Name(max, extra),
    }
}

const fn arn(rtype: &'static str, service: &'static str, expected: &'static str) -> Format {
    Format {
        rtype,
        expected,
        shape: Shape::Arn(service),
    }
}

impl Shape {
    /// Whether `id` has this shape.
    pub fn accepts(self, id: &str) -> bool {
        match self {
            Shape::Ec2(prefix) => id
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('-'))
                .is_some_and(|hex| {
                    (hex.len() == 8 || hex.len() == 17)
                        && hex
                            .chars()
                            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
                }),
            Shape::Name(max, extra) => {
                !id.is_empty()
                    && id.len() <= max
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
            }
            Shape::Arn(service) => {
                let parts: Vec<&str> = id.splitn(6, ':').collect();
                parts.len() == 6
                    && parts[0] == "arn"
                    && parts[1].starts_with("aws")
                    && parts[2] == service
                    && parts[4].len() == 12
                    && parts[4].chars().all(|c| c.is_ascii_digit())
                    && !parts[5].is_empty()
            }
            Shape::Uuid => {
                let groups: Vec<&str> = id.split('-').collect();
                groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
                    && groups
                        .iter()
                        .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
            }
        }
    }
}

/// The import format of `rtype`, if keel can adopt it.
pub fn format(rtype: &str) -> Option<&'static Format> {
    FORMATS.iter().find(|f| f.rtype == rtype)
}

/// The `adopt:` section of one environment, with what its messages need.
pub struct Adoption<'a> {
    env: &'a Env,
    /// The file's text, read again only to place an error.
    text: std::sync::OnceLock<Option<String>>,
    root: &'a std::path::Path,
}

impl<'a> Adoption<'a> {
    /// The section of `env`, whose file is `env.path` under the project `root`.
    pub fn new(root: &'a std::path::Path, env: &'a Env) -> Self {
        Adoption {
            env,
            text: std::sync::OnceLock::new(),
            root,
        }
    }

    /// A located message about the `adopt:` section.
    fn error(&self, pointer: &[&str], message: String) -> String {
        let env = self.env;
        let key = pointer.join(".");
        let escaped: String = pointer
            .iter()
            .map(|p| format!("/{}", p.replace('~', "~0").replace('/', "~1")))
            .collect();
        let shown = format!("environments/{}.yaml", env.name());
        let text = self.text.get_or_init(|| {
            super::load::read_file(&self.root.join(&env.path), &env.path)
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        });
        let position = text
            .as_deref()
            .and_then(|text| super::load::locate(text).get(&escaped).copied());
        match position {
            Some((line, column)) => format!("{shown}:{line}:{column}: {key}: {message}"),
            None => format!("{shown}: {key}: {message}"),
        }
    }

    /// Environment-wide checks: every stack named under `adopt:` is built (`stacks`), and no
    /// id is adopted twice. Returns every error.
    pub fn check_env(&self, stacks: &[&str]) -> Vec<String> {
        let env = self.env;
        let mut errors = Vec::new();
        let mut seen: BTreeMap<(&str, &str), (&str, &str)> = BTreeMap::new();
        for (stack, entries) in &env.spec.adopt {
            if !stacks.contains(&stack.as_str()) {
                errors.push(self.error(
                    &["adopt", stack],
                    format!(
                        "expected a stack this environment builds ({}), found another name",
                        stacks.join(", ")
                    ),
                ));
            }
            for (address, id) in entries {
                let rtype = address.split('.').next().unwrap_or_default();
                if let Some((other_stack, other)) = seen.insert((rtype, id), (stack, address)) {
                    errors.push(self.error(
                    &["adopt", stack, address],
                    format!(
                        "this id is already adopted by adopt.{other_stack}.{other}: one existing resource can be adopted by one address only"
                    ),
                ));
                }
            }
        }
        errors
    }

    /// The `imports.tf.json` body for `stack` (`None` when it adopts nothing), after checking
    /// each entry against the stack's resource `addresses`. Returns every error.
    pub fn imports(&self, stack: &str, addresses: &[String]) -> Result<Option<Value>, Vec<String>> {
        let env = self.env;
        let Some(entries) = env.spec.adopt.get(stack).filter(|e| !e.is_empty()) else {
            return Ok(None);
        };
        let mut errors = Vec::new();
        let mut blocks = Vec::new();
        for (address, id) in entries {
            let at = ["adopt", stack, address.as_str()];
            let rtype = address.split('.').next().unwrap_or_default();
            if !addresses.contains(address) {
                let same_type: Vec<&str> = addresses
                    .iter()
                    .filter(|a| a.split('.').next() == Some(rtype))
                    .map(String::as_str)
                    .collect();
                errors.push(self.error(
                &at,
                if same_type.is_empty() {
                    format!("expected a resource address of stack {stack}, found one it does not have (no {rtype} at all)")
                } else {
                    format!(
                        "expected a resource address of stack {stack}, found one it does not have; its {rtype} addresses: {}",
                        same_type.join(", ")
                    )
                },
            ));
                continue;
            }
            let Some(format) = format(rtype) else {
                errors.push(self.error(
                    &at,
                    format!(
                    "keel cannot adopt a {rtype}: the types it knows the import id of are {}",
                    FORMATS.iter().map(|f| f.rtype).collect::<Vec<_>>().join(", ")
                ),
                ));
                continue;
            };
            if !format.shape.accepts(id) {
                errors.push(self.error(
                    &at,
                    format!(
                        "expected {}, found a value of another shape",
                        format.expected
                    ),
                ));
                continue;
            }
            blocks.push(json!({"id": id, "to": address}));
        }
        if errors.is_empty() {
            Ok(Some(json!({
                "//": format!("generated by keel from environments/{}.yaml (adopt.{stack}); do not edit", env.name()),
                "import": blocks,
            })))
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_against_their_type() {
        let vpc = format("aws_vpc").map(|f| f.shape);
        let vpc = vpc.unwrap_or(Shape::Uuid);
        assert!(vpc.accepts("vpc-0a1b2c3d4e5f60718"));
        assert!(vpc.accepts("vpc-0a1b2c3d"));
        for bad in [
            "subnet-0a1b2c3d",
            "vpc-0A1B2C3D",
            "vpc-123",
            "vpc-0a1b2c3dx",
            "",
        ] {
            assert!(!vpc.accepts(bad), "{bad}");
        }
        let secret = Shape::Arn("secretsmanager");
        assert!(secret.accepts("arn:aws:secretsmanager:us-east-1:111122223333:secret:x-AbCdEf"));
        assert!(!secret.accepts("arn:aws:sns:us-east-1:111122223333:x"));
        assert!(!secret.accepts("x"));
        assert!(Shape::Uuid.accepts("1234abcd-12ab-34cd-56ef-1234567890ab"));
        assert!(!Shape::Uuid.accepts("alias/x"));
        let role = Shape::Name(64, "+=,.@_-");
        assert!(role.accepts("eks-dev-node"));
        assert!(!role.accepts("a role"));
        assert!(!role.accepts(&"r".repeat(65)));
    }

    #[test]
    fn every_format_names_a_distinct_type() {
        let mut types: Vec<&str> = FORMATS.iter().map(|f| f.rtype).collect();
        types.sort_unstable();
        let n = types.len();
        types.dedup();
        assert_eq!(types.len(), n);
    }
}
