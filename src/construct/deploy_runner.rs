//! The deploy path's reach into a private cluster: a CodeBuild project that hosts GitHub
//! Actions runners inside the cluster VPC's private subnets.
//!
//! A workflow job with `runs-on: codebuild-<project>-${{ github.run_id }}-${{
//! github.run_attempt }}` is queued on GitHub; the project's webhook (only
//! `WORKFLOW_JOB_QUEUED`) starts a build that registers itself as that job's ephemeral
//! runner, runs it, and is gone. The runner reaches the API server's private endpoint on
//! 443 (a rule on the cluster security group admits it) and the internet through the NAT,
//! and nothing reaches it: its security group has no ingress rule. GitHub is read through a
//! CodeConnections connection that a person authorizes once in the console.
//!
//! The project's service role may write its own log group, manage the build's network
//! interfaces as CodeBuild documents, and use the connection; nothing else. The job assumes
//! the apply role by GitHub OIDC as on a hosted runner, so deploy rights never sit on the
//! runner. See <https://docs.aws.amazon.com/codebuild/latest/userguide/action-runner.html>.

use super::Scope;
use super::iam::{Role, Statement, Trust};
use super::kms::KmsKey;
use super::log_group::encrypted_log_group_named;
use super::security_group::{Peer, SecurityGroup};
use crate::refs::Expr;
use crate::tf::aws::resource::codebuild_project::{
    Artifacts, CodebuildProject, Environment, LogsConfig, LogsConfigCloudwatchLogs,
    LogsConfigS3Logs, Source, SourceAuth, VpcConfig,
};
use crate::tf::aws::resource::codebuild_webhook::{
    CodebuildWebhook, FilterGroup, FilterGroupFilter,
};
use crate::tf::aws::resource::{CodeconnectionsConnection, VpcSecurityGroupIngressRule};

/// CodeBuild compute type of the runner: 2 vCPU, 3 GB (enough for `terraform` and
/// `kubectl`; keel itself is built on it in the deploy workflow).
pub const COMPUTE_TYPE: &str = "BUILD_GENERAL1_SMALL";

/// The CodeBuild curated image the runner starts from (Amazon Linux 2023, x86_64).
pub const IMAGE: &str = "aws/codebuild/amazonlinux-x86_64-standard:5.0";

/// Options for [`DeployRunner`].
#[derive(Debug, Clone)]
pub struct DeployRunnerProps {
    /// Project name (also the `runs-on` label's middle part), e.g. `eks-prod-deploy-runner`.
    pub project_name: String,
    /// Name of the CodeConnections connection to GitHub (at most 32 characters).
    pub connection_name: String,
    /// The GitHub repository (`owner/name`) whose workflow jobs the runner takes.
    pub repository: String,
    /// The VPC the builds run in.
    pub vpc_id: Expr,
    /// Private subnets (with a NAT route) the builds get their network interfaces in.
    pub subnet_ids: Vec<Expr>,
    /// The cluster's security group: admits the runner on 443 (API server).
    pub cluster_security_group_id: Expr,
    /// Days the build logs are kept.
    pub log_retention_days: u32,
    /// Minutes a job may run before CodeBuild stops it.
    pub timeout_minutes: u32,
}

/// The runner project, its connection, webhook, role, log group and security group.
#[derive(Debug, Clone)]
pub struct DeployRunner {
    project_name: String,
    connection_arn: Expr,
    security_group_id: Expr,
    role: Role,
}

