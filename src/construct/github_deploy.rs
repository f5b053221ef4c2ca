//! A GitHub Actions deploy role for one stack in one environment: trusted only by one
//! repository's jobs that run in the GitHub environment of the same name (`aud` and `sub`
//! pinned with `StringEquals`), allowed to push to the stack's ECR repositories and
//! whatever the stack adds, and, for a Kubernetes stack, an EKS access entry with no access
//! policy at all, only a Kubernetes group that the stack's own namespaced Role binds
//! ([`crate::k8s::stack_deployer`], derived from what the stack emits). Not
//! AmazonEKSEditPolicy: it covers neither Argo Rollouts nor External Secrets, and it reads
//! every Secret of the namespace. Never cluster admin.
//!
//! The account's OIDC provider (`token.actions.githubusercontent.com`) is created once per
//! account by the platform stack of the environment that owns the account; its ARN is
//! deterministic, so deploy roles name it without an import.

use super::Scope;
use super::eks::group_access_entry;
use super::iam::{GITHUB_OIDC_HOST, Role, Statement, Trust};
use crate::refs::Expr;

/// Options for [`github_deploy_role`].
#[derive(Debug, Clone)]
pub struct GithubDeployProps {
    /// `owner/name` of the repository whose workflows deploy.
    pub repository: String,
    /// ECR repository URLs the workflow pushes to (non-ECR images are skipped).
    pub images: Vec<String>,
    /// Further permissions of the stack's deployment.
    pub statements: Vec<Statement>,
    /// The cluster of a Kubernetes stack and what the role may do there.
    pub cluster: Option<(Expr, ClusterAccess)>,
}

/// What a deploy role may do on its stack's cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterAccess {
    /// No EKS access policy: the access entry maps the role to this Kubernetes group,
    /// which gets exactly what the stack's RoleBindings grant it (see
    /// [`crate::k8s::deployer`]).
    Group(String),
}

/// The ECR repository ARN of an image repository URL such as
/// `111122223333.dkr.ecr.us-east-1.amazonaws.com/team/app`; `None` outside ECR.
pub fn ecr_repository_arn(partition: &str, url: &str) -> Option<String> {
    let (host, path) = url.split_once('/')?;
    let mut parts = host.split('.');
    let account = parts.next()?;
    let (dkr, ecr, region) = (parts.next()?, parts.next()?, parts.next()?);
    let valid = account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && dkr == "dkr"
        && ecr == "ecr"
        && !path.is_empty();
    valid.then(|| format!("arn:{partition}:ecr:{region}:{account}:repository/{path}"))
}

/// Creates the role `<prefix>-github-deploy` (and its access entry).
pub fn github_deploy_role(scope: &mut Scope<'_>, props: &GithubDeployProps) -> Role {
    let partition = scope.partition();
    let provider = format!(
        "arn:{partition}:iam::{}:oidc-provider/{GITHUB_OIDC_HOST}",
        scope.tf.account_id()
    );
    let subject = format!("repo:{}:environment:{}", props.repository, scope.env);
    let repositories: Vec<String> = props
        .images
        .iter()
        .filter_map(|url| ecr_repository_arn(partition, url))
        .collect();
    let mut statements = Vec::new();
    if !repositories.is_empty() {
        // AWS grants the registry login on `*` only; it authorizes nothing by itself.
        statements.push(Statement::allow(
            "EcrLogin",
            &["ecr:GetAuthorizationToken"],
            vec!["*".into()],
        ));
        statements.push(Statement::allow(
            "PushStackImages",
            &[
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:CompleteLayerUpload",
                "ecr:GetDownloadUrlForLayer",
                "ecr:InitiateLayerUpload",
                "ecr:PutImage",
                "ecr:UploadLayerPart",
            ],
            repositories,
        ));
    }
    statements.extend(props.statements.iter().cloned());
    let role = Role::new(
        scope,
        "github_deploy",
        "github-deploy",
        Trust::GithubActions {
            provider_arn: provider,
            subjects: vec![subject],
        },
        &[],
        statements,
    );
    match &props.cluster {
        Some((cluster, ClusterAccess::Group(group))) => {
            group_access_entry(
                scope,
                cluster.clone(),
                "github_deploy",
                role.arn().into(),
                group,
            );
        }
        None => {}
    }
    role
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_urls_become_repository_arns() {
        assert_eq!(
            ecr_repository_arn(
                "aws",
                "111122223333.dkr.ecr.us-east-1.amazonaws.com/team/app"
            )
            .as_deref(),
            Some("arn:aws:ecr:us-east-1:111122223333:repository/team/app")
        );
        assert_eq!(ecr_repository_arn("aws", "ghcr.io/acme/app"), None);
        assert_eq!(
            ecr_repository_arn("aws", "111122223333.dkr.ecr.us-east-1.amazonaws.com/"),
            None
        );
    }
}
