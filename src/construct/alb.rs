//! An Application Load Balancer for blue/green ECS deployments: HTTP redirects to HTTPS,
//! the HTTPS listener forwards to the blue target group, and CodeDeploy swaps blue and
//! green. A WAF web ACL filters every request, access logs go to the stack's bucket, and
//! prod refuses deletion.

use super::Scope;
use super::logs_bucket::LogsBucket;
use super::waf::WebAcl;
use crate::refs::{Expr, Ref};
use crate::tf::Suppression;
use crate::tf::aws::resource::lb::{AccessLogs, Lb};
use crate::tf::aws::resource::lb_listener::{DefaultAction, DefaultActionRedirect, LbListener};
use crate::tf::aws::resource::lb_target_group::{HealthCheck, LbTargetGroup};
use crate::tf::bind::{Lifecycle, Val};

/// Options for [`Alb`].
#[derive(Debug, Clone)]
pub struct AlbProps {
    /// Public subnets, one per AZ.
    pub subnet_ids: Vec<Expr>,
    /// The load balancer's security group.
    pub security_group_id: Expr,
    /// VPC of the target groups.
    pub vpc_id: Expr,
    /// Port the targets listen on.
    pub target_port: u16,
    /// Health check path.
    pub health_check_path: String,
    /// ACM certificate; `None` serves plain HTTP (dev only, synth warns).
    pub certificate_arn: Option<String>,
    /// Who can reach it. `Internal` wants private subnets in `subnet_ids`.
    pub scheme: AlbScheme,
}

/// Who can reach a load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlbScheme {
    /// Anyone on the internet (public subnets).
    InternetFacing,
    /// Clients inside the VPC only (private subnets).
    Internal,
}

/// The load balancer, its listeners and the blue/green target groups.
#[derive(Debug, Clone)]
pub struct Alb {
    lb: Ref,
    blue: Ref,
    green: Ref,
    production_listener: Ref,
    listeners: Vec<Ref>,
}

/// checkov's Log4j check also wants AWSManagedRulesAnonymousIpList on the web ACL.
const NO_ANONYMOUS_IP_LIST: Suppression = Suppression {
    check: "CKV2_AWS_76",
    reason: "the web ACL has the known bad inputs group with its Log4j rules; the anonymous IP list is left out because its hosting-provider rule blocks cloud-hosted callers such as Jira Cloud webhooks",
};
const NO_DELETION_PROTECTION: Suppression = Suppression {
    check: "CKV_AWS_150",
    reason: "non-prod tier: environments are torn down and rebuilt; prod enables deletion protection",
};
const NO_REDIRECT: Suppression = Suppression {
    check: "CKV2_AWS_20",
    reason: "this environment has no ACM certificate, so there is no HTTPS listener to redirect to (keel warns at synth)",
};
/// checkov accepts an HTTP target group only when an HTTPS listener forwards to it: the
/// green group gets its listener from CodeDeploy during a deployment, and without a
/// certificate no listener is HTTPS.
const HTTP_TO_TARGETS: Suppression = Suppression {
    check: "CKV_AWS_378",
    reason: "TLS terminates at the load balancer; targets are reached over HTTP inside the VPC's private subnets",
};

