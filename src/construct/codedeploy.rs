//! CodeDeploy blue/green for an ECS service: the application, custom canary and linear
//! configs, a deployment group that rolls back on failure and on its own alarms, and the
//! files the deploy workflow runs (`deploy/appspec.yaml`, `deploy/create-deployment.sh`).
//!
//! Terraform registers each new task definition revision but leaves the service alone
//! (CodeDeploy owns which revision runs): the deploy workflow starts the deployment.

use std::collections::BTreeMap;

use super::Scope;
use super::iam::{Role, Statement, Trust};
use super::observability::{Alarm, Combine, Comparison, MathAlarm, MathInput, Metric, MissingData};
use crate::refs::Expr;
use crate::rollout::{Analysis, CodeDeployShift, Strategy};
use crate::tf::aws::resource::CodedeployApp;
use crate::tf::aws::resource::codedeploy_deployment_config::{
    CodedeployDeploymentConfig, TrafficRoutingConfig, TrafficRoutingConfigTimeBasedCanary,
    TrafficRoutingConfigTimeBasedLinear,
};
use crate::tf::aws::resource::codedeploy_deployment_group::{
    AlarmConfiguration, AutoRollbackConfiguration, BlueGreenDeploymentConfig,
    BlueGreenDeploymentConfigDeploymentReadyOption,
    BlueGreenDeploymentConfigTerminateBlueInstancesOnDeploymentSuccess, CodedeployDeploymentGroup,
    DeploymentStyle, EcsService, LoadBalancerInfo, LoadBalancerInfoTargetGroupPairInfo,
    LoadBalancerInfoTargetGroupPairInfoProdTrafficRoute,
    LoadBalancerInfoTargetGroupPairInfoTargetGroup, TriggerConfiguration,
};
use crate::tf::bind::Val;

/// What the deployment's rollback alarms watch.
#[derive(Debug, Clone)]
pub struct RollbackTargets {
    /// ECS cluster name.
    pub cluster_name: Expr,
    /// ECS service name.
    pub service_name: Expr,
    /// The load balancer's `arn_suffix`.
    pub load_balancer: Expr,
    /// Both target groups' `arn_suffix`es: CodeDeploy alternates between them.
    pub target_groups: [Expr; 2],
}

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
    /// Traffic schedule; must be one CodeDeploy can express ([`Strategy::codedeploy`]).
    pub strategy: Strategy,
    /// Health thresholds that also roll a deployment back ([`analysis_alarms`]).
    pub analysis: Option<Analysis>,
    /// Minutes the old task set keeps running after success.
    pub termination_wait_minutes: u32,
    /// What the rollback alarms watch ([`rollback_alarms`]).
    pub rollback: RollbackTargets,
    /// Topic notified of deployment state changes.
    pub topic_arn: Expr,
    /// KMS key encrypting that topic (CodeDeploy needs to use it to publish).
    pub topic_key_arn: Expr,
    /// The roles the service's task definition names ([`super::ecs::EcsService::task_role_arns`]):
    /// CodeDeploy passes them to ECS when it creates the replacement task set.
    pub task_role_arns: Vec<Expr>,
}

/// The principal a CodeDeploy ECS role may pass the task roles to, and nothing else.
pub const ECS_TASKS_PRINCIPAL: &str = "ecs-tasks.amazonaws.com";

/// Blue/green deployment wiring.
#[derive(Debug, Clone)]
pub struct EcsBlueGreen {
    app_name: Expr,
    group_name: Expr,
}

/// Name of the built-in all-at-once config.
const ALL_AT_ONCE: &str = "CodeDeployDefault.ECSAllAtOnce";

/// The seed's custom configs: canary 10 % for 15 minutes, linear 10 % every 5 minutes.
const STANDARD_CONFIGS: [CodeDeployShift; 2] = [
    CodeDeployShift::Canary {
        percent: 10,
        interval: 15,
    },
    CodeDeployShift::Linear {
        percent: 10,
        interval: 5,
    },
];

