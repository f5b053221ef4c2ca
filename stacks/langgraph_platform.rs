//! langgraph-platform: the agent platform on ECS Fargate behind an ALB, deployed blue/green
//! by CodeDeploy, with PostgreSQL on RDS (../shared/seeds/langgraph-platform.md).
//!
//! Operating it, in order:
//! 1. `terraform apply` creates everything but the ECS service, and stops with a
//!    precondition naming each third-party secret (LangSmith, Jira) that has no value yet.
//! 2. Fill those secrets (`aws secretsmanager put-secret-value`), run
//!    `deploy/run-database-login.sh` (a one-off ECS task creates the application's own
//!    database login; the deploy plan runs it on every deploy), apply again.
//! 3. Each later release: apply (registers the task definition revision), then
//!    `deploy/create-deployment.sh` (CodeDeploy canary, rolled back by its alarms).
//!
//! Differences from the seed, on purpose: the service reads `DATABASE_URL` for its own
//! login `langgraph_app` (not the master user, whose password RDS rotates); PostgreSQL 15
//! as the seed, pinned to the major version; the LangSmith project is `langgraph-platform`
//! in prod and `langgraph-platform-<env>` elsewhere, so staging traces never mix with prod's.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::construct::alb::{Alb, AlbProps, AlbScheme};
use crate::construct::bucket::{PrivateBucket, PrivateBucketProps, bucket_name};
use crate::construct::codedeploy::{self, EcsBlueGreen, EcsBlueGreenProps, RollbackTargets};
use crate::construct::db_login::{DatabaseLogin, DatabaseLoginProps};
use crate::plan::External;
use crate::construct::db_login_task::{self, LoginTaskProps, login_task};
use crate::construct::ecr::{EcrRepository, EcrRepositoryProps};
use crate::construct::ecs::{EcsService, EcsServiceProps, ScalingProps};
use crate::construct::iam::{Role, Statement, Trust};
use crate::construct::kms::KmsKey;
use crate::construct::logs_bucket::LogsBucket;
use crate::construct::observability::{
    Alarm, AlarmTopic, Combine, Comparison, Metric, MissingData, Widget, dashboard,
};
use crate::construct::rds::{RdsInstance, RdsInstanceProps};
use crate::construct::secrets::{Secret, composed_secret};
use crate::construct::security_group::{Peer, SecurityGroup};
use crate::construct::vpc::{Vpc, VpcProps};
use crate::construct::waf::{WebAcl, WebAclProps};
use crate::construct::Scope;
use crate::env::Env;
use crate::env::check::{
    Problems, certificate, database, fargate_size, image, min_copies, percent, plain_http,
    retention,
};
use crate::env::file::Database;
use crate::env::file::EnvFile;
use crate::env::file::Image;
use crate::env::file::PlainHttp;
use crate::refs::Expr;
use crate::rollout::Rollout;
use crate::slo::cloudwatch::{LATENCY_UNSUPPORTED, LoadBalancerCounts};
use crate::slo::{self, LatencySupport, Slo};
use crate::stack::{Stack, StackDef, StackError, generated_by, terraform_root};
use crate::tf::Suppression;

/// Stack name.
pub const NAME: &str = "langgraph-platform";

/// Registry entry.
pub const DEF: StackDef = StackDef {
    name: NAME,
    description: "agent platform on ECS Fargate: VPC, ALB, CodeDeploy blue/green, RDS PostgreSQL, alarms",
    build,
};

/// ECS Fargate task size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSize {
    /// CPU units (256, 512, 1024, 2048, 4096).
    pub cpu: u32,
    /// Memory in MiB, valid for the CPU size.
    pub memory_mib: u32,
}

/// Scaling bounds and target-tracking targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scaling {
    /// Fewest tasks.
    pub min: u32,
    /// Tasks at creation.
    pub desired: u32,
    /// Most tasks.
    pub max: u32,
    /// Average CPU utilization target, percent.
    pub cpu_percent: u32,
    /// Average memory utilization target, percent.
    pub memory_percent: u32,
    /// ALB requests per target to hold.
    pub requests_per_target: u32,
}

