//! IAM roles with least-privilege policies written as `aws_iam_policy_document` data
//! sources, so the PR diff shows each statement as data rather than an escaped string.

use super::{Scope, local_name};
use crate::refs::{Expr, Ref};
use crate::tf::aws::data::iam_policy_document::{
    Statement as DocStatement, StatementCondition, StatementPrincipals,
};
use crate::tf::aws::data::{IamPolicyDocument, IamPolicyDocumentRef};
use crate::tf::aws::resource::{IamRole, IamRolePolicy, IamRolePolicyAttachment};

/// One policy statement (always `Allow`).
#[derive(Debug, Clone)]
pub struct Statement {
    /// Statement id, shown in the policy.
    pub sid: String,
    /// Actions, e.g. `secretsmanager:GetSecretValue`.
    pub actions: Vec<String>,
    /// Resource ARNs (literals or references). Never `*` together with a `*` action.
    pub resources: Vec<String>,
    /// Conditions as (test, variable, values).
    pub conditions: Vec<(String, String, Vec<String>)>,
}

impl Statement {
    /// Allows `actions` on `resources`.
    pub fn allow(sid: &str, actions: &[&str], resources: Vec<String>) -> Self {
        Statement {
            sid: sid.to_owned(),
            actions: actions.iter().map(|s| (*s).to_owned()).collect(),
            resources,
            conditions: Vec::new(),
        }
    }

    /// Adds a condition.
    pub fn when(mut self, test: &str, variable: &str, values: Vec<String>) -> Self {
        self.conditions
            .push((test.to_owned(), variable.to_owned(), values));
        self
    }

    /// The statement of an `aws_iam_policy_document`.
    pub fn to_typed(&self) -> DocStatement {
        let s = DocStatement::new()
            .sid(&self.sid)
            .effect("Allow")
            .actions(self.actions.clone())
            .resources(self.resources.clone());
        if self.conditions.is_empty() {
            s
        } else {
            s.condition(
                self.conditions
                    .iter()
                    .map(|(test, variable, values)| condition(test, variable, values.clone())),
            )
        }
    }
}

/// A statement's `condition` block: `test` on `variable` against `values`.
pub fn condition(
    test: &str,
    variable: impl Into<String>,
    values: Vec<String>,
) -> StatementCondition {
    StatementCondition::new(test, values, variable.into())
}

/// A statement's `principals` block: `kind` (`AWS`, `Service`, `Federated`, `*`) and who.
pub fn principals<X: Into<crate::tf::bind::Val<String>>>(
    kind: &str,
    identifiers: Vec<X>,
) -> StatementPrincipals {
    StatementPrincipals::new(identifiers, kind)
}

/// Adds `data.aws_iam_policy_document.<name>` with `statements` to `file`.
pub fn policy_document(
    scope: &mut Scope<'_>,
    file: &str,
    name: &str,
    statements: impl IntoIterator<Item = DocStatement>,
) -> IamPolicyDocumentRef {
    scope
        .tf
        .add(file, name, IamPolicyDocument::new().statement(statements))
}

/// An `Allow` statement with its sid and actions (principals, resources and conditions
/// are added by the caller).
pub fn allow(sid: &str, actions: &[&str]) -> DocStatement {
    DocStatement::new()
        .sid(sid)
        .effect("Allow")
        .actions(actions.to_vec())
}

