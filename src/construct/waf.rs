//! A regional WAF web ACL for a public Application Load Balancer: the AWS managed common
//! rule set and known bad inputs (which includes the Log4j lookups), requests allowed
//! otherwise, every request logged to an encrypted log group with the `authorization` and
//! `cookie` headers redacted.
//!
//! See <https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-baseline.html>.

use serde_json::{Value, json};

use super::Scope;
use super::kms::KmsKey;
use super::log_group::encrypted_log_group_named;
use crate::refs::{Expr, Ref};

/// The AWS managed rule groups every web ACL evaluates, in priority order.
pub const MANAGED_RULE_GROUPS: [&str; 2] = [
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
];

/// Options for [`WebAcl`].
#[derive(Debug, Clone)]
pub struct WebAclProps {
    /// Days to keep the request log.
    pub log_retention_days: u32,
    /// Why request bodies above 8 KB are legitimate, if they are: the common rule set's
    /// `SizeRestrictions_BODY` then counts them instead of blocking (e.g. a service that
    /// receives webhooks carrying whole documents). Default: `None` (blocked).
    pub large_bodies: Option<&'static str>,
}

/// A web ACL; [`WebAcl::protect`] attaches it to a load balancer.
#[derive(Debug, Clone)]
pub struct WebAcl {
    acl: Ref,
    name: String,
}

/// The common rule set's rule that blocks request bodies above 8 KB.
const BODY_SIZE_RULE: &str = "SizeRestrictions_BODY";

/// Prefix WAF requires of a log group it delivers to.
const LOG_GROUP_PREFIX: &str = "aws-waf-logs-";

/// `aws-waf-logs-<prefix>`: the log group of the stack's web ACL (a name WAF dictates).
pub fn log_group_name(scope: &Scope<'_>) -> String {
    format!("{LOG_GROUP_PREFIX}{}", scope.prefix)
}

impl WebAcl {
    /// Creates the web ACL `<prefix>-edge`, its log group, the log delivery's resource
    /// policy and the logging configuration.
    pub fn new(scope: &mut Scope<'_>, key: &KmsKey, props: &WebAclProps) -> WebAcl {
        let f = "waf";
        let name = scope.name("edge");
        let visibility = |metric: String| {
            json!([{
                "cloudwatch_metrics_enabled": true,
                "metric_name": metric,
                "sampled_requests_enabled": true,
            }])
        };
        let rules: Vec<Value> = MANAGED_RULE_GROUPS
            .iter()
            .zip(1u32..)
            .map(|(group, priority)| {
                let mut statement = json!({"vendor_name": "AWS", "name": group});
                if props.large_bodies.is_some() && *group == MANAGED_RULE_GROUPS[0] {
                    statement["rule_action_override"] = json!([{
                        "name": BODY_SIZE_RULE,
                        "action_to_use": [{"count": [{}]}],
                    }]);
                }
                json!({
                    "name": group,
                    "priority": priority * 10,
                    "override_action": [{"none": [{}]}],
                    "statement": [{"managed_rule_group_statement": [statement]}],
                    "visibility_config": visibility(format!("{name}-{group}")),
                })
            })
            .collect();
        // WAF allows only letters, digits, spaces and `+=:#@/-,.` in a description.
        let mut description = String::from(
            "AWS managed common and known bad inputs rules for the public load balancer",
        );
        if props.large_bodies.is_some() {
            description.push_str(&format!(", {BODY_SIZE_RULE} counts only"));
        }
        let acl = scope.tf.resource(
            f,
            "aws_wafv2_web_acl",
            "edge",
            json!({
                "name": name,
                "description": description,
                "scope": "REGIONAL",
                "default_action": [{"allow": [{}]}],
                "rule": rules,
                "visibility_config": visibility(name.clone()),
            }),
        );
        let log_name = log_group_name(scope);
        let logs =
            encrypted_log_group_named(scope, key, f, "waf", &log_name, props.log_retention_days);
        let (region, account, partition) = (
            scope.tf.region().to_owned(),
            scope.tf.account_id().to_owned(),
            scope.partition(),
        );
        // WAF delivers through the log delivery service, which needs this account-wide
        // resource policy on the group (WAF would otherwise create a broader one itself).
        let delivery = scope.tf.data(
            f,
            "aws_iam_policy_document",
            "waf_log_delivery",
            json!({"statement": [{
                "sid": "WafDeliversItsLogs",
                "effect": "Allow",
                "actions": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "resources": [format!("{}:*", logs.arn())],
                "principals": [{"type": "Service", "identifiers": ["delivery.logs.amazonaws.com"]}],
                "condition": [
                    {"test": "StringEquals", "variable": "aws:SourceAccount", "values": [account]},
                    {"test": "ArnLike", "variable": "aws:SourceArn",
                     "values": [format!("arn:{partition}:logs:{region}:{account}:*")]},
                ],
            }]}),
        );
        let policy = scope.tf.resource(
            f,
            "aws_cloudwatch_log_resource_policy",
            "waf",
            json!({"policy_name": scope.name("waf-logs"), "policy_document": delivery.attr("json")}),
        );
        scope.tf.resource(
            f,
            "aws_wafv2_web_acl_logging_configuration",
            "edge",
            json!({
                "resource_arn": acl.arn(),
                "log_destination_configs": [logs.arn()],
                "redacted_fields": [
                    {"single_header": [{"name": "authorization"}]},
                    {"single_header": [{"name": "cookie"}]},
                ],
                "depends_on": [policy.address()],
            }),
        );
        WebAcl { acl, name }
    }

    /// The web ACL's name (`<prefix>-edge`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The web ACL's ARN.
    pub fn arn(&self) -> Expr {
        self.acl.arn()
    }

    /// Attaches the web ACL to the load balancer `lb_arn` (`aws_wafv2_web_acl_association.<id>`).
    pub fn protect(&self, scope: &mut Scope<'_>, id: &str, lb_arn: Expr) {
        scope.tf.resource(
            "waf",
            "aws_wafv2_web_acl_association",
            id,
            json!({"resource_arn": lb_arn, "web_acl_arn": self.acl.arn()}),
        );
    }
}
