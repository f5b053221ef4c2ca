//! IAM roles with least-privilege policies written as `aws_iam_policy_document` data
//! sources, so the PR diff shows each statement as data rather than an escaped string.

use serde_json::{Value, json};

use super::{Scope, local_name};
use crate::refs::{Expr, Ref};

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

    fn to_json(&self) -> Value {
        let mut s = json!({
            "sid": self.sid,
            "effect": "Allow",
            "actions": self.actions,
            "resources": self.resources,
        });
        if !self.conditions.is_empty() {
            s["condition"] = conditions(&self.conditions);
        }
        s
    }
}

fn conditions(list: &[(String, String, Vec<String>)]) -> Value {
    Value::Array(
        list.iter()
            .map(|(test, variable, values)| json!({"test": test, "variable": variable, "values": values}))
            .collect(),
    )
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

/// The trust policy document of `trust`: one statement.
fn trust_document(scope: &Scope<'_>, trust: Trust) -> Value {
    let statement = match trust {
        Trust::Service(principal) => json!({
            "sid": "AssumeFromService",
            "effect": "Allow",
            "actions": ["sts:AssumeRole"],
            "principals": [{"type": "Service", "identifiers": [principal]}],
            "condition": conditions(&[(
                "StringEquals".into(),
                "aws:SourceAccount".into(),
                vec![scope.tf.account_id().to_owned()],
            )]),
        }),
        Trust::Role(role_arn) => json!({
            "sid": "AssumeFromRole",
            "effect": "Allow",
            "actions": ["sts:AssumeRole"],
            "principals": [{"type": "AWS", "identifiers": [scope.account_root_arn()]}],
            "condition": conditions(&[(
                "ArnEquals".into(),
                "aws:PrincipalArn".into(),
                vec![role_arn],
            )]),
        }),
        Trust::ServiceOnly(principal) => json!({
            "sid": "AssumeFromService",
            "effect": "Allow",
            "actions": ["sts:AssumeRole"],
            "principals": [{"type": "Service", "identifiers": [principal]}],
        }),
        Trust::WebIdentity {
            provider_arn,
            issuer,
            subject,
        } => {
            let host = Expr::raw(format!("replace({}, \"https://\", \"\")", issuer.as_hcl()));
            json!({
                "sid": "AssumeFromServiceAccount",
                "effect": "Allow",
                "actions": ["sts:AssumeRoleWithWebIdentity"],
                "principals": [{"type": "Federated", "identifiers": [provider_arn]}],
                "condition": conditions(&[
                    ("StringEquals".into(), format!("{host}:sub"), vec![subject]),
                    ("StringEquals".into(), format!("{host}:aud"), vec![STS_AUDIENCE.into()]),
                ]),
            })
        }
        Trust::PodIdentity {
            namespace,
            service_account,
        } => json!({
            "sid": "AssumeFromPodIdentity",
            "effect": "Allow",
            "actions": ["sts:AssumeRole", "sts:TagSession"],
            "principals": [{"type": "Service", "identifiers": ["pods.eks.amazonaws.com"]}],
            "condition": conditions(&[
                ("StringEquals".into(), "aws:SourceAccount".into(), vec![scope.tf.account_id().to_owned()]),
                ("StringEquals".into(), "aws:RequestTag/kubernetes-namespace".into(), vec![namespace]),
                ("StringEquals".into(), "aws:RequestTag/kubernetes-service-account".into(), vec![service_account]),
            ]),
        }),
        Trust::GithubActions {
            provider_arn,
            subjects,
        } => json!({
            "sid": "AssumeFromGithubActions",
            "effect": "Allow",
            "actions": ["sts:AssumeRoleWithWebIdentity"],
            "principals": [{"type": "Federated", "identifiers": [provider_arn]}],
            "condition": conditions(&[
                ("StringEquals".into(), format!("{GITHUB_OIDC_HOST}:aud"), vec![STS_AUDIENCE.into()]),
                ("StringEquals".into(), format!("{GITHUB_OIDC_HOST}:sub"), subjects),
            ]),
        }),
    };
    json!({"statement": [statement]})
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
        let trust_doc = trust_document(scope, trust);
        let trust_ref = scope.tf.data(
            "iam",
            "aws_iam_policy_document",
            &format!("{id}_trust"),
            trust_doc,
        );
        let name = scope.name(suffix);
        let role = scope.tf.resource(
            "iam",
            "aws_iam_role",
            &id,
            json!({
                "name": name,
                "assume_role_policy": trust_ref.attr("json"),
                "max_session_duration": 3600,
            }),
        );
        let mut attachments = Vec::new();
        for path in managed {
            let attach_id = format!(
                "{id}_{}",
                local_name(path.rsplit('/').next().unwrap_or(path))
            );
            let arn = scope.managed_policy(path);
            let attachment = scope.tf.resource(
                "iam",
                "aws_iam_role_policy_attachment",
                &attach_id,
                json!({"role": role.attr("name"), "policy_arn": arn}),
            );
            attachments.push(attachment.address());
        }
        let mut policy = None;
        if !statements.is_empty() {
            let doc =
                json!({"statement": statements.iter().map(Statement::to_json).collect::<Vec<_>>()});
            let doc_ref = scope.tf.data("iam", "aws_iam_policy_document", &id, doc);
            policy = Some(doc_ref.clone());
            let inline = scope.tf.resource(
                "iam",
                "aws_iam_role_policy",
                &id,
                json!({"name": name, "role": role.id(), "policy": doc_ref.attr("json")}),
            );
            attachments.push(inline.address());
        }
        Role {
            role,
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
