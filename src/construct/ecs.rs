//! ECS on Fargate: a cluster with Container Insights, a task definition whose secrets come
//! from Secrets Manager, a service under the CODE_DEPLOY controller, and Application Auto
//! Scaling with CPU, memory and request-count target tracking.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::Scope;
use super::kms::KmsKey;
use super::log_group::{encrypted_log_group, log_group_name};
use crate::refs::{Expr, Ref, jsonencode};
use crate::tf::aws;
use crate::tf::aws::resource::appautoscaling_policy::AppautoscalingPolicy;
use crate::tf::aws::resource::ecs_cluster::{
    Configuration, ConfigurationExecuteCommandConfiguration,
    ConfigurationExecuteCommandConfigurationLogConfiguration, EcsCluster, Setting,
};
use crate::tf::aws::resource::ecs_service::{
    DeploymentController, LoadBalancer, NetworkConfiguration,
};
use crate::tf::aws::resource::ecs_task_definition::{EcsTaskDefinition, RuntimePlatform, Volume};
use crate::tf::aws::resource::{AppautoscalingTarget, appautoscaling_policy};
use crate::tf::bind::{Lifecycle, Precondition};

/// The target-tracking blocks of `aws_appautoscaling_policy`, by shorter names.
mod policy {
    pub use super::appautoscaling_policy::{
        TargetTrackingScalingPolicyConfiguration as Tracking,
        TargetTrackingScalingPolicyConfigurationCustomizedMetricSpecification as Customized,
        TargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetrics as Metrics,
        TargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricsMetricStat as MetricStat,
        TargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricsMetricStatMetric as Metric,
        TargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricsMetricStatMetricDimensions as MetricDimension,
        TargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification as Predefined,
    };
}

/// The ECS cluster's name in `scope`: `<prefix>-cluster` (deterministic, for scripts).
pub fn cluster_name_of(scope: &Scope<'_>) -> String {
    scope.name("cluster")
}

/// The ECS service's name in `scope`: `<prefix>-app` (deterministic, for scripts).
pub fn service_name_of(scope: &Scope<'_>) -> String {
    scope.name("app")
}

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
    /// The RDS CA bundle the app verifies its database with: when fetched, a non-essential
    /// `rds-ca` container downloads it into a task volume the app mounts read-only at its
    /// directory and waits for ([`super::rds_tls`]). Default: none.
    pub rds_ca: Option<super::rds_tls::CaBundle>,
    /// Days to keep ECS Exec session logs (an audit trail: the tier's audit retention,
    /// [`crate::env::Env::audit_log_retention_days`]).
    pub exec_log_retention_days: u32,
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
    /// `lifecycle.precondition`s of the service (e.g. [`super::secrets::Secret::require_value`]):
    /// the apply stops before starting tasks that could not run.
    pub preconditions: Vec<Precondition>,
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
    /// Requests per running task and minute to hold.
    pub requests_per_target: u32,
    /// `app/<lb>/<id>` (the load balancer's `arn_suffix`): its request count is divided by
    /// the running tasks, so scaling follows traffic whichever target group CodeDeploy made
    /// live (a target group's own per-target metric goes silent every other deployment).
    pub load_balancer: Expr,
}

/// A cluster, task definition and service.
#[derive(Debug, Clone)]
pub struct EcsService {
    cluster: Ref,
    service: Ref,
    task: Ref,
    log_group: Ref,
    container_port: u16,
    roles: [Expr; 2],
    subnet_ids: Vec<Expr>,
    security_group_id: Expr,
}

/// Suffix of the ECS Exec session log group.
const EXEC_LOGS: &str = "ecs-exec";

/// Name of the application container in the task definition.
pub const CONTAINER_NAME: &str = "app";

/// The container that fetches the RDS CA bundle before the app starts.
const RDS_CA: &str = "rds-ca";

/// Paths the ECS Exec agent writes to; with a read-only root filesystem each gets a
/// writable task volume, or `execute-command` cannot start a session.
const EXEC_AGENT_PATHS: [(&str, &str); 3] = [
    ("exec-managed-agents", "/managed-agents"),
    ("exec-ssm-state", "/var/lib/amazon/ssm"),
    ("exec-ssm-logs", "/var/log/amazon/ssm"),
];