/// Blue/green deployment settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// How CodeDeploy shifts traffic to the new task set: all at once, a canary, or linear
    /// steps (several canary steps are Kubernetes-only).
    pub rollout: Rollout,
    /// Minutes the old task set keeps running after a successful deployment (0..=2880).
    pub termination_wait_minutes: u32,
}

/// Alarm thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmThresholds {
    /// Service CPU, percent, over 2 x 5 minutes.
    pub cpu_percent: u32,
    /// Service memory, percent, over 2 x 5 minutes.
    pub memory_percent: u32,
    /// Target 5XX responses in 5 minutes.
    pub http_5xx_count: u32,
    /// Average target response time in seconds over 5 minutes.
    pub latency_seconds: f64,
}

/// Settings of the langgraph-platform stack (ECS Fargate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "LanggraphPlatform")]
pub struct Settings {
    /// Container image: the `langgraph-platform` repository this stack creates (or one
    /// under `image_registries`).
    pub image: Image,
    /// ACM certificate for the HTTPS listener (required in prod). Without one the ALB
    /// serves plain HTTP, to whom `plain_http` says, and synth warns.
    #[serde(default)]
    #[schemars(regex(
        pattern = r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[A-Za-z0-9-]+$"
    ))]
    pub certificate_arn: Option<String>,
    /// Who may reach the load balancer when there is no `certificate_arn` (then required):
    /// `internal` (the VPC only) or `internet_facing`.
    #[serde(default)]
    pub plain_http: Option<PlainHttp>,
    /// Fargate task size.
    pub task: TaskSize,
    /// Days to keep container logs.
    pub log_retention_days: u32,
    /// Auto scaling.
    pub scaling: Scaling,
    /// Blue/green deployment.
    pub deployment: Deployment,
    /// Database.
    pub database: Database,
    /// Alarm thresholds.
    pub alarms: AlarmThresholds,
    /// The Jira site the agents work on (the API token is a secret, set out of band).
    pub jira: Jira,
    /// Service level objectives, measured from the load balancer's counts: CloudWatch
    /// burn-rate alarms routed to the alarm topic. Availability indicators only (ECS has
    /// no request latency histogram). Default: none.
    #[serde(default)]
    pub slos: Vec<Slo>,
}

/// The Jira site and account of the langgraph-platform agents (non-secret settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Jira {
    /// Site URL, e.g. `https://example.atlassian.net` (`JIRA_BASE_URL`).
    #[schemars(regex(pattern = r"^https://[a-z0-9.-]+(/[A-Za-z0-9._~/-]*)?$"))]
    pub base_url: String,
    /// Account e-mail the API token belongs to (`JIRA_EMAIL`).
    #[schemars(regex(pattern = r"^[^@ ]+@[^@ ]+\.[^@ ]+$"))]
    pub email: String,
}

/// Port the Node.js service listens on.
const APP_PORT: u16 = 3000;
/// Its health endpoint (ALB and CodeDeploy health checks).
const HEALTH_PATH: &str = "/health";
/// Id (and name suffix) of the service's object bucket.
const DATA_BUCKET: &str = "data";
/// Third-party credentials the service reads, stored in Secrets Manager.
const APP_SECRETS: &[(&str, &str)] = &[
    ("LANGSMITH_API_KEY", "LangSmith API key for tracing"),
    ("JIRA_API_TOKEN", "Jira API token"),
    (
        "JIRA_WEBHOOK_SECRET",
        "shared secret that signs Jira webhooks",
    ),
];

/// `repo@digest` or `repo:tag`.
pub fn image_ref(image: &Image) -> String {
    match (&image.digest, &image.tag) {
        (Some(d), _) => format!("{}@{d}", image.repository),
        (None, Some(t)) => format!("{}:{t}", image.repository),
        (None, None) => image.repository.clone(),
    }
}

