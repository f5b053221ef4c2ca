//! The construct library: typed building blocks that add Terraform resources to a
//! [`tf::Config`](crate::tf::Config), with safe defaults and typed references.
//!
//! Each file owns one construct. Constructs take their dependencies as typed values
//! (`&Vpc`, `&SecurityGroup`, `&KmsKey`) and expose what others need as [`Expr`]s, so stack
//! code never writes an address or an interpolation by hand.
//! **Invariant:** constructs do no I/O.

pub mod alb;
pub mod bucket;
pub mod codedeploy;
pub mod db_client;
pub mod db_login;
pub mod db_login_task;
pub mod deploy_runner;
pub mod ecr;
pub mod ecs;
pub mod eks;
pub mod elasticache;
pub mod github_deploy;
pub mod iam;
pub mod kms;
pub mod lb_controller_policy;
pub mod log_group;
pub mod logs_bucket;
pub mod observability;
pub mod rds;
pub mod rds_tls;
pub mod secret_store;
pub mod secrets;
pub mod security_group;
pub mod vpc;
pub mod waf;
pub mod workload_identity;

use crate::tf::Config;

/// What every construct needs: the Terraform root it adds to and the naming scheme.
pub struct Scope<'a> {
    /// The root module under construction.
    pub tf: &'a mut Config,
    /// Prefix of AWS resource names, `<stack short name>-<env>` (e.g. `lgp-prod`).
    pub prefix: String,
    /// Whether the environment is prod-tier (stricter defaults: deletion protection, ...).
    pub prod: bool,
    /// The environment's name (`prod`), e.g. for export parameter names.
    pub env: String,
}

impl<'a> Scope<'a> {
    /// A scope over `tf` for a stack whose AWS names start with `<short>-<env>`.
    pub fn new(tf: &'a mut Config, short: &str, env: &crate::env::Env) -> Self {
        Scope {
            tf,
            prefix: format!("{short}-{}", env.name()),
            prod: env.is_prod(),
            env: env.name().to_owned(),
        }
    }

    /// An AWS resource name: `<prefix>-<suffix>`.
    pub fn name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.prefix)
    }

    /// The AWS partition of the root's region (`aws`, `aws-cn`, `aws-us-gov`).
    pub fn partition(&self) -> &'static str {
        partition(self.tf.region())
    }

    /// `arn:<partition>:iam::<account>:root`, the account principal of key policies.
    pub fn account_root_arn(&self) -> String {
        format!(
            "arn:{}:iam::{}:root",
            self.partition(),
            self.tf.account_id()
        )
    }

    /// An AWS managed policy ARN, e.g. `service-role/AmazonECSTaskExecutionRolePolicy`.
    pub fn managed_policy(&self, path: &str) -> String {
        format!("arn:{}:iam::aws:policy/{path}", self.partition())
    }
}

/// The AWS partition a region belongs to.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// A Terraform local name from an id: lowercase letters, digits and underscores.
pub fn local_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_names_are_sanitized() {
        assert_eq!(local_name("JIRA-api.token"), "jira_api_token");
    }

    #[test]
    fn partitions() {
        assert_eq!(partition("eu-west-1"), "aws");
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
    }
}
