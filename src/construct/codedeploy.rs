//! CodeDeploy blue/green for an ECS service: the application, custom canary and linear
//! configs, and a deployment group that rolls back on failure and on alarms.

use serde_json::json;

use super::Scope;
use super::iam::{Role, Statement, Trust};
use crate::env::file::DeploymentStrategy;
use crate::refs::Expr;

/// Options for [`EcsBlueGreen`].
#[derive(Debug, Clone)]
pub struct EcsBlueGreenProps {
    /// Cluster name.
    pub cluster_name: Expr,
    /// Service name.
    pub service_name: Expr,
    /// Production listener ARN.
    pub listener_arn: Expr,
    /// Blue target group name.
    pub blue_target_group: Expr,
    /// Green target group name.
    pub green_target_group: Expr,
    /// Traffic-shifting strategy.
    pub strategy: DeploymentStrategy,
    /// Minutes the old task set keeps running after success.
    pub termination_wait_minutes: u32,
    /// Alarm names that stop and roll back a deployment.
    pub alarm_names: Vec<Expr>,
    /// Topic notified of deployment state changes.
    pub topic_arn: Expr,
    /// KMS key encrypting that topic (CodeDeploy needs to use it to publish).
    pub topic_key_arn: Expr,
}

/// Blue/green deployment wiring.
#[derive(Debug, Clone)]
pub struct EcsBlueGreen {
    app_name: Expr,
    group_name: Expr,
}

/// Name of the built-in all-at-once config.
const ALL_AT_ONCE: &str = "CodeDeployDefault.ECSAllAtOnce";

impl EcsBlueGreen {
    /// Creates the application, both custom configs, the service role and the group.
    pub fn new(scope: &mut Scope<'_>, props: &EcsBlueGreenProps) -> EcsBlueGreen {
        let f = "deploy";
        let app = scope.tf.resource(
            f,
            "aws_codedeploy_app",
            "main",
            json!({"name": scope.name("app"), "compute_platform": "ECS"}),
        );
        let canary = scope.tf.resource(
            f,
            "aws_codedeploy_deployment_config",
            "canary_10_percent_15_minutes",
            json!({
                "deployment_config_name": scope.name("canary-10pct-15min"),
                "compute_platform": "ECS",
                "traffic_routing_config": [{
                    "type": "TimeBasedCanary",
                    "time_based_canary": [{"percentage": 10, "interval": 15}],
                }],
            }),
        );
        let linear = scope.tf.resource(
            f,
            "aws_codedeploy_deployment_config",
            "linear_10_percent_every_5_minutes",
            json!({
                "deployment_config_name": scope.name("linear-10pct-every-5min"),
                "compute_platform": "ECS",
                "traffic_routing_config": [{
                    "type": "TimeBasedLinear",
                    "time_based_linear": [{"percentage": 10, "interval": 5}],
                }],
            }),
        );
        let config_name: serde_json::Value = match props.strategy {
            DeploymentStrategy::Canary10Percent15Minutes => canary.attr("id").into(),
            DeploymentStrategy::Linear10PercentEvery5Minutes => linear.attr("id").into(),
            DeploymentStrategy::AllAtOnce => ALL_AT_ONCE.into(),
        };
        let role = Role::new(
            scope,
            "codedeploy",
            "codedeploy",
            Trust::Service("codedeploy.amazonaws.com"),
            &["AWSCodeDeployRoleForECS"],
            vec![Statement::allow(
                "PublishToEncryptedTopic",
                &["kms:GenerateDataKey*", "kms:Decrypt"],
                vec![props.topic_key_arn.to_string()],
            )],
        );
        let group = scope.tf.resource(
            f,
            "aws_codedeploy_deployment_group",
            "main",
            json!({
                "app_name": app.attr("name"),
                "deployment_group_name": scope.name("app"),
                "deployment_config_name": config_name,
                "service_role_arn": role.arn(),
                "deployment_style": [{
                    "deployment_type": "BLUE_GREEN",
                    "deployment_option": "WITH_TRAFFIC_CONTROL",
                }],
                "blue_green_deployment_config": [{
                    "deployment_ready_option": [{"action_on_timeout": "CONTINUE_DEPLOYMENT"}],
                    "terminate_blue_instances_on_deployment_success": [{
                        "action": "TERMINATE",
                        "termination_wait_time_in_minutes": props.termination_wait_minutes,
                    }],
                }],
                "ecs_service": [{"cluster_name": props.cluster_name, "service_name": props.service_name}],
                "load_balancer_info": [{
                    "target_group_pair_info": [{
                        "prod_traffic_route": [{"listener_arns": [props.listener_arn]}],
                        "target_group": [{"name": props.blue_target_group}, {"name": props.green_target_group}],
                    }],
                }],
                "auto_rollback_configuration": [{
                    "enabled": true,
                    "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"],
                }],
                "alarm_configuration": [{
                    "enabled": true,
                    "alarms": super::expr_list(&props.alarm_names),
                }],
                "trigger_configuration": [{
                    "trigger_name": scope.name("deployment-state"),
                    "trigger_target_arn": props.topic_arn,
                    "trigger_events": ["DeploymentStart", "DeploymentSuccess", "DeploymentFailure", "DeploymentStop", "DeploymentRollback"],
                }],
            }),
        );
        EcsBlueGreen {
            app_name: app.attr("name"),
            group_name: group.attr("deployment_group_name"),
        }
    }

    /// The CodeDeploy application name.
    pub fn app_name(&self) -> Expr {
        self.app_name.clone()
    }

    /// The deployment group name.
    pub fn group_name(&self) -> Expr {
        self.group_name.clone()
    }
}