/// Who may assume a role.
#[derive(Debug, Clone)]
pub enum Trust {
    /// An AWS service principal, e.g. `ecs-tasks.amazonaws.com`, limited to this account
    /// (`aws:SourceAccount`) to prevent the confused-deputy problem.
    Service(&'static str),
    /// One IAM role of this account, named by its ARN (which need not exist yet: the trust
    /// names the account and pins `aws:PrincipalArn`, so IAM does not resolve the role at
    /// create time and a stack can be applied before the role's own stack).
    Role(String),
    /// An AWS service principal without source conditions, for services that do not send
    /// `aws:SourceAccount` when they assume the role (EC2 instance profiles, the EKS
    /// control plane).
    ServiceOnly(&'static str),
    /// A web identity (IRSA): the cluster's OIDC provider, pinned with `StringEquals` to
    /// one ServiceAccount (`<issuer>:sub`) and the STS audience (`<issuer>:aud`).
    WebIdentity {
        /// ARN of the cluster's IAM OIDC provider.
        provider_arn: Expr,
        /// The issuer URL (`https://oidc.eks.<region>.amazonaws.com/id/<ID>`).
        issuer: Expr,
        /// `system:serviceaccount:<namespace>:<name>`.
        subject: String,
    },
    /// EKS Pod Identity: `pods.eks.amazonaws.com` with `sts:AssumeRole` and
    /// `sts:TagSession`, pinned to one namespace and ServiceAccount by session tags.
    PodIdentity {
        /// Namespace.
        namespace: String,
        /// ServiceAccount name.
        service_account: String,
    },
    /// GitHub Actions OIDC: `token.actions.githubusercontent.com`, `aud` and `sub` pinned
    /// with `StringEquals` (never a wildcard repository or branch).
    GithubActions {
        /// ARN of the account's GitHub OIDC provider.
        provider_arn: String,
        /// Exact subjects, e.g. `repo:acme/api:environment:prod`.
        subjects: Vec<String>,
    },
}

/// The GitHub Actions OIDC issuer host.
pub const GITHUB_OIDC_HOST: &str = "token.actions.githubusercontent.com";

/// The audience STS expects in web identity tokens.
pub const STS_AUDIENCE: &str = "sts.amazonaws.com";

/// An IAM role with managed and inline policies.
#[derive(Debug, Clone)]
pub struct Role {
    role: Ref,
    attachments: Vec<String>,
    policy: Option<Ref>,
}

/// The trust policy statement of `trust`.
fn trust_statement(scope: &Scope<'_>, trust: Trust) -> DocStatement {
    let account = || vec![scope.tf.account_id().to_owned()];
    match trust {
        Trust::Service(principal) => allow("AssumeFromService", &["sts:AssumeRole"])
            .principals([principals("Service", vec![principal])])
            .condition([condition("StringEquals", "aws:SourceAccount", account())]),
        Trust::Role(role_arn) => allow("AssumeFromRole", &["sts:AssumeRole"])
            .principals([principals("AWS", vec![scope.account_root_arn()])])
            .condition([condition("ArnEquals", "aws:PrincipalArn", vec![role_arn])]),
        Trust::ServiceOnly(principal) => allow("AssumeFromService", &["sts:AssumeRole"])
            .principals([principals("Service", vec![principal])]),
        Trust::WebIdentity {
            provider_arn,
            issuer,
            subject,
        } => {
            let host = Expr::raw(format!("replace({}, \"https://\", \"\")", issuer.as_hcl()));
            allow(
                "AssumeFromServiceAccount",
                &["sts:AssumeRoleWithWebIdentity"],
            )
            .principals([principals("Federated", vec![provider_arn])])
            .condition([
                condition("StringEquals", format!("{host}:sub"), vec![subject]),
                condition(
                    "StringEquals",
                    format!("{host}:aud"),
                    vec![STS_AUDIENCE.into()],
                ),
            ])
        }
        Trust::PodIdentity {
            namespace,
            service_account,
        } => allow(
            "AssumeFromPodIdentity",
            &["sts:AssumeRole", "sts:TagSession"],
        )
        .principals([principals("Service", vec!["pods.eks.amazonaws.com"])])
        .condition([
            condition("StringEquals", "aws:SourceAccount", account()),
            condition(
                "StringEquals",
                "aws:RequestTag/kubernetes-namespace",
                vec![namespace],
            ),
            condition(
                "StringEquals",
                "aws:RequestTag/kubernetes-service-account",
                vec![service_account],
            ),
        ]),
        Trust::GithubActions {
            provider_arn,
            subjects,
        } => allow(
            "AssumeFromGithubActions",
            &["sts:AssumeRoleWithWebIdentity"],
        )
        .principals([principals("Federated", vec![provider_arn])])
        .condition([
            condition(
                "StringEquals",
                format!("{GITHUB_OIDC_HOST}:aud"),
                vec![STS_AUDIENCE.into()],
            ),
            condition("StringEquals", format!("{GITHUB_OIDC_HOST}:sub"), subjects),
        ]),
    }
}

/// `arn:<partition>:iam::<account>:role/<prefix>-<suffix>`: the ARN [`Role::new`] gives a
/// role, known before it exists (for Kubernetes annotations and other stacks).
pub fn role_arn(scope: &Scope<'_>, suffix: &str) -> String {
    format!(
        "arn:{}:iam::{}:role/{}",
        scope.partition(),
        scope.tf.account_id(),
        scope.name(suffix)
    )
}

impl Role {
    /// Creates `aws_iam_role.<id>` named `<prefix>-<suffix>` in `iam.tf.json`, trusted by `trust`,
    /// with the given AWS managed policies (by path) and inline statements.
    pub fn new(
        scope: &mut Scope<'_>,
        id: &str,
        suffix: &str,
        trust: Trust,
        managed: &[&str],
        statements: Vec<Statement>,
    ) -> Role {
        let id = local_name(id);
        let trust = trust_statement(scope, trust);
        let trust_ref = policy_document(scope, "iam", &format!("{id}_trust"), [trust]);
        let name = scope.name(suffix);
        let role = scope.tf.add(
            "iam",
            &id,
            IamRole::new(trust_ref.json())
                .name(&name)
                .max_session_duration(3600),
        );
        let mut attachments = Vec::new();
        for path in managed {
            let attach_id = format!(
                "{id}_{}",
                local_name(path.rsplit('/').next().unwrap_or(path))
            );
            let arn = scope.managed_policy(path);
            let attachment = scope.tf.add(
                "iam",
                &attach_id,
                IamRolePolicyAttachment::new(arn, role.name()),
            );
            attachments.push(attachment.tf_ref().address());
        }
        let mut policy = None;
        if !statements.is_empty() {
            let doc_ref = policy_document(
                scope,
                "iam",
                &id,
                statements.iter().map(Statement::to_typed),
            );
            let inline = scope.tf.add(
                "iam",
                &id,
                IamRolePolicy::new(doc_ref.json(), role.id()).name(&name),
            );
            policy = Some(doc_ref.into_ref());
            attachments.push(inline.tf_ref().address());
        }
        Role {
            role: role.into_ref(),
            attachments,
            policy,
        }
    }

    /// Addresses of the managed-policy attachments and the inline policy, for
    /// `depends_on` of a resource that uses the role as soon as it is created (RDS
    /// enhanced monitoring, an EKS cluster encrypting with its key, node groups).
    pub fn policy_addresses(&self) -> &[String] {
        &self.attachments
    }

    /// The role's ARN.
    pub fn arn(&self) -> Expr {
        self.role.arn()
    }

    /// The inline policy document, if the role has statements (for suppressions).
    pub fn policy_document(&self) -> Option<&Ref> {
        self.policy.as_ref()
    }

    /// The role's name.
    pub fn name(&self) -> Expr {
        self.role.attr("name")
    }

    /// The role's Terraform address, for `depends_on`.
    pub fn address(&self) -> String {
        self.role.address()
    }
}