fn build(env: &Env) -> Result<Option<Stack>, StackError> {
    let Some(cfg) = &env.spec.stacks.langgraph_platform else {
        return Ok(None);
    };
    let fail = |message: String| StackError::new(NAME, env.name(), message);
    let mut tf = terraform_root(env, NAME);
    let mut warnings = Vec::new();
    let scope = &mut Scope::new(&mut tf, "lgp", env);

    let key = KmsKey::new(scope, "langgraph-platform: logs, topic, secrets, database");
    let cidr = crate::env::load::parse_cidr(&env.spec.network.vpc_cidr).map_err(fail)?;
    let vpc = Vpc::new(
        scope,
        &key,
        &VpcProps {
            cidr,
            availability_zones: env.availability_zones(),
            nat_gateways: env.spec.network.nat_gateways,
            flow_log_retention_days: env.spec.network.flow_log_retention_days,
            public_subnet_tags: BTreeMap::new(),
            private_subnet_tags: BTreeMap::new(),
            data_subnets: false,
        },
    )
    .map_err(fail)?;

    // Security groups: internet → ALB (80/443) → tasks (app port) → database (5432).
    let alb_sg = SecurityGroup::new(
        scope,
        "security",
        "alb",
        "public load balancer: 80/443 from the internet",
        vpc.id(),
    );
    let task_sg = SecurityGroup::new(
        scope,
        "security",
        "tasks",
        "ECS tasks: app port from the load balancer only",
        vpc.id(),
    );
    let db_sg = SecurityGroup::new(
        scope,
        "security",
        "database",
        "PostgreSQL: 5432 from the ECS tasks only",
        vpc.id(),
    );
    let internet = Peer::Cidr("0.0.0.0/0".into());
    // An internal load balancer (plain HTTP, `plain_http: internal`) admits the VPC only.
    let scheme = match cfg.plain_http {
        Some(PlainHttp::Internal) => AlbScheme::Internal,
        Some(PlainHttp::InternetFacing) | None => AlbScheme::InternetFacing,
    };
    let clients = match scheme {
        AlbScheme::Internal => Peer::Cidr(env.spec.network.vpc_cidr.clone()),
        AlbScheme::InternetFacing => internet.clone(),
    };
    if cfg.certificate_arn.is_some() {
        alb_sg.allow_in(
            scope,
            "https_from_internet",
            &clients,
            443,
            "HTTPS from the internet",
        );
        alb_sg.allow_in_because(
            scope,
            "http_from_internet",
            &clients,
            80,
            "HTTP from the internet (redirected to HTTPS)",
            &[Suppression {
                check: "CKV_AWS_260",
                reason: "the public load balancer answers port 80 only to redirect to HTTPS",
            }],
        );
    } else if scheme == AlbScheme::Internal {
        alb_sg.allow_in(
            scope,
            "http_from_vpc",
            &clients,
            80,
            "plain HTTP from inside the VPC (no certificate: plain_http internal)",
        );
    } else {
        alb_sg.allow_in_because(
            scope,
            "http_from_internet",
            &clients,
            80,
            "plain HTTP from the internet (no certificate: plain_http internet_facing)",
            &[Suppression {
                check: "CKV_AWS_260",
                reason: "this environment states plain_http: internet_facing (no certificate, a development choice keel warns about; refused in prod)",
            }],
        );
    }
    alb_sg.allow_out(
        scope,
        "app_to_tasks",
        &Peer::Group(task_sg.id()),
        APP_PORT,
        "to the tasks' app port",
    );
    task_sg.allow_in(
        scope,
        "app_from_alb",
        &Peer::Group(alb_sg.id()),
        APP_PORT,
        "app port from the load balancer",
    );
    task_sg.allow_out(
        scope,
        "postgres_to_database",
        &Peer::Group(db_sg.id()),
        5432,
        "to PostgreSQL",
    );
    task_sg.allow_out(
        scope,
        "https_to_aws_apis",
        &internet,
        443,
        "HTTPS to ECR, Secrets Manager, CloudWatch, LangSmith, Jira",
    );
    db_sg.allow_in(
        scope,
        "postgres_from_tasks",
        &Peer::Group(task_sg.id()),
        5432,
        "PostgreSQL from the ECS tasks",
    );

    let edge_log_days = if env.is_prod() { 365 } else { 90 };
    let logs = LogsBucket::new(scope, edge_log_days, &[bucket_name(scope, DATA_BUCKET)]);
    // The seed's task role has S3 access: to the stack's own encrypted bucket, objects
    // only (S3_BUCKET tells the service its name).
    let data = PrivateBucket::new(
        scope,
        &key,
        &logs,
        &PrivateBucketProps {
            id: DATA_BUCKET,
            noncurrent_version_days: 30,
        },
    );
    let web_acl = WebAcl::new(
        scope,
        &key,
        &WebAclProps {
            log_retention_days: edge_log_days,
            // Jira webhooks carry whole issues (descriptions, comments, changelogs).
            large_bodies: Some("Jira webhooks carry whole issues"),
        },
    );
    warnings.extend(crate::stack::plain_http_warning(
        NAME,
        env.name(),
        cfg.plain_http,
    ));
    let alb = Alb::new(
        scope,
        &logs,
        &web_acl,
        &AlbProps {
            subnet_ids: match scheme {
                AlbScheme::InternetFacing => vpc.public_subnet_ids(),
                AlbScheme::Internal => vpc.private_subnet_ids(),
            },
            security_group_id: alb_sg.id(),
            vpc_id: vpc.id(),
            target_port: APP_PORT,
            health_check_path: HEALTH_PATH.into(),
            certificate_arn: cfg.certificate_arn.clone(),
            scheme,
        },
    );

    let db = RdsInstance::new(
        scope,
        &key,
        &RdsInstanceProps {
            settings: cfg.database.clone(),
            db_name: "langgraph".into(),
            username: "langgraph_admin".into(),
            subnet_ids: vpc.private_subnet_ids().into(),
            security_group_id: db_sg.id(),
            log_retention_days: cfg.log_retention_days,
        },
    )
    .map_err(fail)?;
    let generated_by = generated_by(env, NAME);
    let mut login = DatabaseLogin::new(
        scope,
        &key,
        &db,
        &DatabaseLoginProps {
            username: "langgraph_app",
            secret_path: &format!("{}/database-app-password", scope.prefix),
            extensions: &["vector"],
        },
    )
    .map_err(fail)?;
    let url = login.url(
        scope,
        &crate::construct::rds_tls::url_query(crate::construct::rds_tls::APP_BUNDLE),
    );
    let database_url = composed_secret(
        scope,
        &key,
        "database_url",
        &format!("{}/database-url", scope.prefix),
        "DATABASE_URL of the service: its own login, TLS with full verification against the fetched RDS CA",
        url,
    );
    let secrets: Vec<(&str, Secret)> = APP_SECRETS
        .iter()
        .map(|(name, description)| (*name, Secret::new(scope, &key, name, description)))
        .collect();
    let preconditions = secrets
        .iter()
        .map(|(_, secret)| secret.require_value(scope))
        .collect();

    let mut readable: Vec<String> = secrets.iter().map(|(_, s)| s.arn().to_string()).collect();
    readable.push(database_url.to_string());
    let execution_role = Role::new(
        scope,
        "task_execution",
        "task-execution",
        Trust::Service("ecs-tasks.amazonaws.com"),
        &["service-role/AmazonECSTaskExecutionRolePolicy"],
        vec![
            Statement::allow(
                "ReadInjectedSecrets",
                &["secretsmanager:GetSecretValue"],
                readable,
            ),
            Statement::allow(
                "DecryptInjectedSecrets",
                &["kms:Decrypt"],
                vec![key.arn().to_string()],
            ),
        ],
    );
    let mut task_statements = data.read_write("ServiceData");
    task_statements.extend([
            Statement::allow(
                "EcsExecSessions",
                &[
                    "ssmmessages:CreateControlChannel",
                    "ssmmessages:CreateDataChannel",
                    "ssmmessages:OpenControlChannel",
                    "ssmmessages:OpenDataChannel",
                ],
                vec!["*".into()],
            ),
            Statement::allow(
                "EcsExecEncryption",
                &["kms:Decrypt", "kms:GenerateDataKey"],
                vec![key.arn().to_string()],
            ),
            Statement::allow(
                "EcsExecSessionLogs",
                &[
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                vec![EcsService::exec_log_group_arn(scope)],
            ),
            Statement::allow(
                "EcsExecFindLogGroup",
                &["logs:DescribeLogGroups"],
                vec!["*".into()],
            ),
    ]);
    let task_role = Role::new(
        scope,
        "task",
        "task",
        Trust::Service("ecs-tasks.amazonaws.com"),
        &[],
        task_statements,
    );

    let mut environment: BTreeMap<String, Value> = BTreeMap::new();
    environment.insert("NODE_ENV".into(), json!("production"));
    environment.insert("PORT".into(), json!(APP_PORT.to_string()));
    let project = if env.is_prod() {
        NAME.to_owned()
    } else {
        format!("{NAME}-{}", env.name())
    };
    environment.insert("LANGSMITH_PROJECT".into(), json!(project));
    environment.insert("LANGSMITH_TRACING".into(), json!("true"));
    environment.insert("LANGCHAIN_TRACING_V2".into(), json!("true"));
    environment.insert("JIRA_BASE_URL".into(), json!(cfg.jira.base_url));
    environment.insert("JIRA_EMAIL".into(), json!(cfg.jira.email));
    environment.insert("S3_BUCKET".into(), json!(data.name()));
    let mut secret_env: BTreeMap<String, Value> = secrets
        .iter()
        .map(|(name, s)| ((*name).to_owned(), s.arn().into()))
        .collect();
    secret_env.insert("DATABASE_URL".into(), database_url.into());

    let service = EcsService::new(
        scope,
        &key,
        &EcsServiceProps {
            image: image_ref(&cfg.image),
            container_port: APP_PORT,
            cpu: cfg.task.cpu,
            memory_mib: cfg.task.memory_mib,
            log_retention_days: cfg.log_retention_days,
            exec_log_retention_days: env.audit_log_retention_days(),
            rds_ca: Some(crate::construct::rds_tls::APP_BUNDLE),
            environment,
            secrets: secret_env,
            execution_role_arn: execution_role.arn(),
            task_role_arn: task_role.arn(),
            subnet_ids: vpc.private_subnet_ids(),
            security_group_id: task_sg.id(),
            target_group_arn: alb.blue().arn(),
            depends_on: alb.listener_addresses(),
            desired_count: cfg.scaling.desired,
            preconditions,
        },
    );
    let s = &cfg.scaling;
    service.autoscale(
        scope,
        &ScalingProps {
            min: s.min,
            max: s.max,
            cpu_percent: s.cpu_percent,
            memory_percent: s.memory_percent,
            requests_per_target: s.requests_per_target,
            load_balancer: alb.arn_suffix(),
        },
    );

    let topic = AlarmTopic::new(scope, &key, &env.spec.alerts.email);
    let a = &cfg.alarms;
    let ecs = |name| Metric {
        namespace: "AWS/ECS",
        name,
        dimensions: BTreeMap::from([
            ("ClusterName", service.cluster_name()),
            ("ServiceName", service.service_name()),
        ]),
    };
    let lb = |name| Metric {
        namespace: "AWS/ApplicationELB",
        name,
        dimensions: BTreeMap::from([("LoadBalancer", alb.arn_suffix())]),
    };
    let unhealthy = |group: Expr| Metric {
        namespace: "AWS/ApplicationELB",
        name: "UnHealthyHostCount",
        dimensions: BTreeMap::from([("LoadBalancer", alb.arn_suffix()), ("TargetGroup", group)]),
    };
    let alarm = |id,
                 description: String,
                 metric,
                 statistic,
                 period_seconds,
                 evaluation_periods,
                 threshold| Alarm {
        id,
        description,
        metric,
        combined_with: Vec::new(),
        combine: Combine::Sum,
        statistic,
        period_seconds,
        evaluation_periods,
        threshold,
        comparison: Comparison::GreaterThan,
        // Operators' alarms: a quiet service is no page (the deployment's own alarms,
        // `codedeploy::rollback_alarms`, treat no data by metric).
        missing_data: MissingData::NotBreaching,
    };
    let alarms = [
        alarm(
            "ecs-cpu-high",
            format!("service CPU above {}% for 10 minutes", a.cpu_percent),
            ecs("CPUUtilization"),
            "Average",
            300,
            2,
            f64::from(a.cpu_percent),
        ),
        alarm(
            "ecs-memory-high",
            format!("service memory above {}% for 10 minutes", a.memory_percent),
            ecs("MemoryUtilization"),
            "Average",
            300,
            2,
            f64::from(a.memory_percent),
        ),
        alarm(
            "alb-5xx-errors",
            format!(
                "more than {} target 5XX responses in 5 minutes",
                a.http_5xx_count
            ),
            lb("HTTPCode_Target_5XX_Count"),
            "Sum",
            300,
            1,
            f64::from(a.http_5xx_count),
        ),
        alarm(
            "alb-response-time",
            format!(
                "average target response time above {} s for 5 minutes",
                a.latency_seconds
            ),
            lb("TargetResponseTime"),
            "Average",
            300,
            1,
            a.latency_seconds,
        ),
        // CodeDeploy alternates the live target group: watch both.
        Alarm {
            combined_with: vec![unhealthy(alb.green().attr("arn_suffix"))],
            combine: Combine::Max,
            ..alarm(
                "unhealthy-targets",
                "a target of the live target group is unhealthy".into(),
                unhealthy(alb.blue().attr("arn_suffix")),
                "Maximum",
                60,
                2,
                0.0,
            )
        },
    ];
    for alarm in &alarms {
        alarm.add(scope, Some(&topic));
    }
    slo::cloudwatch::add_alarms(
        scope,
        NAME,
        &cfg.slos,
        &LoadBalancerCounts {
            arn_suffix: alb.arn_suffix(),
        },
        &topic,
    );

    let deploy = EcsBlueGreen::new(
        scope,
        &EcsBlueGreenProps {
            cluster_name: service.cluster_name(),
            service_name: service.service_name(),
            listener_arn: alb.production_listener_arn(),
            blue_target_group: alb.blue().attr("name"),
            green_target_group: alb.green().attr("name"),
            strategy: cfg.deployment.rollout.strategy.clone(),
            analysis: cfg.deployment.rollout.analysis,
            termination_wait_minutes: cfg.deployment.termination_wait_minutes,
            rollback: RollbackTargets {
                cluster_name: service.cluster_name(),
                service_name: service.service_name(),
                load_balancer: alb.arn_suffix(),
                target_groups: [
                    alb.blue().attr("arn_suffix"),
                    alb.green().attr("arn_suffix"),
                ],
            },
            topic_arn: topic.arn(),
            topic_key_arn: key.arn(),
            task_role_arns: service.task_role_arns().to_vec(),
        },
    )
    .map_err(fail)?;

    let ecs_metric = |metric: &str| {
        vec![
            json!("AWS/ECS"),
            json!(metric),
            json!("ClusterName"),
            Value::from(service.cluster_name()),
            json!("ServiceName"),
            Value::from(service.service_name()),
        ]
    };
    let alb_metric = |metric: &str| {
        vec![
            json!("AWS/ApplicationELB"),
            json!(metric),
            json!("LoadBalancer"),
            Value::from(alb.arn_suffix()),
        ]
    };
    let dashboard_name = dashboard(
        scope,
        &[
            Widget {
                title: "ECS CPU utilization",
                statistic: "Average",
                metrics: vec![ecs_metric("CPUUtilization")],
            },
            Widget {
                title: "ECS memory utilization",
                statistic: "Average",
                metrics: vec![ecs_metric("MemoryUtilization")],
            },
            Widget {
                title: "ALB requests",
                statistic: "Sum",
                metrics: vec![alb_metric("RequestCount")],
            },
            Widget {
                title: "Target response time",
                statistic: "Average",
                metrics: vec![alb_metric("TargetResponseTime")],
            },
            Widget {
                title: "Target 5XX responses",
                statistic: "Sum",
                metrics: vec![alb_metric("HTTPCode_Target_5XX_Count")],
            },
        ],
    );

    // The repository the service's images come from (unless the environment file
    // allow-lists another registry).
    let repo = EcrRepository::new(
        scope,
        &key,
        "service",
        &EcrRepositoryProps::releases(NAME.into(), env),
    );

    let region = env.spec.region.clone();
    let out = &mut *scope.tf;
    out.output(
        "ecr_repository_url",
        "ECR repository of the service's images",
        repo.url_attr(),
        false,
    );
    out.output(
        "s3_bucket_name",
        "the service's object bucket (S3_BUCKET)",
        data.id(),
        false,
    );
    out.output(
        "alb_dns_name",
        "DNS name of the load balancer (point the service's DNS record here)",
        alb.dns_name(),
        false,
    );
    out.output(
        "ecs_cluster_name",
        "ECS cluster name",
        service.cluster_name(),
        false,
    );
    out.output(
        "ecs_service_name",
        "ECS service name",
        service.service_name(),
        false,
    );
    out.output(
        "log_group_name",
        "CloudWatch log group of the containers",
        service.log_group_name(),
        false,
    );
    out.output(
        "db_endpoint",
        "PostgreSQL writer endpoint (host:port)",
        db.endpoint(),
        false,
    );
    let (container_name, container_port) = service.container();
    out.output(
        "task_definition_arn",
        "task definition revision this apply registered (deploy/create-deployment.sh rolls it out)",
        service.task_definition_arn(),
        false,
    );
    let (task_subnets, task_groups) = service.task_network_json();
    out.output(
        "task_subnet_ids",
        "the tasks' subnets, a JSON list (deploy/create-deployment.sh puts them in the AppSpec)",
        task_subnets,
        false,
    );
    out.output(
        "task_security_group_ids",
        "the tasks' security groups, a JSON list (deploy/create-deployment.sh puts them in the AppSpec)",
        task_groups,
        false,
    );
    out.output(
        "container_name",
        "container CodeDeploy routes traffic to",
        container_name,
        false,
    );
    out.output(
        "container_port",
        "port of that container",
        container_port,
        false,
    );
    for (name, secret) in &secrets {
        out.output(
            &format!("{}_secret_arn", name.to_ascii_lowercase()),
            &format!("Secrets Manager ARN of {name} (set its value out of band)"),
            secret.arn(),
            false,
        );
    }
    out.output(
        "alarm_topic_arn",
        "SNS topic that receives alarms and deployment events",
        topic.arn(),
        false,
    );
    out.output(
        "codedeploy_app_name",
        "CodeDeploy application",
        deploy.app_name(),
        false,
    );
    out.output(
        "codedeploy_deployment_group_name",
        "CodeDeploy deployment group",
        deploy.group_name(),
        false,
    );
    out.output(
        "cloudwatch_dashboard_url",
        "CloudWatch dashboard",
        format!("https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards:name={dashboard_name}"),
        false,
    );

    let mut external: Vec<External> = secrets
        .iter()
        .map(|(name, secret)| {
            let what = APP_SECRETS
                .iter()
                .find(|(n, _)| n == name)
                .map_or(*name, |(_, d)| *d);
            secret.external(what, None)
        })
        .collect();
    external.extend(crate::stack::web_externals(&[], cfg.certificate_arn.as_deref()));
    let mut deploy = codedeploy::deploy_files(&generated_by, container_name, container_port);
    let login_task = login_task(
        scope,
        &key,
        &login,
        &LoginTaskProps {
            stack: NAME,
            log_retention_days: cfg.log_retention_days,
            generated_by: &generated_by,
        },
    );
    deploy.insert(db_login_task::RUN_SCRIPT.to_owned(), login_task.script);
    Ok(Some(Stack {
        name: NAME,
        terraform: tf,
        kubernetes: BTreeMap::new(),
        objects: Vec::new(),
        jobs: BTreeMap::new(),
        deploy,
        warnings,
        steps: vec![login_task.step],
        addons: Vec::new(),
        addon_values: BTreeMap::new(),
        external,
    }))
}

/// Semantic checks of these settings in `spec` (what the JSON Schema cannot say), as
/// (JSON pointer, message) pairs that the loader locates in the file.
pub(crate) fn check(spec: &EnvFile, lg: &Settings, out: &mut Problems) {
    let p = "/stacks/langgraph-platform";
    image(&lg.image, spec, NAME, &format!("{p}/image"), out);
    certificate(
        lg.certificate_arn.as_deref(),
        spec,
        &format!("{p}/certificate_arn"),
        out,
    );
    plain_http(lg.certificate_arn.as_deref(), lg.plain_http, spec, p, out);
    fargate_size(lg.task.cpu, lg.task.memory_mib, &format!("{p}/task"), out);
    retention(
        lg.log_retention_days,
        &format!("{p}/log_retention_days"),
        out,
    );
    let s = &lg.scaling;
    if !(s.min <= s.desired && s.desired <= s.max) {
        out.push((
            format!("{p}/scaling"),
            format!(
                "expected min <= desired <= max, found {} <= {} <= {}",
                s.min, s.desired, s.max
            ),
        ));
    }
    min_copies(s.min, "task", spec.tier, &format!("{p}/scaling/min"), out);
    percent(s.cpu_percent, &format!("{p}/scaling/cpu_percent"), out);
    percent(
        s.memory_percent,
        &format!("{p}/scaling/memory_percent"),
        out,
    );
    if s.requests_per_target == 0 {
        out.push((
            format!("{p}/scaling/requests_per_target"),
            "expected at least 1".into(),
        ));
    }
    let d = &lg.deployment;
    if d.termination_wait_minutes > 2880 {
        out.push((
            format!("{p}/deployment/termination_wait_minutes"),
            format!(
                "expected 0..=2880 minutes, found {}",
                d.termination_wait_minutes
            ),
        ));
    }
    d.rollout
        .check(spec.tier, false, &format!("{p}/deployment/rollout"), out);
    database(&lg.database, spec.tier, &format!("{p}/database"), out);
    slo::check(
        &lg.slos,
        LatencySupport::Unsupported(LATENCY_UNSUPPORTED),
        &format!("{p}/slos"),
        out,
    );
    let a = &lg.alarms;
    percent(a.cpu_percent, &format!("{p}/alarms/cpu_percent"), out);
    percent(a.memory_percent, &format!("{p}/alarms/memory_percent"), out);
    if !(a.latency_seconds > 0.0 && a.latency_seconds <= 60.0) {
        out.push((
            format!("{p}/alarms/latency_seconds"),
            format!(
                "expected more than 0 and at most 60 seconds, found {}",
                a.latency_seconds
            ),
        ));
    }
}
