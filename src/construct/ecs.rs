//! ECS on Fargate: a cluster with Container Insights, a task definition whose secrets come
//! from Secrets Manager, a service under the CODE_DEPLOY controller, and Application Auto
//! Scaling with CPU, memory and request-count target tracking.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::Scope;
use super::kms::KmsKey;
use super::log_group::{encrypted_log_group, log_group_name};
use crate::refs::{Expr, Ref, jsonencode};

/// Options for [`EcsService`].
#[derive(Debug, Clone)]
pub struct EcsServiceProps {
    /// Container image reference (`repo@sha256:...` or `repo:tag`).
    pub image: String,
    /// Port the container listens on.
    pub container_port: u16,
    /// CPU units.
    pub cpu: u32,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// Days to keep container logs.
    pub log_retention_days: u32,
    /// Plain (non-secret) environment variables.
    pub environment: BTreeMap<String, Value>,
    /// Secret environment variables: name → Secrets Manager ARN (optionally `:json-key::`).
    pub secrets: BTreeMap<String, Value>,
    /// Execution role (pulls the image, reads the secrets, writes logs).
    pub execution_role_arn: Expr,
    /// Role the application runs as.
    pub task_role_arn: Expr,
    /// Private subnets the tasks run in.
    pub subnet_ids: Vec<Expr>,
    /// The tasks' security group.
    pub security_group_id: Expr,
    /// Target group the service registers with at creation (blue).
    pub target_group_arn: Expr,
    /// Listener addresses the service must wait for.
    pub depends_on: Vec<String>,
    /// Tasks at creation.
    pub desired_count: u32,
}

/// Scaling bounds and targets for [`EcsService::autoscale`].
#[derive(Debug, Clone)]
pub struct ScalingProps {
    /// Fewest tasks.
    pub min: u32,
    /// Most tasks.
    pub max: u32,
    /// CPU target, percent.
    pub cpu_percent: u32,
    /// Memory target, percent.
    pub memory_percent: u32,
    /// Requests per target to hold.
    pub requests_per_target: u32,
    /// `app/<lb>/<id>/targetgroup/<tg>/<id>` label of the request-count metric.
    pub request_count_label: String,
}

/// A cluster, task definition and service.
#[derive(Debug, Clone)]
pub struct EcsService {
    cluster: Ref,
    service: Ref,
    log_group: Ref,
}

/// Suffix of the ECS Exec session log group.
const EXEC_LOGS: &str = "ecs-exec";

/// Name of the application container in the task definition.
pub const CONTAINER_NAME: &str = "app";