/// The custom deployment config of `shift`: (resource label, name suffix, traffic routing),
/// or `None` for the built-in all-at-once config.
fn config(shift: CodeDeployShift) -> Option<(String, String, TrafficRoutingConfig)> {
    let (label, name, routing) = match shift {
        CodeDeployShift::AllAtOnce => return None,
        CodeDeployShift::Canary { percent, interval } => (
            format!("canary_{percent}_percent_{interval}_minutes"),
            format!("canary-{percent}pct-{interval}min"),
            TrafficRoutingConfig::new()
                .r#type("TimeBasedCanary")
                .time_based_canary(
                    TrafficRoutingConfigTimeBasedCanary::new()
                        .percentage(percent)
                        .interval(interval),
                ),
        ),
        CodeDeployShift::Linear { percent, interval } => (
            format!("linear_{percent}_percent_every_{interval}_minutes"),
            format!("linear-{percent}pct-every-{interval}min"),
            TrafficRoutingConfig::new()
                .r#type("TimeBasedLinear")
                .time_based_linear(
                    TrafficRoutingConfigTimeBasedLinear::new()
                        .percentage(percent)
                        .interval(interval),
                ),
        ),
    };
    Some((label, name, routing))
}

impl EcsBlueGreen {
    /// Creates the application, the custom configs, the service role and the group; fails
    /// when the strategy is one CodeDeploy cannot express.
    pub fn new(scope: &mut Scope<'_>, props: &EcsBlueGreenProps) -> Result<EcsBlueGreen, String> {
        let f = "deploy";
        let app = scope.tf.add(
            f,
            "main",
            CodedeployApp::new(scope.name("app")).compute_platform("ECS"),
        );
        let chosen = props
            .strategy
            .codedeploy()
            .map_err(|why| format!("deployment strategy {:?}: {why}", props.strategy))?;
        // The seed's two custom configs always exist, so an operator can pick either for
        // one deployment; the environment's choice is added when it is another one.
        let mut configs = BTreeMap::new();
        for shift in STANDARD_CONFIGS.into_iter().chain([chosen]) {
            if let Some((label, name, routing)) = config(shift) {
                configs.entry(label).or_insert((name, routing));
            }
        }
        let mut chosen_id = None;
        for (label, (name, routing)) in configs {
            let block = CodedeployDeploymentConfig::new(scope.name(&name))
                .compute_platform("ECS")
                .traffic_routing_config(routing);
            let r = scope.tf.add(f, &label, block);
            if config(chosen).is_some_and(|(l, ..)| l == label) {
                chosen_id = Some(r.id());
            }
        }
        let config_name: Val<String> = match chosen_id {
            Some(id) => id.into(),
            None => ALL_AT_ONCE.into(),
        };
        // The Limited policy: no Lambda invoke, S3 read, SNS publish or PassRole on `*`.
        // It may pass only `ecsTaskExecutionRole*`, so CreateTaskSet would fail with any
        // other role: pass exactly the service's own task roles, to ECS tasks only.
        let role = Role::new(
            scope,
            "codedeploy",
            "codedeploy",
            Trust::Service("codedeploy.amazonaws.com"),
            &["AWSCodeDeployRoleForECSLimited"],
            vec![
                Statement::allow(
                    "PublishDeploymentEvents",
                    &["sns:Publish"],
                    vec![props.topic_arn.to_string()],
                ),
                Statement::allow(
                    "PublishToEncryptedTopic",
                    &["kms:GenerateDataKey*", "kms:Decrypt"],
                    vec![props.topic_key_arn.to_string()],
                ),
                Statement::allow(
                    "PassTaskRolesToEcs",
                    &["iam:PassRole"],
                    props.task_role_arns.iter().map(Expr::to_string).collect(),
                )
                .when(
                    "StringEquals",
                    "iam:PassedToService",
                    vec![ECS_TASKS_PRINCIPAL.to_owned()],
                ),
            ],
        );
        let mut alarm_names: Vec<Expr> = rollback_alarms(&props.rollback)
            .iter()
            .map(|alarm| alarm.add(scope, None))
            .collect();
        if let Some(analysis) = &props.analysis {
            alarm_names.extend(
                analysis_alarms(&props.rollback, analysis)
                    .iter()
                    .map(|alarm| alarm.add(scope)),
            );
            alarm_names.push(no_traffic_alarm(&props.rollback).add(scope, None));
        }
        let blue_green = BlueGreenDeploymentConfig::new()
            .deployment_ready_option(
                BlueGreenDeploymentConfigDeploymentReadyOption::new()
                    .action_on_timeout("CONTINUE_DEPLOYMENT"),
            )
            .terminate_blue_instances_on_deployment_success(
                BlueGreenDeploymentConfigTerminateBlueInstancesOnDeploymentSuccess::new()
                    .action("TERMINATE")
                    .termination_wait_time_in_minutes(props.termination_wait_minutes),
            );
        let target_groups = LoadBalancerInfoTargetGroupPairInfo::new(
            LoadBalancerInfoTargetGroupPairInfoProdTrafficRoute::new([&props.listener_arn]),
            LoadBalancerInfoTargetGroupPairInfoTargetGroup::new(&props.blue_target_group),
        )
        .target_group([LoadBalancerInfoTargetGroupPairInfoTargetGroup::new(
            &props.green_target_group,
        )]);
        let trigger = TriggerConfiguration::new(
            [
                "DeploymentStart",
                "DeploymentSuccess",
                "DeploymentFailure",
                "DeploymentStop",
                "DeploymentRollback",
            ],
            scope.name("deployment-state"),
            &props.topic_arn,
        );
        let group = CodedeployDeploymentGroup::new(app.name(), scope.name("app"), role.arn())
            .deployment_config_name(config_name)
            .deployment_style(
                DeploymentStyle::new()
                    .deployment_type("BLUE_GREEN")
                    .deployment_option("WITH_TRAFFIC_CONTROL"),
            )
            .blue_green_deployment_config(blue_green)
            .ecs_service(EcsService::new(&props.cluster_name, &props.service_name))
            .load_balancer_info(LoadBalancerInfo::new().target_group_pair_info(target_groups))
            .auto_rollback_configuration(
                AutoRollbackConfiguration::new()
                    .enabled(true)
                    .events(["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]),
            )
            .alarm_configuration(AlarmConfiguration::new().enabled(true).alarms(alarm_names))
            .trigger_configuration([trigger]);
        let group = scope.tf.add(f, "main", group);
        Ok(EcsBlueGreen {
            app_name: app.name().into(),
            group_name: group.deployment_group_name().into(),
        })
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

/// The alarms that stop and roll back a deployment, at the seed's thresholds: 5XX from the
/// targets or the load balancer itself above 5 in a minute, average response time above
/// 3 s, CPU above 80% or memory above 85% for two minutes, any unhealthy target in either
/// target group. They notify no one (CodeDeploy reports the rollback to the topic); the
/// stack's monitoring alarms page operators.
///
/// No data never passes as good where it means something broke: CPU, memory and target
/// health are published every minute whatever the traffic, so a gap is a stopped service
/// or a broken metric, and counts as breaching (ALARM stops the deployment, as AWS
/// recommends for rollback alarms on continuously reported metrics). 5XX counts are
/// published only when there are errors, so a gap is none (not breaching). The response
/// time exists only with requests: a gap is no verdict (`missing`, INSUFFICIENT_DATA),
/// and with an analysis [`no_traffic_alarm`] stops a deployment that gets no requests.
pub fn rollback_alarms(t: &RollbackTargets) -> Vec<Alarm> {
    let lb = || BTreeMap::from([("LoadBalancer", t.load_balancer.clone())]);
    let ecs = || {
        BTreeMap::from([
            ("ClusterName", t.cluster_name.clone()),
            ("ServiceName", t.service_name.clone()),
        ])
    };
    let metric = |namespace, name, dimensions| Metric {
        namespace,
        name,
        dimensions,
    };
    let alarm =
        |id, description: &str, metric, statistic, periods, threshold, missing_data| Alarm {
            id,
            description: description.to_owned(),
            metric,
            combined_with: Vec::new(),
            combine: Combine::Sum,
            statistic,
            period_seconds: 60,
            evaluation_periods: periods,
            threshold,
            comparison: Comparison::GreaterThan,
            missing_data,
        };
    let unhealthy = |tg: &Expr| {
        let mut dims = lb();
        dims.insert("TargetGroup", tg.clone());
        metric("AWS/ApplicationELB", "UnHealthyHostCount", dims)
    };
    vec![
        Alarm {
            combined_with: vec![metric("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", lb())],
            ..alarm(
                "deploy-5xx",
                "deployment: more than 5 5XX responses (targets and load balancer) in a minute",
                metric("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", lb()),
                "Sum",
                1,
                5.0,
                MissingData::NotBreaching,
            )
        },
        alarm(
            "deploy-latency",
            "deployment: average response time above 3 s for a minute",
            metric("AWS/ApplicationELB", "TargetResponseTime", lb()),
            "Average",
            1,
            3.0,
            MissingData::Missing,
        ),
        alarm(
            "deploy-cpu",
            "deployment: service CPU above 80% for 2 minutes",
            metric("AWS/ECS", "CPUUtilization", ecs()),
            "Average",
            2,
            80.0,
            MissingData::Breaching,
        ),
        alarm(
            "deploy-memory",
            "deployment: service memory above 85% for 2 minutes",
            metric("AWS/ECS", "MemoryUtilization", ecs()),
            "Average",
            2,
            85.0,
            MissingData::Breaching,
        ),
        Alarm {
            combined_with: vec![unhealthy(&t.target_groups[1])],
            combine: Combine::Max,
            ..alarm(
                "deploy-unhealthy-targets",
                "deployment: a target of either target group is unhealthy",
                unhealthy(&t.target_groups[0]),
                "Maximum",
                1,
                0.0,
                MissingData::Breaching,
            )
        },
    ]
}

/// The rollout's analysis as rollback alarms over the load balancer, minute by minute: the
/// share of requests answered with a 5XX (targets and the load balancer itself) above
/// `100 - success_rate_percent` %, and the targets' p99 response time above the threshold.
/// They watch both task sets together: CodeDeploy alternates the target groups, and a
/// failing new version shows in the whole.
pub fn analysis_alarms(t: &RollbackTargets, a: &Analysis) -> Vec<MathAlarm> {
    let counts = crate::slo::cloudwatch::LoadBalancerCounts {
        arn_suffix: t.load_balancer.clone(),
    };
    // The same error share as the availability SLO's burn-rate alarms.
    let (ratio_inputs, ratio) = counts.error_ratio(crate::slo::ErrorClass::Server);
    let latency = MathInput {
        id: "latency",
        metric: Metric {
            namespace: "AWS/ApplicationELB",
            name: "TargetResponseTime",
            dimensions: BTreeMap::from([("LoadBalancer", t.load_balancer.clone())]),
        },
        statistic: "p99",
    };
    vec![
        MathAlarm {
            id: "deploy-success-rate".into(),
            description: format!(
                "deployment: more than {:.3}% of requests answered with a 5XX in a minute (analysis: success rate {}%)",
                100.0 - a.success_rate_percent,
                a.success_rate_percent
            ),
            inputs: ratio_inputs,
            expression: ratio,
            label: "5XX share of requests".into(),
            period_seconds: 60,
            threshold: (100.0 - a.success_rate_percent) / 100.0,
            // No requests, no share: no verdict (see `no_traffic_alarm`).
            missing_data: MissingData::Missing,
        },
        MathAlarm {
            id: "deploy-p99-latency".into(),
            description: format!(
                "deployment: p99 response time above {} ms for a minute (analysis)",
                a.p99_latency_ms
            ),
            inputs: vec![latency],
            expression: "latency".into(),
            label: "p99 response time (s)".into(),
            period_seconds: 60,
            threshold: f64::from(a.p99_latency_ms) / 1000.0,
            missing_data: MissingData::Missing,
        },
    ]
}

/// The analysis' alarm on no data, CodeDeploy's counterpart of Argo Rollouts'
/// inconclusive limit: in ALARM (which stops and rolls back the deployment) once the load
/// balancer has answered no request for one minute more than
/// [`crate::rollout::ANALYSIS_NO_DATA_MINUTES`]. A canary that gets no traffic, or a
/// metric that broke, then fails instead of passing the success-rate and latency alarms,
/// which cannot judge without requests. `RequestCount` is published only for minutes with
/// requests, so a gap is breaching.
pub fn no_traffic_alarm(t: &RollbackTargets) -> Alarm {
    let minutes = crate::rollout::ANALYSIS_NO_DATA_MINUTES + 1;
    Alarm {
        id: "deploy-no-traffic",
        description: format!(
            "deployment: no request reached the load balancer for {minutes} minutes, so the analysis cannot judge the new version (no data is no pass)"
        ),
        metric: Metric {
            namespace: "AWS/ApplicationELB",
            name: "RequestCount",
            dimensions: BTreeMap::from([("LoadBalancer", t.load_balancer.clone())]),
        },
        combined_with: Vec::new(),
        combine: Combine::Sum,
        statistic: "Sum",
        period_seconds: 60,
        evaluation_periods: minutes,
        threshold: 1.0,
        comparison: Comparison::LessThan,
        missing_data: MissingData::Breaching,
    }
}

/// File names under the stack's `deploy/` folder.
pub const APPSPEC_FILE: &str = "appspec.yaml";
/// The script that starts a deployment.
pub const CREATE_DEPLOYMENT_FILE: &str = "create-deployment.sh";
/// Placeholder in the AppSpec that the script replaces with the revision's ARN.
const TASK_DEFINITION_PLACEHOLDER: &str = "<task_definition_arn>";

/// The Fargate platform version of the service and of every deployment's task set.
pub const PLATFORM_VERSION: &str = "LATEST";

/// Terraform outputs the deploy script reads; the stack must define them. The last two
/// are the tasks' configured subnets and security groups as JSON lists: ECS refuses to
/// change them on a CODE_DEPLOY service, so they reach it through the AppSpec.
pub const DEPLOY_OUTPUTS: [&str; 5] = [
    "task_definition_arn",
    "codedeploy_app_name",
    "codedeploy_deployment_group_name",
    "task_subnet_ids",
    "task_security_group_ids",
];

/// The AppSpec of a deployment of `container` on `port`, and the script that fills in the
/// revision `terraform apply` registered, the tasks' network, and starts it
/// (`file name -> text`).
pub fn deploy_files(generated_by: &str, container: &str, port: u16) -> BTreeMap<String, String> {
    let [task, app, group, subnets, groups] = DEPLOY_OUTPUTS;
    let appspec = format!(
        r#"# {generated_by}
# AppSpec of the CodeDeploy blue/green deployment; {CREATE_DEPLOYMENT_FILE} replaces
# TaskDefinition with the revision the last `terraform apply` registered, and the
# subnets and security groups with the configured ones (ECS changes a blue/green
# service's network only through a deployment).
version: 0.0
Resources:
  - TargetService:
      Type: AWS::ECS::Service
      Properties:
        TaskDefinition: "{TASK_DEFINITION_PLACEHOLDER}"
        LoadBalancerInfo:
          ContainerName: "{container}"
          ContainerPort: {port}
        PlatformVersion: "{PLATFORM_VERSION}"
        NetworkConfiguration:
          AwsvpcConfiguration:
            Subnets: <{subnets}>
            SecurityGroups: <{groups}>
            AssignPublicIp: "DISABLED"
"#
    );
    let script = format!(
        r#"#!/bin/sh
# {generated_by}
#
# Starts the CodeDeploy blue/green deployment of the task definition revision that the
# last `terraform apply` registered (Terraform never changes the running revision
# itself), then follows it until it succeeds, fails or is rolled back by an alarm.
# Run it after every apply that changes the image, the task definition or the tasks'
# network (subnets, security groups), with the aws CLI, jq, terraform and credentials
# that may create deployments:
#
#   sh deploy/{CREATE_DEPLOYMENT_FILE}
set -eu
here=$(dirname "$0")
out() {{ terraform -chdir="$here/../terraform" output -raw "$1"; }}
task=$(out {task})
appspec=$(sed -e "s|{TASK_DEFINITION_PLACEHOLDER}|$task|" -e "s|<{subnets}>|$(out {subnets})|" \
    -e "s|<{groups}>|$(out {groups})|" "$here/{APPSPEC_FILE}")
revision=$(jq -cn --arg content "$appspec" '{{revisionType: "AppSpecContent", appSpecContent: {{content: $content}}}}')
id=$(aws deploy create-deployment     --application-name "$(out {app})"     --deployment-group-name "$(out {group})"     --revision "$revision"     --description "keel: $task"     --query deploymentId --output text)
echo "deployment $id: $task"
while :; do
    status=$(aws deploy get-deployment --deployment-id "$id" --query deploymentInfo.status --output text)
    case $status in
        Succeeded) echo "deployment $id succeeded"; exit 0 ;;
        Failed|Stopped) echo "deployment $id: $status (rolled back)" >&2; exit 1 ;;
        *) echo "deployment $id: $status"; sleep 30 ;;
    esac
done
"#
    );
    BTreeMap::from([
        (APPSPEC_FILE.to_owned(), appspec),
        (CREATE_DEPLOYMENT_FILE.to_owned(), script),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_script_is_valid_shell_and_fills_the_appspec() {
        let files = deploy_files("generated by keel; do not edit", "app", 3000);
        let appspec = &files[APPSPEC_FILE];
        assert!(
            appspec.contains("ContainerName: \"app\"") && appspec.contains("ContainerPort: 3000")
        );
        assert!(appspec.contains(TASK_DEFINITION_PLACEHOLDER));
        let script = &files[CREATE_DEPLOYMENT_FILE];
        for output in DEPLOY_OUTPUTS {
            assert!(script.contains(&format!("$(out {output})")), "{output}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CREATE_DEPLOYMENT_FILE);
        std::fs::write(&path, script).unwrap();
        let status = std::process::Command::new("sh")
            .arg("-n")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn analysis_thresholds_become_rollback_alarms() {
        let r = crate::refs::Ref::resource("aws_lb", "main");
        let targets = RollbackTargets {
            cluster_name: r.attr("c"),
            service_name: r.attr("s"),
            load_balancer: r.attr("arn_suffix"),
            target_groups: [r.attr("b"), r.attr("g")],
        };
        let alarms = analysis_alarms(
            &targets,
            &Analysis {
                success_rate_percent: 99.5,
                p99_latency_ms: 750,
            },
        );
        let [success, latency] = alarms.as_slice() else {
            panic!("two alarms: {alarms:?}");
        };
        assert!(
            (success.threshold - 0.005).abs() < 1e-12,
            "{}",
            success.threshold
        );
        assert!(success.expression.contains("elb_5xx") && success.expression.contains("requests"));
        assert_eq!(latency.threshold, 0.75);
        assert_eq!(latency.inputs[0].statistic, "p99");
        assert_eq!(success.period_seconds, 60);
    }

    #[test]
    fn rollback_alarms_watch_both_target_groups_and_the_load_balancers_own_5xx() {
        let r = crate::refs::Ref::resource("aws_lb", "main");
        let alarms = rollback_alarms(&RollbackTargets {
            cluster_name: r.attr("c"),
            service_name: r.attr("s"),
            load_balancer: r.attr("arn_suffix"),
            target_groups: [r.attr("blue"), r.attr("green")],
        });
        let by_id = |id: &str| alarms.iter().find(|a| a.id == id).unwrap();
        let unhealthy = by_id("deploy-unhealthy-targets");
        let tgs: Vec<String> = std::iter::once(&unhealthy.metric)
            .chain(&unhealthy.combined_with)
            .map(|m| m.dimensions["TargetGroup"].as_hcl().to_owned())
            .collect();
        assert_eq!(tgs, ["aws_lb.main.blue", "aws_lb.main.green"]);
        let errors = by_id("deploy-5xx");
        assert_eq!(errors.combined_with[0].name, "HTTPCode_ELB_5XX_Count");
        assert_eq!((errors.period_seconds, errors.threshold), (60, 5.0));
        assert_eq!(by_id("deploy-latency").threshold, 3.0);
    }
}