impl EcsService {
    /// Creates the cluster, log group, task definition and service.
    pub fn new(scope: &mut Scope<'_>, key: &KmsKey, props: &EcsServiceProps) -> EcsService {
        let f = "ecs";
        let exec_logs = encrypted_log_group(
            scope,
            key,
            f,
            "exec",
            EXEC_LOGS,
            props.exec_log_retention_days,
        );
        let exec_logging = ConfigurationExecuteCommandConfigurationLogConfiguration::new()
            .cloud_watch_log_group_name(exec_logs.attr("name"))
            .cloud_watch_encryption_enabled(true);
        let exec = ConfigurationExecuteCommandConfiguration::new()
            .kms_key_id(key.arn())
            .logging("OVERRIDE")
            .log_configuration(exec_logging);
        let cluster = EcsCluster::new(cluster_name_of(scope))
            .setting([Setting::new("containerInsights", "enabled")])
            .configuration(Configuration::new().execute_command_configuration(exec));
        let cluster = scope.tf.add(f, "main", cluster).into_ref();
        let log_group = encrypted_log_group(scope, key, f, "app", "app", props.log_retention_days);
        let region = scope.tf.region().to_owned();
        let writable: Vec<(&str, &str)> = std::iter::once(("tmp", "/tmp"))
            .chain(EXEC_AGENT_PATHS)
            .collect();
        let mut container = json!([{
            "name": CONTAINER_NAME,
            "image": props.image,
            "essential": true,
            "readonlyRootFilesystem": true,
            "portMappings": [{"containerPort": props.container_port, "protocol": "tcp", "name": "http"}],
            "environment": props.environment.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
            "secrets": props.secrets.iter().map(|(k, v)| json!({"name": k, "valueFrom": v})).collect::<Vec<_>>(),
            "linuxParameters": {"initProcessEnabled": true},
            "mountPoints": writable
                .iter()
                .map(|(volume, path)| json!({"sourceVolume": volume, "containerPath": path, "readOnly": false}))
                .collect::<Vec<_>>(),
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": log_group.attr("name"),
                    "awslogs-region": region,
                    "awslogs-stream-prefix": CONTAINER_NAME,
                },
            },
        }]);
        let mut volumes: Vec<Volume> = writable
            .iter()
            .map(|(volume, _)| Volume::new(*volume))
            .collect();
        if let Some(super::rds_tls::CaBundle::Fetched(path)) = props.rds_ca {
            let dir = path.rsplit_once('/').map_or("/", |(dir, _)| dir);
            container[0]["dependsOn"] = json!([{"containerName": RDS_CA, "condition": "SUCCESS"}]);
            if let Some(mounts) = container[0]["mountPoints"].as_array_mut() {
                mounts
                    .push(json!({"sourceVolume": RDS_CA, "containerPath": dir, "readOnly": true}));
            }
            if let Some(all) = container.as_array_mut() {
                all.push(json!({
                    "name": RDS_CA,
                    "image": super::db_client::POSTGRES_CLIENT_IMAGE,
                    "essential": false,
                    "readonlyRootFilesystem": true,
                    "command": ["/bin/sh", "-c", format!("set -eu\n{}", super::rds_tls::fetch_lines(path))],
                    "linuxParameters": {"capabilities": {"drop": ["ALL"]}},
                    "mountPoints": [{"sourceVolume": RDS_CA, "containerPath": dir, "readOnly": false}],
                    "logConfiguration": {
                        "logDriver": "awslogs",
                        "options": {
                            "awslogs-group": log_group.attr("name"),
                            "awslogs-region": region,
                            "awslogs-stream-prefix": RDS_CA,
                        },
                    },
                }));
            }
            volumes.push(Volume::new(RDS_CA));
        }
        let container_definitions = scope.tf.local(f, "app_container_definitions", container);
        let task = EcsTaskDefinition::new(jsonencode(&container_definitions), scope.name("app"))
            .requires_compatibilities(["FARGATE"])
            .network_mode("awsvpc")
            .cpu(props.cpu.to_string())
            .memory(props.memory_mib.to_string())
            .execution_role_arn(&props.execution_role_arn)
            .task_role_arn(&props.task_role_arn)
            .runtime_platform(
                RuntimePlatform::new()
                    .operating_system_family("LINUX")
                    .cpu_architecture("X86_64"),
            )
            .volume(volumes)
            // Every revision stays registered: CodeDeploy deploys the newest, and a
            // rollback (or the running service) still points at the previous one.
            .skip_destroy(true);
        let task = scope.tf.add(f, "app", task).into_ref();
        // CodeDeploy owns the task definition and target group after the first
        // deployment, and auto scaling owns the count: the next plan must not undo them.
        // ECS refuses a new network configuration or platform version of a CODE_DEPLOY
        // service ("use AWS CodeDeploy to trigger a new deployment"): every deployment's
        // AppSpec carries the configured ones ([`super::codedeploy::deploy_files`]).
        let lifecycle = Lifecycle::new()
            .ignore_changes(
                [
                    "task_definition",
                    "load_balancer",
                    "desired_count",
                    "network_configuration",
                    "platform_version",
                ]
                .map(str::to_owned),
            )
            .precondition(props.preconditions.iter().cloned());
        let network = NetworkConfiguration::new(props.subnet_ids.clone())
            .security_groups([&props.security_group_id])
            .assign_public_ip(false);
        let service = aws::resource::EcsService::new(service_name_of(scope))
            .cluster(cluster.id())
            .task_definition(task.arn())
            .desired_count(props.desired_count)
            .launch_type("FARGATE")
            .platform_version(super::codedeploy::PLATFORM_VERSION)
            .enable_execute_command(true)
            .enable_ecs_managed_tags(true)
            .propagate_tags("SERVICE")
            .health_check_grace_period_seconds(60)
            .deployment_controller(DeploymentController::new().r#type("CODE_DEPLOY"))
            .network_configuration(network)
            .load_balancer([LoadBalancer::new(CONTAINER_NAME, props.container_port)
                .target_group_arn(&props.target_group_arn)])
            .lifecycle(lifecycle)
            .depends_on(props.depends_on.clone());
        let service = scope.tf.add(f, "app", service).into_ref();
        EcsService {
            cluster,
            service,
            task,
            log_group,
            container_port: props.container_port,
            roles: [
                props.task_role_arn.clone(),
                props.execution_role_arn.clone(),
            ],
            subnet_ids: props.subnet_ids.clone(),
            security_group_id: props.security_group_id.clone(),
        }
    }

    /// Adds the scalable target and the three target-tracking policies (scale out after
    /// 60 s, in after 300 s).
    pub fn autoscale(&self, scope: &mut Scope<'_>, props: &ScalingProps) {
        let f = "ecs";
        let target = AppautoscalingTarget::new(
            props.max,
            props.min,
            format!(
                "service/{}/{}",
                self.cluster.attr("name"),
                self.service.attr("name")
            ),
            "ecs:service:DesiredCount",
            "ecs",
        );
        let target = scope.tf.add(f, "app", target);
        let metric = |namespace: &str, name: &str, stat: &str, dimensions: Vec<(&str, Expr)>| {
            let dimensions = dimensions
                .into_iter()
                .map(|(name, value)| policy::MetricDimension::new(name, value));
            policy::MetricStat::new(
                stat,
                policy::Metric::new(name, namespace).dimensions(dimensions),
            )
        };
        let requests = policy::Metrics::new("requests")
            .label("requests to the load balancer")
            .return_data(false)
            .metric_stat(metric(
                "AWS/ApplicationELB",
                "RequestCount",
                "Sum",
                vec![("LoadBalancer", props.load_balancer.clone())],
            ));
        let tasks = policy::Metrics::new("tasks")
            .label("running tasks")
            .return_data(false)
            .metric_stat(metric(
                "ECS/ContainerInsights",
                "RunningTaskCount",
                "Average",
                vec![
                    ("ClusterName", self.cluster.attr("name")),
                    ("ServiceName", self.service.attr("name")),
                ],
            ));
        let per_task = policy::Metrics::new("requests_per_task")
            .label("requests per running task (both target groups)")
            .expression("requests / tasks")
            .return_data(true);
        let predefined = |value: u32, metric: &str| {
            policy::Tracking::new(value)
                .predefined_metric_specification(policy::Predefined::new(metric))
        };
        let policies = [
            (
                "cpu",
                predefined(props.cpu_percent, "ECSServiceAverageCPUUtilization"),
            ),
            (
                "memory",
                predefined(props.memory_percent, "ECSServiceAverageMemoryUtilization"),
            ),
            (
                "requests",
                policy::Tracking::new(props.requests_per_target).customized_metric_specification(
                    policy::Customized::new().metrics([requests, tasks, per_task]),
                ),
            ),
        ];
        for (id, config) in policies {
            let config = config.scale_out_cooldown(60).scale_in_cooldown(300);
            let block = AppautoscalingPolicy::new(
                scope.name(&format!("{id}-target-tracking")),
                target.resource_id(),
                target.scalable_dimension(),
                target.service_namespace(),
            )
            .policy_type("TargetTrackingScaling")
            .target_tracking_scaling_policy_configuration(config);
            scope.tf.add(f, id, block);
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

    /// ARN of the task definition revision this apply registered: what the next CodeDeploy
    /// deployment rolls out.
    pub fn task_definition_arn(&self) -> Expr {
        self.task.arn()
    }

    /// The task role and the execution role its task definition names: whoever registers
    /// or deploys a revision (CodeDeploy's CreateTaskSet) must be allowed to pass both.
    pub fn task_role_arns(&self) -> &[Expr; 2] {
        &self.roles
    }

    /// The tasks' configured subnets and security groups, each as a JSON list
    /// (`jsonencode([...])`) for the AppSpec: the service itself keeps the ones of its
    /// last deployment.
    pub fn task_network_json(&self) -> (Expr, Expr) {
        let list = |items: &[Expr]| {
            let items: Vec<&str> = items.iter().map(Expr::as_hcl).collect();
            jsonencode(&Expr::raw(format!("[{}]", items.join(", "))))
        };
        (
            list(&self.subnet_ids),
            list(std::slice::from_ref(&self.security_group_id)),
        )
    }

    /// The container CodeDeploy routes traffic to, and its port.
    pub fn container(&self) -> (&'static str, u16) {
        (CONTAINER_NAME, self.container_port)
    }

    /// The container log group name.
    pub fn log_group_name(&self) -> Expr {
        self.log_group.attr("name")
    }
}