impl Alb {
    /// Creates the load balancer with access logs in `logs`, behind `web_acl`.
    pub fn new(
        scope: &mut Scope<'_>,
        logs: &LogsBucket,
        web_acl: &WebAcl,
        props: &AlbProps,
    ) -> Alb {
        let f = "alb";
        let mut suppressions = vec![NO_ANONYMOUS_IP_LIST];
        if !scope.prod {
            suppressions.push(NO_DELETION_PROTECTION);
        }
        if props.certificate_arn.is_none() {
            suppressions.push(NO_REDIRECT);
        }
        let lb = scope.tf.add_with(
            f,
            "main",
            Lb::new()
                .name(scope.name("alb"))
                .load_balancer_type("application")
                .internal(props.scheme == AlbScheme::Internal)
                .subnets(props.subnet_ids.clone())
                .security_groups([&props.security_group_id])
                .drop_invalid_header_fields(true)
                .enable_deletion_protection(scope.prod)
                .idle_timeout(60)
                .access_logs(
                    AccessLogs::new(logs.name())
                        .prefix(super::logs_bucket::ACCESS_LOG_PREFIX)
                        .enabled(true),
                )
                .depends_on([logs.policy_address()]),
            &suppressions,
        );
        web_acl.protect(scope, "alb", lb.arn().into());
        let tg = |scope: &mut Scope<'_>, color: &str, suppressions: &[Suppression]| {
            let health_check = HealthCheck::new()
                .enabled(true)
                .path(&props.health_check_path)
                .protocol("HTTP")
                .matcher("200")
                .interval(30)
                .timeout(5)
                .healthy_threshold(2)
                .unhealthy_threshold(3);
            let group = LbTargetGroup::new()
                .name(scope.name(color))
                .port(props.target_port)
                .protocol("HTTP")
                .target_type("ip")
                .vpc_id(&props.vpc_id)
                // The schema types it as a string; keel has always written the number,
                // which Terraform converts (kept so the output does not change).
                .deregistration_delay(Val::converted(30))
                .health_check(health_check);
            scope.tf.add_with(f, color, group, suppressions).into_ref()
        };
        let https = props.certificate_arn.is_some();
        let blue = tg(scope, "blue", if https { &[] } else { &[HTTP_TO_TARGETS] });
        let green = tg(scope, "green", &[HTTP_TO_TARGETS]);
        let forward_blue = DefaultAction::new("forward").target_group_arn(blue.arn());
        // CodeDeploy rewrites the forward action on every deployment; Terraform must not
        // switch it back (hashicorp/terraform-provider-aws#632).
        let ignore_action = Lifecycle::new().ignore_changes(["default_action".to_owned()]);
        let (production_listener, listeners) = match &props.certificate_arn {
            Some(cert) => {
                let https = LbListener::new(lb.arn(), forward_blue)
                    .port(443)
                    .protocol("HTTPS")
                    .ssl_policy("ELBSecurityPolicy-TLS13-1-2-2021-06")
                    .certificate_arn(cert)
                    .lifecycle(ignore_action);
                let https = scope.tf.add(f, "https", https).into_ref();
                let redirect = DefaultActionRedirect::new("HTTP_301")
                    .port("443")
                    .protocol("HTTPS");
                let http =
                    LbListener::new(lb.arn(), DefaultAction::new("redirect").redirect(redirect))
                        .port(80)
                        .protocol("HTTP");
                let http = scope.tf.add(f, "http", http).into_ref();
                (https.clone(), vec![https, http])
            }
            None => {
                let http = LbListener::new(lb.arn(), forward_blue)
                    .port(80)
                    .protocol("HTTP")
                    .lifecycle(ignore_action);
                let http = scope
                    .tf
                    .add_with(
                        f,
                        "http",
                        http,
                        &[
                            Suppression {
                                check: "CKV_AWS_2",
                                reason: "this environment has no ACM certificate; keel warns at synth and refuses it in prod",
                            },
                            Suppression {
                                check: "CKV_AWS_103",
                                reason: "plain HTTP listener (no certificate in this environment): no TLS to configure",
                            },
                        ],
                    )
                    .into_ref();
                (http.clone(), vec![http])
            }
        };
        let lb = lb.into_ref();
        Alb {
            lb,
            blue,
            green,
            production_listener,
            listeners,
        }
    }

    /// DNS name of the load balancer.
    pub fn dns_name(&self) -> Expr {
        self.lb.attr("dns_name")
    }

    /// `app/<name>/<id>`, the `LoadBalancer` dimension of CloudWatch metrics.
    pub fn arn_suffix(&self) -> Expr {
        self.lb.attr("arn_suffix")
    }

    /// The blue target group (live traffic at creation).
    pub fn blue(&self) -> &Ref {
        &self.blue
    }

    /// The green target group (the replacement task set during a deployment).
    pub fn green(&self) -> &Ref {
        &self.green
    }

    /// The listener that carries production traffic (HTTPS, or HTTP without a certificate).
    pub fn production_listener_arn(&self) -> Expr {
        self.production_listener.arn()
    }

    /// Addresses of every listener, for `depends_on` of the ECS service.
    pub fn listener_addresses(&self) -> Vec<String> {
        self.listeners.iter().map(Ref::address).collect()
    }
}