impl EcsService {
    /// Creates the cluster, log group, task definition and service.
    pub fn new(scope: &mut Scope<'_>, key: &KmsKey, props: &EcsServiceProps) -> EcsService {
        let f = "ecs";
        let exec_logs = encrypted_log_group(scope, key, f, "exec", EXEC_LOGS, 365);
        let cluster = scope.tf.resource(
            f,
            "aws_ecs_cluster",
            "main",
            json!({
                "name": scope.name("cluster"),
                "setting": [{"name": "containerInsights", "value": "enabled"}],
                "configuration": [{
                    "execute_command_configuration": [{
                        "kms_key_id": key.arn(),
                        "logging": "OVERRIDE",
                        "log_configuration": [{
                            "cloud_watch_log_group_name": exec_logs.attr("name"),
                            "cloud_watch_encryption_enabled": true,
                        }],
                    }],
                }],
            }),
        );
        let log_group = encrypted_log_group(scope, key, f, "app", "app", props.log_retention_days);
        let region = scope.tf.region().to_owned();
        let container = json!([{
            "name": CONTAINER_NAME,
            "image": props.image,
            "essential": true,
            "readonlyRootFilesystem": true,
            "portMappings": [{"containerPort": props.container_port, "protocol": "tcp", "name": "http"}],
            "environment": props.environment.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
            "secrets": props.secrets.iter().map(|(k, v)| json!({"name": k, "valueFrom": v})).collect::<Vec<_>>(),
            "linuxParameters": {"initProcessEnabled": true},
            "mountPoints": [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": false}],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": log_group.attr("name"),
                    "awslogs-region": region,
                    "awslogs-stream-prefix": CONTAINER_NAME,
                },
            },
        }]);
        let container_definitions = scope.tf.local(f, "app_container_definitions", container);
        let task = scope.tf.resource(
            f,
            "aws_ecs_task_definition",
            "app",
            json!({
                "family": scope.name("app"),
                "requires_compatibilities": ["FARGATE"],
                "network_mode": "awsvpc",
                "cpu": props.cpu.to_string(),
                "memory": props.memory_mib.to_string(),
                "execution_role_arn": props.execution_role_arn,
                "task_role_arn": props.task_role_arn,
                "runtime_platform": [{"operating_system_family": "LINUX", "cpu_architecture": "X86_64"}],
                "volume": [{"name": "tmp"}],
                "container_definitions": jsonencode(&container_definitions),
            }),
        );
        let service = scope.tf.resource(
            f,
            "aws_ecs_service",
            "app",
            json!({
                "name": scope.name("app"),
                "cluster": cluster.id(),
                "task_definition": task.arn(),
                "desired_count": props.desired_count,
                "launch_type": "FARGATE",
                "platform_version": "LATEST",
                "enable_execute_command": true,
                "enable_ecs_managed_tags": true,
                "propagate_tags": "SERVICE",
                "health_check_grace_period_seconds": 60,
                "deployment_controller": [{"type": "CODE_DEPLOY"}],
                "network_configuration": [{
                    "subnets": super::expr_list(&props.subnet_ids),
                    "security_groups": [props.security_group_id],
                    "assign_public_ip": false,
                }],
                "load_balancer": [{
                    "target_group_arn": props.target_group_arn,
                    "container_name": CONTAINER_NAME,
                    "container_port": props.container_port,
                }],
                // CodeDeploy owns the task definition and target group after the first
                // deployment, and auto scaling owns the count: the next plan must not undo them.
                "lifecycle": {"ignore_changes": ["task_definition", "load_balancer", "desired_count"]},
                "depends_on": props.depends_on,
            }),
        );
        EcsService {
            cluster,
            service,
            log_group,
        }
    }

    /// Adds the scalable target and the three target-tracking policies (scale out after
    /// 60 s, in after 300 s).
    pub fn autoscale(&self, scope: &mut Scope<'_>, props: &ScalingProps) {
        let f = "ecs";
        let target = scope.tf.resource(
            f,
            "aws_appautoscaling_target",
            "app",
            json!({
                "service_namespace": "ecs",
                "scalable_dimension": "ecs:service:DesiredCount",
                "resource_id": format!("service/{}/{}", self.cluster.attr("name"), self.service.attr("name")),
                "min_capacity": props.min,
                "max_capacity": props.max,
            }),
        );
        let policies: [(&str, &str, u32, Option<&str>); 3] = [
            (
                "cpu",
                "ECSServiceAverageCPUUtilization",
                props.cpu_percent,
                None,
            ),
            (
                "memory",
                "ECSServiceAverageMemoryUtilization",
                props.memory_percent,
                None,
            ),
            (
                "requests",
                "ALBRequestCountPerTarget",
                props.requests_per_target,
                Some(props.request_count_label.as_str()),
            ),
        ];
        for (id, metric, value, label) in policies {
            let mut predefined = json!({"predefined_metric_type": metric});
            if let Some(label) = label {
                predefined["resource_label"] = Value::String(label.to_owned());
            }
            scope.tf.resource(
                f,
                "aws_appautoscaling_policy",
                id,
                json!({
                    "name": scope.name(&format!("{id}-target-tracking")),
                    "policy_type": "TargetTrackingScaling",
                    "service_namespace": target.attr("service_namespace"),
                    "scalable_dimension": target.attr("scalable_dimension"),
                    "resource_id": target.attr("resource_id"),
                    "target_tracking_scaling_policy_configuration": [{
                        "target_value": value,
                        "scale_out_cooldown": 60,
                        "scale_in_cooldown": 300,
                        "predefined_metric_specification": [predefined],
                    }],
                }),
            );
        }
    }

    /// ARN pattern of the ECS Exec session log group (known before the cluster exists, so
    /// the task role can be granted it).
    pub fn exec_log_group_arn(scope: &Scope<'_>) -> String {
        format!(
            "arn:{}:logs:{}:{}:log-group:{}:*",
            scope.partition(),
            scope.tf.region(),
            scope.tf.account_id(),
            log_group_name(scope, EXEC_LOGS)
        )
    }

    /// The cluster name.
    pub fn cluster_name(&self) -> Expr {
        self.cluster.attr("name")
    }

    /// The service name.
    pub fn service_name(&self) -> Expr {
        self.service.attr("name")
    }

    /// The container log group name.
    pub fn log_group_name(&self) -> Expr {
        self.log_group.attr("name")
    }
}