impl DeployRunner {
    /// Creates the runner in `scope` (file `runner.tf.json`).
    pub fn new(scope: &mut Scope<'_>, key: &KmsKey, props: &DeployRunnerProps) -> DeployRunner {
        const F: &str = "runner";
        let region = scope.tf.region().to_owned();
        let account = scope.tf.account_id().to_owned();
        let partition = scope.partition();

        let sg = SecurityGroup::new(
            scope,
            F,
            "deploy_runner",
            "deploy runner (CodeBuild): no ingress; HTTPS out to the API server, AWS and GitHub",
            props.vpc_id.clone(),
        );
        sg.allow_out(
            scope,
            "runner_https_out",
            &Peer::Cidr("0.0.0.0/0".into()),
            443,
            "HTTPS to the cluster API, AWS APIs and GitHub (through the NAT)",
        );
        scope.tf.add(
            F,
            "cluster_api_from_deploy_runner",
            VpcSecurityGroupIngressRule::new("tcp", &props.cluster_security_group_id)
                .referenced_security_group_id(sg.id())
                .from_port(443)
                .to_port(443)
                .description("Kubernetes API from the deploy runner"),
        );

        let connection = scope.tf.add(
            F,
            "github",
            CodeconnectionsConnection::new(&props.connection_name).provider_type("GitHub"),
        );

        // Under the stack's `/keel/<prefix>/` names: its key lets CloudWatch Logs use it there.
        let log_group_name = super::log_group::log_group_name(scope, "deploy-runner");
        let log_group = encrypted_log_group_named(
            scope,
            key,
            F,
            "deploy_runner",
            &log_group_name,
            props.log_retention_days,
        );

        let subnet_arns: Vec<String> = props
            .subnet_ids
            .iter()
            .map(|id| format!("arn:{partition}:ec2:{region}:{account}:subnet/{id}"))
            .collect();
        let role = Role::new(
            scope,
            "deploy_runner",
            "deploy-runner",
            Trust::Service("codebuild.amazonaws.com"),
            &[],
            vec![
                Statement::allow(
                    "WriteOwnLogs",
                    &["logs:CreateLogStream", "logs:PutLogEvents"],
                    vec![format!("{}:*", log_group.arn())],
                ),
                // CodeBuild's VPC builds: these EC2 reads and network-interface actions
                // support no resource-level permission (AWS's documented policy).
                Statement::allow(
                    "ManageBuildNetworkInterfaces",
                    &[
                        "ec2:CreateNetworkInterface",
                        "ec2:DeleteNetworkInterface",
                        "ec2:DescribeDhcpOptions",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeSecurityGroups",
                        "ec2:DescribeSubnets",
                        "ec2:DescribeVpcs",
                    ],
                    vec!["*".into()],
                ),
                Statement::allow(
                    "AttachInterfacesInRunnerSubnetsOnly",
                    &["ec2:CreateNetworkInterfacePermission"],
                    vec![format!(
                        "arn:{partition}:ec2:{region}:{account}:network-interface/*"
                    )],
                )
                .when(
                    "StringEquals",
                    "ec2:AuthorizedService",
                    vec!["codebuild.amazonaws.com".into()],
                )
                .when("ArnEquals", "ec2:Subnet", subnet_arns),
                Statement::allow(
                    "UseGithubConnection",
                    &[
                        "codeconnections:GetConnection",
                        "codeconnections:GetConnectionToken",
                        "codeconnections:UseConnection",
                    ],
                    vec![connection.arn().to_string()],
                ),
            ],
        );
        if let Some(policy) = role.policy_document() {
            const ENI: &str = "CodeBuild's VPC builds: EC2 Describe* and network-interface create/delete support no resource-level permissions (AWS's documented policy); the permission to attach is limited to the runner's subnets";
            scope.tf.suppress(
                policy,
                &[
                    crate::tf::Suppression {
                        check: "CKV_AWS_111",
                        reason: ENI,
                    },
                    crate::tf::Suppression {
                        check: "CKV_AWS_356",
                        reason: ENI,
                    },
                ],
            );
        }

        let environment = Environment::new(COMPUTE_TYPE, IMAGE, "LINUX_CONTAINER")
            .image_pull_credentials_type("CODEBUILD")
            .privileged_mode(false);
        let source = Source::new("GITHUB")
            .location(format!("https://github.com/{}.git", props.repository))
            .git_clone_depth(1)
            .auth(SourceAuth::new(connection.arn(), "CODECONNECTIONS"));
        let logs = LogsConfig::new()
            .cloudwatch_logs(
                LogsConfigCloudwatchLogs::new()
                    .status("ENABLED")
                    .group_name(&log_group_name),
            )
            .s3_logs(LogsConfigS3Logs::new().status("DISABLED"));
        let project = CodebuildProject::new(
            &props.project_name,
            role.arn(),
            Artifacts::new("NO_ARTIFACTS"),
            environment,
            source,
        )
        .description(format!(
            "GitHub Actions runners of {} inside the cluster VPC",
            props.repository
        ))
        .build_timeout(props.timeout_minutes)
        .queued_timeout(30)
        .concurrent_build_limit(4)
        .logs_config(logs)
        .vpc_config(VpcConfig::new(
            [sg.id()],
            props.subnet_ids.clone(),
            &props.vpc_id,
        ))
        .depends_on(role.policy_addresses().to_vec());
        let project = scope.tf.add(F, "deploy_runner", project);
        let queued = FilterGroupFilter::new("WORKFLOW_JOB_QUEUED", "EVENT");
        scope.tf.add(
            F,
            "deploy_runner",
            CodebuildWebhook::new(&props.project_name)
                .build_type("BUILD")
                .filter_group([FilterGroup::new().filter([queued])])
                .depends_on([project.tf_ref().address()]),
        );
        DeployRunner {
            project_name: props.project_name.clone(),
            connection_arn: connection.arn().into(),
            security_group_id: sg.id(),
            role,
        }
    }

    /// The project's name.
    pub fn project_name(&self) -> &str {
        &self.project_name
    }

    /// The connection's ARN (PENDING until a person authorizes it in the console).
    pub fn connection_arn(&self) -> Expr {
        self.connection_arn.clone()
    }

    /// The runner's security group.
    pub fn security_group_id(&self) -> Expr {
        self.security_group_id.clone()
    }

    /// The project's service role.
    pub fn role(&self) -> &Role {
        &self.role
    }
}

/// The `runs-on` label of a workflow job that runs on the runner project `project_name`.
pub fn runs_on(project_name: &str) -> String {
    format!("codebuild-{project_name}-${{{{ github.run_id }}}}-${{{{ github.run_attempt }}}}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_on_label() {
        assert_eq!(
            super::runs_on("eks-prod-deploy-runner"),
            "codebuild-eks-prod-deploy-runner-${{ github.run_id }}-${{ github.run_attempt }}"
        );
    }
}
