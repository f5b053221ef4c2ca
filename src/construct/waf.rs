//! A regional WAF web ACL for a public Application Load Balancer: the AWS managed common
//! rule set and known bad inputs (which includes the Log4j lookups), requests allowed
//! otherwise, every request logged to an encrypted log group with the `authorization` and
//! `cookie` headers redacted.
//!
//! See <https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-baseline.html>.

use serde_json::json;

use super::Scope;
use super::iam::{allow, condition, policy_document, principals};
use super::kms::KmsKey;
use super::log_group::encrypted_log_group_named;
use crate::refs::Expr;
use crate::tf::aws::resource::wafv2_web_acl::{
    DefaultAction, DefaultActionAllow, Rule, RuleOverrideAction, RuleOverrideActionNone,
    RuleVisibilityConfig, VisibilityConfig,
};
use crate::tf::aws::resource::wafv2_web_acl_logging_configuration::{
    RedactedFields, RedactedFieldsSingleHeader,
};
use crate::tf::aws::resource::{
    CloudwatchLogResourcePolicy, Wafv2WebAcl, Wafv2WebAclAssociation,
    Wafv2WebAclLoggingConfiguration, Wafv2WebAclRef,
};

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
    acl: Wafv2WebAclRef,
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
        let rules: Vec<Rule> = MANAGED_RULE_GROUPS
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
                Rule::new(
                    *group,
                    priority * 10,
                    RuleVisibilityConfig::new(true, format!("{name}-{group}"), true),
                )
                .override_action(RuleOverrideAction::new().none(RuleOverrideActionNone::new()))
                .statement(json!([{"managed_rule_group_statement": [statement]}]))
            })
            .collect();
        // WAF allows only letters, digits, spaces and `+=:#@/-,.` in a description.
        let mut description = String::from(
            "AWS managed common and known bad inputs rules for the public load balancer",
        );
        if props.large_bodies.is_some() {
            description.push_str(&format!(", {BODY_SIZE_RULE} counts only"));
        }
        let acl = scope.tf.add(
            f,
            "edge",
            Wafv2WebAcl::new(
                "REGIONAL",
                DefaultAction::new().allow(DefaultActionAllow::new()),
                VisibilityConfig::new(true, &name, true),
            )
            .name(&name)
            .description(description)
            .rule(rules),
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
        let delivery = policy_document(
            scope,
            f,
            "waf_log_delivery",
            [allow(
                "WafDeliversItsLogs",
                &["logs:CreateLogStream", "logs:PutLogEvents"],
            )
            .resources([format!("{}:*", logs.arn())])
            .principals([principals("Service", vec!["delivery.logs.amazonaws.com"])])
            .condition([
                condition("StringEquals", "aws:SourceAccount", vec![account.clone()]),
                condition(
                    "ArnLike",
                    "aws:SourceArn",
                    vec![format!("arn:{partition}:logs:{region}:{account}:*")],
                ),
            ])],
        );
        let policy = scope.tf.add(
            f,
            "waf",
            CloudwatchLogResourcePolicy::new(delivery.json(), scope.name("waf-logs")),
        );
        let redact = |header: &str| {
            RedactedFields::new().single_header(RedactedFieldsSingleHeader::new(header))
        };
        scope.tf.add(
            f,
            "edge",
            Wafv2WebAclLoggingConfiguration::new([logs.arn()], acl.arn())
                .redacted_fields([redact("authorization"), redact("cookie")])
                .depends_on([policy.tf_ref().address()]),
        );
        WebAcl { acl, name }
    }

    /// The web ACL's name (`<prefix>-edge`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The web ACL's ARN.
    pub fn arn(&self) -> Expr {
        self.acl.arn().into()
    }

    /// Attaches the web ACL to the load balancer `lb_arn` (`aws_wafv2_web_acl_association.<id>`).
    pub fn protect(&self, scope: &mut Scope<'_>, id: &str, lb_arn: Expr) {
        scope.tf.add(
            "waf",
            id,
            Wafv2WebAclAssociation::new(lb_arn, self.acl.arn()),
        );
    }
}
